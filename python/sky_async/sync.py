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

# --- process: is_process_alive, probe_processes, wait_for_exit ---

# --- scan: scan_tree ---
scan_tree = _default_api.sync.scan_tree
__all__ += ["scan_tree"]

# --- system: cpu, memory, threads, fd estimates, ports ---

# --- mounts: file_mounts_digest ---
