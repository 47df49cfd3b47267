"""``stream_log``: a log file as chunks of whole lines, for a streaming HTTP response.

The building block of a log endpoint such as SkyPilot's ``log_streamer``: the last *tail*
lines (read backwards, as ``read_last_n_lines`` does: the end of a 10 GiB log costs
kilobytes) or the whole file, then, with *follow*, every line appended afterwards, batched
into chunks for throughput.

Reading, truncation and rotation are ``follow``'s (``_follow._Follower``). Waking up: the
async readers of one event loop share one inotify instance, with one watch per file however
many follow it (``_inotify_hub``), so thousands of readers fit in the default
``max_user_instances`` of 128; the blocking generator has an instance of its own, as
``follow`` does. A write wakes its readers within milliseconds and an idle reader costs
nothing: it has no timer. The safety net for missed events (network and FUSE file systems)
is the hub's one timer, which wakes only readers whose file changed, and none on local file
systems (see ``_inotify_hub``). The blocking generator, with an instance of its own, looks
every ``_RECHECK_INOTIFY`` seconds on such file systems, never on local ones. Where inotify
is unavailable a reader polls every ``_RECHECK_POLLING``.

The bytes are delivered as they are in the file (no CR stripped, nothing added), so the
chunks of a file only appended to concatenate to the file from the tail point on. The
exceptions are follow's: after a truncation reading restarts at offset 0 (a held partial
line is dropped), and after a rotation the old file's unterminated last line is delivered
with an LF.

Chunks: complete lines are buffered and a chunk is yielded when the buffer holds
*max_chunk_bytes* (a chunk never holds more, unless one line alone is longer), or when
*max_delay* seconds have passed since the previous chunk, whichever comes first. A line
that arrives after a quiet spell is therefore delivered at once, and under a steady stream
the chunk rate is at most one per *max_delay*. A partial line is held until its LF arrives;
when the stream ends (the current end reached with ``follow=False``, or *until* completed)
it is delivered as it is, so that nothing written is lost.

One implementation serves the async iterator and the blocking generator: ``_Stream`` holds
the buffer and decides the next step; each front end performs the steps (reads, waits).
The async iterator takes a follow's usual turn in short: with nothing buffered, it waits
for its subscription's event, reads what is new with one ``pread`` and, if that is whole
lines that may go out now (*max_delay* passed, no *line_filter*, at most *max_chunk_bytes*),
yields them decoded at once, not split into lines; anything else goes the general way.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import select
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Union

from .._checks import StrOrBytesPath, require_int
from . import follow as _follow
from . import inotify_hub as _inotify_hub
from .api import MAX_COUNT, check_codec, check_line_count
from .follow import _INLINE_BYTES, _MAX_POLL_MS, _Follower, _settle
from .inotify_hub import Subscription

# The most read in one worker-thread turn: bounds the memory a reader holds while it goes
# through a large backlog (tail=None of a big log); the next turn comes once it is yielded.
_WORKER_BYTES = 4 * 1024 * 1024
# The blocking generator, with inotify, on a file system where events can be missed
# (network, FUSE): how often the file is looked at anyway (follow's default poll_interval).
# The async readers share their hub's timer instead (_inotify_hub._RECHECK).
_RECHECK_INOTIFY = 1.0
# Without inotify, how often the file is polled (SkyPilot's log_streamer sleeps as long).
_RECHECK_POLLING = 0.1
# The blocking generator cannot wait on a threading.Event and a descriptor at once: with an
# *until* it looks at the event this often.
_UNTIL_CHECK = 0.05

LineFilter = Callable[[str], bool]
Until = Union[Awaitable[object], asyncio.Event]

_READ = object()  # the step "read what is new"


class _Stream:
    """The buffer of complete lines (raw bytes) not yet yielded, and what to do next."""

    def __init__(
        self,
        path: StrOrBytesPath,
        tail: int | None,
        follow: bool,
        max_chunk_bytes: int,
        max_delay: float,
        encoding: str,
        errors: str,
        line_filter: LineFilter | None,
        use_inotify: bool,
    ) -> None:
        # use_inotify: an inotify instance of the reader's own (the blocking generator's);
        # the async iterator subscribes to its loop's shared instance instead.
        self.follower = _Follower(path, tail, use_inotify=use_inotify)
        self._max_chunk = max_chunk_bytes
        self._max_delay = max_delay
        self._encoding = encoding
        self._errors = errors
        self._filter = line_filter
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._last_yield = -math.inf  # the first lines (the tail) go out at once
        self.need_read = True
        # Read to the current end, deliver everything, stop: from the start without follow,
        # else once *until* completed.
        self.ending = not follow
        self._finished = False
        self.recheck = _RECHECK_POLLING
        if self.follower.fileno() is not None:  # the blocking generator's own instance
            directory = os.path.dirname(os.path.abspath(self.follower.path))
            self.recheck = math.inf if _inotify_hub.reliable(directory) else _RECHECK_INOTIFY

    def add(self, lines: list[bytes]) -> None:
        """Buffer the complete lines read, less those the line filter drops."""
        if self._filter is not None:
            keep = self._filter
            encoding, errors = self._encoding, self._errors
            lines = [line for line in lines if keep(line.decode(encoding, errors))]
        self._pending.extend(lines)
        self._pending_bytes += sum(map(len, lines))

    def step(self, now: float) -> Any:
        """The next step at time *now*: a chunk (str) to yield, ``_READ``, a time to wait
        until (float, ``inf`` for no deadline) or None at the end of the stream."""
        if self._pending_bytes >= self._max_chunk:
            return self._take(now)
        if self.need_read or self.follower.behind:
            self.need_read = False
            return _READ
        if self.ending:
            if not self._finished:
                self._finished = True
                partial = self.follower.take_partial()
                if partial:
                    self.add([partial])
            return self._take(now) if self._pending else None
        if not self._pending:
            return math.inf
        deadline = self._last_yield + self._max_delay
        return self._take(now) if now >= deadline else deadline

    def idle(self) -> bool:
        """Whether ``step()`` would wait for a change with no deadline (nothing to yield)."""
        return not (self._pending or self.need_read or self.follower.behind or self.ending)

    def read_appended(self, now: float) -> str | None:
        """A follow's usual read, the name known to be unchanged and nothing buffered: if
        what is new is whole lines that may go out now, the chunk, decoded at once (no
        split into lines); else None, the lines buffered as ``add()`` does."""
        self.need_read = False
        fits = self._filter is None and now >= self._last_yield + self._max_delay
        new = self.follower.poll_appended(self._max_chunk if fits else -1, _INLINE_BYTES)
        if isinstance(new, bytes):
            self._last_yield = now
            return new.decode(self._encoding, self._errors)
        self.add(new)
        return None

    def _take(self, now: float) -> str:
        """The next chunk: as many buffered lines as fit in max_chunk_bytes (at least one)."""
        lines: list[bytes] = []
        size = 0
        pending = self._pending
        while pending:
            length = len(pending[0])
            if lines and size + length > self._max_chunk:
                break
            lines.append(pending.popleft())
            size += length
        self._pending_bytes -= size
        self._last_yield = now
        return b"".join(lines).decode(self._encoding, self._errors)

    def stop(self) -> None:
        """*until* completed: read to the current end, deliver everything, then end."""
        if not self.ending:
            self.ending = True
            self.need_read = True

    def wait_time(self, deadline: float, now: float) -> float:
        """Seconds to wait for a change, at most until *deadline*."""
        return max(0.0, min(deadline - now, self.recheck))

    def close(self) -> None:
        self.follower.close()
        self._pending.clear()
        self._pending_bytes = 0


def _identity(lines: list[bytes]) -> list[bytes]:
    return lines


class StreamLog(AsyncIterator[str]):
    """``async for chunk in sky_async.stream_log(path)``: see ``sky_async.stream_log``.

    The file is opened when ``stream_log()`` is called; it is closed when iteration ends
    (cancellation included), by ``aclose()``, on leaving ``async with``, or when the object
    is collected; if a worker thread is reading at that moment, as soon as its read returns.
    """

    def __init__(self, stream: _Stream, until: Until | None) -> None:
        self._stream = stream
        self._until = until
        self._until_future: asyncio.Future[Any] | None = None
        self._owns_until = False
        self._done = False
        # Wake-ups from the loop's shared inotify instance, once iteration starts.
        self._subscribed = False
        self._subscription: Subscription | None = None
        self._woken: asyncio.Future[None] | None = None  # while a task waits for a change
        # The subscription, once iteration has started with one: __anext__ then takes a
        # follow's usual turns in short (_follow_wait, _follow_read).
        self._fast: Subscription | None = None

    def __aiter__(self) -> StreamLog:
        return self

    async def __anext__(self) -> str:
        if self._done:
            raise StopAsyncIteration
        try:
            # A follow's usual turn, in short: wait for an event on the file, then read what
            # it announces (one pread); whole lines go out as they were read, decoded at
            # once, without the buffer, step() or a timer.
            woken = self._follow_wait()
            if woken is not None:
                await woken
                chunk = self._follow_read()
                if chunk is not None:
                    return chunk
            chunk = await self._next()
        except BaseException:
            self.close()
            raise
        if chunk is None:
            self.close()
            raise StopAsyncIteration
        return chunk

    def _follow_wait(self) -> asyncio.Future[None] | None:
        """The future a follow's usual turn waits on (done if an event came meanwhile), or
        None where the turn is ``_next()``'s: lines buffered, a read to finish, the name to
        look up, *until* completed, no subscription (polling)."""
        subscription = self._fast
        if subscription is None or not self._stream.idle():
            return None
        until = self._until_future
        if until is not None and until.done():
            return None
        woken: asyncio.Future[None] = subscription.hub.loop.create_future()
        if subscription.woken:
            woken.set_result(None)
        else:
            subscription.waiter = self._woken = woken
            if until is not None:
                until.add_done_callback(self._wake)
        return woken

    def _follow_read(self) -> str | None:
        """After ``_follow_wait()``'s future: the chunk read, or None (``_next()`` goes on)."""
        subscription = self._fast
        assert subscription is not None
        subscription.waiter = self._woken = None
        until = self._until_future
        if until is not None:
            until.remove_done_callback(self._wake)
        if self._done:  # closed by another task meanwhile
            raise StopAsyncIteration
        if subscription.renamed or (until is not None and until.done()):
            self._stream.need_read = True  # the name must be looked up: the full read
            return None
        subscription.woken = False  # what this read finds covers the events so far
        return self._stream.read_appended(subscription.hub.loop.time())

    def _wake(self, _: object) -> None:
        """*until* completed: a task waiting in ``_follow_wait()``'s future goes on."""
        if self._woken is not None:
            _settle(self._woken)

    async def _next(self) -> str | None:
        loop = asyncio.get_running_loop()
        stream = self._stream
        if self._until is not None and self._until_future is None:
            self._start_until()
        if not self._subscribed:
            self._subscribe(loop)
        until = self._until_future
        while True:
            if until is not None and not stream.ending and until.done():
                stream.stop()  # seen here too: a reader that never waits must still stop
            step = stream.step(loop.time())
            if step is None or isinstance(step, str):
                return step
            if step is _READ:
                await self._read(loop)
            else:
                await self._wait(loop, step)
            if self._done:  # closed by another task meanwhile
                return None

    def _subscribe(self, loop: asyncio.AbstractEventLoop) -> None:
        self._subscribed = True
        stream = self._stream
        if stream.ending or _follow._FORCE_POLLING:
            return
        # Before the first read: whatever changes after it wakes the reader.
        subscription = _inotify_hub.subscribe(loop, stream.follower.path)
        self._subscription = subscription
        if subscription is not None:
            # No timer of its own: woken by events, and by the hub's recheck if its file
            # system can miss them.
            stream.recheck = math.inf
            subscription.probe = stream.follower.changed
            # On a local file system a short read is the end of the file.
            stream.follower.short_reads_end = not subscription.rechecked
            self._fast = subscription

    def _start_until(self) -> None:
        until = self._until
        if isinstance(until, asyncio.Event):
            self._until_future = asyncio.ensure_future(until.wait())
            self._owns_until = True
        elif asyncio.isfuture(until):
            self._until_future = until  # the caller's: watched, never cancelled here
        else:
            assert until is not None
            self._until_future = asyncio.ensure_future(until)
            self._owns_until = True
        if self._owns_until:
            # Its outcome is only a signal here; an exception it ends with is not this
            # stream's to raise, and must not be reported as never retrieved.
            self._until_future.add_done_callback(_consume)
        if self._until_future.done():
            self._stream.stop()

    async def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read what is new: on the loop's thread if it is little, else in a worker thread."""
        follower = self._stream.follower
        subscription = self._subscription
        check_name = True
        if subscription is not None:
            subscription.woken = False  # what this read finds covers the events so far
            check_name, subscription.renamed = subscription.renamed, False
        lines = follower.poll(_INLINE_BYTES, check_name=check_name)
        if subscription is not None and check_name and (follower.behind or follower.name_gone):
            # Stopped before the name was looked up, or it named nothing: look next time too
            # (a new directory in place of a moved one raises no event here).
            subscription.renamed = True
        if not lines and follower.behind:
            lines = await loop.run_in_executor(None, follower.poll_in_worker, _identity, _WORKER_BYTES, True)
            if subscription is not None and follower.name_gone:
                subscription.renamed = True
        self._stream.add(lines)
        if follower.switched:  # rotated: watch the new file, then look at it once more
            follower.switched = False
            if subscription is not None:
                subscription.rewatch()
                self._stream.need_read = True

    async def _wait(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        stream = self._stream
        subscription = self._subscription
        if subscription is not None and subscription.woken:  # an event since the last read
            stream.need_read = True
            return
        woken: asyncio.Future[None] = loop.create_future()
        if subscription is not None:
            subscription.waiter = woken
        wait = stream.wait_time(deadline, loop.time())
        timer = None if math.isinf(wait) else loop.call_later(wait, _settle, woken)
        stream.follower.add_reader(loop, _settle, woken)
        self._woken = woken
        until = self._until_future

        def wake(_: object) -> None:
            _settle(woken)

        if until is not None:
            until.add_done_callback(wake)
        try:
            await woken
        finally:
            self._woken = None
            if subscription is not None:
                subscription.waiter = None
            if timer is not None:
                timer.cancel()
            stream.follower.remove_reader()
            if until is not None:
                until.remove_done_callback(wake)
        stream.need_read = True
        if until is not None and until.done():
            stream.stop()

    def close(self) -> None:
        self._done = True
        self._stream.close()
        if self._woken is not None:  # a task waits for a change: it ends now
            _settle(self._woken)
            if self._until_future is not None:
                self._until_future.remove_done_callback(self._wake)
        if self._subscription is not None:
            self._subscription.close()
        if self._owns_until and self._until_future is not None:
            self._until_future.cancel()
        elif self._until_future is None and inspect.iscoroutine(self._until):
            self._until.close()  # never started: no "coroutine was never awaited" warning
        self._until = None

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> StreamLog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:  # never iterated to its end, nor closed
        if not self._done:
            self._stream.close()
            if self._subscription is not None:
                self._subscription.close()
            if self._until_future is None and inspect.iscoroutine(self._until):
                self._until.close()


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def _check_common(
    tail: object, follow: object, max_chunk_bytes: object, max_delay: object, line_filter: object
) -> tuple[int | None, bool, int, float]:
    count = None if tail is None else check_line_count(tail, "tail")
    _check_bool(follow, "follow")
    chunk = require_int(max_chunk_bytes, "max_chunk_bytes")
    if chunk <= 0:
        raise ValueError(f"max_chunk_bytes must be positive, got {chunk}")
    if isinstance(max_delay, bool) or not isinstance(max_delay, (int, float)):
        raise TypeError(f"max_delay must be a number, not {type(max_delay).__name__}")
    if not max_delay >= 0:
        raise ValueError(f"max_delay must be non-negative, got {max_delay}")
    if line_filter is not None and not callable(line_filter):
        raise TypeError(f"line_filter must be callable or None, not {type(line_filter).__name__}")
    return count, bool(follow), min(chunk, MAX_COUNT), float(max_delay)


def stream_log(
    path: StrOrBytesPath,
    *,
    tail: int | None = None,
    follow: bool = True,
    max_chunk_bytes: int = 8192,
    max_delay: float = 0.02,
    until: Awaitable[object] | asyncio.Event | None = None,
    encoding: str = "utf-8",
    errors: str = "replace",
    line_filter: LineFilter | None = None,
) -> StreamLog:
    """Stream the log at *path* as chunks of whole lines: ``async for chunk in stream_log(path)``.

    Starts with the last *tail* lines (read from the end: the file is not read through), or
    at the start of the file for ``tail=None``. With *follow*, then yields the lines appended
    afterwards as they arrive (inotify; polling where it is unavailable), surviving
    truncation and rotation as ``follow`` does; without, it stops at the current end.

    Each chunk is a str of whole lines, decoded with (*encoding*, *errors*; an
    ASCII-compatible encoding, as lines are cut at LF bytes), the bytes as they are in the
    file. Lines are batched into chunks of at most *max_chunk_bytes* bytes (a longer line
    is a chunk of its own), and a chunk waits at most *max_delay* seconds after the
    previous one. A partial line is held until its LF arrives, and delivered as it is when
    the stream ends.

    *until*: an awaitable or an ``asyncio.Event``; once it completes (whatever its outcome),
    everything written so far is delivered and the iterator ends. A coroutine or an Event is
    wrapped in a task that closing the stream cancels; a future passed is only watched.
    *line_filter*: called on the event loop's thread with each line (decoded, with its
    LF); a false result drops the line.

    Closing (``aclose()``, ``async with``, or cancelling the iterating task, as when an
    HTTP client disconnects) releases every descriptor at once.

    Raises at once: FileNotFoundError (with ``filename``) for a missing file,
    IsADirectoryError, OSError(EINVAL) for a FIFO/socket/device, ValueError/TypeError for
    bad arguments, LookupError for an unknown encoding.
    """
    count, follows, chunk, delay = _check_common(tail, follow, max_chunk_bytes, max_delay, line_filter)
    check_codec(encoding, errors)
    if until is not None and not isinstance(until, asyncio.Event) and not inspect.isawaitable(until):
        raise TypeError(f"until must be an awaitable or an asyncio.Event, not {type(until).__name__}")
    stream = _Stream(path, count, follows, chunk, delay, encoding, errors, line_filter, use_inotify=False)
    return StreamLog(stream, until)


def stream_log_blocking(
    path: StrOrBytesPath,
    *,
    tail: int | None = None,
    follow: bool = True,
    max_chunk_bytes: int = 8192,
    max_delay: float = 0.02,
    until: threading.Event | None = None,
    encoding: str = "utf-8",
    errors: str = "replace",
    line_filter: LineFilter | None = None,
) -> Iterator[str]:
    """The blocking twin of ``stream_log``: a generator for code without an event loop.

    *until* is a ``threading.Event`` (looked at every few tens of milliseconds). The file
    is opened (and errors raised) when it is called; closing the generator, or an
    exception such as KeyboardInterrupt inside it, closes every descriptor.
    """
    count, follows, chunk, delay = _check_common(tail, follow, max_chunk_bytes, max_delay, line_filter)
    check_codec(encoding, errors)
    if until is not None and not isinstance(until, threading.Event):
        raise TypeError(f"until must be a threading.Event, not {type(until).__name__}")
    stream = _Stream(path, count, follows, chunk, delay, encoding, errors, line_filter, use_inotify=follows)
    return _stream_blocking(stream, until)


def _stream_blocking(stream: _Stream, until: threading.Event | None) -> Iterator[str]:
    # poll(), not select(): the inotify descriptor can be above select()'s FD_SETSIZE (1024).
    waiter = select.poll()
    fd = stream.follower.fileno()
    if fd is not None:
        waiter.register(fd, select.POLLIN)
    try:
        while True:
            if until is not None and until.is_set():
                stream.stop()
            now = time.monotonic()
            step = stream.step(now)
            if step is None:
                return
            if isinstance(step, str):
                yield step
            elif step is _READ:
                stream.add(stream.follower.poll(_WORKER_BYTES, split=True))
            else:
                timeout = stream.wait_time(step, now)
                if until is not None:
                    timeout = min(timeout, _UNTIL_CHECK)
                waiter.poll(math.ceil(min(timeout * 1000, _MAX_POLL_MS)))
                stream.need_read = True
    finally:
        stream.close()
