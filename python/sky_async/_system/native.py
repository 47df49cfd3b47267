"""The system helpers on the native backend: the C++ engine through ``_native``."""

from __future__ import annotations

from typing import Any

from .. import _native
from .._bridge import call
from . import native_exact as _native_exact
from . import strings as _strings


class NativeSystem:
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
        return await call(_native.estimate_fd_for_directory, path)

    def estimate_fd_for_directory_blocking(self, path: bytes) -> Any:
        return _native.estimate_fd_for_directory_blocking(path)

    async def max_workers_for_file_mounts(self, sources: list[bytes], cloud: str | None) -> Any:
        return await call(_native.max_workers_for_file_mounts, sources, cloud)

    def max_workers_for_file_mounts_blocking(self, sources: list[bytes], cloud: str | None) -> Any:
        return _native.max_workers_for_file_mounts_blocking(sources, cloud)

    async def find_free_port(self, start_port: int) -> Any:
        return await call(_native.find_free_port, start_port)

    def find_free_port_blocking(self, start_port: int) -> Any:
        return _native.find_free_port_blocking(start_port)
