"""The public names of ``sky_async`` and ``sky_async.sync``, in one table.

Both modules, and their ``__all__``, are built from ``PUBLIC``: a new public function is
one row here (and its method on ``Api``/``SyncApi``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import _version, mounts, scan
from ._default import default_api
from ._hash import api as _hash_api
from ._tail import follow as _follow
from ._tail import stream_log as _stream_log
from ._upload import pack as _pack

# The kinds of public name.
COROUTINE = "coroutine"  # a coroutine method of Api; its blocking twin is the SyncApi method
FUNCTION = "function"  # a synchronous method of Api (of SyncApi too, where it has one)
ASYNC_ITERATOR = "async iterator"  # follow, stream_log: an async iterator, with a blocking generator twin
VALUE = "value"  # a class or constant, the same object everywhere
MODULE = "module"  # a public submodule, imported by sky_async/__init__.py


class PublicName(NamedTuple):
    name: str
    kind: str
    in_sync: bool  # also in sky_async.sync, with its blocking twin where it has one


PUBLIC: tuple[PublicName, ...] = (
    PublicName("__version__", VALUE, False),
    PublicName("get_backend_info", FUNCTION, False),
    PublicName("sync", MODULE, False),
    # --- hash: hash_file, hash_files ---
    PublicName("SUPPORTED_ALGORITHMS", VALUE, False),
    PublicName("hash_file", COROUTINE, True),
    PublicName("hash_files", COROUTINE, True),
    # --- tail: read_last_n_lines, tail_files, follow, stream_log ---
    PublicName("Follow", VALUE, False),
    PublicName("follow", ASYNC_ITERATOR, True),
    PublicName("read_last_n_lines", COROUTINE, True),
    PublicName("stream_log", ASYNC_ITERATOR, True),
    PublicName("tail_files", COROUTINE, True),
    # --- process: is_process_alive, probe_processes, wait_for_exit ---
    PublicName("is_process_alive", COROUTINE, True),
    PublicName("probe_processes", COROUTINE, True),
    PublicName("process_start_time", FUNCTION, True),
    PublicName("wait_for_exit", COROUTINE, True),
    # --- scan: scan_tree ---
    PublicName("ScanProblem", VALUE, False),
    PublicName("TreeScan", VALUE, False),
    PublicName("scan", MODULE, False),
    PublicName("scan_tree", COROUTINE, True),
    # --- system: cpu, memory, threads, fd estimates, ports ---
    PublicName("estimate_fd_for_directory", COROUTINE, True),
    PublicName("find_free_port", COROUTINE, True),
    PublicName("get_cpu_count", FUNCTION, True),
    PublicName("get_max_workers_for_file_mounts", COROUTINE, True),
    PublicName("get_mem_size_gb", FUNCTION, True),
    PublicName("get_parallel_threads", FUNCTION, True),
    # --- strings: served by the backend (native where measured faster) ---
    PublicName("base36_encode", FUNCTION, False),
    PublicName("format_float", FUNCTION, False),
    PublicName("truncate_long_string", FUNCTION, False),
    # --- mounts: file_mounts_digest ---
    PublicName("FileMountsError", VALUE, False),
    PublicName("file_mounts_digest", COROUTINE, True),
    # --- pack: pack_mounts ---
    PublicName("PackResult", VALUE, False),
    PublicName("pack_mounts", COROUTINE, True),
)

# The objects of the rows that are not methods of Api.
_VALUES: dict[str, Any] = {
    "__version__": _version.__version__,
    "SUPPORTED_ALGORITHMS": _hash_api.SUPPORTED_ALGORITHMS,
    "Follow": _follow.Follow,
    "follow": _follow.follow,
    "stream_log": _stream_log.stream_log,
    "ScanProblem": scan.ScanProblem,
    "TreeScan": scan.TreeScan,
    "FileMountsError": mounts.FileMountsError,
    "PackResult": _pack.PackResult,
}
_BLOCKING_VALUES: dict[str, Any] = {
    "follow": _follow.follow_blocking,
    "stream_log": _stream_log.stream_log_blocking,
}


def package_names() -> dict[str, Any]:
    """What ``sky_async`` binds, by name (its public submodules it imports itself)."""
    return {
        row.name: _VALUES[row.name] if row.name in _VALUES else getattr(default_api, row.name)
        for row in PUBLIC
        if row.kind != MODULE
    }


def sync_names() -> dict[str, Any]:
    """What ``sky_async.sync`` binds: the blocking twin of each name, or the name itself
    where it is synchronous everywhere."""
    names = {}
    for row in PUBLIC:
        if not row.in_sync:
            continue
        if row.name in _BLOCKING_VALUES:
            names[row.name] = _BLOCKING_VALUES[row.name]
        elif row.kind == FUNCTION and not hasattr(default_api.sync, row.name):
            names[row.name] = getattr(default_api, row.name)
        else:
            names[row.name] = getattr(default_api.sync, row.name)
    return names


def package_all() -> list[str]:
    return [row.name for row in PUBLIC]


def sync_all() -> list[str]:
    return [row.name for row in PUBLIC if row.in_sync]
