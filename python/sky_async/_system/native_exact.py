"""SkyPilot-exact wrappers around the native functions, for ``sky_async.compat`` and the
native backend.

Each wrapper calls the native function only for the inputs it handles identically to
the Python definition (the common case: a ``str``, a ``float``, no environment
override) and otherwise, or to produce an error with SkyPilot's exact type, message
and chaining, calls the Python definition. So every result and error is the Python
definition's, and only the speed depends on the path taken. Importing this module
raises ImportError when the native module is missing.

The Python-level functions a definition reads (``os.cpu_count``, ``builtins.open``,
``socket.socket.bind``, ``psutil.virtual_memory``...) are that definition's input too: a
caller's test replaces them (``mock.patch``, ``monkeypatch``) to steer what SkyPilot's
function returns, and C++ would not see the replacement. So each wrapper first checks
that every source it stands in for is still the object it was when this module was
imported (a few identity comparisons) and runs the Python definition when one is not.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import resource
import socket
import sys
import types
from collections.abc import Mapping
from typing import Any

from .. import _native
from .._process import python as _process_py
from .._tail import api as _tail_api
from . import python as _system_py
from . import strings as _strings

# --- the caller's patches ------------------------------------------------------------------

_ABSENT = object()  # an attribute the platform does not have (os.sched_getaffinity elsewhere)
_OWNERS: dict[str, Any] = {
    "builtins": builtins,
    "os": os,
    "os.path": os.path,
    "resource": resource,
    "socket": socket,
    "socket.socket": socket.socket,
}
# psutil's public functions as this process first met them; psutil itself is not imported
# here (it takes tens of milliseconds), so they are recognised by their code, see below.
_psutil_originals: dict[str, Any] = {}


def _psutil_function_replaced(name: str) -> bool:
    module = sys.modules.get("psutil")
    if module is None:  # not imported: nothing in it can have been replaced
        return False
    function = getattr(module, name, None)
    if function is _psutil_originals.get(name):
        return False
    # A mock, a lambda or a functools.wraps wrapper is not psutil's own code.
    if not (
        type(function) is types.FunctionType
        and function.__code__.co_name == name
        and function.__code__.co_filename == getattr(module, "__file__", None)
    ):
        return True
    _psutil_originals[name] = function
    return False


class Sources:
    """The Python-level functions (dotted names) that a definition reads and its native
    version computes in C++ instead, with the objects they were at import.

    ``intact()`` runs on every call of a native version, so it is generated as one
    expression of identity tests (tens of nanoseconds, where a loop over the names costs
    hundreds, as much as some whole native calls).
    """

    __slots__ = ("_fixed", "_psutil", "intact", "names")

    def __init__(self, *names: str) -> None:
        self.names = names
        fixed = []
        self._psutil = tuple(name.partition(".")[2] for name in names if name.startswith("psutil."))
        namespace: dict[str, Any] = {"_modules": sys.modules, "_known": _psutil_originals}
        namespace["_replaced"] = _psutil_function_replaced
        tests = []
        for index, name in enumerate(names):
            owner, _, attribute = name.rpartition(".")
            if not attribute.isidentifier():
                raise ValueError(f"not a dotted name: {name!r}")
            if owner == "psutil":
                tests.append(
                    f"((module := _modules.get('psutil')) is None"
                    f" or module.{attribute} is _known.get('{attribute}') or not _replaced('{attribute}'))"
                )
                continue
            target = _OWNERS[owner]
            original = getattr(target, attribute, _ABSENT)
            fixed.append((target, attribute, original, name))
            namespace[f"_owner{index}"], namespace[f"_original{index}"] = target, original
            if original is _ABSENT:  # may appear, not disappear: read it with a default
                tests.append(f"getattr(_owner{index}, '{attribute}', _ABSENT) is _original{index}")
                namespace["_ABSENT"] = _ABSENT
            else:
                tests.append(f"_owner{index}.{attribute} is _original{index}")
        self._fixed = tuple(fixed)
        # A removed attribute (monkeypatch.delattr) raises AttributeError: replaced too.
        source = (
            "def intact():\n"
            "    try:\n"
            f"        return {' and '.join(tests) or 'True'}\n"
            "    except AttributeError:\n"
            "        return False\n"
        )
        exec(source, namespace)  # built above from identifiers only
        self.intact = namespace["intact"]

    def replaced(self) -> list[str]:
        """The dotted names of those replaced now (or removed, or added where the platform
        lacks them)."""
        found = [
            name
            for target, attribute, original, name in self._fixed
            if getattr(target, attribute, _ABSENT) is not original
        ]
        return found + [f"psutil.{name}" for name in self._psutil if _psutil_function_replaced(name)]


# What each definition reads from Python, SkyPilot's where it is SkyPilot's (cgroup files
# through open and os.path.isfile, the host count through psutil, whose Linux code reads
# os.sysconf and /proc/meminfo), else compat's own definition's.
SOURCES: dict[str, Sources] = {
    "read_last_n_lines": Sources("os.path.exists", "builtins.open"),
    "find_free_port": Sources("socket.socket", "socket.socket.bind"),
    "base36_encode": Sources(),
    "format_float": Sources(),
    "get_cpu_count": Sources(
        "os.environ",
        "os.getenv",
        "psutil.cpu_count",
        "os.sysconf",
        "os.sched_getaffinity",
        "os.path.isfile",
        "builtins.open",
    ),
    "get_mem_size_gb": Sources(
        "os.environ", "os.getenv", "psutil.virtual_memory", "os.path.isfile", "builtins.open"
    ),
    "get_parallel_threads": Sources("os.cpu_count"),
    "is_process_alive": Sources("os.kill", "builtins.open"),
    "estimate_fd_for_directory": Sources("os.path.isdir", "os.listdir"),
    "get_max_workers_for_file_mounts": Sources(
        "resource.getrlimit", "os.path.isdir", "os.listdir", "os.cpu_count"
    ),
}
_READ_LAST_N_LINES = SOURCES["read_last_n_lines"]
_FIND_FREE_PORT = SOURCES["find_free_port"]
_GET_CPU_COUNT = SOURCES["get_cpu_count"]
_GET_MEM_SIZE_GB = SOURCES["get_mem_size_gb"]
_GET_PARALLEL_THREADS = SOURCES["get_parallel_threads"]
_IS_PROCESS_ALIVE = SOURCES["is_process_alive"]
_ESTIMATE_FD = SOURCES["estimate_fd_for_directory"]
_MAX_WORKERS = SOURCES["get_max_workers_for_file_mounts"]

_NATIVE_MAX_PRECISION = 10_000  # beyond this (absurd) precision, Python's own formatting runs
# Error handlers the native decoder may be given: CPython's built-in ones, which behave the
# same whether or not they are looked up before they are needed (a registered or unknown
# handler goes through decode_lines instead, exactly as SkyPilot's bytes.decode meets it).
_NATIVE_ERROR_HANDLERS = frozenset({"strict", "replace", "ignore", "surrogateescape", "backslashreplace"})


def read_last_n_lines(
    file_path: str, n: int, chunk_size: int = 8192, encoding: str = "utf-8", errors: str = "replace"
) -> list[str]:
    # The native reader serves a str path, int arguments in range and an existing regular
    # file with content. Everything else -- n == 0, a missing file, a directory, a FIFO (where SkyPilot
    # blocks), any read error -- is left to the Python definition, so the AssertionError
    # messages, the RuntimeError chained to the OSError, and the blocking are SkyPilot's.
    encoded = _native_path(file_path)
    if (
        encoded is not None
        and _READ_LAST_N_LINES.intact()
        and type(n) is int
        and 0 < n <= _tail_api.MAX_COUNT
        and type(chunk_size) is int
        and 0 < chunk_size <= _tail_api.MAX_COUNT
        and _has_content_by_size(encoded)
    ):
        native_decoding = encoding == "utf-8" and errors in _NATIVE_ERROR_HANDLERS
        (item,) = _native.tail_files_blocking(
            [encoded],
            n,
            chunk_size,
            1,
            "utf-8" if native_decoding else None,
            errors if native_decoding else "",
        )
        # No lines: emptied since the stat. The definition says what SkyPilot gives.
        if type(item) is tuple and type(item[0]) is list and item[0]:
            if native_decoding:
                return item[0]  # type: ignore[return-value]  # decoded natively: str lines
            # Any codec and handler, decoded as SkyPilot decodes (its LookupError and
            # UnicodeDecodeError unwrapped).
            return _tail_api.decode_lines(item[0], encoding, errors)  # type: ignore[arg-type]  # no encoding: bytes
        if isinstance(item, UnicodeDecodeError):
            raise item  # errors="strict": SkyPilot's decode error, unwrapped
    return _tail_api.read_last_n_lines(file_path, n, chunk_size, encoding, errors)


def _has_content_by_size(path: bytes) -> bool:
    """Whether the file's size says it has content. A size of 0 (an empty file, or a /proc
    or /sys file, which the native reader reads forwards while SkyPilot's seek to the end
    finds nothing or raises EINVAL) is left to the definition, as is a failed stat."""
    try:
        return os.stat(path).st_size > 0
    except OSError:
        return False


def is_process_alive(pid: int) -> bool:
    # The native probe is the same definition (pid <= 0 and pids above pid_max never
    # probed, zombies not alive, EPERM alive) with the same TypeError message.
    # A pid <= 0 is never probed by either, so no patch can move its answer (and the
    # check would double the cost of this cheapest call).
    if type(pid) is int and (pid <= 0 or _IS_PROCESS_ALIVE.intact()):
        return _native.is_process_alive(pid)
    return _process_py.is_process_alive(pid)


def base36_encode(hex_str: str) -> str:
    # Python's int() also reads non-ASCII digits, which the native parser rejects.
    if type(hex_str) is str and hex_str.isascii():
        try:
            return _native.base36_encode(hex_str)
        except ValueError:
            pass  # Python raises it again, with its own message
    return _strings.base36_encode(hex_str)


def format_float(num: float | int, precision: int = 1) -> str:
    if type(num) is float:
        if type(precision) is int and 0 <= precision <= _NATIVE_MAX_PRECISION:
            return _native.format_float(num, precision)
    elif type(num) is int:
        return str(num)  # the definition's own int case, without a second call
    return _strings.format_float(num, precision)


def get_cpu_count() -> int:
    """SkyPilot's get_cpu_count, including its ZeroDivisionError for a cgroup v2 period of 0."""
    if "SKYPILOT_POD_CPU_CORE_LIMIT" in os.environ or not _GET_CPU_COUNT.intact():
        return _system_py._cpu_count(skypilot=True)  # a cheap parse, with SkyPilot's exact errors
    return _native.get_cpu_count(True)


