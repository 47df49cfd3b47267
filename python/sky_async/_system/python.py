"""SkyPilot's resource-sizing helpers, with SkyPilot's exact formulas and errors.

CPU and memory are cgroup-aware the way SkyPilot reads cgroups: only the files at the
cgroup namespace root (``/sys/fs/cgroup``), v2 when ``cgroup.controllers`` is there.
The root is a parameter of the private helpers so that tests can point them at
fixture trees.

This module is the pure-Python implementation behind the package's functions on the
Python backend (the native backend runs the same rules in C++, ``src/system/system_info.cpp``).
Two deliberate differences from SkyPilot, shared with the C++ side (``sky_async.compat``
keeps SkyPilot's behaviour, through the ``skypilot=True`` forms of the helpers):

- a cgroup CPU quota or period that is not a positive finite number means no limit, for
  v1 and v2 alike (SkyPilot raises ZeroDivisionError for a v2 period of 0 and turns a
  negative v2 period into a negative CPU count);
- ``SKYPILOT_POD_CPU_CORE_LIMIT`` beyond the C ``int`` range (or infinite) raises
  OverflowError (SkyPilot returns a huge int, or raises OverflowError for infinity).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import resource
import socket
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from .._batch import _get_executor
from .._skypilot_ux import print_exception_no_traceback
from . import strings as _strings

# Named as before the module became private: the name users configure logging with.
logger = logging.getLogger("sky_async.system")

CGROUP_ROOT = "/sys/fs/cgroup"
# Descriptors one rsync of a directory may use per top-level entry, and at least.
FDS_PER_ENTRY = 5
FD_RESERVE = 100
LOW_FD_LIMIT = 1024
PORT_LIMIT = 65535  # exclusive: SkyPilot never tries 65535
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

_low_fd_limit_warned = False


def _read_stripped(path: str) -> str:
    # SkyPilot's exact call, for a caller's mock of open that checks its arguments.
    with open(path, "r", encoding="utf-8") as file:  # noqa: UP015
        return file.read().strip()


_psutil_missing = False


def _psutil() -> ModuleType | None:
    """psutil, imported on first use as SkyPilot's lazy import does, or None without it.

    The module in ``sys.modules`` is read on every call, so a stand-in a caller puts there
    is the one used. A failed import is not retried (it would search sys.path each call).
    """
    global _psutil_missing
    module = sys.modules.get("psutil")
    if module is not None or _psutil_missing:
        return module
    try:
        import psutil
    except ImportError:
        _psutil_missing = True
        return None
    return psutil


def _logical_cpus() -> int | None:
    """``psutil.cpu_count()``, which SkyPilot's get_cpu_count starts from; without psutil,
    psutil's own Linux definition: online CPUs from sysconf, None below 1.

    Not ``os.cpu_count()``: SkyPilot's get_cpu_count never reads it, so a caller's patch of
    it must not move this count (get_parallel_threads does read it).
    """
    psutil = _psutil()
    if psutil is not None:
        cpus: int | None = psutil.cpu_count()  # a ModuleType (see _psutil): its attributes are untyped
        return cpus
    try:
        count = os.sysconf("SC_NPROCESSORS_ONLN")
    except ValueError:  # no such name on this platform
        return os.cpu_count()
    return count if count >= 1 else None


def _total_memory_bytes_skypilot() -> int:
    """``psutil.virtual_memory().total``, as SkyPilot reads it; without psutil, the same
    number from /proc/meminfo, where psutil reads it on Linux."""
    psutil = _psutil()
    if psutil is not None:
        total: int = psutil.virtual_memory().total  # a ModuleType (see _psutil): untyped
        return total
    return _total_memory_bytes()


def _is_cgroup_v2(root: str = CGROUP_ROOT) -> bool:
    return os.path.isfile(os.path.join(root, "cgroup.controllers"))


def _cgroup_cpu_limit(root: str = CGROUP_ROOT, skypilot: bool = False) -> float | None:
    """Cores allowed by the CPU quota, or None.

    With *skypilot*, SkyPilot's exact rule: a v2 period of 0 raises ZeroDivisionError and
    any other v2 period divides a positive quota. Otherwise sky_async's: quota and period
    must both be positive finite numbers, in v1 and v2 alike.
    """
    try:
        if _is_cgroup_v2(root):
            fields = _read_stripped(os.path.join(root, "cpu.max")).split()
            if len(fields) != 2 or fields[0] == "max":
                return None
            quota, period = float(fields[0]), float(fields[1])
            if not quota > 0:
                return None
            if skypilot:
                return quota / period
        else:
            quota = float(_read_stripped(os.path.join(root, "cpu", "cpu.cfs_quota_us")))
            period = float(_read_stripped(os.path.join(root, "cpu", "cpu.cfs_period_us")))
            if not (quota > 0 and period > 0):
                return None
            if skypilot:
                return quota / period
    except (OSError, ValueError):
        return None
    if not (math.isfinite(quota) and math.isfinite(period) and period > 0):
        return None
    limit = quota / period
    return limit if math.isfinite(limit) else None


def _cgroup_memory_limit(root: str = CGROUP_ROOT) -> int | None:
    """Bytes allowed by the memory limit, or None."""
    try:
        if _is_cgroup_v2(root):
            path = os.path.join(root, "memory.max")
        else:
            path = os.path.join(root, "memory", "memory.limit_in_bytes")
        text = _read_stripped(path)
        if text in ("max", ""):
            return None
        limit = int(text)
    except (OSError, ValueError):
        return None
    return limit if limit > 0 else None


def _total_memory_bytes() -> int:
    with open("/proc/meminfo", encoding="ascii") as file:
        for line in file:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise OSError("MemTotal missing from /proc/meminfo")


def _cpu_count(root: str = CGROUP_ROOT, skypilot: bool = False) -> int:
    """get_cpu_count's rule; with *skypilot*, SkyPilot's: its errors, and the host count
    from psutil (see _logical_cpus) in SkyPilot's order of operations, so that whatever a
    caller patched (psutil.cpu_count, os.sched_getaffinity, open) is read as SkyPilot
    reads it, and a count of None fails as it does there."""
    env = os.getenv("SKYPILOT_POD_CPU_CORE_LIMIT")
    if env is not None:
        try:
            value = float(env)
            if skypilot:
                return int(value)  # SkyPilot lets int()'s OverflowError for infinity through
            count = int(value)  # ValueError for NaN
        except ValueError as exc:
            with print_exception_no_traceback(skypilot):
                raise ValueError(f"Failed to parse the number of CPUs from {env}") from exc
        except OverflowError as exc:
            if skypilot:
                raise
            raise OverflowError(f"Failed to parse the number of CPUs from {env}: out of range") from exc
        if not _INT_MIN <= count <= _INT_MAX:
            raise OverflowError(f"Failed to parse the number of CPUs from {env}: out of range")
        return count
    cpus: Any = _logical_cpus() if skypilot else (os.cpu_count() or 1)  # None fails in min()
    if hasattr(os, "sched_getaffinity"):
        cpus = min(cpus, len(os.sched_getaffinity(0)))
    limit = _cgroup_cpu_limit(root, skypilot)
    if limit is not None:
        cpus = min(cpus, int(limit))
    return cpus  # type: ignore[no-any-return]  # an int: SkyPilot's None fails in min() above


def get_cpu_count(*, _root: str = CGROUP_ROOT) -> int:
    """CPUs this process may use: ``SKYPILOT_POD_CPU_CORE_LIMIT`` if set (Python float
    syntax, truncated, not clamped), else the logical CPU count narrowed by the affinity
    mask and the cgroup quota (truncated, so a 0.5-core quota gives 0, as in SkyPilot).

    Raises ValueError for an unparseable variable and OverflowError for one that is
    infinite or outside the C int range.
    """
    return _cpu_count(_root)


def get_mem_size_gb(*, _root: str = CGROUP_ROOT) -> float:
    """Memory in GiB (SkyPilot's "GB"): ``SKYPILOT_POD_MEMORY_GB_LIMIT``, else
    ``SKYPILOT_POD_MEMORY_BYTES_LIMIT``, else total RAM capped by the cgroup limit."""
    return _mem_size_gb(_root)


def _mem_size_gb(root: str = CGROUP_ROOT, skypilot: bool = False) -> float:
    """get_mem_size_gb's rule; with *skypilot*, total RAM is read as SkyPilot reads it
    (``psutil.virtual_memory().total``, see _total_memory_bytes_skypilot)."""
    env = os.getenv("SKYPILOT_POD_MEMORY_GB_LIMIT")
    if env is not None:
        try:
            return float(env)
        except ValueError as exc:
            with print_exception_no_traceback(skypilot):
                raise ValueError(f"Failed to parse the memory size from {env} (GB)") from exc
    env = os.getenv("SKYPILOT_POD_MEMORY_BYTES_LIMIT")
    if env is not None:
        try:
            return float(env) / 1024**3
        except ValueError as exc:
            with print_exception_no_traceback(skypilot):
                raise ValueError(f"Failed to parse the memory size from {env} (bytes)") from exc
    total = _total_memory_bytes_skypilot() if skypilot else _total_memory_bytes()
    limit = _cgroup_memory_limit(root)
    if limit is not None:
        total = min(total, limit)
    return total / 1024**3


def get_parallel_threads(cloud_str: str | None = None) -> int:
    """Threads for per-node work: ``max(4, cpus - 1)``, times 4 on Kubernetes.

    Uses the host's CPU count (``os.cpu_count()``, not cgroup-aware), as SkyPilot does.
    """
    cpus = os.cpu_count()
    if cpus is None:
        cpus = 1
    return max(4, cpus - 1) * (4 if cloud_str and cloud_str.lower() == "kubernetes" else 1)


def estimate_fd_for_directory(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> int:
    """Descriptors one rsync of *path* is budgeted: 5 per top-level entry of a directory
    (symlinks followed, hidden entries counted), and never less than 5. Anything
    that is not a directory gets the floor. Errors are those of ``os.listdir``."""
    if os.path.isdir(path):
        return max(FDS_PER_ENTRY, FDS_PER_ENTRY * len(os.listdir(path)))
    return FDS_PER_ENTRY


def warn_if_low_fd_limit(fd_limit: int) -> None:
    """SkyPilot's warning about a soft descriptor limit below 1024, once per process."""
    global _low_fd_limit_warned
    if fd_limit < LOW_FD_LIMIT and not _low_fd_limit_warned:
        logger.warning(
            f"Open file descriptor limit ({fd_limit}) is low. File sync to remote clusters may be slow. "
            "Consider increasing the limit using `ulimit -n <number>` or modifying system limits."
        )
        _low_fd_limit_warned = True


def _workers_for(fd_limit: int, fd_per_rsync: int, cloud_str: str | None) -> int:
    workers = (fd_limit - FD_RESERVE) // fd_per_rsync
    return min(max(workers, 1), get_parallel_threads(cloud_str))


def get_max_workers_for_file_mounts(
    common_file_mounts: Mapping[str, str], cloud_str: str | None = None
) -> int:
    """Workers for syncing file mounts: what the soft RLIMIT_NOFILE leaves after a reserve
    of 100, divided by the largest per-source estimate, between 1 and get_parallel_threads."""
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    warn_if_low_fd_limit(fd_limit)
    fd_per_rsync = FDS_PER_ENTRY
    for source in common_file_mounts.values():
        fd_per_rsync = max(fd_per_rsync, estimate_fd_for_directory(source))
    workers = _workers_for(fd_limit, fd_per_rsync, cloud_str)
    logger.debug(f"Using {workers} workers for file mounts.")
    return workers


def find_free_port(start_port: int) -> int:
    """SkyPilot's probe: the first port from *start_port* up to 65534 that binds on all IPv4
    interfaces (without SO_REUSEADDR). The port is released before returning.

    Raises ``OSError("No free ports available.")`` (no errno) when none does, the socket's
    own OSError (EMFILE, say) at once when one cannot be created, and OverflowError for a
    negative *start_port*, as SkyPilot does.
    """
    for port in range(start_port, PORT_LIMIT):
        # Only bind's OSError moves on to the next port: SkyPilot creates the socket
        # outside its try.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("", port))
                return port
            except OSError:
                continue
    raise OSError("No free ports available.")


# Items for the package's Python backend (sky_async._python_backend): a value, or
# (errno, message or None) for a failure, like the native backend's.


def _estimate_item(path: bytes) -> int | tuple[int, str | None]:
    try:
        return estimate_fd_for_directory(path)
    except OSError as exc:
        return (exc.errno or errno.EIO, None)


def _max_workers_item(sources: list[bytes], cloud_str: str | None) -> int | tuple[int, str | None, int]:
    """Workers, or (errno, message or None, index of the source that failed)."""
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    fd_per_rsync = FDS_PER_ENTRY
    for index, source in enumerate(sources):
        try:
            fd_per_rsync = max(fd_per_rsync, estimate_fd_for_directory(source))
        except OSError as exc:
            return (exc.errno or errno.EIO, None, index)
    return _workers_for(fd_limit, fd_per_rsync, cloud_str)


def _free_port_item(start_port: int) -> int | tuple[int, str | None]:
    """SkyPilot's probe; a socket that cannot be created is reported at once (as SkyPilot
    raises it), and running out is EADDRINUSE."""
    for port in range(start_port, PORT_LIMIT):
        try:
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            return (exc.errno or errno.EIO, None)
        with probe:
            try:
                probe.bind(("", port))
            except OSError:
                continue
            return port
    return (errno.EADDRINUSE, None)


class PythonSystem:
    """The system helpers on the pure-Python backend."""

    @staticmethod
    async def _in_pool(function: Callable[..., Any], *args: Any) -> Any:
        # A short blocking call (a listing, port probes) on the shared pool; cancelling the
        # awaiting task abandons the result, the call itself runs to its (bounded) end.
        return await asyncio.get_running_loop().run_in_executor(_get_executor(), function, *args)

    def get_cpu_count(self) -> int:
        return get_cpu_count()

    def get_mem_size_gb(self) -> float:
        return get_mem_size_gb()

    def get_parallel_threads(self, cloud: str | None) -> int:
        return get_parallel_threads(cloud)

    base36_encode = staticmethod(_strings.base36_encode)
    format_float = staticmethod(_strings.format_float)
    truncate_long_string = staticmethod(_strings.truncate_long_string)

    async def estimate_fd_for_directory(self, path: bytes) -> Any:
        return await PythonSystem._in_pool(_estimate_item, path)

    def estimate_fd_for_directory_blocking(self, path: bytes) -> Any:
        return _estimate_item(path)

    async def max_workers_for_file_mounts(self, sources: list[bytes], cloud: str | None) -> Any:
        return await PythonSystem._in_pool(_max_workers_item, sources, cloud)

    def max_workers_for_file_mounts_blocking(self, sources: list[bytes], cloud: str | None) -> Any:
        return _max_workers_item(sources, cloud)

    async def find_free_port(self, start_port: int) -> Any:
        return await PythonSystem._in_pool(_free_port_item, start_port)

    def find_free_port_blocking(self, start_port: int) -> Any:
        return _free_port_item(start_port)
