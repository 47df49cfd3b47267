"""One inotify instance per event loop, shared by every ``stream_log`` reader on that loop.

An inotify instance per reader does not scale: ``fs.inotify.max_user_instances`` is 128 by
default, so the 129th reader of a log endpoint would fall back to polling. Here each event
loop has one instance (a ``Hub``), watched by the loop with one ``add_reader``; each file
has one watch however many readers follow it, and each directory one watch, whose events
wake only the readers of the name they concern. The instance is closed when its last
reader leaves.

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
from typing import Any

from ._follow import _DIR_EVENTS, _FILE_EVENTS, _IN_CLOEXEC, _IN_NONBLOCK, _load_libc

_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name
_READ_SIZE = 64 * 1024

_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


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
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

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
        try:
            loop.add_reader(fd, self._dispatch)
        except BaseException:
            os.close(fd)
            raise

    def subscribe(self, path: bytes) -> Subscription:
        subscription = Subscription(self, path)
        wd = self._libc.inotify_add_watch(self.fd, subscription.directory, _DIR_EVENTS)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), subscription.directory)
        subscription.dir_wd = wd
        self._dirs.setdefault(wd, {}).setdefault(subscription.name, set()).add(subscription)
        self._count += 1
        self.watch_file(subscription)
        return subscription

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
        names = self._dirs.get(subscription.dir_wd)
        if names is not None:
            readers = names.get(subscription.name)
            if readers is not None:
                readers.discard(subscription)
                if not readers:
                    del names[subscription.name]
            if not names:
                del self._dirs[subscription.dir_wd]
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
        for subscription in woken:
            subscription.wake()

    def _route(self, data: bytes, woken: set[Subscription]) -> None:
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name_start = offset + _EVENT.size
            offset = name_start + length
            if mask & _IN_Q_OVERFLOW:  # events were lost: every reader looks
                for file_readers in self._files.values():
                    woken.update(file_readers)
                for dir_names in self._dirs.values():
                    for name_readers in dir_names.values():
                        woken.update(name_readers)
                continue
            files = self._files.get(wd)
            if files is not None:
                woken.update(files)
                if mask & _IN_IGNORED:
                    del self._files[wd]
                continue
            names = self._dirs.get(wd)
            if names is None:
                continue
            if mask & _IN_IGNORED:  # the directory itself went away
                for readers in names.values():
                    woken.update(readers)
                del self._dirs[wd]
                continue
            named = names.get(data[name_start:offset].rstrip(b"\0"))
            if named is not None:
                woken.update(named)

    def close(self) -> None:
        if self.fd < 0:
            return
        if _hubs.get(self.loop) is self:
            del _hubs[self.loop]
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
