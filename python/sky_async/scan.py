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

With ``ignore``, the paths an ignore rule set excludes are left out of the scan: an excluded
entry is not counted and not reported, and an excluded directory is not descended, so
nothing below it is met. ``TreeScan.excluded`` lists the top-most excluded paths, each with
the rule that excludes it (``ExcludedPath``). The rule sets (``IGNORE_CHOICES``), each read
from the tree at the root when the scan starts:

- ``"skyignore"``: the root's ``.skyignore`` with SkyPilot 0.14.1's semantics (see
  docs/skyignore.md); none, or an unreadable one, excludes nothing.
- ``"git"``: git's rules, as ``git ls-files --others --ignored --exclude-standard
  --directory`` run in the root lists them (see docs/gitignore.md): tracked files are
  never excluded. Outside a git work tree nothing is excluded.
- ``"skypilot"``: SkyPilot's choice for an upload: ``"skyignore"`` when the root has a
  ``.skyignore``, else ``"git"``.
- ``"rsync"``: rsync's ``--filter='dir-merge,- .skyignore'``, SkyPilot's rsync of a tree:
  every directory's ``.skyignore``, each for its own directory and below (see
  docs/rsync-filter.md).

The root itself is never excluded, and a root that is not a directory has nothing to exclude.
The rule sets' own failures are raised as they are: ``UnicodeDecodeError`` for a
``.skyignore`` that is not UTF-8 (``"skyignore"``, as in SkyPilot), and ``RuntimeError``
where git itself cannot list (``"git"``, for a root inside a directory git's rules exclude,
where ``git ls-files`` stops with an internal error).

