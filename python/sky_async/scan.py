"""What ``sky_async.scan_tree`` returns: counts, sizes, the largest files and the problems.

For example::

    result = await sky_async.scan_tree("data/", max_file_size=5 * 2**30)
    if result.problems:
        for problem in result.problems:
            print(problem.kind, problem.path, problem.message)

Paths are the root as given joined with the names below it: ``str`` when the root was
given as ``str`` (or a ``str`` path-like; undecodable bytes appear as surrogate escapes,
as in ``os.fsdecode``), ``bytes`` when it was given as ``bytes``: to a type checker the
result is a ``TreeScan[str]`` or a ``TreeScan[bytes]`` (and its ``ScanProblem`` and
``LargeFile`` likewise).

Problem kinds (``ScanProblem.kind``), in the order that breaks ties between problems
of the same path:

- ``unreadable_directory``: a directory that cannot be opened or listed (errno set).
- ``unreadable_file``: a regular file this process may not read (errno EACCES).
- ``broken_symlink``: a symlink whose target does not exist (errno ENOENT or ENOTDIR).
- ``symlink_loop``: a symlink that resolves to ELOOP (errno ELOOP), or, with
  ``follow_symlinks``, to a directory that contains it (errno None): following it would
  never end. Not followed, such a link (``/usr/bin/X11 -> .``) is copied as a link, as
  ``rsync -a`` does, and is no problem.
- ``special_file``: a FIFO, socket or device (with ``follow_symlinks``, also a symlink to one).
- ``invalid_utf8_name``: the entry's own name is not valid UTF-8 (the root's is not checked).
- ``too_large``: a regular file over ``max_file_size`` bytes.
- ``stat_error``: any other failure to stat an entry or its symlink's target (errno set).

A tree that changes while it is scanned is not a problem of the tree: an entry listed in
its directory that is gone when the scan comes to stat or open it is counted in
``TreeScan.vanished`` (see there), never reported as a problem.
"""

from __future__ import annotations

import builtins
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, Union, overload

from ._errors import make_os_error

UNREADABLE_DIRECTORY = "unreadable_directory"
UNREADABLE_FILE = "unreadable_file"
BROKEN_SYMLINK = "broken_symlink"
SYMLINK_LOOP = "symlink_loop"
SPECIAL_FILE = "special_file"
INVALID_UTF8_NAME = "invalid_utf8_name"
TOO_LARGE = "too_large"
STAT_ERROR = "stat_error"

PROBLEM_KINDS = (
    UNREADABLE_DIRECTORY,
    UNREADABLE_FILE,
    BROKEN_SYMLINK,
    SYMLINK_LOOP,
    SPECIAL_FILE,
    INVALID_UTF8_NAME,
    TOO_LARGE,
    STAT_ERROR,
)

ScanPath = Union[str, builtins.bytes]

# The type of the paths in a result: str for a str root, bytes for a bytes root.
PathT = TypeVar("PathT", str, builtins.bytes)

_MAX_UINT64 = 2**64 - 1


@dataclass(frozen=True)
class ScanProblem(Generic[PathT]):
    """One entry a mount or upload of the tree would have trouble with."""

    kind: str
    path: PathT
    errno: int | None
    message: str


if TYPE_CHECKING:

    class LargeFile(NamedTuple, Generic[PathT]):
        path: PathT
        size: int

else:
    # A generic NamedTuple needs Python 3.11 at runtime: type checkers see the generic one.
    class LargeFile(NamedTuple):
        path: ScanPath
        size: int


@dataclass(frozen=True)
class TreeScan(Generic[PathT]):
    """The result of ``scan_tree``; the same tree always gives an equal result.

    The root is not counted in ``directories``; a root that is a regular file gives
    ``files == 1``. Each entry below it is counted once by what it is (not following
    symlinks); an entry that cannot be stat'ed is counted in none and reported as a
    ``stat_error``. With ``follow_symlinks`` a symlink is counted in ``symlinks`` and
    its target too (as a file with its size, under the link's path; as a special file;
    as a directory when it is descended: a directory reached twice is scanned once).

    ``vanished`` counts the entries listed in their directory that were gone when the scan
    came to stat or open them (ENOENT; or ENOTDIR: a directory replaced by a file or a
    symlink, a symlinked directory whose link now leads elsewhere); they are counted in
    none of the other counts and are no problem. What replaced one is not scanned, as no
    entry created in a directory after its listing is. A directory removed while it is
    listed ends its listing there; a regular file removed after its stat is counted as
    found. The root is not such an entry: a root that does not exist raises.
    """

    files: int
    directories: int
    symlinks: int
    special_files: int
    bytes: int  # the sum of st_size over the regular files counted in `files`
    # At most max_problems, sorted by (path, kind order): the first ones in that order.
    problems: tuple[ScanProblem[PathT], ...]
    # Every problem found, per kind (all kinds present, zeros included).
    problem_counts: dict[str, int]
    # The largest regular files: size descending, then path ascending.
    largest: tuple[LargeFile[PathT], ...]
    # With collect_files: every regular file counted in `files`, sorted; else None.
    file_paths: tuple[PathT, ...] | None
    # Entries gone between their listing and their stat or open (last, for positional callers).
    vanished: int = 0

    @property
    def total_problems(self) -> int:
        return sum(self.problem_counts.values())

    @property
    def problems_truncated(self) -> bool:
        """Whether more problems were found than ``problems`` holds (see max_problems)."""
        return self.total_problems > len(self.problems)


