"""SkyPilot-exact wrappers around the native functions, for ``sky_async.compat`` and the
native backend.

Each wrapper calls the native function only for the inputs it handles identically to
the Python definition (the common case: a ``str``, a ``float``, no environment
override) and otherwise, or to produce an error with SkyPilot's exact type, message
and chaining, calls the Python definition. So every result and error is the Python
definition's, and only the speed depends on the path taken. Importing this module
raises ImportError when the native module is missing.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
from collections.abc import Mapping
from typing import Any

from . import _native, _process, _tail, strings, system

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
        and type(n) is int
        and 0 < n <= _tail.MAX_COUNT
        and type(chunk_size) is int
        and 0 < chunk_size <= _tail.MAX_COUNT
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
        # No lines means a file of size 0 at open: empty, or under /proc, where SkyPilot's
        # seek to the end raises EINVAL (wrapped in RuntimeError). The definition says which.
        if type(item) is tuple and type(item[0]) is list and item[0]:
            if native_decoding:
                return item[0]
            # Any codec and handler, decoded as SkyPilot decodes (its LookupError and
            # UnicodeDecodeError unwrapped).
            return _tail.decode_lines(item[0], encoding, errors)
        if isinstance(item, UnicodeDecodeError):
            raise item  # errors="strict": SkyPilot's decode error, unwrapped
    return _tail.read_last_n_lines(file_path, n, chunk_size, encoding, errors)


def is_process_alive(pid: int) -> bool:
    # The native probe is the same definition (pid <= 0 and pids above pid_max never
    # probed, zombies not alive, EPERM alive) with the same TypeError message.
    if type(pid) is int:
        return _native.is_process_alive(pid)
    return _process.is_process_alive(pid)


def base36_encode(hex_str: str) -> str:
    # Python's int() also reads non-ASCII digits, which the native parser rejects.
    if type(hex_str) is str and hex_str.isascii():
        try:
            return _native.base36_encode(hex_str)
        except ValueError:
            pass  # Python raises it again, with its own message
    return strings.base36_encode(hex_str)


def format_float(num: float | int, precision: int = 1) -> str:
    if type(num) is float:
        if type(precision) is int and 0 <= precision <= _NATIVE_MAX_PRECISION:
            return _native.format_float(num, precision)
    elif type(num) is int:
        return str(num)  # the definition's own int case, without a second call
    return strings.format_float(num, precision)


def get_cpu_count() -> int:
    """SkyPilot's get_cpu_count, including its ZeroDivisionError for a cgroup v2 period of 0."""
    if "SKYPILOT_POD_CPU_CORE_LIMIT" in os.environ:
        return system._cpu_count(skypilot=True)  # a cheap parse, with SkyPilot's exact errors
    return _native.get_cpu_count(True)


def get_mem_size_gb() -> float:
    if "SKYPILOT_POD_MEMORY_GB_LIMIT" in os.environ or "SKYPILOT_POD_MEMORY_BYTES_LIMIT" in os.environ:
        return system.get_mem_size_gb()
    return _native.get_mem_size_gb()


def get_parallel_threads(cloud_str: str | None = None) -> int:
    if cloud_str is None or type(cloud_str) is str:
        return _native.get_parallel_threads(cloud_str)
    return system.get_parallel_threads(cloud_str)  # SkyPilot's AttributeError, or its falsy rule


def _native_path(path: object) -> bytes | None:
    """The bytes for a str path the native side reads as Python does, else None."""
    if type(path) is str and "\0" not in path:  # os.path.isdir() says False for a NUL, no error
        return os.fsencode(path)
    return None


def estimate_fd_for_directory(path: str) -> int:
    encoded = _native_path(path)
    if encoded is None:
        return system.estimate_fd_for_directory(path)
    item = _native.estimate_fd_for_directory_blocking(encoded)
    if type(item) is int:
        return item
    code, message = item
    raise OSError(code, message or os.strerror(code), path)  # as os.listdir raises it


def get_max_workers_for_file_mounts(
    common_file_mounts: Mapping[str, str], cloud_str: str | None = None
) -> int:
    if type(common_file_mounts) is not dict or not (cloud_str is None or type(cloud_str) is str):
        return system.get_max_workers_for_file_mounts(common_file_mounts, cloud_str)
    sources = list(common_file_mounts.values())
    encoded = [_native_path(source) for source in sources]
    if None in encoded:
        return system.get_max_workers_for_file_mounts(common_file_mounts, cloud_str)
    system.warn_if_low_fd_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    item: Any = _native.max_workers_for_file_mounts_blocking(encoded, cloud_str)
    if type(item) is not int:
        code, message, index = item
        raise OSError(code, message or os.strerror(code), sources[index])
    if system.logger.isEnabledFor(logging.DEBUG):
        system.logger.debug(f"Using {item} workers for file mounts.")
    return item


def find_free_port(start_port: int) -> int:
    if type(start_port) is int and 0 <= start_port < system.PORT_LIMIT:
        item = _native.find_free_port_blocking(start_port)
        if type(item) is int:
            return item
        if item[0] == errno.EADDRINUSE:
            raise OSError("No free ports available.")
        # A socket could not be created: SkyPilot goes on through every port instead.
    return system.find_free_port(start_port)
