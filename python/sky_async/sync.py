"""Blocking twins of the ``sky_async`` coroutines, for code without an event loop.

Same names, signatures, results and errors; the call blocks the calling thread
(not the GIL) until the work is done. Ctrl-C cancels the work and raises
KeyboardInterrupt once every file is closed.
"""

from __future__ import annotations

from . import _default_api

hash_file = _default_api.sync.hash_file
hash_files = _default_api.sync.hash_files

__all__ = ["hash_file", "hash_files"]

# Each feature adds its names below: __all__ += [...]

# --- tail: read_last_n_lines, tail_files, follow ---

from ._follow import follow_blocking as follow  # noqa: E402

read_last_n_lines = _default_api.sync.read_last_n_lines
tail_files = _default_api.sync.tail_files
__all__ += ["follow", "read_last_n_lines", "tail_files"]

# --- process: is_process_alive, probe_processes, wait_for_exit ---

is_process_alive = _default_api.sync.is_process_alive
probe_processes = _default_api.sync.probe_processes
wait_for_exit = _default_api.sync.wait_for_exit
process_start_time = _default_api.sync.process_start_time
__all__ += ["is_process_alive", "probe_processes", "process_start_time", "wait_for_exit"]

# --- scan: scan_tree ---
scan_tree = _default_api.sync.scan_tree
__all__ += ["scan_tree"]

# --- system: cpu, memory, threads, fd estimates, ports ---

estimate_fd_for_directory = _default_api.sync.estimate_fd_for_directory
get_max_workers_for_file_mounts = _default_api.sync.get_max_workers_for_file_mounts
find_free_port = _default_api.sync.find_free_port
# Synchronous everywhere; here too so that this module has every function.
get_cpu_count = _default_api.get_cpu_count
get_mem_size_gb = _default_api.get_mem_size_gb
get_parallel_threads = _default_api.get_parallel_threads
__all__ += [
    "estimate_fd_for_directory",
    "find_free_port",
    "get_cpu_count",
    "get_max_workers_for_file_mounts",
    "get_mem_size_gb",
    "get_parallel_threads",
]

# --- mounts: file_mounts_digest ---
file_mounts_digest = _default_api.sync.file_mounts_digest
__all__ += ["file_mounts_digest"]
