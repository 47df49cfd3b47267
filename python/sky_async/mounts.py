"""SkyPilot's file-mount digest, with the files hashed concurrently.

SkyPilot decides on every launch whether a cluster's file mounts changed with one
SHA-256 over every file of every mount (``_deterministic_cluster_yaml_hash``), walked
and hashed serially. ``sky_async.file_mounts_digest`` feeds byte for byte the same
stream, in the same order, but hashes the files with ``hash_files`` (concurrently, on
either backend) between the walk and the feed.

The stream, after the optional *prefix* (SkyPilot's is the raw SHA-256 of the
normalised cluster YAML): for each mount in sorted destination order, the destination
(UTF-8) and a NUL; for a source that is a regular file after ``~`` expansion and
symlinks, ``file`` and its raw SHA-256; for a directory, ``dir`` and for every
directory of a top-down walk (sorted names; symlinked directories listed but not
descended into), its path and a NUL, each subdirectory name and a NUL, a NUL, each
file name and a NUL followed by the file's raw SHA-256, and a NUL; for anything else
(missing, a cloud URL) nothing; then two NULs. The content of gcloud's credential caches
(``credentials.db``, ``access_tokens.db`` and their ``-journal``, ``-wal``, ``-shm``
files) is not fed, only their names, as in SkyPilot 0.14.1.

Deviations from SkyPilot, all where SkyPilot has no usable result:

- A path below a mount that cannot be hashed -- a broken symlink (SkyPilot aborts with
  FileNotFoundError), a FIFO (SkyPilot hangs), a socket or device, an unreadable file
  or directory (SkyPilot silently skips unreadable directories, so their changes go
  unnoticed) -- is collected, and one :class:`FileMountsError` listing all of them
  is raised after the walk.
- Names that are not valid UTF-8 (SkyPilot raises UnicodeEncodeError) are fed as
  their raw bytes, and all names sort as bytes. For UTF-8 names byte order is
  Python's ``str`` order, so every digest SkyPilot can compute is unchanged.
- SkyPilot drops the cluster YAML's own mount and an empty ``""`` destination before
  hashing; that filtering is the caller's, as the mapping is taken as given.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Mapping
from typing import Any, Union

from ._errors import make_os_error

__all__ = ["FileMountsError"]


class FileMountsError(OSError):
    """Paths below the file mounts that cannot be hashed, all of them.

    ``problems`` is a list of ``(path, error)`` pairs in path order, each error an
    OSError with errno, strerror and filename set (a FIFO, socket or device is
    ``EINVAL`` "Not a regular file"). The exception's own errno and filename are the
    first problem's.
    """

    def __init__(self, problems: list[tuple[str, OSError]]) -> None:
        path, first = problems[0]
        count = len(problems)
        noun = "path" if count == 1 else "paths"
        super().__init__(
            first.errno,
            f"{count} file mount {noun} cannot be hashed (first: {first.strerror})",
            path,
        )
        self.problems = problems

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


# SkyPilot 0.14.1's _FILE_MOUNT_BASENAMES_SKIP_HASH: gcloud's credential caches, which
# gcloud rewrites on every run; their names are fed but their content is not, so that a
# token refresh does not count as a changed mount (nor can such a file fail the digest).
CONTENT_SKIPPED = frozenset(
    name + suffix
    for name in (b"credentials.db", b"access_tokens.db")
    for suffix in (b"", b"-journal", b"-wal", b"-shm")
)

# A piece of the stream: bytes, or the index of a file whose raw digest goes there.
Piece = Union[bytes, int]


class Plan:
    """The stream with file digests left as indices into ``files``."""

    __slots__ = ("files", "pieces", "problems")

    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.files: list[bytes] = []
        self.problems: list[tuple[bytes, OSError]] = []

    def add_file(self, path: bytes) -> None:
        self.pieces.append(len(self.files))
        self.files.append(path)


def check_file_mounts(file_mounts: object) -> list[tuple[bytes, bytes]]:
    """(destination, source) pairs as bytes, in SkyPilot's order, or TypeError/ValueError."""
    if not isinstance(file_mounts, Mapping):
        raise TypeError(
            f"file_mounts must be a mapping of destination to source, not {type(file_mounts).__name__}"
        )
    pairs = []
    for destination, source in file_mounts.items():
        if not isinstance(destination, str):
            raise TypeError(f"file mount destinations must be str, not {type(destination).__name__}")
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if not isinstance(source, str):
            raise TypeError(
                f"file mount source for {destination!r} must be a str or os.PathLike[str], "
                f"not {type(source).__name__}"
            )
        if "\0" in source:
            raise ValueError(f"file mount source for {destination!r} contains a null byte")
        try:
            encoded = destination.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"file mount destination {destination!r} is not valid Unicode: {exc}") from None
        pairs.append((destination, source, encoded))
    pairs.sort(key=lambda pair: (pair[0], pair[1]))
    return [(encoded, os.fsencode(os.path.expanduser(source))) for _, source, encoded in pairs]


