"""Awaiting native operations from asyncio: the Python half of ``src/python/bridge.*``.

Native completions never touch Python on the worker threads. Each event loop gets
one ``CompletionQueue``: workers append finished operations to it and write its
eventfd only when it goes from empty to non-empty; the loop's reader callback then
drains every finished operation under a single GIL acquisition. So a burst of
10,000 completions costs one wakeup, not 10,000 ``call_soon_threadsafe`` calls.

Each feature's native adapter (``_<feature>/native.py``) awaits its operations with
``call``. Importing this module imports the compiled ``_native`` (ImportError without it).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from typing import Any

from . import _native

# Worker threads must be stopped before the interpreter finalizes, not after. threading's
# exit hooks run before non-daemon threads are joined: work still running then is
# cancelled, as the pure-Python backend does, instead of holding up the exit.
atexit.register(_native.shutdown)
_register_thread_exit_hook = getattr(threading, "_register_atexit", None)
if _register_thread_exit_hook is not None:
    _register_thread_exit_hook(_native.shutdown)


class _Queues:
    """The completion queue of each event loop, made on a loop's first call."""

    def __init__(self) -> None:
        self.forget_loops()
        os.register_at_fork(after_in_child=self.forget_loops)

    def forget_loops(self) -> None:
        # The parent's loops and eventfds are not ours to use in a child; the native
        # side abandons its runtime at fork too and starts a fresh one on demand.
        self._queues: dict[asyncio.AbstractEventLoop, _native.CompletionQueue] = {}
        self._local = threading.local()
        self._lock = threading.Lock()

    def queue_for(self, loop: asyncio.AbstractEventLoop) -> _native.CompletionQueue:
        cached = getattr(self._local, "entry", None)
        if cached is not None and cached[0] is loop and not loop.is_closed():
            cached_queue: _native.CompletionQueue = cached[1]
            return cached_queue
        with self._lock:
            for old_loop in [old for old in self._queues if old.is_closed()]:
                # Operations still running for a closed loop complete into a queue
                # nobody drains; closing it drops their results with the GIL held.
                self._queues.pop(old_loop).close()
            queue = self._queues.get(loop)
            if queue is None:
                try:
                    queue = _native.CompletionQueue()
                except OSError as exc:  # its eventfd: EMFILE under a tiny RLIMIT_NOFILE
                    message = f"sky_async's runtime could not start for this event loop: {exc.strerror}"
                    raise OSError(exc.errno, message) from None
                loop.add_reader(queue.fileno(), queue.drain)
                self._queues[loop] = queue
        self._local.entry = (loop, queue)
        return queue


_queues = _Queues()


async def call(start: Any, *args: Any) -> Any:
    """Await a native operation: ``start(queue, *args, future)`` returns its handle.

    Cancelling the awaiting task cancels the native work and returns only once it
    has released its files.
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    operation = start(_queues.queue_for(loop), *args, future)
    try:
        return await future
    except asyncio.CancelledError:
        await _cancel_and_wait(loop, operation)
        raise


async def _cancel_and_wait(loop: asyncio.AbstractEventLoop, operation: Any) -> None:
    """Stop the native work and wait until it has closed its files."""
    finished = loop.create_future()
    operation.cancel(finished)
    while not finished.done():
        try:
            await asyncio.shield(finished)
        except asyncio.CancelledError:
            # Cancelled again while waiting: keep waiting, the work stops within one chunk.
            continue
