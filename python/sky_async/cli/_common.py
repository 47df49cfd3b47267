"""What the subcommands share: how errors are worded."""

from __future__ import annotations


def describe(error: BaseException) -> str:
    """The reason part of a one-line error message, without the path."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)
