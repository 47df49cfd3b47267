"""A drop-in for SkyPilot's utilities: the twelve functions with SkyPilot's exact
synchronous signatures, defaults, results and errors.

    from sky_async import compat as common_utils

Everything here currently runs as plain Python. The native batch and async forms live in
the ``sky_async`` package itself, and a measured choice of which compat calls should go
native is still to come.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
from typing import Any

from . import system
from .strings import base36_encode, format_float, truncate_long_string
from .system import estimate_fd_for_directory, get_max_workers_for_file_mounts, get_parallel_threads

__all__ = [
    "base36_encode",
    "estimate_fd_for_directory",
    "find_free_port",
    "format_float",
    "get_cpu_count",
    "get_max_workers_for_file_mounts",
    "get_mem_size_gb",
    "get_parallel_threads",
    "hash_file",
    "is_process_alive",
    "read_last_n_lines",
    "truncate_long_string",
]

_HASH_BUFFER_SIZE = 2**18
_PORT_LIMIT = 65535  # exclusive: SkyPilot never tries 65535


def read_last_n_lines(
    file_path: str, n: int, chunk_size: int = 8192, encoding: str = "utf-8", errors: str = "replace"
) -> list[str]:
    """The last *n* lines of a file, read backwards in *chunk_size* blocks.

    Every line but the last keeps a ``'\\n'``; trailing CRs are stripped; only LF
    splits lines; a final LF does not start an empty line.
    """
    assert n >= 0, f"n must be non-negative. Got {n}"
    assert chunk_size > 0, f"chunk_size must be positive. Got {chunk_size}"
    assert os.path.exists(file_path), f"File not found: {file_path}"
    if n == 0:
        return []
    try:
        with open(file_path, "rb") as file:
            cursor = file.seek(0, os.SEEK_END)
            chunks: list[bytes] = []
            newlines = 0
            while cursor > 0 and newlines <= n:
                size = min(chunk_size, cursor)
                cursor -= size
                file.seek(cursor)
                chunk = file.read(size)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except OSError as exc:
        raise RuntimeError(f"Failed to read last {n} lines from {file_path}: {exc}") from exc
    pieces = b"".join(reversed(chunks)).split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    lines = [piece.decode(encoding, errors).rstrip("\r") for piece in pieces[-n:]]
    return [line + "\n" for line in lines[:-1]] + lines[-1:]


def hash_file(path: str, hash_alg: str) -> Any:
    """The live hashlib object of the file's content (call ``.hexdigest()`` on it).

    The file is opened before the algorithm is looked up, so a missing file reports
    FileNotFoundError even with an unknown algorithm, as in SkyPilot.
    """
    with open(path, "rb") as file:
        digest = hashlib.new(hash_alg)
        buffer = bytearray(_HASH_BUFFER_SIZE)
        view = memoryview(buffer)
        while size := file.readinto(buffer):
            digest.update(view[:size])
    return digest


def find_free_port(start_port: int) -> int:
    """The first port from *start_port* up to 65534 that binds on all IPv4 interfaces
    (without SO_REUSEADDR). The port is released before returning."""
    for port in range(start_port, _PORT_LIMIT):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("", port))
                return port
        except OSError:
            continue
    raise OSError("No free ports available.")


def _pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max", encoding="ascii") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 4194304  # the kernel's upper bound for pid_max


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as file:
            stat = file.read()
    except OSError:
        return False
    # The command name may itself contain ')' and spaces; the state follows the last ')'.
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] in ("Z", "X")


def is_process_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie.

    pid <= 0 and pids above pid_max are never probed (``kill(0, 0)`` and negative pids
    would address process groups); EPERM means alive (someone else's process).
    """
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise TypeError(f"pid must be an int, not {type(pid).__name__}")
    if pid <= 0 or pid > _pid_max():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        raise
    return not _is_zombie(pid)


def get_cpu_count() -> int:
    """CPUs this process may use, cgroup-aware, as SkyPilot computes it."""
    return system.get_cpu_count()


def get_mem_size_gb() -> float:
    """Memory in GiB, cgroup-aware, as SkyPilot computes it."""
    return system.get_mem_size_gb()
