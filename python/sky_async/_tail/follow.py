"""``follow``: the lines appended to a file, as they arrive, like ``tail -F``.

One implementation serves both backends: it is event-loop work (a few reads per wake-up),
not bulk I/O. A ``_Follower`` holds the state and does the reading; ``Follow`` waits for
it on the event loop and ``follow_blocking`` in a plain thread. A wake-up with little to do
(at most ``_INLINE_BYTES`` to read or join) is handled on the loop thread; a bigger one (a
long line, a burst of appends, a truncated or rotated file read again) runs in the loop's
default executor, so the loop keeps serving other tasks meanwhile.

Lines are assembled in linear time: each read is scanned for LF once, and the bytes of a
line that spans many reads are kept as the read pieces and joined once, when its LF arrives.

Waking up: inotify (through ctypes, as the standard library has no binding) watches the
file and its directory, and the loop watches the inotify descriptor; every wake-up, and
every *poll_interval* seconds in any case (events can be missed on network file systems),
the follower reads what is new and checks for truncation and rotation. Where inotify is
unavailable it simply polls every *poll_interval*.

Semantics:
- First the last *lines* lines, then every line appended afterwards. A partial line is
  held until its LF arrives. With ``lines=0`` reading starts at the end of the file, in the
  middle of a partial line if the file ends with one (as ``tail -n 0 -f``).
- Truncation (the size drops below what was read): reading restarts at offset 0; a held
  partial line is dropped.
- Rotation (the name now refers to another file, after a rename or a delete and a new
  file): the old file is read to its end first, its held partial line (which can never be
  completed) is delivered as a line, then the new file is read from its start. While the
  name is missing the old file keeps being read.
- Each line is decoded with (*encoding*, *errors*), its trailing CRs stripped and ``'\\n'``
  appended: read_last_n_lines's normalisation, with every line terminated. With
  ``encoding=None`` each line is yielded as it is in the file, bytes ending with LF.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import math
import os
import select
import stat
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from .._checks import StrOrBytesPath
from .._errors import NOT_A_REGULAR_FILE, make_os_error
from .api import check_codec, check_line_count, read_tail_pieces

_READ_SIZE = 64 * 1024  # the smallest read: what is new is usually a few lines
_MAX_READ = 1024 * 1024  # the largest read, when much is known to be new
# The most work (bytes to read, plus held bytes to join into a line) done on the event loop's
# thread in one wake-up; more is done in a worker thread.
_INLINE_BYTES = 256 * 1024
# select.poll takes milliseconds as a C int: longer intervals wait this long, then look again.
_MAX_POLL_MS = 2**31 - 1

# Forces the polling path (for tests, and for file systems where inotify misleads).
_FORCE_POLLING = False

_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_FILE_EVENTS = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_DELETE_SELF | _IN_MOVE_SELF
_DIR_EVENTS = _IN_CREATE | _IN_MOVED_TO | _IN_MOVED_FROM | _IN_DELETE | _IN_ATTRIB

_libc: Any = None


def _load_libc() -> Any:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        _libc = libc
    return _libc


class _Inotify:
    """An inotify instance watching one file and its directory; readable after an event."""

    def __init__(self) -> None:
        self._libc = _load_libc()
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd: int = fd
        self._file_watch = -1

    def watch_directory(self, directory: bytes) -> None:
        if self._libc.inotify_add_watch(self.fd, directory, _DIR_EVENTS) < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), directory)

    def watch_file(self, path: bytes) -> None:
        """Watch the file *path* names now (a rotated-away file is not watched any more)."""
        if self._file_watch >= 0:
            self._libc.inotify_rm_watch(self.fd, self._file_watch)  # EINVAL if already gone: fine
        self._file_watch = self._libc.inotify_add_watch(self.fd, path, _FILE_EVENTS)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 65536):
                pass

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def _open_regular(path: bytes, display: Any) -> int:
    """A descriptor on the regular file *path*; errors name *display*, the path as passed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket
            raise make_os_error(errno.EINVAL, NOT_A_REGULAR_FILE, display) from None
        raise make_os_error(exc.errno or errno.EIO, exc.strerror, display) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise make_os_error(errno.EISDIR, None, display)
        if not stat.S_ISREG(mode):
            raise make_os_error(errno.EINVAL, NOT_A_REGULAR_FILE, display)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Lines:
    """Cuts a byte stream into lines ending with LF, in time linear in its length.

    Each piece fed is scanned for LF once; the bytes of a line not complete yet are held as
    the pieces they came in (not copied), and joined once when its LF arrives.
    """

    def __init__(self) -> None:
        self._held: list[bytes] = []
        self.held_size = 0

    def feed(self, data: bytes, out: list[bytes]) -> None:
        """Append the lines *data* completes to *out*; hold what follows its last LF."""
        if b"\n" not in data:
            self._held.append(data)
            self.held_size += len(data)
            return
        lines = data.split(b"\n")
        rest = lines.pop()
        if self._held:
            out.append(self.take(lines[0]))
            del lines[0]
        out.extend([line + b"\n" for line in lines])
        if rest:
            self._held.append(rest)
            self.held_size = len(rest)

    def take(self, end: bytes = b"") -> bytes:
        """The held bytes followed by *end* and LF, as one line; nothing is held afterwards."""
        self._held.append(end)
        self._held.append(b"\n")
        line = b"".join(self._held)
        self.drop()
        return line

    def drop(self) -> None:
        self._held = []
        self.held_size = 0

    def rest(self) -> bytes:
        """The held bytes as they are (no LF added); nothing is held afterwards."""
        rest = b"".join(self._held)
        self.drop()
        return rest


