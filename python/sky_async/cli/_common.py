"""What the subcommands share: how errors are worded, which files are read as streams."""

from __future__ import annotations

import os
import stat

from ._names import quotef


def describe(error: BaseException) -> str:
    """The reason part of a one-line error message, without the path."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def explain(error: BaseException) -> str:
    """*error* as coreutils word it after the program name: ``PATH: reason``, or ``reason``
    when it names no file (never Python's ``[Errno 2] ...: 'PATH'``)."""
    if isinstance(error, OSError) and error.filename is not None:
        where = quotef(error.filename)
        if error.filename2 is not None:
            where += f" -> {quotef(error.filename2)}"
        return f"{where}: {describe(error)}"
    return describe(error)


def is_special(path: str) -> bool:
    """Whether *path* is a FIFO, socket or device (``/dev/fd/N`` of a pipe is a FIFO): what
    coreutils read as a stream when a command line names it. A path that cannot be looked
    at is not: the caller's open reports why."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def rule_error(root: str, mode: str, error: BaseException) -> str:
    """One line for the ignore rules' own failure (see sky_async.scan): a root .skyignore that
    is not UTF-8, or git unable to list the exclusions."""
    if isinstance(error, UnicodeDecodeError):
        where = quotef(os.path.join(root, ".skyignore"))
        return f"{where}: not UTF-8 (byte 0x{error.object[error.start]:02x} at offset {error.start})"
    return f"{quotef(root)}: --ignore {mode}: {' '.join(str(error).split())}"
