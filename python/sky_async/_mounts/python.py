"""file_mounts_digest for the pure-Python backend: the walk, then ``_hash_py``, then the feed.

The native backend runs the same procedure in C++ (``src/mounts/``); this one is its twin
for where the extension is missing. The walk blocks on directory listings, so it runs on
the backend's pool (``_batch``); the files are hashed concurrently by ``_hash_py``; the
stream is fed last, in SkyPilot's order (see ``sky_async.mounts``).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import threading
from typing import Union

from .._batch import run_stoppable
from .._dirs import list_dir
from .._errors import Item
from .._hash import python as _hash_py
from ..mounts import MountsItem

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


class Cancelled(Exception):
    """The walk was stopped by its caller."""


def plan(file_mounts: list[tuple[bytes, bytes]], stop: threading.Event | None = None) -> Plan:
    """Walk the mounts (sorted, as check_file_mounts returns them) in SkyPilot's order
    (blocking). Raises Cancelled once *stop* is set."""
    result = Plan()
    pieces = result.pieces
    for destination, given in file_mounts:
        # Expanded as the str SkyPilot has: bytes expanduser fails on a `~name` that is not ASCII.
        source = os.fsencode(os.path.expanduser(os.fsdecode(given)))
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
        try:
            listing = list_dir(path)
        except OSError as exc:
            result.problems.append((path, exc))
            continue
        dirs = [(name, is_link) for name, is_dir, is_link in listing if is_dir]
        files = [name for name, is_dir, _ in listing if not is_dir]
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


def finish(plan_: Plan, prefix: bytes, items: list[Item]) -> MountsItem:
    """The hexdigest of the stream from hash_files' items for ``plan_.files``, or every
    problem (the walk's and the hashing's) as (path, errno, message or None), in path order."""
    problems: list[tuple[bytes, int, str | None]] = [
        (path, exc.errno if exc.errno is not None else errno.EIO, None) for path, exc in plan_.problems
    ]
    digests: list[bytes] = []
    for path, item in zip(plan_.files, items):
        if isinstance(item, str):
            digests.append(bytes.fromhex(item))
        else:
            code, message = item if item is not None else (errno.ECANCELED, None)
            problems.append((path, code, message))
            digests.append(b"")
    if problems:
        problems.sort(key=lambda problem: problem[0])
        return problems
    stream = hashlib.sha256(prefix)
    pieces = plan_.pieces
    for start in range(0, len(pieces), _FEED_BATCH):
        batch = pieces[start : start + _FEED_BATCH]
        stream.update(b"".join(piece if isinstance(piece, bytes) else digests[piece] for piece in batch))
    return stream.hexdigest()


async def file_mounts_digest(
    file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
) -> MountsItem:
    # The walk on the pool; cancelling stops it at its next directory and waits for it.
    walked = await run_stoppable(functools.partial(plan, file_mounts))
    items = await _hash_py.hash_files(walked.files, "sha256", concurrency, False) if walked.files else []
    return finish(walked, prefix, items)


def file_mounts_digest_blocking(
    file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
) -> MountsItem:
    walked = plan(file_mounts)
    items = _hash_py.hash_files_blocking(walked.files, "sha256", concurrency, False) if walked.files else []
    return finish(walked, prefix, items)


class PythonMounts:
    """File_mounts_digest on the pure-Python backend."""

    async def file_mounts_digest(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> MountsItem:
        return await file_mounts_digest(file_mounts, prefix, concurrency)

    def file_mounts_digest_blocking(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> MountsItem:
        return file_mounts_digest_blocking(file_mounts, prefix, concurrency)