class _Follower:
    """The reading side of follow: new complete lines (bytes, with their LF) per ``poll()``.

    ``poll()`` runs on one thread at a time: the event loop's, or a worker's through
    ``poll_in_worker``, during which ``close()`` from the loop leaves the closing to the
    worker (the descriptors must not be closed, and their numbers reused, under its reads).
    """

    def __init__(self, path: Any, lines: int | None, use_inotify: bool) -> None:
        self._fd = -1
        self._inotify: _Inotify | None = None
        self._reader: tuple[asyncio.AbstractEventLoop, int] | None = None
        self._lock = threading.Lock()
        self._in_worker = False
        self._closing = False
        self._lines = _Lines()
        self._budget: float = math.inf
        self._split = False
        # True after a poll() that stopped at its budget: more is waiting to be read now.
        self.behind = False
        # Whether a read shorter than asked is known to end at the end of the file, as on a
        # local file system (FUSE may return less before the end): then one read finds what
        # is new. Set by stream_log, whose hub knows the file system.
        self.short_reads_end = False
        # Whether the name named nothing when last looked up.
        self.name_gone = False
        # Set when the name came to refer to another file: a watch kept elsewhere than in
        # this follower (stream_log's shared inotify instance) must follow it; whoever does
        # resets it.
        self.switched = False
        self.display_path = path
        self._path = os.fsencode(path)
        self._fd = _open_regular(self._path, path)
        try:
            st = os.fstat(self._fd)
            self._identity = (st.st_dev, st.st_ino)
            # None: from the start of the file, not from its last lines.
            self._offset = 0 if lines is None else _backlog_start(self._fd, st.st_size, lines)
            if use_inotify and not _FORCE_POLLING:
                self._inotify = _start_inotify(self._path)
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> bytes:
        return self._path

    def fileno(self) -> int | None:
        """The descriptor that becomes readable on a change, or None when polling."""
        return self._inotify.fd if self._inotify is not None else None

    def add_reader(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any
    ) -> None:
        """``loop.add_reader`` on the descriptor that becomes readable on a change (nothing
        when polling). ``close()`` removes it before it closes the descriptor: a number
        closed while still registered may be reused, and a later ``remove_reader`` would
        then unregister whoever registered the new descriptor."""
        fd = self.fileno()
        if fd is not None:
            loop.add_reader(fd, callback, *args)
            self._reader = (loop, fd)

    def remove_reader(self) -> None:
        """Undo ``add_reader``; on the loop's thread."""
        reader, self._reader = self._reader, None
        if reader is not None and not reader[0].is_closed():
            reader[0].remove_reader(reader[1])

    def poll(self, budget: float = math.inf, split: bool = False, check_name: bool = True) -> list[bytes]:
        """The complete lines that arrived since the last call, each ending with LF.

        Stops before reading or joining more than about *budget* bytes, with ``behind``
        set: the rest is read by the next call. With *split*, reads about *budget* bytes
        of a larger amount and stops there, instead of reading none of it. Without
        *check_name*, the name is not looked up again (a rotation is not looked for): for a
        caller whose directory watch says the name has not changed.
        """
        if self._inotify is not None:
            self._inotify.drain()
        out: list[bytes] = []
        self._budget = budget
        self._split = split
        self.behind = False
        if not self._read_new(out):
            self.behind = True
            return out
        if not check_name:
            return out
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            # Deleted or moved away: keep reading the old file until a new one appears.
            self.name_gone = True
            return out
        self.name_gone = False
        if (st.st_dev, st.st_ino) != self._identity:
            self._switch(out)
        return out

    def poll_in_worker(
        self, finish: Callable[[list[bytes]], list[Any]], budget: float = math.inf, split: bool = False
    ) -> list[Any]:
        """``finish(poll(budget, split))`` in a worker thread; a ``close()`` meanwhile takes
        effect after it."""
        with self._lock:
            if self._closing:
                return []
            self._in_worker = True
        try:
            return finish(self.poll(budget, split))
        finally:
            with self._lock:
                self._in_worker = False
                closing = self._closing
            if closing:
                self._release()

    def _read_new(self, out: list[bytes]) -> bool:
        """Read to the end of the file; False if stopped first by the budget (or a close)."""
        if self.short_reads_end and self._glance(out):
            return True
        size = os.fstat(self._fd).st_size
        if size < self._offset:  # truncated: start again from the top
            self._offset = 0
            self._lines.drop()
        new = size - self._offset
        if new and new + self._lines.held_size > self._budget and not self._split:
            return False
        while not self._closing:
            want = min(max(size - self._offset, _READ_SIZE), _MAX_READ)
            data = os.pread(self._fd, want, self._offset)
            if not data:
                return True
            self._offset += len(data)
            self._budget -= len(data)
            self._lines.feed(data, out)
            if self._budget < 0:  # the file grew while we read: leave the rest for later
                return False
        return False

    def _glance(self, out: list[bytes]) -> bool:
        """What a follow usually finds, a few new lines, in one ``pread`` (no ``fstat``, no
        read that returns nothing): True if that was all. Nothing new (perhaps a truncation),
        a full read (perhaps more) or more than the budget: False, and the caller's
        ``fstat``-sized reads start again from the same offset."""
        if self._closing:
            return False
        data = os.pread(self._fd, _READ_SIZE, self._offset)
        if not data or len(data) == _READ_SIZE:
            return False
        if len(data) + self._lines.held_size > self._budget and not self._split:
            return False
        self._offset += len(data)
        self._budget -= len(data)
        self._lines.feed(data, out)
        return True

    def poll_appended(self, limit: int, budget: float) -> bytes | list[bytes]:
        """``poll(budget, check_name=False)``, and when what is new is whole lines (it ends
        with LF, no partial line was held) of at most *limit* bytes, those bytes as they
        are, not split into lines: a follow's usual turn, one ``pread``."""
        if not self.short_reads_end or self._closing or self._inotify is not None:
            return self.poll(budget, check_name=False)
        data = os.pread(self._fd, _READ_SIZE, self._offset)
        size = len(data)
        # Nothing (perhaps a truncation), a full read (perhaps more) or over the budget:
        # poll() starts again from the same offset, with fstat-sized reads.
        if not size or size == _READ_SIZE or size + self._lines.held_size > budget:
            return self.poll(budget, check_name=False)
        self.behind = False
        self._offset += size
        if size <= limit and data[-1] == 10 and not self._lines.held_size:  # 10: LF
            return data
        out: list[bytes] = []
        self._lines.feed(data, out)
        return out

    def _switch(self, out: list[bytes]) -> None:
        """The name now refers to a new file: finish the old one, then start the new one."""
        try:
            fd = _open_regular(self._path, self.display_path)
        except OSError:
            return  # gone again, or not a regular file (yet): try at the next wake-up
        if not self._read_new(out):
            os.close(fd)
            self.behind = True
            return
        if self._lines.held_size:
            out.append(self._lines.take())
        os.close(self._fd)
        self._fd = fd
        st = os.fstat(fd)
        self._identity = (st.st_dev, st.st_ino)
        self._offset = 0
        self.switched = True
        if self._inotify is not None:
            self._inotify.watch_file(self._path)
        if not self._read_new(out):
            self.behind = True

    def changed(self) -> bool:
        """Whether a ``poll()`` would find something: the file grew or shrank, or the name
        refers to another file. Two ``stat`` calls, no read (a timer's cheap look)."""
        fd = self._fd
        if fd < 0 or self._in_worker:
            return False
        try:
            if os.fstat(fd).st_size != self._offset:
                return True
            st = os.stat(self._path)
        except OSError:  # the name is gone (rotation in progress), or the descriptor closed
            return False
        return (st.st_dev, st.st_ino) != self._identity

    def take_partial(self) -> bytes:
        """The held start of a line whose LF has not arrived, as it is; it is dropped here."""
        return self._lines.rest()

    def close(self) -> None:
        self.remove_reader()
        with self._lock:
            self._closing = True
            if self._in_worker:
                return  # the worker releases the descriptors when its poll() returns
        self._release()

    def _release(self) -> None:
        # Both the worker that was reading and a later close() come here: whoever takes
        # the descriptors under the lock closes them, the other finds nothing. Testing and
        # then closing self._fd unlocked let both close the same number, the second time
        # under a file or pipe that another thread had opened with it meanwhile.
        with self._lock:
            inotify, self._inotify = self._inotify, None
            fd, self._fd = self._fd, -1
        if inotify is not None:
            inotify.close()
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:  # a follow() never iterated, nor closed
        self.close()