def get_mem_size_gb() -> float:
    if (
        "SKYPILOT_POD_MEMORY_GB_LIMIT" in os.environ
        or "SKYPILOT_POD_MEMORY_BYTES_LIMIT" in os.environ
        or not _GET_MEM_SIZE_GB.intact()
    ):
        return _system_py._mem_size_gb(skypilot=True)
    return _native.get_mem_size_gb()


def get_parallel_threads(cloud_str: str | None = None) -> int:
    if (cloud_str is None or type(cloud_str) is str) and _GET_PARALLEL_THREADS.intact():
        return _native.get_parallel_threads(cloud_str)
    return _system_py.get_parallel_threads(cloud_str)  # SkyPilot's AttributeError, or its falsy rule


def _native_path(path: object) -> bytes | None:
    """The bytes for a str path the native side reads as Python does, else None."""
    if type(path) is str and "\0" not in path:  # os.path.isdir() says False for a NUL, no error
        return os.fsencode(path)
    return None


def estimate_fd_for_directory(path: str) -> int:
    encoded = _native_path(path)
    if encoded is None or not _ESTIMATE_FD.intact():
        return _system_py.estimate_fd_for_directory(path)
    item = _native.estimate_fd_for_directory_blocking(encoded)
    if isinstance(item, int):
        return item
    code, message = item
    raise OSError(code, message or os.strerror(code), path)  # as os.listdir raises it


