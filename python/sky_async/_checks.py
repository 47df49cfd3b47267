"""Argument checks shared by every feature, so that the same mistake gets the same message."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Union

# What the public functions take as a path (what os.fsencode takes).
StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# Above this many files in flight per call, more concurrency only adds memory and fds.
MAX_CONCURRENCY = 1024


def require_int(value: object, name: str, expected: str = "an int") -> int:
    """*value* if it is an int, else TypeError("<name> must be <expected>, not <type>").

    bool is an int subclass, but True is not a count, a pid or a port: accepting it would
    hide a bug in the caller.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {expected}, not {type(value).__name__}")
    return value


def require_str_path(value: object, name: str) -> str:
    """*value* as a str path; TypeError naming *name* for bytes, non-paths and bytes paths
    (the features that work on text paths: ``.skyignore``, ``.gitignore``)."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or an os.PathLike of str, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a str or an os.PathLike of str, not a path of {type(path).__name__}")
    return path


def check_concurrency(concurrency: object) -> int:
    """0 lets the backend choose."""
    if concurrency is None:
        return 0
    value = require_int(concurrency, "concurrency", "an int or None")
    if value < 1:
        raise ValueError(f"concurrency must be at least 1, got {value}")
    return min(value, MAX_CONCURRENCY)


def encode_path(path: object) -> bytes:
    """The bytes the kernel sees, or the exception ``open()`` would raise for this argument."""
    encoded = os.fsencode(path)  # type: ignore[arg-type]  # TypeError for non-paths
    if b"\0" in encoded:
        raise ValueError("embedded null byte")
    return encoded


def encode_paths(originals: list[Any]) -> tuple[list[bytes], list[int], list[Any]]:
    """A batch's paths for the backend: the encoded ones, the input index of each, and one
    result slot per input holding the exception of a path that could not be encoded (None
    elsewhere), so that one bad path never loses the others' results.

    Any Exception counts, not only the TypeError/ValueError of os.fsencode: a path object's
    ``__fspath__`` may raise anything (RuntimeError, OSError, ...), and it is that item's
    failure. KeyboardInterrupt and SystemExit still stop the call."""
    encoded: list[bytes] = []
    positions: list[int] = []
    results: list[Any] = [None] * len(originals)
    for index, original in enumerate(originals):
        try:
            encoded.append(encode_path(original))
        except Exception as exc:
            results[index] = exc
        else:
            positions.append(index)
    return encoded, positions, results


def as_path_list(paths: object) -> list[Any]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError("paths must be an iterable of paths, not a single path")
    if not isinstance(paths, Iterable):
        raise TypeError(f"paths must be an iterable of paths, not {type(paths).__name__}")
    return list(paths)
