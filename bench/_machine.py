"""What every benchmark records about the machine and the tree it measured.

The benchmarks run as scripts (``python3 bench/x_bench.py``), so this module is imported by
its bare name from the benchmark's own folder. Each benchmark keeps its own result format
and adds what only it needs (SHA-NI for hashing, psutil's version for processes); the facts
read here are read one way.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _cpuinfo(field: str) -> str | None:
    """The first value of ``field`` in /proc/cpuinfo, or None where there is none."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_model() -> str | None:
    """The CPU's ``model name``, or None where /proc/cpuinfo has none."""
    return _cpuinfo("model name")


def cpu_flags() -> list[str]:
    """The CPU's ``flags`` (``sha_ni`` says SHA-256 runs in hardware)."""
    return (_cpuinfo("flags") or "").split()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str | None:
    """The commit measured, or None outside a git checkout."""
    return _git("rev-parse", "HEAD") or None


def git_dirty(*paths: str) -> bool | None:
    """Whether the tree (or only ``paths`` in it) has uncommitted changes; None outside git."""
    status = _git("status", "--porcelain", "--", *paths) if paths else _git("status", "--porcelain")
    return None if status is None else bool(status)


def git_description(*paths: str) -> str | None:
    """The commit, followed by " (uncommitted changes)" when ``git_dirty(*paths)``."""
    commit = git_commit()
    if commit is None:
        return None
    return commit + (" (uncommitted changes)" if git_dirty(*paths) else "")


def machine(*dirty_paths: str) -> dict[str, Any]:
    """The facts the scan and scaling benchmarks record, under the keys their results use."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git": git_description(*dirty_paths),
        "loadavg_start": os.getloadavg()[0],
    }


def fmt_seconds(seconds: float) -> str:
    """Milliseconds with one decimal below ten seconds, seconds with two above."""
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"
