"""The pure-Python backend's worker pool, and the batches of files its jobs work through.

A call runs as at most ``concurrency`` jobs on the pool. Each job takes the next
unclaimed file of the call, processes it (``_Batch.process``: hash it, read its tail),
and repeats, so memory per call is the result list plus one small object per job,
whatever the number of files, and at most ``concurrency`` files are open at once.

The pool is a few threads (``_pool_size``), started on demand and reused by every
call: each thread costs address space (its stack, and the malloc arena glibc gives
a thread on its first allocation), so a process under an RLIMIT_AS must not need
one per job, let alone one per file. A thread that cannot be started is no error
while another one runs: the queued jobs wait for it.

The awaiting coroutine waits on a single asyncio future, settled from the worker
thread that finishes the last job. Cancelling it stops the jobs (between chunks
and before each file) and waits until every file they opened is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import queue
import resource
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from . import _fd_budget
from ._errors import NOT_A_REGULAR_FILE, Item

DEFAULT_CONCURRENCY = 16

# O_NONBLOCK: opening a FIFO must not wait for a writer (it is then rejected as not a
# regular file). It changes nothing for regular files.
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


# The address space a worker thread reserves with glibc: its stack (8 MiB by default) and
# the malloc arena it gets on its first allocation (64 MiB). Reserved, not used, but under
# an RLIMIT_AS it is taken from what the results need.
_THREAD_RESERVATION = 72 * 1024 * 1024


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pool_size() -> int:
    cpus = usable_cpus()
    # As the native backend's threads I/O backend: each thread blocks on its read, so twice
    # the CPUs keep cold reads overlapping (bench/hash_bench.py: as fast as min(32, cores + 4)).
    size = max(4, min(32, 2 * cpus))
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        # At most half the limit for the threads: the other half is for the data.
        size = min(size, max(1, limit // 2 // _THREAD_RESERVATION))
    return size


class _Pool(Executor):
    """Worker threads, started on demand up to *size* and then reused: one queue of tasks.

    ``run`` queues a plain callable (the jobs of a batch, which report their own outcome);
    ``submit`` is the Executor form, with a Future, for run_in_executor. A task is never
    refused for want of a new thread while one worker exists (RLIMIT_AS or RLIMIT_NPROC
    reached): it waits for a worker to be free. Without any worker, the RuntimeError of
    the failed start is raised and nothing is queued.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._tasks: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a task, or about to
        self._queued = 0  # tasks not yet taken by a worker
        self._shutdown = False

    def run(self, task: Callable[[], object]) -> None:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("sky_async: the interpreter is exiting")
            if self._queued >= self._idle and len(self._threads) < self.size:
                self._start_worker()
            self._queued += 1
            self._tasks.put(task)

    def _start_worker(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"sky_async-python_{len(self._threads)}", daemon=False
        )
        try:
            thread.start()
        except RuntimeError:  # "can't start new thread": no memory for its stack, or no pid
            if not self._threads:
                raise
            return
        self._threads.append(thread)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            task = self._tasks.get()
            with self._lock:
                self._idle -= 1
                if task is not None:
                    self._queued -= 1
            if task is None:
                # Passed on, so that it wakes every worker, even one a KeyboardInterrupt in
                # run() kept out of the list.
                self._tasks.put(None)
                return
            with contextlib.suppress(BaseException):  # tasks report their own failures
                task()
            del task  # not kept alive while waiting for the next one

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def task() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self.run(task)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            threads = list(self._threads)
        self._tasks.put(None)
        if wait:
            for thread in threads:
                thread.join()


_pool: _Pool | None = None
_pool_lock = threading.Lock()
# Set when the interpreter starts to exit, so that jobs nobody waits for any more (their
# loop was closed under them) stop within a chunk instead of holding up the exit.
_exiting = False


def _get_executor() -> _Pool:
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            pool = _pool
            if pool is None:
                pool = _pool = _Pool(_pool_size())
    return pool


def _after_fork_in_child() -> None:
    # The parent's pool threads do not exist in the child; start a new pool on demand.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


def _on_exit() -> None:
    global _exiting
    _exiting = True
    pool = _pool
    if pool is not None:
        # Wakes every pool thread; their jobs stop within a chunk (they read _exiting), and
        # threading then joins them as it joins every non-daemon thread.
        pool.shutdown(wait=False)


