"""sky-async: system utilities for cloud orchestration, as asyncio coroutines.

    digests = await sky_async.hash_files(paths)

The work runs on a native io_uring (or thread-pool) runtime. Set
``SKY_ASYNC_BACKEND=python`` to use the pure-Python implementation of the same
API; it is also used, with a warning, when the native module cannot be loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# First: _default chooses the backend, and its warnings point at the frame that imports
# this package (its stacklevel counts this import).
from ._default import default_api as _default_api
from ._public import package_all, package_names

# Every public name, and __all__, come from the table in _public.py.
globals().update(package_names())
__all__ = package_all()

if TYPE_CHECKING:
    # The same bindings written out, for type checkers and IDEs, which cannot see through
    # globals().update(); test_public_names checks that they name exactly the table's rows.
    from ._hash.api import SUPPORTED_ALGORITHMS as SUPPORTED_ALGORITHMS
    from ._tail.follow import Follow as Follow
    from ._tail.follow import follow as follow
    from ._tail.stream_log import stream_log as stream_log
    from ._upload.pack import PackResult as PackResult
    from ._version import __version__ as __version__
    from .mounts import FileMountsError as FileMountsError
    from .scan import ScanProblem as ScanProblem
    from .scan import TreeScan as TreeScan

    get_backend_info = _default_api.get_backend_info
    hash_file = _default_api.hash_file
    hash_files = _default_api.hash_files
    read_last_n_lines = _default_api.read_last_n_lines
    tail_files = _default_api.tail_files
    is_process_alive = _default_api.is_process_alive
    probe_processes = _default_api.probe_processes
    process_start_time = _default_api.process_start_time
    wait_for_exit = _default_api.wait_for_exit
    scan_tree = _default_api.scan_tree
    estimate_fd_for_directory = _default_api.estimate_fd_for_directory
    find_free_port = _default_api.find_free_port
    get_cpu_count = _default_api.get_cpu_count
    get_max_workers_for_file_mounts = _default_api.get_max_workers_for_file_mounts
    get_mem_size_gb = _default_api.get_mem_size_gb
    get_parallel_threads = _default_api.get_parallel_threads
    base36_encode = _default_api.base36_encode
    format_float = _default_api.format_float
    truncate_long_string = _default_api.truncate_long_string
    file_mounts_digest = _default_api.file_mounts_digest
    pack_mounts = _default_api.pack_mounts

# Every module a call may need is imported now rather than on first use: a process may drop
# privileges, chroot or lose its install tree after importing sky_async (a daemon switching to
# an unprivileged user, say), and a lazy import would then fail in the middle of a call.
# _api (imported above, through _default) brings every feature's api.py; _python_backend every
# feature's pure-Python module, which the native backend also uses for what it does not run.
from . import _batch, _python_backend, mounts, scan, sync  # noqa: E402, F401

if _default_api.backend_name == "native":
    from ._system import native_exact as _native_exact  # noqa: F401
