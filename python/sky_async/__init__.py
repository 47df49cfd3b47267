"""sky-async: system utilities for cloud orchestration, as asyncio coroutines.

    digests = await sky_async.hash_files(paths)

The work runs on a native io_uring (or thread-pool) runtime. Set
``SKY_ASYNC_BACKEND=python`` to use the pure-Python implementation of the same
API; it is also used, with a warning, when the native module cannot be loaded.
"""

from __future__ import annotations

import os as _os
import warnings as _warnings

from ._api import SUPPORTED_ALGORITHMS, Api
from ._version import __version__


def _load_api() -> Api:
    choice = _os.environ.get("SKY_ASYNC_BACKEND", "auto").strip().lower() or "auto"
    if choice not in ("auto", "native", "python"):
        _warnings.warn(
            f"SKY_ASYNC_BACKEND={choice!r} is not one of auto, native, python; using auto",
            RuntimeWarning,
            stacklevel=3,
        )
        choice = "auto"
    if choice != "python":
        try:
            from ._native_backend import NativeBackend
        except ImportError as exc:
            if choice == "native":
                raise
            _warnings.warn(
                f"sky_async: the native module could not be loaded ({exc}); using the pure-Python backend",
                RuntimeWarning,
                stacklevel=3,
            )
        else:
            return Api(NativeBackend())
    from ._fallback import PythonBackend

    return Api(PythonBackend())


_default_api = _load_api()

hash_file = _default_api.hash_file
hash_files = _default_api.hash_files
get_backend_info = _default_api.get_backend_info

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "__version__",
    "base36_encode",
    "format_float",
    "get_backend_info",
    "hash_file",
    "hash_files",
    "sync",
    "truncate_long_string",
]

# Each feature adds its names below: __all__ += [...]

# --- tail: read_last_n_lines, tail_files, follow ---

from ._follow import follow  # noqa: E402

read_last_n_lines = _default_api.read_last_n_lines
tail_files = _default_api.tail_files
__all__ += ["follow", "read_last_n_lines", "tail_files"]

# --- process: is_process_alive, probe_processes, wait_for_exit ---

is_process_alive = _default_api.is_process_alive
probe_processes = _default_api.probe_processes
wait_for_exit = _default_api.wait_for_exit
process_start_time = _default_api.process_start_time
__all__ += ["is_process_alive", "probe_processes", "process_start_time", "wait_for_exit"]

# --- scan: scan_tree ---
from .scan import ScanProblem, TreeScan  # noqa: E402

scan_tree = _default_api.scan_tree
__all__ += ["ScanProblem", "TreeScan", "scan", "scan_tree"]

# --- system: cpu, memory, threads, fd estimates, ports ---

get_cpu_count = _default_api.get_cpu_count
get_mem_size_gb = _default_api.get_mem_size_gb
get_parallel_threads = _default_api.get_parallel_threads
estimate_fd_for_directory = _default_api.estimate_fd_for_directory
get_max_workers_for_file_mounts = _default_api.get_max_workers_for_file_mounts
find_free_port = _default_api.find_free_port
# Served by the backend (native where measured faster), with the same results.
base36_encode = _default_api.base36_encode
format_float = _default_api.format_float
truncate_long_string = _default_api.truncate_long_string
__all__ += [
    "estimate_fd_for_directory",
    "find_free_port",
    "get_cpu_count",
    "get_max_workers_for_file_mounts",
    "get_mem_size_gb",
    "get_parallel_threads",
]

# --- mounts: file_mounts_digest ---
from .mounts import FileMountsError  # noqa: E402

file_mounts_digest = _default_api.file_mounts_digest
__all__ += ["FileMountsError", "file_mounts_digest"]

from . import sync  # noqa: E402  (needs _default_api)