def _start_inotify(path: bytes) -> _Inotify | None:
    """An inotify watch on *path* and its directory; None where inotify is unavailable."""
    try:
        inotify = _Inotify()
    except (OSError, AttributeError):  # ENOSYS, EMFILE (max_user_instances), no libc symbol
        return None
    try:
        inotify.watch_directory(os.path.dirname(os.path.abspath(path)))
        inotify.watch_file(path)
    except OSError:
        inotify.close()
        return None
    return inotify


def _backlog_start(fd: int, size: int, lines: int) -> int:
    """Where the last *lines* lines of the file start (the end of the file for 0)."""
    selected = read_tail_pieces(fd, size, lines, 8192)
    assert selected is not None
    pieces, final_newline = selected
    if not pieces:
        return size
    length = sum(len(piece) for piece in pieces) + len(pieces) - (0 if final_newline else 1)
    return max(0, size - length)


def _check_poll_interval(poll_interval: object) -> float:
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
        raise TypeError(f"poll_interval must be a number, not {type(poll_interval).__name__}")
    if not poll_interval > 0:
        raise ValueError(f"poll_interval must be positive, got {poll_interval}")
    return float(poll_interval)


def _check_arguments(
    lines: object, encoding: object, errors: object, poll_interval: object
) -> tuple[int, float]:
    """``follow``'s arguments checked, in order: the line count and the poll interval. With
    no *encoding* (bytes lines) *errors* is not used."""
    count = check_line_count(lines, "lines")
    if encoding is not None:
        check_codec(encoding, errors)
    return count, _check_poll_interval(poll_interval)


