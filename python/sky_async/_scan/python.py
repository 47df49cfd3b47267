"""scan_tree for the pure-Python backend: an os.scandir walk with the native engine's rules.

It is the native engine's algorithm on one thread: directories are opened relative to
their parent where possible (so depth is not limited by PATH_MAX), depth first from one
stack of pending directories, at most two directory descriptors open at once (plus the
one os.scandir duplicates while it lists), and with ``follow_symlinks`` the symlinked
directories are taken one at a time, smallest path first, once the rest is done. The
result is the native backend's, item for item.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import os
import stat
import threading
from collections.abc import Callable
from typing import Any, Optional

from .. import _batch
from ..scan import (
    BROKEN_SYMLINK,
    INVALID_UTF8_NAME,
    PROBLEM_KINDS,
    SPECIAL_FILE,
    STAT_ERROR,
    SYMLINK_LOOP,
    TOO_LARGE,
    UNREADABLE_DIRECTORY,
    UNREADABLE_FILE,
    ScanOptions,
)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_PATH_MAX = 4096
_KIND_ORDER = {kind: index for index, kind in enumerate(PROBLEM_KINDS)}

# A directory as reached and the directories above it: ((st_dev, st_ino), parent).
_Node = Optional["tuple[tuple[int, int], Any]"]

# For tests: called with each entry's path (bytes) right after a scan lists it and before it
# is stat'ed or opened, as the native engine's scan entry hook is; a scan takes the hook set
# when it starts. A test removes or replaces entries there, to make them vanish on cue.
entry_hook: Callable[[bytes], None] | None = None

# Listed, then gone when stat'ed or opened: removed (ENOENT), or a directory replaced by a
# file or a symlink (ENOTDIR from an open with O_DIRECTORY).
_VANISHED = (errno.ENOENT, errno.ENOTDIR)


def _join(directory: bytes, name: bytes) -> bytes:
    return directory + name if directory.endswith(b"/") else directory + b"/" + name


def _open_directory(path: bytes, follow_last: bool) -> int:
    """os.open for a directory; a path over PATH_MAX is opened piece by piece."""
    last_flags = _DIR_FLAGS | (0 if follow_last else os.O_NOFOLLOW)
    if len(path) < _PATH_MAX:
        return os.open(path, last_flags)
    fd: int | None = None
    start = 0
    try:
        while start < len(path):
            end = len(path)
            last = True
            if end - start >= _PATH_MAX:
                end = path.rfind(b"/", start, start + _PATH_MAX)
                if end < start:
                    raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), path)
                last = False
            piece = path[start:end] if end > start else b"/"
            opened = os.open(piece, last_flags if last else _DIR_FLAGS, dir_fd=fd)
            if fd is not None:
                os.close(fd)
            fd = opened
            start = end + 1
            while start < len(path) and path[start : start + 1] == b"/":
                start += 1
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    assert fd is not None
    return fd


def _contains(node: _Node, wanted: tuple[int, int]) -> bool:
    while node is not None:
        if node[0] == wanted:
            return True
        node = node[1]
    return False


def _is_valid_utf8(name: str) -> bool:
    # os.scandir decodes names with surrogateescape: an undecodable byte (or an encoded
    # surrogate, which strict UTF-8 rejects too) becomes a lone surrogate.
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Walk:
    def __init__(
        self,
        follow_symlinks: bool,
        max_file_size: int,
        largest: int,
        collect_files: bool,
        max_problems: int,
        excluded: frozenset[bytes],
        relative_start: int,
        stopped: Callable[[], bool],
    ) -> None:
        self.follow = follow_symlinks
        self.excluded = excluded  # paths relative to the root, left out (see scan)
        self.relative_start = relative_start  # where an entry's path relative to the root starts
        self.max_file_size = max_file_size
        self.keep_largest = largest
        self.collect = collect_files
        self.keep_problems = max_problems
        self.stopped = stopped
        self.hook = entry_hook
        self.files = self.directories = self.symlinks = self.special_files = self.bytes = 0
        self.vanished = 0
        self.counts = dict.fromkeys(PROBLEM_KINDS, 0)
        self.problems: list[tuple[bytes, int, str, int | None, int]] = []
        self.largest: list[tuple[int, bytes]] = []  # (-size, path)
        self.largest_floor = -1  # below this size a file cannot make the list
        self.file_paths: list[bytes] = []
        self.stack: list[tuple[bytes, _Node, bool]] = []
        self.links: list[tuple[bytes, tuple[int, int], _Node]] = []
        self.visited: set[tuple[int, int]] = set()
        self.uid = os.geteuid()
        self.gid = os.getegid()
        self.groups = set(os.getgroups())

    # --- results ---

    def problem(self, kind: str, path: bytes, code: int | None = None, size: int = 0) -> None:
        self.counts[kind] += 1
        keep = self.keep_problems
        if keep == 0:
            return
        self.problems.append((path, _KIND_ORDER[kind], kind, code, size))
        if len(self.problems) >= 2 * keep + 64:
            self.problems.sort(key=lambda p: (p[0], p[1]))
            del self.problems[keep:]

    def offer_largest(self, path: bytes, size: int) -> None:
        keep = self.keep_largest
        if keep == 0 or size < self.largest_floor:
            return
        self.largest.append((-size, path))
        if len(self.largest) >= 2 * keep + 64:
            self.largest.sort()
            del self.largest[keep:]
            self.largest_floor = -self.largest[-1][0]

    def result(self) -> dict[str, Any]:
        self.problems.sort(key=lambda p: (p[0], p[1]))
        self.largest.sort()
        if self.collect:
            self.file_paths.sort()
        return {
            "files": self.files,
            "directories": self.directories,
            "symlinks": self.symlinks,
            "special_files": self.special_files,
            "bytes": self.bytes,
            "vanished": self.vanished,
            "problems": [
                (kind, path, code, size) for path, _, kind, code, size in self.problems[: self.keep_problems]
            ],
            "problem_counts": self.counts,
            "largest": [(path, -negated) for negated, path in self.largest[: self.keep_largest]],
            "file_paths": self.file_paths if self.collect else None,
        }

    # --- entries ---

    def may_read(self, st: os.stat_result) -> bool:
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            return bool(st.st_mode & stat.S_IRUSR)
        if st.st_gid == self.gid or st.st_gid in self.groups:
            return bool(st.st_mode & stat.S_IRGRP)
        return bool(st.st_mode & stat.S_IROTH)

    def regular_file(self, path: bytes, st: os.stat_result, dir_fd: int | None, name: str | bytes) -> None:
        size = st.st_size
        self.files += 1
        self.bytes += size
        self.offer_largest(path, size)
        if self.collect:
            self.file_paths.append(path)
        if self.max_file_size and size > self.max_file_size:
            self.problem(TOO_LARGE, path, None, size)
        if (
            not self.may_read(st)
            and not os.access(name, os.R_OK, dir_fd=dir_fd, effective_ids=True)
            and not self.removed_since_stat(name, dir_fd)
        ):
            self.problem(UNREADABLE_FILE, path, errno.EACCES)

    @staticmethod
    def removed_since_stat(name: str | bytes, dir_fd: int | None) -> bool:
        """Whether a file os.access denied is gone (os.access gives no errno to tell)."""
        try:
            os.stat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return True
        except OSError:
            pass
        return False

    def special_file(self, path: bytes) -> None:
        self.special_files += 1
        self.problem(SPECIAL_FILE, path)

    def symlink(
        self, path: bytes, dir_fd: int, name: str, node: _Node, target: os.stat_result | OSError
    ) -> None:
        """A symlink, with its target's stat or the error of it."""
        self.symlinks += 1
        if isinstance(target, OSError):
            code = target.errno or errno.EIO
            if code == errno.ELOOP:
                kind = SYMLINK_LOOP
            elif code in (errno.ENOENT, errno.ENOTDIR):
                kind = BROKEN_SYMLINK
            else:
                kind = STAT_ERROR
            self.problem(kind, path, code)
            return
        if stat.S_ISDIR(target.st_mode):
            # A link to a directory that contains it loops only when followed.
            if not self.follow:
                return
            identity = (target.st_dev, target.st_ino)
            if _contains(node, identity):
                self.problem(SYMLINK_LOOP, path)
            else:
                heapq.heappush(self.links, (path, identity, node))
            return
        if not self.follow:
            return
        if stat.S_ISREG(target.st_mode):
            self.regular_file(path, target, dir_fd, name)
        else:
            self.special_file(path)

    # --- directories ---

    def enter(
        self, fd: int, path: bytes, parent: _Node, already_visited: bool
    ) -> tuple[int, bytes, _Node] | None:
        """The directory to list next, or None (its fd then closed)."""
        try:
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            self.problem(UNREADABLE_DIRECTORY, path, exc.errno)
            return None
        identity = (st.st_dev, st.st_ino)
        if self.follow and not already_visited:
            if identity in self.visited:
                os.close(fd)
                return None
            self.visited.add(identity)
        return fd, path, (identity, parent)

    def list_directory(self, fd: int, path: bytes, node: _Node) -> tuple[int, bytes, _Node] | None:
        """Lists one directory, closes it, and returns its last subdirectory, entered."""
        held: str | None = None
        try:
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        if self.stopped():
                            return None
                        name = entry.name
                        entry_path = _join(path, os.fsencode(name))
                        # Left out: not even stat'ed, so nothing about it or below it is met.
                        if self.excluded and entry_path[self.relative_start :] in self.excluded:
                            continue
                        if self.hook is not None:
                            self.hook(entry_path)
                        stat_error: OSError | None = None
                        try:
                            if entry.is_symlink():
                                kind = stat.S_IFLNK
                            elif entry.is_dir(follow_symlinks=False):
                                kind = stat.S_IFDIR
                            else:
                                st = entry.stat(follow_symlinks=False)
                                kind = stat.S_IFMT(st.st_mode)
                        except FileNotFoundError:
                            self.vanished += 1
                            continue
                        except OSError as exc:
                            stat_error = exc
                        # A symlink's target is resolved before anything is reported, in case
                        # the link is gone.
                        if stat_error is None and kind == stat.S_IFLNK:
                            target = self.resolve(name, fd)
                            if target is None:
                                self.vanished += 1
                                continue
                        if not _is_valid_utf8(name):
                            self.problem(INVALID_UTF8_NAME, entry_path)
                        if stat_error is not None:
                            self.problem(STAT_ERROR, entry_path, stat_error.errno)
                            continue
                        if kind == stat.S_IFDIR:
                            self.directories += 1
                            if held is not None:
                                self.stack.append((_join(path, os.fsencode(held)), node, False))
                            held = name
                        elif kind == stat.S_IFREG:
                            self.regular_file(entry_path, st, fd, name)
                        elif kind == stat.S_IFLNK:
                            # Not None: resolved above for every symlink.
                            self.symlink(entry_path, fd, name, node, target)  # type: ignore[arg-type]
                        else:
                            self.special_file(entry_path)
            except OSError as exc:
                self.problem(UNREADABLE_DIRECTORY, path, exc.errno)
            if held is None or self.stopped():
                return None
            child_path = _join(path, os.fsencode(held))
            try:
                child = os.open(held, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                self.directory_not_opened(child_path, exc)
                return None
        finally:
            os.close(fd)
        return self.enter(child, child_path, node, False)

    @staticmethod
    def resolve(name: str, dir_fd: int) -> os.stat_result | OSError | None:
        """A symlink's target's stat or the error of it; None when the link itself is gone."""
        try:
            return os.stat(name, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):  # no target, or no link any more
                try:
                    os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    return None
                except OSError:
                    pass
            return exc

    def directory_not_opened(self, path: bytes, error: OSError) -> None:
        """A listed directory that could not be opened is a problem unless it has vanished since
        (it was counted in ``directories`` by its listing)."""
        if error.errno in _VANISHED:
            self.directories -= 1
            self.vanished += 1
        else:
            self.problem(UNREADABLE_DIRECTORY, path, error.errno)

    def drain(self, current: tuple[int, bytes, _Node] | None) -> None:
        """Lists *current* and everything pending, depth first."""
        try:
            while not self.stopped():
                if current is not None:
                    # list_directory closes it, whatever happens (KeyboardInterrupt included).
                    listing, current = current, None
                    current = self.list_directory(*listing)
                    continue
                if not self.stack:
                    return
                path, parent, via_link = self.stack.pop()
                try:
                    fd = _open_directory(path, via_link)
                except OSError as exc:
                    self.directory_not_opened(path, exc)
                    continue
                current = self.enter(fd, path, parent, via_link)
        finally:
            if current is not None:
                os.close(current[0])

    def follow_links(self) -> None:
        """Symlinked directories, smallest path first, each scanned to the end before the next."""
        while self.links and not self.stopped():
            path, identity, parent = heapq.heappop(self.links)
            if identity in self.visited:
                continue
            self.visited.add(identity)
            self.directories += 1
            self.stack.append((path, parent, True))
            self.drain(None)


def scan(
    root: bytes,
    follow_symlinks: bool,
    max_file_size: int,
    largest: int,
    collect_files: bool,
    max_problems: int,
    excluded: tuple[bytes, ...],
    stopped: Callable[[], bool],
) -> Any:
    """The backend item: the raw result dict, (errno, None) when the root cannot be scanned, or
    None when *stopped* cut the walk short. *excluded*: entries to leave out, by their path
    relative to the root (the names below it joined with ``/``), as scan_options::excluded."""
    try:
        st = os.stat(root)
    except OSError as exc:
        return (exc.errno or errno.EIO, None)
    relative_start = len(root) if root.endswith(b"/") else len(root) + 1
    walk = _Walk(
        follow_symlinks,
        max_file_size,
        largest,
        collect_files,
        max_problems,
        frozenset(excluded),
        relative_start,
        stopped,
    )
    if stat.S_ISDIR(st.st_mode):
        try:
            fd = _open_directory(root, True)
        except OSError as exc:
            return (exc.errno or errno.EIO, None)
        walk.drain(walk.enter(fd, root, None, False))
        walk.follow_links()
    elif stat.S_ISREG(st.st_mode):
        walk.regular_file(root, st, None, root)
    else:
        walk.special_file(root)
    return None if stopped() else walk.result()


class PythonScan:
    """Scan_tree on the pure-Python backend."""

    async def scan_tree(self, root: bytes, options: ScanOptions) -> Any:
        """The walk runs on the pool; cancelling stops it at the next entry and waits for it."""
        loop = asyncio.get_running_loop()

        def walk(stop: threading.Event) -> Any:
            def stopped() -> bool:
                return stop.is_set() or _batch.interpreter_exiting() or loop.is_closed()

            return scan(root, *options, stopped)

        return await _batch.run_stoppable(walk)

    def scan_tree_blocking(self, root: bytes, options: ScanOptions) -> Any:
        """In the calling thread: Ctrl-C stops the walk, which closes its directories as it unwinds."""
        return scan(root, *options, _batch.interpreter_exiting)
