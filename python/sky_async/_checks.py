"""Argument checks shared by every feature, so that the same mistake gets the same message."""

from __future__ import annotations


def require_int(value: object, name: str, expected: str = "an int") -> int:
    """*value* if it is an int, else TypeError("<name> must be <expected>, not <type>").

    bool is an int subclass, but True is not a count, a pid or a port: accepting it would
    hide a bug in the caller.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {expected}, not {type(value).__name__}")
    return value