def check_prefix(prefix: object) -> bytes:
    if not isinstance(prefix, (bytes, bytearray, memoryview)):
        raise TypeError(f"prefix must be bytes, not {type(prefix).__name__}")
    return bytes(prefix)


class Cancelled(Exception):
    """The walk was stopped by its caller."""


def plan(file_mounts: list[tuple[bytes, bytes]], stop: threading.Event | None = None) -> Plan:
    """Walk the mounts in SkyPilot's order (blocking). Raises Cancelled once *stop* is set."""
    result = Plan()
    pieces = result.pieces
    for destination, source in file_mounts:
        pieces.append(destination + b"\0")
        # os.path.isfile/isdir follow symlinks and are False for what cannot be stat'ed.
        if os.path.isfile(source):
            pieces.append(b"file")
            if os.path.basename(source) not in CONTENT_SKIPPED:
                result.add_file(source)
        elif os.path.isdir(source):
            pieces.append(b"dir")
            _walk(source, result, stop)
        pieces.append(b"\0\0")
    return result


def _walk(top: bytes, result: Plan, stop: threading.Event | None) -> None:
    # os.walk(top) top-down with sorted names, iteratively; bytes paths so that names
    # that are not UTF-8 come back as their raw bytes.
    pieces = result.pieces
    pending = [top]
    while pending:
        if stop is not None and stop.is_set():
            raise Cancelled
        path = pending.pop()
        dirs: list[tuple[bytes, bool]] = []
        files: list[bytes] = []
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        dirs.append((entry.name, entry.is_symlink()))
                    else:
                        files.append(entry.name)
        except OSError as exc:
            result.problems.append((path, exc))
            continue
        dirs.sort()
        files.sort()
        pieces.append(path + b"\0")
        pieces.extend(name + b"\0" for name, _ in dirs)
        pieces.append(b"\0")
        prefix = path if path.endswith(b"/") else path + b"/"
        for name in files:
            pieces.append(name + b"\0")
            if name not in CONTENT_SKIPPED:
                result.add_file(prefix + name)
        pieces.append(b"\0")
        pending.extend(prefix + name for name, is_link in reversed(dirs) if not is_link)


# Pieces fed to hashlib per update: few calls, bounded memory.
_FEED_BATCH = 4096


def finish(plan_: Plan, prefix: bytes, items: list[Any]) -> str:
    """The hexdigest of the stream from the backend's items for ``plan_.files``
    (hex digest or ``(errno, message)``); raises FileMountsError listing every problem."""
    problems = list(plan_.problems)
    digests: list[bytes] = []
    for path, item in zip(plan_.files, items):
        if isinstance(item, str):
            digests.append(bytes.fromhex(item))
        else:
            code, message = item if item is not None else (errno.ECANCELED, None)
            problems.append((path, make_os_error(code, message, os.fsdecode(path))))
            digests.append(b"")
    if problems:
        problems.sort(key=lambda problem: problem[0])
        raise FileMountsError([(os.fsdecode(path), error) for path, error in problems])
    stream = hashlib.sha256(prefix)
    pieces = plan_.pieces
    for start in range(0, len(pieces), _FEED_BATCH):
        batch = pieces[start : start + _FEED_BATCH]
        stream.update(b"".join(piece if isinstance(piece, bytes) else digests[piece] for piece in batch))
    return stream.hexdigest()
