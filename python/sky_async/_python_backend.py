"""The pure-Python backend, with the native backend's semantics: ``PythonBackend``.

Each feature's pure-Python implementation sits in ``_<feature>_py.py`` (``_hash_py``,
``_tail_py``, ``_scan_py``, ``_mounts_py``); the batches run on the shared pool of ``_batch``.
"""

from __future__ import annotations

import asyncio
import platform
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any

from . import _batch, _hash_py, _mounts_py, _process_py, _scan_py, _strings, _system, _tail_py
from ._batch import _get_executor
from ._errors import Item
from ._version import __version__
from .mounts import MountsItem
from .scan import ScanOptions


class PythonBackend:
    name = "python"

    async def hash_files(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]:
        return await _hash_py.hash_files(paths, algorithm, concurrency, stop_on_error)

    def hash_files_blocking(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]:
        return _hash_py.hash_files_blocking(paths, algorithm, concurrency, stop_on_error)

    # --- tail: read_last_n_lines, tail_files, follow ---

    async def tail_files(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[Any]:
        return await _tail_py.tail_files(paths, n, chunk_size, concurrency, encoding, errors)

    def tail_files_blocking(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[Any]:
        return _tail_py.tail_files_blocking(paths, n, chunk_size, concurrency, encoding, errors)

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    def is_process_alive(self, pid: int) -> bool:
        return _process_py.probe(pid)

    def process_start_time(self, pid: int) -> int | None:
        return _process_py.process_start_time(pid)

    async def probe_processes(self, pids: Sequence[Any], start_times: list[int | None] | None) -> list[bool]:
        _process_py.check_pids(pids)
        return await _batch.run_stoppable(lambda stop: _process_py.probe_many(pids, start_times, stop.is_set))

    def probe_processes_blocking(
        self, pids: Sequence[Any], start_times: list[int | None] | None
    ) -> list[bool]:
        _process_py.check_pids(pids)
        return _process_py.probe_many(pids, start_times)

    async def wait_for_exit(self, pid: int, timeout: float | None) -> bool:
        return await _process_py.wait_for_exit(pid, timeout)

    def wait_for_exit_blocking(self, pid: int, timeout: float | None) -> bool:
        return _process_py.wait_for_exit_blocking(pid, timeout)

    # --- scan: scan_tree ---

    async def scan_tree(self, root: bytes, options: ScanOptions) -> Any:
        """The walk runs on the pool; cancelling stops it at the next entry and waits for it."""
        loop = asyncio.get_running_loop()

        def walk(stop: threading.Event) -> Any:
            def stopped() -> bool:
                return stop.is_set() or _batch.interpreter_exiting() or loop.is_closed()

            return _scan_py.scan(root, *options, stopped)

        return await _batch.run_stoppable(walk)

    def scan_tree_blocking(self, root: bytes, options: ScanOptions) -> Any:
        """In the calling thread: Ctrl-C stops the walk, which closes its directories as it unwinds."""
        return _scan_py.scan(root, *options, _batch.interpreter_exiting)

    # --- system: cpu, memory, threads, fd estimates, ports ---

    @staticmethod
    async def _in_pool(function: Callable[..., Any], *args: Any) -> Any:
        # A short blocking call (a listing, port probes) on the shared pool; cancelling the
        # awaiting task abandons the result, the call itself runs to its (bounded) end.
        return await asyncio.get_running_loop().run_in_executor(_get_executor(), function, *args)

    def get_cpu_count(self) -> int:
        return _system.get_cpu_count()

    def get_mem_size_gb(self) -> float:
        return _system.get_mem_size_gb()

    def get_parallel_threads(self, cloud: str | None) -> int:
        return _system.get_parallel_threads(cloud)

    base36_encode = staticmethod(_strings.base36_encode)
    format_float = staticmethod(_strings.format_float)
    truncate_long_string = staticmethod(_strings.truncate_long_string)

    async def estimate_fd_for_directory(self, path: bytes) -> Any:
        return await PythonBackend._in_pool(_system._estimate_item, path)

    def estimate_fd_for_directory_blocking(self, path: bytes) -> Any:
        return _system._estimate_item(path)

    async def max_workers_for_file_mounts(self, sources: list[bytes], cloud: str | None) -> Any:
        return await PythonBackend._in_pool(_system._max_workers_item, sources, cloud)

    def max_workers_for_file_mounts_blocking(self, sources: list[bytes], cloud: str | None) -> Any:
        return _system._max_workers_item(sources, cloud)

    async def find_free_port(self, start_port: int) -> Any:
        return await PythonBackend._in_pool(_system._free_port_item, start_port)

    def find_free_port_blocking(self, start_port: int) -> Any:
        return _system._free_port_item(start_port)

    # --- mounts: file_mounts_digest ---

    async def file_mounts_digest(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> MountsItem:
        return await _mounts_py.file_mounts_digest(file_mounts, prefix, concurrency)

    def file_mounts_digest_blocking(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> MountsItem:
        return _mounts_py.file_mounts_digest_blocking(file_mounts, prefix, concurrency)

    # --- the backend itself ---

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "io_backend": None,
            "version": __version__,
            "threads": _get_executor().size,
            "openssl": ssl.OPENSSL_VERSION,
            "boost": None,
            "python": platform.python_version(),
        }
