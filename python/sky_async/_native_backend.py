"""The native backend: the C++ runtime, bridged to asyncio.

Native completions never touch Python on the worker threads. Each event loop gets
one ``CompletionQueue``: workers append finished operations to it and write its
eventfd only when it goes from empty to non-empty; the loop's reader callback then
drains every finished operation under a single GIL acquisition. So a burst of
10,000 completions costs one wakeup, not 10,000 ``call_soon_threadsafe`` calls.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Sequence
from typing import Any

from . import _native, _native_exact, _strings
from ._errors import Item
from ._tail import TailItem
from .mounts import MountsItem
from .scan import ScanOptions

# Worker threads must be stopped before the interpreter finalizes, not after. threading's
# exit hooks run before non-daemon threads are joined: work still running then is
# cancelled, as the pure-Python backend does, instead of holding up the exit.
atexit.register(_native.shutdown)
_register_thread_exit_hook = getattr(threading, "_register_atexit", None)
if _register_thread_exit_hook is not None:
    _register_thread_exit_hook(_native.shutdown)


class NativeBackend:
    name = "native"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[asyncio.AbstractEventLoop, _native.CompletionQueue] = {}
        self._local = threading.local()
        os.register_at_fork(after_in_child=self._forget_loops)

    def _forget_loops(self) -> None:
        # The parent's loops and eventfds are not ours to use in a child; the native
        # side abandons its runtime at fork too and starts a fresh one on demand.
        self._queues = {}
        self._local = threading.local()
        self._lock = threading.Lock()

    def _queue_for(self, loop: asyncio.AbstractEventLoop) -> _native.CompletionQueue:
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

    async def call(self, start: Any, *args: Any) -> Any:
        """Await a native operation: ``start(queue, *args, future)`` returns its handle.

        Cancelling the awaiting task cancels the native work and returns only once it
        has released its files.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        operation = start(self._queue_for(loop), *args, future)
        try:
            return await future
        except asyncio.CancelledError:
            await _cancel_and_wait(loop, operation)
            raise

    async def hash_files(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]:
        items: list[Item] = await self.call(_native.hash_files, paths, algorithm, concurrency, stop_on_error)
        return items

    def hash_files_blocking(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]:
        return _native.hash_files_blocking(paths, algorithm, concurrency, stop_on_error)

    # --- tail: read_last_n_lines, tail_files, follow ---

    async def tail_files(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[TailItem]:
        items: list[TailItem] = await self.call(
            _native.tail_files, paths, n, chunk_size, concurrency, encoding, errors
        )
        return items

    def tail_files_blocking(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[TailItem]:
        return _native.tail_files_blocking(paths, n, chunk_size, concurrency, encoding, errors)

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    def is_process_alive(self, pid: int) -> bool:
        return _native.is_process_alive(pid)

    def process_start_time(self, pid: int) -> int | None:
        return _native.process_start_time(pid)

    async def probe_processes(self, pids: Sequence[Any], start_times: list[int | None] | None) -> list[bool]:
        alive: list[bool] = await self.call(_native.probe_processes, pids, start_times)
        return alive

    def probe_processes_blocking(
        self, pids: Sequence[Any], start_times: list[int | None] | None
    ) -> list[bool]:
        return _native.probe_processes_blocking(pids, start_times)

    async def wait_for_exit(self, pid: int, timeout: float | None) -> bool:
        exited: bool = await self.call(_native.wait_for_exit, pid, timeout)
        return exited

    def wait_for_exit_blocking(self, pid: int, timeout: float | None) -> bool:
        return _native.wait_for_exit_blocking(pid, timeout)

    # --- scan: scan_tree ---

    async def scan_tree(self, root: bytes, options: ScanOptions) -> Any:
        return await self.call(_native.scan_tree, root, *options)

    def scan_tree_blocking(self, root: bytes, options: ScanOptions) -> Any:
        return _native.scan_tree_blocking(root, *options)

    # --- system: cpu, memory, threads, fd estimates, ports ---

    def get_cpu_count(self) -> int:
        return _native.get_cpu_count()

    def get_mem_size_gb(self) -> float:
        return _native.get_mem_size_gb()

    def get_parallel_threads(self, cloud: str | None) -> int:
        return _native.get_parallel_threads(cloud)

    # Measured (bench/compat_bench.py): native for base36 only; format_float's native call
    # loses on ints, and plain str slicing beats truncate_long_string's UTF-8 round trip.
    base36_encode = staticmethod(_native_exact.base36_encode)
    format_float = staticmethod(_strings.format_float)
    truncate_long_string = staticmethod(_strings.truncate_long_string)

    async def estimate_fd_for_directory(self, path: bytes) -> Any:
        return await self.call(_native.estimate_fd_for_directory, path)

    def estimate_fd_for_directory_blocking(self, path: bytes) -> Any:
        return _native.estimate_fd_for_directory_blocking(path)

    async def max_workers_for_file_mounts(self, sources: list[bytes], cloud: str | None) -> Any:
        return await self.call(_native.max_workers_for_file_mounts, sources, cloud)

    def max_workers_for_file_mounts_blocking(self, sources: list[bytes], cloud: str | None) -> Any:
        return _native.max_workers_for_file_mounts_blocking(sources, cloud)

    async def find_free_port(self, start_port: int) -> Any:
        return await self.call(_native.find_free_port, start_port)

    def find_free_port_blocking(self, start_port: int) -> Any:
        return _native.find_free_port_blocking(start_port)

    # --- mounts: file_mounts_digest ---

    async def file_mounts_digest(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> MountsItem:
        item: MountsItem = await self.call(_native.file_mounts_digest, file_mounts, prefix, concurrency)
        return item

    def file_mounts_digest_blocking(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> MountsItem:
        return _native.file_mounts_digest_blocking(file_mounts, prefix, concurrency)

    # --- the backend itself ---

    def info(self) -> dict[str, Any]:
        info = dict(_native.build_info())
        info.update(_native.runtime_info())
        info["backend"] = self.name
        return info


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
