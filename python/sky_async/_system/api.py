"""The system helpers (CPU, memory, threads, descriptor estimates, free ports, SkyPilot's
strings): what both backends share (argument checks, results and errors), the backend
protocol, and the API mixins that ``_api`` composes."""

from __future__ import annotations

import errno
import logging
import os
import resource
from collections.abc import Mapping
from typing import Any, Protocol

from .._checks import StrOrBytesPath, encode_path, require_int
from .._errors import make_os_error
from . import python as _system_py


class SystemBackend(Protocol):
    """What a backend implements for the system helpers (see ``_api.Backend``)."""

    # The synchronous ones return SkyPilot's values and raise its errors. The others report
    # an int, or (errno, message or None) for the path or port search that failed, and for
    # file mounts (errno, message or None, index of the failed source).
    def get_cpu_count(self) -> int: ...

    def get_mem_size_gb(self) -> float: ...

    def get_parallel_threads(self, cloud: str | None) -> int: ...

    def base36_encode(self, hex_str: str) -> str: ...

    def format_float(self, num: float | int, precision: int) -> str: ...

    def truncate_long_string(self, s: str, max_length: int, truncate_middle: bool) -> str: ...

    async def estimate_fd_for_directory(self, path: bytes) -> Any: ...

    def estimate_fd_for_directory_blocking(self, path: bytes) -> Any: ...

    async def max_workers_for_file_mounts(self, sources: list[bytes], cloud: str | None) -> Any: ...

    def max_workers_for_file_mounts_blocking(self, sources: list[bytes], cloud: str | None) -> Any: ...

    async def find_free_port(self, start_port: int) -> Any: ...

    def find_free_port_blocking(self, start_port: int) -> Any: ...