os.register_at_fork(after_in_child=_after_fork_in_child)
# threading's exit hooks run before it joins the non-daemon threads (atexit's run after).
_register_exit_hook = getattr(threading, "_register_atexit", None)
if _register_exit_hook is not None:
    _register_exit_hook(_on_exit)


class _Batch:
    """The files of one call, shared by the jobs that work through them.

    *on_done* is called once, on whichever thread gets there, when no job is working on the
    batch any more and none will: every file is done, or the batch was stopped. Jobs count
    themselves in when they start running, not when they are submitted, so the count stays
    right even if a KeyboardInterrupt cuts ``start`` short anywhere in the caller's thread.
    """

    __slots__ = (
        "_done",
        "_exhausted",
        "_lock",
        "_next",
        "_on_done",
        "_running",
        "error",
        "first_failure",
        "loop",
        "paths",
        "results",
        "stop",
        "stop_on_error",
    )

    def __init__(
        self,
        paths: list[bytes],
        stop_on_error: bool,
        on_done: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.paths = paths
        self.stop_on_error = stop_on_error
        self.results: list[Item] = [None] * len(paths)
        self.error: BaseException | None = None  # an unexpected failure of a job itself
        # Set to stop every file: cancelled. Jobs read it before each file and between chunks.
        self.stop = False
        # With stop_on_error, the lowest index that failed: the files after it are skipped (or
        # abandoned midway), those before it still finish, so the first failure in input order
        # is known whatever the timing.
        self.first_failure = len(paths)
        # The loop of the awaiting coroutine: once it is closed, nobody can take the results.
        self.loop = loop
        self._on_done = on_done
        self._lock = threading.Lock()
        self._next = 0
        self._running = 0
        self._exhausted = False  # no file is left to start
        self._done = False  # on_done was called

    def start(self, pool: _Pool, jobs: int) -> None:
        for _ in range(jobs):
            pool.run(self._run)

    def cancel(self) -> None:
        """Stop the batch; on_done follows once no job is working on it (at once if none is)."""
        with self._lock:
            self.stop = True
            idle = self._running == 0
            self._done = self._done or idle
        # Jobs still queued return at once when they get a worker: they see stop.
        if idle:
            # Even if a job got there first: on_done is idempotent, and a cancel cut short by a
            # second Ctrl-C is retried, so the waiter must not depend on who called it first.
            self._on_done()

    def outcome(self) -> list[Item]:
        if self.error is not None:
            raise self.error
        return self.results

    def stopping_at(self, index: int) -> bool:
        """Whether the file at *index* is to be skipped, or abandoned if under way."""
        loop = self.loop
        return self.stop or index > self.first_failure or _exiting or (loop is not None and loop.is_closed())

    def _finish_if_idle(self) -> bool:
        # With the lock held. True if the caller is to call on_done.
        if self._done or self._running or not (self._exhausted or self.stop):
            return False
        self._done = True
        return True

    def _run(self) -> None:
        with self._lock:
            if self._done or self.stop:
                return
            self._running += 1
        try:
            self._work()
        except BaseException as exc:  # a bug or MemoryError: report it rather than lose the job
            if self.error is None:
                self.error = exc
            self.stop = True
        finally:
            with self._lock:
                self._running -= 1
                done = self._finish_if_idle()
            if done:
                self._on_done()

    def _work(self) -> None:
        count = len(self.paths)
        while True:
            with self._lock:
                index = self._next  # files are started in input order
                self._next = index + 1
            if index >= count or self.stopping_at(index):
                break
            item = self.process(index)
            self.results[index] = item
            if self.stop_on_error and isinstance(item, tuple):
                with self._lock:
                    self.first_failure = min(self.first_failure, index)
        self._exhausted = True
        if _exiting and self.error is None:
            # Files were left out; a thread still waiting for them must not take the gaps for results.
            self.error = RuntimeError("sky_async: the interpreter is exiting")

    def process(self, index: int) -> Any:
        """The item of the file at *index*: each feature's batch defines it."""
        raise NotImplementedError


_Read = TypeVar("_Read")


def read_regular_file(
    path: bytes, batch: _Batch, index: int, read: Callable[[int, os.stat_result], _Read]
) -> _Read | tuple[int, str | None] | None:
    """What ``read(fd, st)`` returns for the regular file at *path*, opened within the
    descriptor budget and closed after: the per-file part shared by hash and tail. A file
    that is not regular, or an OSError, gives ``(errno, message)``; None if the batch
    stopped before a descriptor was free."""
    try:
        fd = _fd_budget.open_file(path, _OPEN_FLAGS, functools.partial(batch.stopping_at, index))
    except OSError as exc:
        if exc.errno == errno.ENXIO and _is_special_file(path):
            return (errno.EINVAL, NOT_A_REGULAR_FILE)  # a socket, or a device without a driver
        return (exc.errno or errno.EIO, None)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return (errno.EISDIR, None)
        if not stat.S_ISREG(st.st_mode):
            return (errno.EINVAL, NOT_A_REGULAR_FILE)
        return read(fd, st)
    except OSError as exc:
        return (exc.errno or errno.EIO, None)
    finally:
        _fd_budget.close(fd)


def _is_special_file(path: bytes) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _wake(loop: asyncio.AbstractEventLoop, finished: asyncio.Future[None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(_settle, finished)


def _settle(finished: asyncio.Future[None]) -> None:
    if not finished.done():
        finished.set_result(None)


def interpreter_exiting() -> bool:
    """Whether the interpreter has started to exit: work nobody waits for stops then."""
    return _exiting


def _cancel_and_wait(batch: _Batch, finished: threading.Event) -> None:
    """Stop *batch* and wait until its files are closed, even through further Ctrl-C presses."""
    while True:
        try:
            batch.cancel()
            break
        except KeyboardInterrupt:
            continue
    while not finished.is_set():
        try:
            finished.wait()
        except KeyboardInterrupt:
            continue


# Makes the batch of one call, given its on_done and the awaiting loop (None when blocking).
BatchFactory = Callable[[Callable[[], None], "asyncio.AbstractEventLoop | None"], _Batch]


async def run_batch(make_batch: BatchFactory, files: int, concurrency: int) -> list[Any]:
    """Run a batch of *files* on the pool and await its items (hash and tail share this).

    Cancelling the awaiting task stops the jobs and returns only once every file they
    opened is closed.
    """
    if not files:
        return []
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    batch = make_batch(functools.partial(_wake, loop, finished), loop)
    try:
        pool = _get_executor()
        batch.start(pool, _jobs(pool, concurrency, files))
        await asyncio.shield(finished)
    except GeneratorExit:
        # The coroutine was closed without being awaited to the end: nothing can be awaited
        # any more; the jobs stop within a chunk on their own.
        batch.cancel()
        raise
    except BaseException:  # CancelledError above all
        batch.cancel()
        while not finished.done():
            try:
                await asyncio.shield(finished)
            except asyncio.CancelledError:
                # Cancelled again while waiting: keep waiting, the jobs stop within one chunk.
                continue
        raise
    return batch.outcome()


def run_batch_blocking(make_batch: BatchFactory, files: int, concurrency: int) -> list[Any]:
    """run_batch for a thread without an event loop; Ctrl-C stops the jobs and waits for them."""
    if not files:
        return []
    finished = threading.Event()
    batch = make_batch(finished.set, None)
    try:
        pool = _get_executor()
        batch.start(pool, _jobs(pool, concurrency, files))
        finished.wait()
    except BaseException:  # KeyboardInterrupt (at any point), or a refusal of the pool
        _cancel_and_wait(batch, finished)
        raise
    return batch.outcome()


_T = TypeVar("_T")


async def run_stoppable(work: Callable[[threading.Event], _T]) -> _T:
    """``work(stop)`` on the pool, awaited: one walk (scan, the mounts plan) that checks
    *stop* between entries. Cancelling the awaiting task sets *stop* and returns only once
    *work* has returned, so that it closed what it opened; then the cancellation goes on."""
    stop = threading.Event()
    job = asyncio.get_running_loop().run_in_executor(_get_executor(), work, stop)
    try:
        return await asyncio.shield(job)
    except GeneratorExit:
        stop.set()
        raise
    except BaseException:
        stop.set()
        while not job.done():
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                continue  # cancelled again: the walk still closes what it holds first
            except BaseException:  # its outcome is not wanted any more
                break
        raise


def _jobs(pool: _Pool, concurrency: int, files: int) -> int:
    # A job beyond the pool's threads would only wait in its queue until the others ran out
    # of files.
    return min(concurrency or DEFAULT_CONCURRENCY, files, pool.size)