def _undecoded(line: bytes) -> bytes:
    """What ``encoding=None`` yields: the line as it is, ending with LF."""
    return line


def _decoder(encoding: str, errors: str) -> Callable[[bytes], str]:
    def decode(line: bytes) -> str:
        return line[:-1].decode(encoding, errors).rstrip("\r") + "\n"

    return decode


# What a Follow yields: decoded lines (str), or with encoding=None the lines as bytes.
LineT = TypeVar("LineT", str, bytes)


class Follow(AsyncIterator[LineT], Generic[LineT]):
    """``async for line in sky_async.follow(path)``: see ``sky_async.follow``.

    The file is opened when ``follow()`` is called; it is closed when iteration ends with
    an exception (cancellation included), by ``aclose()``, on leaving ``async with``, or
    when the object is collected; if a worker thread is reading at that moment, as soon as
    its current read returns.
    """

    def __init__(
        self, path: StrOrBytesPath, lines: int, decode: Callable[[bytes], LineT], poll_interval: float
    ) -> None:
        self._follower = _Follower(path, lines, use_inotify=True)
        self._poll_interval = poll_interval
        self._decode: Callable[[bytes], LineT] = decode
        self._closed = False
        self._woken: asyncio.Future[None] | None = None  # while a task waits for a change
        self._ready: deque[LineT | Exception] = deque(self._finish(self._follower.poll()))

    def take_ready(self) -> list[LineT]:
        """The lines ready without waiting (right after opening: the last *lines* lines).

        Stops at a line that failed to decode: iterating raises its error.
        """
        ready: list[LineT] = []
        while self._ready:
            line = self._ready[0]
            if isinstance(line, Exception):
                break
            self._ready.popleft()
            ready.append(line)
        return ready

    def __aiter__(self) -> Follow[LineT]:
        return self

    async def __anext__(self) -> LineT:
        try:
            while not self._ready:
                if self._closed:  # by aclose() from another task, say
                    raise StopAsyncIteration
                if not self._follower.behind:
                    await self._wait()
                    if self._closed:
                        raise StopAsyncIteration
                await self._read()
            line = self._ready.popleft()
            if isinstance(line, Exception):
                raise line
            return line
        except BaseException:
            self.close()
            raise

    async def _read(self) -> None:
        """Read what is new: on the loop's thread if it is little, else in a worker thread."""
        lines = self._finish(self._follower.poll(_INLINE_BYTES))
        if not lines and self._follower.behind:
            loop = asyncio.get_running_loop()
            lines = await loop.run_in_executor(None, self._follower.poll_in_worker, self._finish)
        if not self._closed:
            self._ready.extend(lines)

    def _finish(self, lines: list[bytes]) -> list[Any]:
        """The lines as they are yielded; a decoding error is kept in place of its line.

        Decoding happens as the lines are read (in the worker thread when there is much),
        its error is raised when that line's turn comes, and the follow ends there.
        """
        if self._decode is _undecoded:
            return lines
        decoded: list[Any] = []
        for line in lines:
            try:
                decoded.append(self._decode(line))
            except Exception as exc:  # UnicodeDecodeError, or whatever an error handler raises
                decoded.append(exc)
                break
        return decoded

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        # An infinite interval: no timer, only inotify wakes the follower.
        timer = (
            None if math.isinf(self._poll_interval) else loop.call_later(self._poll_interval, _settle, woken)
        )
        self._follower.add_reader(loop, _settle, woken)
        self._woken = woken
        try:
            await woken
        finally:
            self._woken = None
            if timer is not None:
                timer.cancel()
            self._follower.remove_reader()

    def close(self) -> None:
        self._closed = True
        self._follower.close()
        self._ready.clear()
        if self._woken is not None:  # a task waits for a change: it ends now
            _settle(self._woken)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Follow[LineT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@overload
def follow(
    path: StrOrBytesPath,
    *,
    lines: int = 0,
    encoding: str = "utf-8",
    errors: str = "replace",
    poll_interval: float = 1.0,
) -> Follow[str]: ...
@overload
def follow(
    path: StrOrBytesPath,
    *,
    lines: int = 0,
    encoding: None,
    errors: str = "replace",
    poll_interval: float = 1.0,
) -> Follow[bytes]: ...
def follow(
    path: StrOrBytesPath,
    *,
    lines: int = 0,
    encoding: str | None = "utf-8",
    errors: str = "replace",
    poll_interval: float = 1.0,
) -> Follow[str] | Follow[bytes]:
    """Follow the file at *path* like ``tail -F``: ``async for line in follow(path)``.

    Yields first the last *lines* lines, then every line appended afterwards, each
    decoded with (*encoding*, *errors*), trailing CRs stripped and ending with ``'\\n'``;
    a partial line is held until its LF arrives. With ``encoding=None`` the lines are
    bytes, as they are in the file (CRs kept, nothing decoded), each ending with
    ``b'\\n'``; *errors* is then ignored. Survives truncation (reads again from the
    start) and rotation by rename or delete-and-recreate (the old file is read to its
    end first, and its unterminated last line, if any, is delivered as a line). Uses
    inotify, falling back to polling every *poll_interval* seconds where it is
    unavailable. ``poll_interval=float('inf')`` never looks on a timer: only inotify
    events wake the follower (so where inotify is unavailable nothing does). Cancelling
    the iterating task closes every descriptor (after the read in flight, if a worker
    thread is reading a large amount).

    Raises at once: FileNotFoundError if the file does not exist yet, IsADirectoryError,
    OSError(EINVAL) for a FIFO/socket/device, ValueError/TypeError for bad arguments,
    LookupError for an unknown encoding.
    """
    count, interval = _check_arguments(lines, encoding, errors, poll_interval)
    if encoding is None:
        return Follow(path, count, _undecoded, interval)
    return Follow(path, count, _decoder(encoding, errors), interval)


@overload
def follow_blocking(
    path: StrOrBytesPath,
    *,
    lines: int = 0,
    encoding: str = "utf-8",
    errors: str = "replace",
    poll_interval: float = 1.0,
) -> Iterator[str]: ...
@overload
def follow_blocking(
    path: StrOrBytesPath,
    *,
    lines: int = 0,
    encoding: None,
    errors: str = "replace",
    poll_interval: float = 1.0,
) -> Iterator[bytes]: ...
def follow_blocking(
    path: StrOrBytesPath,
    *,
    lines: int = 0,
    encoding: str | None = "utf-8",
    errors: str = "replace",
    poll_interval: float = 1.0,
) -> Iterator[str] | Iterator[bytes]:
    """The blocking twin of ``follow``: a generator for code without an event loop.

    The file is opened (and errors raised) when it is called; closing the generator, or
    an exception such as KeyboardInterrupt inside it, closes every descriptor.
    """
    count, interval = _check_arguments(lines, encoding, errors, poll_interval)
    follower = _Follower(path, count, use_inotify=True)
    if encoding is None:
        return _follow_blocking(follower, _undecoded, interval)
    return _follow_blocking(follower, _decoder(encoding, errors), interval)


def _follow_blocking(
    follower: _Follower, decode: Callable[[bytes], LineT], interval: float
) -> Iterator[LineT]:
    # poll(), not select(): the inotify descriptor can be above select()'s FD_SETSIZE (1024).
    waiter = select.poll()
    fd = follower.fileno()
    if fd is not None:
        waiter.register(fd, select.POLLIN)
    # An infinite interval waits for inotify alone, as the async follow does.
    timeout = None if math.isinf(interval) else math.ceil(min(interval * 1000, _MAX_POLL_MS))
    try:
        while True:
            for line in follower.poll():
                yield decode(line)
            waiter.poll(timeout)
    finally:
        follower.close()
