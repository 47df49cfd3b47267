"""Blocking twins of the ``sky_async`` coroutines, for code without an event loop.

Same names, signatures, results and errors; the call blocks the calling thread
(not the GIL) until the work is done. Ctrl-C cancels the work and raises
KeyboardInterrupt once every file is closed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _public

globals().update(_public.sync_names())
__all__ = _public.sync_all()

if TYPE_CHECKING:
    # The same bindings written out, for type checkers and IDEs, which cannot see through
    # globals().update(); test_public_names checks that they name exactly the table's rows.
    from ._default import default_api as _default_api
    from ._tail.follow import follow_blocking as _follow_blocking
    from ._tail.stream_log import stream_log_blocking as _stream_log_blocking

    follow = _follow_blocking  # an assignment: mypy --strict exports no `import x as y`
    stream_log = _stream_log_blocking

    hash_file = _default_api.sync.hash_file
    hash_files = _default_api.sync.hash_files
    read_last_n_lines = _default_api.sync.read_last_n_lines
    tail_files = _default_api.sync.tail_files
    is_process_alive = _default_api.sync.is_process_alive
    probe_processes = _default_api.sync.probe_processes
    process_start_time = _default_api.sync.process_start_time
    wait_for_exit = _default_api.sync.wait_for_exit
    scan_tree = _default_api.sync.scan_tree
    estimate_fd_for_directory = _default_api.sync.estimate_fd_for_directory
    find_free_port = _default_api.sync.find_free_port
    get_cpu_count = _default_api.get_cpu_count
    get_max_workers_for_file_mounts = _default_api.sync.get_max_workers_for_file_mounts
    get_mem_size_gb = _default_api.get_mem_size_gb
    get_parallel_threads = _default_api.get_parallel_threads
    file_mounts_digest = _default_api.sync.file_mounts_digest
    pack_mounts = _default_api.sync.pack_mounts
