"""``sky-async sysinfo``: what SkyPilot's sizing helpers see here, and what serves the calls.

The numbers are those of ``sky_async.system`` (SkyPilot's formulas); next to each, the
raw inputs it was derived from (host count, affinity mask, cgroup files, environment
overrides), read here only for display.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from typing import Any

from .. import __version__, get_backend_info, get_cpu_count, get_mem_size_gb, get_parallel_threads

CGROUP_ROOT = "/sys/fs/cgroup"
CPU_ENV = "SKYPILOT_POD_CPU_CORE_LIMIT"
MEMORY_ENVS = ("SKYPILOT_POD_MEMORY_GB_LIMIT", "SKYPILOT_POD_MEMORY_BYTES_LIMIT")
GiB = 1024**3


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cgroup_version() -> str | None:
    if os.path.isfile(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return "v2"
    if os.path.isdir(os.path.join(CGROUP_ROOT, "cpu")) or os.path.isdir(os.path.join(CGROUP_ROOT, "memory")):
        return "v1"
    return None


def _cgroup_files(version: str | None) -> dict[str, str | None]:
    """The raw cgroup limit files SkyPilot reads (at the namespace root)."""
    if version == "v2":
        names = {"cpu.max": "cpu.max", "memory.max": "memory.max"}
    elif version == "v1":
        names = {
            "cpu.cfs_quota_us": "cpu/cpu.cfs_quota_us",
            "cpu.cfs_period_us": "cpu/cpu.cfs_period_us",
            "memory.limit_in_bytes": "memory/memory.limit_in_bytes",
        }
    else:
        names = {}
    return {label: _read(os.path.join(CGROUP_ROOT, relative)) for label, relative in names.items()}


def _host_memory_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def collect() -> dict[str, Any]:
    """Everything ``sysinfo`` shows, as plain data (the ``--json`` output)."""
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    version = _cgroup_version()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    host_memory = _host_memory_bytes()
    return {
        "version": __version__,
        "cpu": {
            "count": get_cpu_count(),
            "host": os.cpu_count(),
            "affinity": affinity,
            "env_override": os.environ.get(CPU_ENV),
        },
        "memory": {
            "gib": get_mem_size_gb(),
            "host_gib": host_memory / GiB if host_memory is not None else None,
            "env_override": {name: os.environ[name] for name in MEMORY_ENVS if name in os.environ},
        },
        "cgroup": {"version": version, "files": _cgroup_files(version)},
        "rlimit_nofile": {
            "soft": None if soft == resource.RLIM_INFINITY else soft,
            "hard": None if hard == resource.RLIM_INFINITY else hard,
        },
        "parallel_threads": {
            "default": get_parallel_threads(),
            "kubernetes": get_parallel_threads("kubernetes"),
        },
        "backend": get_backend_info(),
    }


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def render(info: dict[str, Any]) -> str:
    cpu, memory, cgroup = info["cpu"], info["memory"], info["cgroup"]
    backend = info["backend"]
    lines = [f"sky-async {info['version']}", ""]
    lines.append(f"CPUs:              {cpu['count']}  (get_cpu_count)")
    lines.append(f"  host:            {cpu['host']}  (os.cpu_count)")
    lines.append(f"  affinity:        {cpu['affinity']}  (sched_getaffinity)")
    if cpu["env_override"] is not None:
        lines.append(f"  {CPU_ENV}: {cpu['env_override']}  (overrides the rest)")
    host_gib = "unknown" if memory["host_gib"] is None else f"{memory['host_gib']:.2f} GiB"
    lines.append(f"Memory:            {memory['gib']:.2f} GiB  (get_mem_size_gb)")
    lines.append(f"  host:            {host_gib}  (/proc/meminfo)")
    for name, value in memory["env_override"].items():
        lines.append(f"  {name}: {value}  (overrides the rest)")
    lines.append(f"cgroup:            {cgroup['version'] or 'none'}  ({CGROUP_ROOT})")
    for name, value in cgroup["files"].items():
        lines.append(f"  {name}: {'absent' if value is None else value}")
    nofile = info["rlimit_nofile"]
    lines.append(f"RLIMIT_NOFILE:     soft {_limit(nofile['soft'])}, hard {_limit(nofile['hard'])}")
    threads = info["parallel_threads"]
    lines.append(
        f"Parallel threads:  {threads['default']}"
        f"  (get_parallel_threads; kubernetes: {threads['kubernetes']})"
    )
    io = backend.get("io_backend") or "-"
    reason = backend.get("io_backend_reason")
    lines.append("")
    lines.append(f"Backend:           {backend.get('backend')}")
    lines.append(f"  I/O backend:     {io}" + (f"  ({reason})" if reason else ""))
    lines.append(f"  threads:         {backend.get('threads')}")
    versions = ", ".join(
        f"{name} {backend[name]}" for name in ("boost", "openssl", "liburing", "python") if backend.get(name)
    )
    lines.append(f"  versions:        {versions}")
    return "\n".join(lines) + "\n"


def _sysinfo_command(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        json.dump(info, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(info))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "sysinfo",
        help="CPUs, memory, cgroup, fd limit and backend as SkyPilot's helpers see them",
        description="Show what SkyPilot's sizing helpers compute here and what serves sky_async's calls.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_sysinfo_command)
