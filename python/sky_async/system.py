"""SkyPilot's resource-sizing helpers, with SkyPilot's exact formulas and errors.

CPU and memory are cgroup-aware the way SkyPilot reads cgroups: only the files at the
cgroup namespace root (``/sys/fs/cgroup``), v2 when ``cgroup.controllers`` is there.
The root is a parameter of the private helpers so that tests can point them at
fixture trees.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Mapping

logger = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
# Descriptors one rsync of a directory may use per top-level entry, and at least.
FDS_PER_ENTRY = 5
FD_RESERVE = 100
LOW_FD_LIMIT = 1024

_low_fd_limit_warned = False


def _read_stripped(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read().strip()


def _is_cgroup_v2(root: str = CGROUP_ROOT) -> bool:
    return os.path.isfile(os.path.join(root, "cgroup.controllers"))


def _cgroup_cpu_limit(root: str = CGROUP_ROOT) -> float | None:
    """Cores allowed by the CPU quota, or None. A v2 period of 0 raises ZeroDivisionError, as in SkyPilot."""
    try:
        if _is_cgroup_v2(root):
            fields = _read_stripped(os.path.join(root, "cpu.max")).split()
            if len(fields) != 2 or fields[0] == "max":
                return None
            quota, period = float(fields[0]), float(fields[1])
            return quota / period if quota > 0 else None
        quota = float(_read_stripped(os.path.join(root, "cpu", "cpu.cfs_quota_us")))
        period = float(_read_stripped(os.path.join(root, "cpu", "cpu.cfs_period_us")))
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _cgroup_memory_limit(root: str = CGROUP_ROOT) -> int | None:
    """Bytes allowed by the memory limit, or None."""
    if _is_cgroup_v2(root):
        path = os.path.join(root, "memory.max")
    else:
        path = os.path.join(root, "memory", "memory.limit_in_bytes")
    try:
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


def get_cpu_count(*, _root: str = CGROUP_ROOT) -> int:
    """CPUs this process may use: ``SKYPILOT_POD_CPU_CORE_LIMIT`` if set, else the logical
    CPU count narrowed by the affinity mask and the cgroup quota (truncated, so a
    0.5-core quota gives 0, as in SkyPilot)."""
    env = os.environ.get("SKYPILOT_POD_CPU_CORE_LIMIT")
    if env is not None:
        try:
            return int(float(env))
        except ValueError as exc:
            raise ValueError(f"Failed to parse the number of CPUs from {env}") from exc
    cpus = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        cpus = min(cpus, len(os.sched_getaffinity(0)))
    limit = _cgroup_cpu_limit(_root)
    if limit is not None:
        cpus = min(cpus, int(limit))
    return cpus


def get_mem_size_gb(*, _root: str = CGROUP_ROOT) -> float:
    """Memory in GiB (SkyPilot's "GB"): ``SKYPILOT_POD_MEMORY_GB_LIMIT``, else
    ``SKYPILOT_POD_MEMORY_BYTES_LIMIT``, else total RAM capped by the cgroup limit."""
    env = os.environ.get("SKYPILOT_POD_MEMORY_GB_LIMIT")
    if env is not None:
        try:
            return float(env)
        except ValueError as exc:
            raise ValueError(f"Failed to parse the memory size from {env} (GB)") from exc
    env = os.environ.get("SKYPILOT_POD_MEMORY_BYTES_LIMIT")
    if env is not None:
        try:
            return float(env) / 1024**3
        except ValueError as exc:
            raise ValueError(f"Failed to parse the memory size from {env} (bytes)") from exc
    total = _total_memory_bytes()
    limit = _cgroup_memory_limit(_root)
    if limit is not None:
        total = min(total, limit)
    return total / 1024**3


def get_parallel_threads(cloud_str: str | None = None) -> int:
    """Threads for per-node work: ``max(4, cpus - 1)``, times 4 on Kubernetes.

    Uses the host's CPU count (not cgroup-aware), as SkyPilot does.
    """
    cpus = os.cpu_count() or 1
    multiplier = 4 if cloud_str and cloud_str.lower() == "kubernetes" else 1
    return max(4, cpus - 1) * multiplier


def estimate_fd_for_directory(path: str | os.PathLike[str]) -> int:
    """Descriptors one rsync of *path* is budgeted: 5 per top-level entry of a directory
    (symlinks followed, hidden entries counted), and never less than 5. Anything
    that is not a directory gets the floor. Errors are those of ``os.listdir``."""
    if os.path.isdir(path):
        return max(FDS_PER_ENTRY, FDS_PER_ENTRY * len(os.listdir(path)))
    return FDS_PER_ENTRY


def get_max_workers_for_file_mounts(
    common_file_mounts: Mapping[str, str], cloud_str: str | None = None
) -> int:
    """Workers for syncing file mounts: what the soft RLIMIT_NOFILE leaves after a reserve
    of 100, divided by the largest per-source estimate, between 1 and get_parallel_threads."""
    global _low_fd_limit_warned
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if fd_limit < LOW_FD_LIMIT and not _low_fd_limit_warned:
        logger.warning(
            f"Open file descriptor limit ({fd_limit}) is low. File sync to remote clusters may be slow. "
            "Consider increasing the limit using `ulimit -n <number>` or modifying system limits."
        )
        _low_fd_limit_warned = True
    fd_per_rsync = FDS_PER_ENTRY
    for source in common_file_mounts.values():
        fd_per_rsync = max(fd_per_rsync, estimate_fd_for_directory(source))
    workers = (fd_limit - FD_RESERVE) // fd_per_rsync
    workers = min(max(workers, 1), get_parallel_threads(cloud_str))
    logger.debug(f"Using {workers} workers for file mounts.")
    return workers