class SystemApi:
    """The coroutines: the system helpers."""

    @property
    def _backend(self) -> SystemBackend:
        raise NotImplementedError  # the composed Api holds the backend

    def get_cpu_count(self) -> int:
        """CPUs this process may use, as SkyPilot computes it: ``SKYPILOT_POD_CPU_CORE_LIMIT``
        when set (float syntax, truncated toward zero), else the online CPUs narrowed by the
        affinity mask and the cgroup CPU quota (truncated: a 0.5-core quota gives 0).

        Raises ValueError for an unparseable variable and OverflowError for an infinite or
        out-of-range one. A cgroup quota or period that is not a positive finite number
        means no limit (SkyPilot raises ZeroDivisionError for a v2 period of 0).
        """
        return self._backend.get_cpu_count()

    def get_mem_size_gb(self) -> float:
        """Memory in GiB (SkyPilot's "GB"): ``SKYPILOT_POD_MEMORY_GB_LIMIT``, else
        ``SKYPILOT_POD_MEMORY_BYTES_LIMIT`` / 2**30, else total RAM capped by the cgroup
        memory limit. Raises ValueError for an unparseable variable."""
        return self._backend.get_mem_size_gb()

    def get_parallel_threads(self, cloud_str: str | None = None) -> int:
        """Threads for per-node work: ``max(4, os.cpu_count() - 1)``, times 4 when
        *cloud_str* is "kubernetes" in any case. TypeError unless *cloud_str* is a str or None."""
        return self._backend.get_parallel_threads(SystemApi._check_cloud(cloud_str))

    def base36_encode(self, hex_str: str) -> str:
        """``int(hex_str, 16)`` re-encoded in lower-case base 36 (SkyPilot's result); ValueError
        for an invalid literal or a negative value (SkyPilot would loop forever)."""
        return self._backend.base36_encode(hex_str)

    def format_float(self, num: float | int, precision: int = 1) -> str:
        """SkyPilot's format_float: ``str()`` of an int, an integral float without decimals,
        else fixed-point with *precision* decimals, correctly rounded, never an exponent."""
        return self._backend.format_float(num, precision)

    def truncate_long_string(self, s: str, max_length: int = 35, truncate_middle: bool = False) -> str:
        """SkyPilot's truncate_long_string: *s* cut to about *max_length* code points with
        ``'...'`` (at a word boundary when that keeps enough, or in the middle)."""
        return self._backend.truncate_long_string(s, max_length, truncate_middle)

    async def estimate_fd_for_directory(self, path: StrOrBytesPath) -> int:
        """Descriptors one rsync of *path* is budgeted: 5 per top-level entry of a directory
        (symlinks followed, hidden entries counted), at least 5; 5 for anything that is not
        a directory. The listing runs off the event loop. Raises the listing's OSError
        (errno and filename set), TypeError/ValueError for a bad path."""
        encoded = encode_path(path)
        return SystemApi._path_result(await self._backend.estimate_fd_for_directory(encoded), path)

    async def get_max_workers_for_file_mounts(
        self, common_file_mounts: Mapping[str, StrOrBytesPath], cloud_str: str | None = None
    ) -> int:
        """Workers for syncing file mounts (SkyPilot's formula): the soft RLIMIT_NOFILE less
        100, floor-divided by the largest estimate_fd_for_directory() of the values of the
        mapping *common_file_mounts* (destination -> local source; cloud URLs count as
        non-directories), between 1 and get_parallel_threads(cloud_str). Logs SkyPilot's
        warning once when the limit is below 1024. Raises the OSError of the first source
        that cannot be listed; TypeError for a non-mapping or a source that is not a path."""
        sources, encoded, cloud = SystemApi._check_mounts(common_file_mounts, cloud_str)
        item = await self._backend.max_workers_for_file_mounts(encoded, cloud)
        return SystemApi._mounts_result(item, sources)

    async def find_free_port(self, start_port: int) -> int:
        """The first TCP port from *start_port* up to 65534 that binds on every IPv4
        interface without SO_REUSEADDR (released again before returning; 0 returns 0).
        Raises OSError(EADDRINUSE) when none is free, ValueError for a negative
        *start_port*, TypeError for a non-int."""
        start = SystemApi._check_start_port(start_port)
        return SystemApi._port_result(await self._backend.find_free_port(start), start_port)

    @staticmethod
    def _check_cloud(cloud_str: object) -> str | None:
        if cloud_str is not None and not isinstance(cloud_str, str):
            raise TypeError(f"cloud_str must be a str or None, not {type(cloud_str).__name__}")
        return cloud_str

    @staticmethod
    def _check_mounts(
        common_file_mounts: object, cloud_str: object
    ) -> tuple[list[Any], list[bytes], str | None]:
        if not isinstance(common_file_mounts, Mapping):
            kind = type(common_file_mounts).__name__
            raise TypeError(f"common_file_mounts must be a mapping of destination to source, not {kind}")
        cloud = SystemApi._check_cloud(cloud_str)
        sources = list(common_file_mounts.values())
        encoded = []
        for destination, source in zip(common_file_mounts, sources):
            try:
                encoded.append(encode_path(source))
            except (TypeError, ValueError) as exc:
                raise type(exc)(
                    f"file mount {destination!r}: the source {source!r} is not a path: {exc}"
                ) from exc
        _system_py.warn_if_low_fd_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        return sources, encoded, cloud

    @staticmethod
    def _check_start_port(start_port: object) -> int:
        port = require_int(start_port, "start_port")
        if port < 0:
            raise ValueError(f"start_port must be 0 or more, got {port}")
        return min(port, _system_py.PORT_LIMIT)

    @staticmethod
    def _path_result(item: Any, path: object) -> int:
        if isinstance(item, int):
            return item
        code, message = item
        raise make_os_error(code, message, path)

    @staticmethod
    def _mounts_result(item: Any, sources: list[Any]) -> int:
        if isinstance(item, int):
            logging.getLogger("sky_async.system").debug(f"Using {item} workers for file mounts.")
            return item
        code, message, index = item
        raise make_os_error(code, message, sources[index])

    @staticmethod
    def _port_result(item: Any, start_port: int) -> int:
        if isinstance(item, int):
            return item
        code, message = item
        if code == errno.EADDRINUSE:
            message = f"No free ports available from {start_port} to {_system_py.PORT_LIMIT - 1}"
        raise OSError(code, message or os.strerror(code))


class SyncSystemApi:
    """The blocking twins: the system helpers."""

    @property
    def _backend(self) -> SystemBackend:
        raise NotImplementedError  # the composed SyncApi holds the backend

    def estimate_fd_for_directory(self, path: StrOrBytesPath) -> int:
        encoded = encode_path(path)
        return SystemApi._path_result(self._backend.estimate_fd_for_directory_blocking(encoded), path)

    def get_max_workers_for_file_mounts(
        self, common_file_mounts: Mapping[str, StrOrBytesPath], cloud_str: str | None = None
    ) -> int:
        sources, encoded, cloud = SystemApi._check_mounts(common_file_mounts, cloud_str)
        item = self._backend.max_workers_for_file_mounts_blocking(encoded, cloud)
        return SystemApi._mounts_result(item, sources)

    def find_free_port(self, start_port: int) -> int:
        start = SystemApi._check_start_port(start_port)
        return SystemApi._port_result(self._backend.find_free_port_blocking(start), start_port)
