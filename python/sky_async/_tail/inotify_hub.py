"""One inotify instance per event loop, shared by every ``stream_log`` reader on that loop.

An inotify instance per reader does not scale: ``fs.inotify.max_user_instances`` is 128 by
default, so the 129th reader of a log endpoint would fall back to polling. Here each event
loop has one instance (a ``Hub``), watched by the loop with one ``add_reader``; each file
has one watch however many readers follow it, and each directory one watch, whose events
wake only the readers of the name they concern. The instance is closed when its last
reader leaves.

Idle readers cost nothing: a reader waits on a future that only an event (or its own
deadline for a chunk) settles, and no reader has a timer of its own. The safety net for
missed events is one timer per hub, and only for readers whose file is on a file system
where inotify can miss changes (NFS, SMB, FUSE mounts such as gcsfuse or s3fs, 9p: a change
made by another machine raises no event). Every ``_RECHECK`` seconds it asks each such
reader's ``probe`` (two ``stat`` calls: has the file grown, shrunk or been replaced?) and
wakes only those whose file changed. On local file systems (``_RELIABLE_FS``: the kernel
makes every change itself, so inotify sees it) there is no timer at all; a lost event
queue (``IN_Q_OVERFLOW``) wakes every reader.

A watch belongs to an inode, and the kernel returns the same watch descriptor for every
``inotify_add_watch`` of one inode on one instance, so readers are counted per watch
descriptor and the watch removed with the last one. A watch the kernel dropped itself (the
file deleted: ``IN_IGNORED``) is forgotten, its readers woken.

Everything here runs on the loop's thread: ``subscribe`` is called from the iterating
coroutine, and a subscription closed from another thread (a garbage collection) hands its
release to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import struct
import threading
from collections.abc import Callable
from typing import Any

from .follow import (
    _DIR_EVENTS,
    _FILE_EVENTS,
    _IN_CLOEXEC,
    _IN_CLOSE_WRITE,
    _IN_MODIFY,
    _IN_MOVE_SELF,
    _IN_NONBLOCK,
    _load_libc,
)

_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name
_READ_SIZE = 64 * 1024
# The room an event with a name may need (NAME_MAX is 255): a read that leaves more of the
# buffer empty took every event queued, and the next read would find none.
_ROOM = _EVENT.size + 256
# The file was written to: nothing else may have happened to its name. Any other file event
# (moved, deleted, its link count changed) makes its readers look the name up again.
_WRITTEN = _IN_MODIFY | _IN_CLOSE_WRITE
# A directory that moves wakes its readers too (their path now names something else).
_HUB_DIR_EVENTS = _DIR_EVENTS | _IN_MOVE_SELF

_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}

# statfs f_type of the file systems where inotify sees every change (local ones).
_RELIABLE_FS = frozenset(
    {
        0xEF53,  # ext2, ext3, ext4
        0x58465342,  # xfs
        0x9123683E,  # btrfs
        0x01021994,  # tmpfs
        0x858458F6,  # ramfs
        0x794C7630,  # overlayfs (containers)
        0x2FC12FC1,  # zfs
        0xF2F52010,  # f2fs
        0xCA451A4E,  # bcachefs
        0x52654973,  # reiserfs
        0x3153464A,  # jfs
    }
)
# Elsewhere, how often the hub's one timer looks at its readers' files.
_RECHECK = 1.0
_STATFS_SIZE = 512  # more than struct statfs on any Linux architecture (120 on x86_64)


def _renamed(readers: set[Subscription], woken: set[Subscription]) -> None:
    """Wake *readers*, who must look their name up again."""
    for subscription in readers:
        subscription.renamed = True
    woken.update(readers)


def reliable(directory: bytes) -> bool:
    """Whether inotify sees every change to the files of *directory*'s file system."""
    libc = _load_libc()
    try:
        statfs = libc.statfs
    except AttributeError:
        return False
    statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    buffer = ctypes.create_string_buffer(_STATFS_SIZE)
    if statfs(directory, buffer) != 0:
        return False
    # f_type is the first member of struct statfs (a long: __fsword_t), its magic 32 bits.
    f_type = ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF
    return f_type in _RELIABLE_FS


