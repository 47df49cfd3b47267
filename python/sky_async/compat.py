"""A drop-in for SkyPilot's utilities: the twelve functions with SkyPilot's exact
synchronous signatures, defaults, results and errors.

    from sky_async import compat as common_utils

Each function runs either as SkyPilot's pure-Python definition or through the native
module, whichever was measured faster (``bench/compat_bench.py``, results in
``bench/results/compat_bench.md``); native is chosen only where it is at least 10 %
faster on every benchmark input, so compat is never slower than SkyPilot's Python:

=================================  ========  ==============================================
function                           choice    why
=================================  ========  ==============================================
read_last_n_lines                  python    native is a worker job: 0.64x at n=10 but 1.39x at n=100
hash_file                          python    must return a live hashlib object
find_free_port                     native    one bind per port without Python's socket object
base36_encode                      native    big-integer work in C++ (about 7x)
format_float                       python    native wins on floats, loses on ints (str())
truncate_long_string               python    str slicing beats the UTF-8 round trip
get_cpu_count                      native    host CPU count cached, cgroup read with syscalls
get_mem_size_gb                    native    total RAM cached instead of parsing /proc/meminfo
get_parallel_threads               native    host CPU count cached (os.cpu_count reads sysfs)
is_process_alive                   native    kill + /proc read in C++: 0.44-0.65x of Python's time
get_max_workers_for_file_mounts    python    kernel-bound listing: native 3-15 % faster, not clearly 10 %
estimate_fd_for_directory          python    kernel-bound listing: native 3-15 % faster, not clearly 10 %
=================================  ========  ==============================================

The native versions (``sky_async._native_exact``) give the same results and errors as
the Python ones on every input: they call the native code only for the inputs it
handles identically (and leave the rest, and every error message, to the Python
definition). compat uses the Python definitions everywhere when the native module
cannot be loaded or ``SKY_ASYNC_BACKEND=python`` is set; ``get_backend_info()`` says
which path each function takes.

Under a caller's patches: the Python definitions read what SkyPilot's read, when they
read it (``os.cpu_count`` for get_parallel_threads, ``psutil.cpu_count`` and
``os.sched_getaffinity`` for get_cpu_count, ``psutil.virtual_memory`` for
get_mem_size_gb, ``socket.socket`` and its ``bind`` for find_free_port, ``open`` and
``os.path.isfile`` for the cgroup files...), so a test's ``mock.patch`` of any of them
moves compat's result as it moves SkyPilot's. psutil is read only where it can be
imported (SkyPilot depends on it; without it, compat computes the same numbers the way
psutil does on Linux). A native version runs the C++ code only while every one of those
sources is still the object it was at import (``sky_async._native_exact.SOURCES``), and
the Python definition otherwise.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from typing import Any, TextIO

from ._process import python as _process_py
from ._system import python as _system_py
from ._system.strings import base36_encode as _py_base36_encode
from ._system.strings import format_float as _py_format_float
from ._system.strings import truncate_long_string as _py_truncate_long_string
from ._tail import api as _tail_api
from ._upload import pack as _pack

# Outside the twelve (no native version, nothing to choose): SkyPilot's exclusion lists for an
# upload, the .skyignore one evaluated in one walk, the .gitignore one without running git.
from ._upload.skypilot_ignore import get_excluded_files as get_excluded_files
from ._upload.skypilot_ignore import get_excluded_files_from_gitignore as get_excluded_files_from_gitignore
from ._upload.skypilot_ignore import get_excluded_files_from_skyignore as get_excluded_files_from_skyignore

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


def _py_get_cpu_count() -> int:
    """CPUs this process may use, cgroup-aware, as SkyPilot computes it."""
    return _system_py._cpu_count(skypilot=True)


def _py_get_mem_size_gb() -> float:
    """Memory in GiB, cgroup-aware, as SkyPilot computes it (total RAM from psutil)."""
    return _system_py._mem_size_gb(skypilot=True)


# --- the choice ----------------------------------------------------------------------------

# SkyPilot's definitions, in pure Python.
_PYTHON: dict[str, Callable[..., Any]] = {
    "read_last_n_lines": _tail_api.read_last_n_lines,
    "hash_file": hash_file,
    "find_free_port": _system_py.find_free_port,
    "base36_encode": _py_base36_encode,
    "format_float": _py_format_float,
    "truncate_long_string": _py_truncate_long_string,
    "get_cpu_count": _py_get_cpu_count,
    "get_mem_size_gb": _py_get_mem_size_gb,
    "get_parallel_threads": _system_py.get_parallel_threads,
    "is_process_alive": _process_py.is_process_alive,
    "get_max_workers_for_file_mounts": _system_py.get_max_workers_for_file_mounts,
    "estimate_fd_for_directory": _system_py.estimate_fd_for_directory,
}

# What bench/compat_bench.py measured (see the table in the module docstring). A function
# gets "native" only if it has a native version and that version was at least 10 % faster
# on every input; hash_file never (it returns a live hashlib object). read_last_n_lines
# stays Python: the native read is a job on the runtime's workers, whose hand-off costs
# more than SkyPilot's whole read for the few lines callers ask for (it wins from about
# 1,000 lines, where sky_async.tail_files is the better tool anyway).
MEASURED_CHOICE: dict[str, str] = {
    "read_last_n_lines": "python",
    "hash_file": "python",
    "find_free_port": "native",
    "base36_encode": "native",
    "format_float": "python",
    "truncate_long_string": "python",
    "get_cpu_count": "native",
    "get_mem_size_gb": "native",
    "get_parallel_threads": "native",
    "is_process_alive": "native",
    "get_max_workers_for_file_mounts": "python",
    "estimate_fd_for_directory": "python",
}


def _load_native() -> tuple[dict[str, Callable[..., Any]], str | None, dict[str, Any]]:
    """The native versions by name (empty without the native module), its version, and
    the Python-level sources each native version stands in for."""
    try:
        from . import _native
        from ._system import native_exact as _native_exact
    except ImportError:
        return {}, None, {}
    natives = {
        name: getattr(_native_exact, name)
        for name in _PYTHON
        if hasattr(_native_exact, name) and not name.startswith("_")
    }
    return natives, _native.__version__, _native_exact.SOURCES


_NATIVE, _NATIVE_VERSION, _SOURCES = _load_native()
_USE_NATIVE = bool(_NATIVE) and os.environ.get("SKY_ASYNC_BACKEND", "auto").strip().lower() != "python"


def implementations(path: str) -> dict[str, Callable[..., Any]]:
    """Every function as it runs on *path* ("python", or "native" where a native version
    exists and the native module is loaded; Python elsewhere). For tests and benchmarks."""
    if path == "python":
        return dict(_PYTHON)
    if path == "native":
        return {name: _NATIVE.get(name, fn) for name, fn in _PYTHON.items()}
    raise ValueError(f"path must be 'native' or 'python', not {path!r}")


_CHOSEN: dict[str, str] = {
    name: "native" if _USE_NATIVE and name in _NATIVE and MEASURED_CHOICE[name] == "native" else "python"
    for name in _PYTHON
}


def _chosen(name: str) -> Callable[..., Any]:
    return (_NATIVE if _CHOSEN[name] == "native" else _PYTHON)[name]


read_last_n_lines = _chosen("read_last_n_lines")
hash_file = _chosen("hash_file")
find_free_port = _chosen("find_free_port")
base36_encode = _chosen("base36_encode")
format_float = _chosen("format_float")
truncate_long_string = _chosen("truncate_long_string")
get_cpu_count = _chosen("get_cpu_count")
get_mem_size_gb = _chosen("get_mem_size_gb")
get_parallel_threads = _chosen("get_parallel_threads")
is_process_alive = _chosen("is_process_alive")
get_max_workers_for_file_mounts = _chosen("get_max_workers_for_file_mounts")
estimate_fd_for_directory = _chosen("estimate_fd_for_directory")


def get_backend_info() -> dict[str, Any]:
    """What serves compat's functions: ``backend`` is "native" when any function runs
    natively, ``available`` whether the native module could be loaded, ``version`` its
    version (None without it), ``functions`` the path each function takes now: its
    choice, except "python" for a native one while a source it reads from Python has been
    replaced (see the module docstring)."""
    functions = {
        name: "python" if path == "native" and not _SOURCES[name].intact() else path
        for name, path in _CHOSEN.items()
    }
    return {
        "backend": "native" if "native" in functions.values() else "python",
        "available": bool(_NATIVE),
        "version": _NATIVE_VERSION,
        "functions": functions,
    }


# --- the upload archive: sky.data.storage_utils and sky.client.common -------------------------
# Outside the twelve too: sky_async._pack writes SkyPilot's zip byte for byte; the blob id of a
# zip already written can only come from reading it back, as SkyPilot does.


def zip_files_and_folders(
    items: list[str],
    output_file: str | os.PathLike[str],
    log_file: TextIO | None = None,
    relative_to_items: bool = False,
    compression: int = zipfile.ZIP_DEFLATED,
    compresslevel: int | None = None,
) -> None:
    """SkyPilot's ``storage_utils.zip_files_and_folders``: the same archive, byte for byte
    (entries, order, attributes, compression), the same ``Zipped <item>`` log lines and the
    same ValueError for a missing item. Unlike SkyPilot, nothing is left at *output_file*
    when it fails (the zip is written beside it and renamed), an *output_file* inside a
    source directory is a ValueError, and a file that changes size while read, a FIFO or a
    device is an OSError (see ``sky_async._pack``)."""
    _pack.pack(
        items,
        os.fspath(output_file),
        exclusions_of=get_excluded_files,
        log_file=log_file,
        relative_to_items=relative_to_items,
        compression=compression,
        compresslevel=compresslevel,
    )


_BLOB_CHUNK_SIZE = 2**18


def compute_zip_blob_id(zip_path: str) -> str:
    """SkyPilot's ``client.common._compute_zip_blob_id``: the hex SHA-256 over each entry's
    name (UTF-8) and the raw SHA-256 of its content, entries sorted by name; a directory
    entry's content is empty, a symbolic link's is its target. ``pack_mounts`` returns the
    same id for the archive it writes without this second read."""
    pairs: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(zip_path, "r") as archive:
        for info in archive.infolist():
            digest = hashlib.sha256()
            is_link = info.external_attr >> 28 == 0xA
            if is_link or not info.filename.endswith("/"):
                with archive.open(info) as entry:
                    while chunk := entry.read(_BLOB_CHUNK_SIZE):
                        digest.update(chunk)
            pairs.append((info.filename, digest.digest()))
    total = hashlib.sha256()
    for name, entry_digest in sorted(pairs, key=lambda pair: pair[0]):
        total.update(name.encode("utf-8"))
        total.update(entry_digest)
    return total.hexdigest()