A tree that changes while it is scanned is not a problem of the tree: an entry listed in
its directory that is gone when the scan comes to stat or open it is counted in
``TreeScan.vanished`` (see there), never reported as a problem.
"""

from __future__ import annotations

import builtins
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar, Union, overload

from ._errors import make_os_error
from ._upload import gitignore as _gitignore
from ._upload import rsync_filter as _rsync_filter
from ._upload import skyignore as _skyignore
from ._upload import skypilot_ignore as _skypilot_ignore

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

IgnoreMode = Literal["skypilot", "git", "skyignore", "rsync"]
"""The rule sets ``scan_tree(ignore=...)`` takes (see the module's docstring)."""

IGNORE_CHOICES: tuple[IgnoreMode, ...] = ("skypilot", "git", "skyignore", "rsync")

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
class ExcludedPath(Generic[PathT]):
    """A top-most path the ``ignore`` rules left out of the scan, and the rule that did.

    ``str(excluded)`` is the report's line, as ``sky-async preflight --skypilot`` names a
    rule: ``node_modules/ excluded by .gitignore:3``.
    """

    path: PathT
    """The root as given joined with the path below it, as the result's other paths."""
    relative: str
    """The path relative to the root, ``/``-separated, with a trailing ``/`` for a
    directory (by lstat); undecodable bytes as surrogate escapes."""
    source: str | None
    """The ignore file of the rule: ``.skyignore``, ``sub/.skyignore`` (rsync), ``.gitignore``,
    ``sub/.gitignore``, ``.git/info/exclude``, relative to the root when it is below it.
    None only for a directory git lists because every entry in it is ignored (git's
    ``--directory``), which no single line excludes."""
    line: int | None
    """The rule's 1-based line number in *source*."""
    pattern: str | None
    """The rule's line, as the rule set reads it."""

    @property
    def is_dir(self) -> bool:
        return self.relative.endswith("/")

    @property
    def rule(self) -> str | None:
        """``source:line``, such as ``.gitignore:3``; None when there is no single rule."""
        return None if self.source is None else f"{self.source}:{self.line}"

    def __str__(self) -> str:
        by = self.rule if self.rule is not None else "git (everything in it is ignored)"
        return f"{self.relative} excluded by {by}"


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
    # With ignore: the top-most excluded paths and their rules, sorted by path; else None.
    excluded: tuple[ExcludedPath[PathT], ...] | None = None

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


# What excluded a path: (relative path as the engines list it, source, line, pattern).
Exclusion = tuple[str, Union[str, None], Union[int, None], Union[str, None]]


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


def check_ignore(ignore: object) -> IgnoreMode | None:
    """*ignore* as given: None or one of IGNORE_CHOICES; TypeError for another type,
    ValueError naming the accepted values for another str."""
    if ignore is None:
        return None
    if not isinstance(ignore, str):
        raise TypeError(f"ignore must be None or a str, not {type(ignore).__name__}")
    for choice in IGNORE_CHOICES:
        if ignore == choice:
            return choice
    choices = ", ".join(repr(choice) for choice in (*IGNORE_CHOICES, None))
    raise ValueError(f"ignore must be one of {choices}, not {ignore!r}")


def find_exclusions(root: builtins.bytes, ignore: IgnoreMode) -> list[Exclusion]:
    """The top-most paths *ignore*'s rules exclude below *root*, with their rules, from the
    rule set's own engine; [] when *root* is not a directory (the scan reports a missing
    root). Blocking: it reads the tree."""
    path = os.fsdecode(root)
    if not os.path.isdir(path):
        return []
    if ignore == "skypilot":
        ignore = "skyignore" if _skypilot_ignore.uses_skyignore(path) else "git"
    if ignore == "skyignore":
        return list(_skyignore.excluded_top_most(path))
    if ignore == "git":
        return _gitignore.excluded_top_most(path)
    return list(_rsync_filter.excluded_top_most(path))


def with_exclusions(options: ScanOptions, exclusions: list[Exclusion]) -> ScanOptions:
    """*options* with the paths of *exclusions* to leave out, as the backends take them."""
    return options._replace(excluded=tuple(sorted(os.fsencode(rel.rstrip("/")) for rel, *_ in exclusions)))


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
def finish_scan(
    item: Any, path: str | os.PathLike[str], options: ScanOptions, exclusions: list[Exclusion] | None = None
) -> TreeScan[str]: ...
@overload
def finish_scan(
    item: Any,
    path: builtins.bytes | os.PathLike[builtins.bytes],
    options: ScanOptions,
    exclusions: list[Exclusion] | None = None,
) -> TreeScan[builtins.bytes]: ...
@overload
def finish_scan(
    item: Any, path: object, options: ScanOptions, exclusions: list[Exclusion] | None = None
) -> TreeScan[Any]: ...
def finish_scan(
    item: Any, path: object, options: ScanOptions, exclusions: list[Exclusion] | None = None
) -> TreeScan[Any]:
    """The TreeScan for a backend's item, or the OSError naming *path* for a root that failed.
    *exclusions*: what find_exclusions found with ``ignore``, None without it."""
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
    excluded = None
    if exclusions is not None:
        root = os.fsencode(path)  # type: ignore[arg-type]  # a str, bytes or path-like root
        found = sorted(
            (_join(root, os.fsencode(rel.rstrip("/"))), rel, source, line, pattern)
            for rel, source, line, pattern in exclusions
        )
        excluded = tuple(
            ExcludedPath(convert(raw), rel, source, line, pattern)
            for raw, rel, source, line, pattern in found
        )
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
        excluded=excluded,
    )


def _join(root: builtins.bytes, relative: builtins.bytes) -> builtins.bytes:
    """As the scans join a directory and a name: no separator after one already there."""
    return root + relative if root.endswith(b"/") else root + b"/" + relative


__all__ = [
    "BROKEN_SYMLINK",
    "IGNORE_CHOICES",
    "INVALID_UTF8_NAME",
    "PROBLEM_KINDS",
    "SPECIAL_FILE",
    "STAT_ERROR",
    "SYMLINK_LOOP",
    "TOO_LARGE",
    "UNREADABLE_DIRECTORY",
    "UNREADABLE_FILE",
    "ExcludedPath",
    "IgnoreMode",
    "LargeFile",
    "ScanProblem",
    "TreeScan",
]