class Subscription:
    """One reader's interest in a file: woken by events on the file, or on its name in
    its directory. ``waiter``, when set, is the future the reader waits on."""

    def __init__(self, hub: Hub, path: bytes) -> None:
        self.hub = hub
        self.path = path
        absolute = os.path.abspath(path)
        self.directory = os.path.dirname(absolute)
        self.name = os.path.basename(absolute)
        self.file_wd = -1
        self.dir_wd = -1
        self.woken = False
        # Whether the name may have come to refer to another file since the reader last
        # looked: an event on the name or on its directory, a lost event queue, a recheck.
        # Only file events (the file written to): the reader need not look the name up.
        self.renamed = True
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        # On a file system where events can be missed: the hub's timer calls this, and wakes
        # the reader if it returns True (None: always wake it).
        self.probe: Callable[[], bool] | None = None
        self.rechecked = False

    def wake(self) -> None:
        self.woken = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def rewatch(self) -> None:
        """Watch the file the path names now (after a rotation)."""
        if not self.closed:
            self.hub.watch_file(self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.waiter = None
        hub = self.hub
        if threading.get_ident() == hub.thread:
            hub.unsubscribe(self)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to hand to
                hub.loop.call_soon_threadsafe(hub.unsubscribe, self)


class Hub:
    """The inotify instance of one event loop, and which readers each watch wakes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._libc = _load_libc()
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd: int = fd
        self.loop = loop
        self.thread = threading.get_ident()
        self._files: dict[int, set[Subscription]] = {}  # file wd -> its readers
        self._dirs: dict[int, dict[bytes, set[Subscription]]] = {}  # dir wd -> name -> readers
        self._count = 0
        self._reliable: dict[int, bool] = {}  # dir wd -> inotify sees every change there
        self._rechecked: set[Subscription] = set()  # readers on other file systems
        self._timer: asyncio.TimerHandle | None = None
        self.recheck_ticks = 0  # for tests: how often the timer fired
        try:
            loop.add_reader(fd, self._dispatch)
        except BaseException:
            os.close(fd)
            raise

    def subscribe(self, path: bytes) -> Subscription:
        subscription = Subscription(self, path)
        wd = self._libc.inotify_add_watch(self.fd, subscription.directory, _HUB_DIR_EVENTS)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), subscription.directory)
        subscription.dir_wd = wd
        self._dirs.setdefault(wd, {}).setdefault(subscription.name, set()).add(subscription)
        self._count += 1
        self.watch_file(subscription)
        is_reliable = self._reliable.get(wd)
        if is_reliable is None:
            is_reliable = self._reliable[wd] = reliable(subscription.directory)
        if not is_reliable:
            subscription.rechecked = True
            self._rechecked.add(subscription)
            if self._timer is None:
                self._timer = self.loop.call_later(_RECHECK, self._recheck)
        return subscription

    def _recheck(self) -> None:
        """The safety net: wake the readers (on unreliable file systems) whose file changed."""
        self._timer = None
        self.recheck_ticks += 1
        for subscription in list(self._rechecked):
            probe = subscription.probe
            if probe is None or probe():
                subscription.renamed = True
                subscription.wake()
        if self._rechecked and self.fd >= 0:
            self._timer = self.loop.call_later(_RECHECK, self._recheck)

    def watch_file(self, subscription: Subscription) -> None:
        self._drop_file(subscription)
        # -1 if the name is gone meanwhile: the directory watch sees it come back.
        wd = self._libc.inotify_add_watch(self.fd, subscription.path, _FILE_EVENTS)
        if wd >= 0:
            self._files.setdefault(wd, set()).add(subscription)
        subscription.file_wd = wd

    def _drop_file(self, subscription: Subscription) -> None:
        wd, subscription.file_wd = subscription.file_wd, -1
        readers = self._files.get(wd)
        if readers is None:
            return  # never watched, or dropped by the kernel
        readers.discard(subscription)
        if not readers:
            del self._files[wd]
            self._libc.inotify_rm_watch(self.fd, wd)

    def unsubscribe(self, subscription: Subscription) -> None:
        if self.fd < 0:
            return
        self._drop_file(subscription)
        self._rechecked.discard(subscription)
        if not self._rechecked and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        names = self._dirs.get(subscription.dir_wd)
        if names is not None:
            readers = names.get(subscription.name)
            if readers is not None:
                readers.discard(subscription)
                if not readers:
                    del names[subscription.name]
            if not names:
                del self._dirs[subscription.dir_wd]
                self._reliable.pop(subscription.dir_wd, None)
                self._libc.inotify_rm_watch(self.fd, subscription.dir_wd)
        self._count -= 1
        if self._count <= 0:
            self.close()

    def _dispatch(self) -> None:
        woken: set[Subscription] = set()
        while True:
            try:
                data = os.read(self.fd, _READ_SIZE)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            self._route(data, woken)
            if len(data) < _READ_SIZE - _ROOM:  # every event queued fitted: none is left
                break
        for subscription in woken:
            subscription.wake()

    def _route(self, data: bytes, woken: set[Subscription]) -> None:
        unpack, size, end, file_watches = _EVENT.unpack_from, _EVENT.size, len(data), self._files
        offset = 0
        while offset + size <= end:
            wd, mask, _cookie, length = unpack(data, offset)
            name_start = offset + size
            offset = name_start + length
            if mask == _IN_MODIFY:  # the usual event, once per line followed: a file written to
                written = file_watches.get(wd)
                if written is not None:
                    # Woken here (wake(), inline), not gathered into *woken*: a set of
                    # every reader woken, which the garbage collector would go through on
                    # each of its collections during the wake-ups.
                    for subscription in written:
                        subscription.woken = True
                        waiter = subscription.waiter
                        if waiter is not None and not waiter.done():
                            waiter.set_result(None)
                    continue
            if mask & _IN_Q_OVERFLOW:  # events were lost: every reader looks
                for file_readers in self._files.values():
                    _renamed(file_readers, woken)
                for dir_names in self._dirs.values():
                    for name_readers in dir_names.values():
                        _renamed(name_readers, woken)
                continue
            files = self._files.get(wd)
            if files is not None:
                if mask & ~_WRITTEN:
                    _renamed(files, woken)
                else:
                    woken.update(files)
                if mask & _IN_IGNORED:
                    del self._files[wd]
                continue
            names = self._dirs.get(wd)
            if names is None:
                continue
            if mask & (_IN_IGNORED | _IN_MOVE_SELF):  # the directory itself went away or moved
                for readers in names.values():
                    _renamed(readers, woken)
                if mask & _IN_IGNORED:
                    del self._dirs[wd]
                    self._reliable.pop(wd, None)
                continue
            named = names.get(data[name_start:offset].rstrip(b"\0"))
            if named is not None:
                _renamed(named, woken)

    def close(self) -> None:
        if self.fd < 0:
            return
        if _hubs.get(self.loop) is self:
            del _hubs[self.loop]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.loop.is_closed():
            self.loop.remove_reader(self.fd)
        os.close(self.fd)
        self.fd = -1

    def watch_counts(self) -> tuple[int, int]:
        """(file watches, directory watches): for tests."""
        return len(self._files), len(self._dirs)


def subscribe(loop: asyncio.AbstractEventLoop, path: bytes) -> Subscription | None:
    """A subscription to *path* on *loop*'s instance; None where inotify is unavailable
    (no inotify, the instance or watch limits reached): the reader then polls."""
    hub = _hubs.get(loop)
    if hub is None:
        try:
            hub = Hub(loop)
        except (OSError, AttributeError):  # ENOSYS, EMFILE (max_user_instances), no libc symbol
            return None
        _hubs[loop] = hub
    try:
        return hub.subscribe(path)
    except OSError:  # ENOSPC (max_user_watches), EACCES on the directory
        if hub._count == 0:
            hub.close()
        return None


def hub_of(loop: asyncio.AbstractEventLoop) -> Any:
    """The loop's hub, or None: for tests."""
    return _hubs.get(loop)