def get_max_workers_for_file_mounts(
    common_file_mounts: Mapping[str, str], cloud_str: str | None = None
) -> int:
    if (
        type(common_file_mounts) is not dict
        or not (cloud_str is None or type(cloud_str) is str)
        or not _MAX_WORKERS.intact()
    ):
        return _system_py.get_max_workers_for_file_mounts(common_file_mounts, cloud_str)
    sources = list(common_file_mounts.values())
    encoded = [_native_path(source) for source in sources]
    if None in encoded:
        return _system_py.get_max_workers_for_file_mounts(common_file_mounts, cloud_str)
    _system_py.warn_if_low_fd_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    # No None in encoded: checked just above.
    item: Any = _native.max_workers_for_file_mounts_blocking(encoded, cloud_str)  # type: ignore[arg-type]
    if type(item) is not int:
        code, message, index = item
        raise OSError(code, message or os.strerror(code), sources[index])
    if _system_py.logger.isEnabledFor(logging.DEBUG):
        _system_py.logger.debug(f"Using {item} workers for file mounts.")
    return item


def find_free_port(start_port: int) -> int:
    if type(start_port) is int and 0 <= start_port < _system_py.PORT_LIMIT and _FIND_FREE_PORT.intact():
        item = _native.find_free_port_blocking(start_port)
        if isinstance(item, int):
            return item
        if item[0] == errno.EADDRINUSE:
            raise OSError("No free ports available.")
        # A socket could not be created: the definition raises that error as Python's socket does.
    return _system_py.find_free_port(start_port)