# --- internal: shared by the API over both backends ----------------------------------------------


class ScanOptions(NamedTuple):
    """Validated options, in the order the backends take them."""

    follow_symlinks: bool
    max_file_size: int  # 0: no limit
    largest: int
    collect_files: bool
    max_problems: int
    # The paths to leave out, relative to the root (scan_options::excluded in C++), sorted.
    excluded: tuple[builtins.bytes, ...] = ()


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def _check_count(name: str, value: object, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def check_scan_options(
    follow_symlinks: object,
    max_file_size: object,
    largest: object,
    collect_files: object,
    max_problems: object,
) -> ScanOptions:
    limit = 0 if max_file_size is None else _check_count("max_file_size", max_file_size, 1, _MAX_UINT64)
    return ScanOptions(
        _check_bool("follow_symlinks", follow_symlinks),
        limit,
        _check_count("largest", largest, 0, sys.maxsize),
        _check_bool("collect_files", collect_files),
        _check_count("max_problems", max_problems, 0, sys.maxsize),
    )


def _message(kind: str, code: int | None, size: int, limit: int) -> str:
    reason = f": {os.strerror(code)}" if code is not None else ""
    if kind == UNREADABLE_DIRECTORY:
        return f"cannot list directory{reason}"
    if kind == UNREADABLE_FILE:
        return f"cannot read file{reason}"
    if kind == BROKEN_SYMLINK:
        return f"broken symbolic link{reason}"
    if kind == SYMLINK_LOOP:
        return (
            f"symbolic link loop{reason}"
            if code is not None
            else "symbolic link to a directory that contains it"
        )
    if kind == SPECIAL_FILE:
        return "special file (FIFO, socket or device)"
    if kind == INVALID_UTF8_NAME:
        return "name is not valid UTF-8"
    if kind == TOO_LARGE:
        return f"file of {size} bytes is over max_file_size ({limit} bytes)"
    return f"cannot stat{reason}"


@overload
def finish_scan(item: Any, path: str | os.PathLike[str], options: ScanOptions) -> TreeScan[str]: ...
@overload
def finish_scan(
    item: Any, path: builtins.bytes | os.PathLike[builtins.bytes], options: ScanOptions
) -> TreeScan[builtins.bytes]: ...
@overload
def finish_scan(item: Any, path: object, options: ScanOptions) -> TreeScan[Any]: ...
def finish_scan(item: Any, path: object, options: ScanOptions) -> TreeScan[Any]:
    """The TreeScan for a backend's item, or the OSError naming *path* for a root that failed."""
    if isinstance(item, tuple):
        code, message = item
        raise make_os_error(code, message, path)
    if item is None:  # stopped at interpreter exit: a partial count must not pass for a result
        raise RuntimeError("sky_async is shutting down: the scan was stopped before it finished")
    decode = os.fsdecode if not isinstance(os.fspath(path), bytes) else None  # type: ignore[call-overload]

    def convert(raw: bytes) -> Any:  # str or bytes as the root, which the overloads tell apart
        return decode(raw) if decode is not None else raw

    limit = options.max_file_size
    problems = tuple(
        ScanProblem(kind, convert(raw), code, _message(kind, code, size, limit))
        for kind, raw, code, size in item["problems"]
    )
    file_paths = item["file_paths"]
    return TreeScan(
        files=item["files"],
        directories=item["directories"],
        symlinks=item["symlinks"],
        special_files=item["special_files"],
        bytes=item["bytes"],
        problems=problems,
        problem_counts=dict(item["problem_counts"]),
        largest=tuple(LargeFile(convert(raw), size) for raw, size in item["largest"]),
        file_paths=None if file_paths is None else tuple(convert(raw) for raw in file_paths),
        vanished=item["vanished"],
    )


__all__ = [
    "BROKEN_SYMLINK",
    "INVALID_UTF8_NAME",
    "PROBLEM_KINDS",
    "SPECIAL_FILE",
    "STAT_ERROR",
    "SYMLINK_LOOP",
    "TOO_LARGE",
    "UNREADABLE_DIRECTORY",
    "UNREADABLE_FILE",
    "LargeFile",
    "ScanProblem",
    "TreeScan",
]
