"""The public API, written once over either backend.

A backend does the work on already-validated input (paths as bytes, a normalised
algorithm name) and reports each file as a hex digest, an ``(errno, message)``
pair, or ``None`` for a file it did not get to. Everything users see -- argument
checks, exception types, ordering, ``return_exceptions`` -- lives here, so both
backends behave the same by construction.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, Union

from . import _process

StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

SUPPORTED_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")

# Above this many files in flight per call, more concurrency only adds memory and fds.
MAX_CONCURRENCY = 1024

Item = Union[str, "tuple[int, str | None]", None]


class Backend(Protocol):
    name: str

    async def hash_files(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]: ...

    def hash_files_blocking(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]: ...

    def info(self) -> dict[str, Any]: ...


def check_algorithm(algorithm: object) -> str:
    if not isinstance(algorithm, str):
        raise TypeError(f"algorithm must be a str, not {type(algorithm).__name__}")
    name = algorithm.lower()
    if name not in SUPPORTED_ALGORITHMS:
        raise ValueError(
            f"unsupported hash algorithm {algorithm!r}; supported: {', '.join(SUPPORTED_ALGORITHMS)}"
        )
    return name


def check_concurrency(concurrency: object) -> int:
    """0 lets the backend choose."""
    if concurrency is None:
        return 0
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(f"concurrency must be an int or None, not {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    return min(concurrency, MAX_CONCURRENCY)


def encode_path(path: object) -> bytes:
    """The bytes the kernel sees, or the exception ``open()`` would raise for this argument."""
    encoded = os.fsencode(path)  # type: ignore[arg-type]  # TypeError for non-paths
    if b"\0" in encoded:
        raise ValueError("embedded null byte")
    return encoded


def make_os_error(code: int, message: str | None, path: object) -> OSError:
    # OSError's constructor returns the subclass for the errno (FileNotFoundError, ...).
    return OSError(code, message or os.strerror(code), path)


NOT_A_REGULAR_FILE = "Not a regular file"


def _as_path_list(paths: object) -> list[Any]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError("paths must be an iterable of paths, not a single path")
    if not isinstance(paths, Iterable):
        raise TypeError(f"paths must be an iterable of paths, not {type(paths).__name__}")
    return list(paths)


class _Request:
    """Validated input of one batch call, and the mapping of backend items back to results."""

    __slots__ = ("algorithm", "concurrency", "encoded", "originals", "positions", "results")

    def __init__(self, paths: object, algorithm: object, concurrency: object) -> None:
        self.algorithm = check_algorithm(algorithm)
        self.concurrency = check_concurrency(concurrency)
        self.originals = _as_path_list(paths)
        self.encoded: list[bytes] = []
        self.positions: list[int] = []
        self.results: list[Any] = [None] * len(self.originals)
        for index, original in enumerate(self.originals):
            try:
                self.encoded.append(encode_path(original))
            except (TypeError, ValueError) as exc:
                self.results[index] = exc
            else:
                self.positions.append(index)

    def finish(self, items: list[Item], return_exceptions: bool) -> list[Any]:
        results = self.results
        for index, item in zip(self.positions, items):
            if item is None or isinstance(item, str):
                results[index] = item
            else:
                code, message = item
                results[index] = make_os_error(code, message, self.originals[index])
        if not return_exceptions:
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return results


class Api:
    """``hash_file``/``hash_files`` and friends bound to one backend."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.sync = SyncApi(backend)

    @property
    def backend_name(self) -> str:
        return self._backend.name

    async def hash_file(self, path: StrOrBytesPath, algorithm: str = "sha256") -> str:
        """Return the lower-case hex digest of the file at *path*.

        Raises FileNotFoundError, IsADirectoryError, PermissionError (errno and
        filename set), OSError(EINVAL) for FIFOs, sockets and devices, and
        ValueError for an unsupported *algorithm*.
        """
        name = check_algorithm(algorithm)
        encoded = encode_path(path)
        (item,) = await self._backend.hash_files([encoded], name, 1, False)
        return _single(item, path)

    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """Hash many files concurrently; one result per path, in input order.

        Without *return_exceptions* the first failure (in input order) is raised
        and the files not yet started are skipped; with it, a failed file's slot
        holds its exception and every other file still gets its digest.
        *concurrency* bounds the files open at once (default: chosen by the
        backend), which also bounds memory.
        """
        request = _Request(paths, algorithm, concurrency)
        items = []
        if request.encoded:
            items = await self._backend.hash_files(
                request.encoded, request.algorithm, request.concurrency, not return_exceptions
            )
        return request.finish(items, return_exceptions)

    # --- tail: read_last_n_lines, tail_files, follow ---

    async def read_last_n_lines(
        self,
        path: StrOrBytesPath,
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
    ) -> list[str]:
        """The last *n* lines of the file at *path*, exactly as SkyPilot's read_last_n_lines.

        Lines are split on LF only and decoded one by one with (*encoding*, *errors*);
        trailing CRs are stripped; every line but the last ends with ``'\\n'``; a final
        LF does not start an empty line. The file is read backwards in *chunk_size*
        blocks and only until the lines are found.

        Errors are the standard ones rather than SkyPilot's asserts: ValueError for a
        negative *n* or a non-positive *chunk_size*, TypeError for a non-int,
        FileNotFoundError, IsADirectoryError, PermissionError (errno and filename set),
        OSError(EINVAL) at once for FIFOs, sockets and devices (where SkyPilot blocks),
        LookupError for an unknown *encoding*, UnicodeDecodeError with ``errors='strict'``.
        """
        (result,) = await self.tail_files(
            [path], n, chunk_size=chunk_size, encoding=encoding, errors=errors, concurrency=1
        )
        return result  # type: ignore[no-any-return]

    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """read_last_n_lines for many files concurrently; one result per path, in input order.

        Without *return_exceptions* the first failure (in input order) is raised; with
        it, a failed file's slot holds its exception and every other file still gets
        its lines. *concurrency* bounds the files open at once.
        """
        from ._tail import TailRequest

        request = TailRequest(_as_path_list(paths), n, chunk_size, encoding, errors, concurrency)
        items = []
        if request.encoded:
            items = await self._backend.tail_files(
                request.encoded,
                request.n,
                request.chunk_size,
                request.concurrency,
                request.encoding,
                request.errors,
            )
        return request.finish(items, return_exceptions)

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    async def is_process_alive(self, pid: int) -> bool:
        """Whether a process with this pid exists and has not exited.

        A zombie (exited, not yet reaped) is not alive; someone else's process (EPERM) is.
        A pid <= 0 or above ``/proc/sys/kernel/pid_max`` (a huge int included) is not
        alive and is never passed to ``kill(2)``. TypeError for anything but an int; a
        bool is rejected too (``True`` is not a pid). The probe is one ``kill(2)`` and one
        ``/proc`` read, done inline: cheaper than a hop to a worker thread.
        """
        return self._backend.is_process_alive(_process.check_pid(pid))

    async def probe_processes(
        self, pids: Iterable[int], *, start_times: Iterable[int | None] | None = None
    ) -> list[bool]:
        """``is_process_alive`` for many pids at once, on worker threads; one bool per pid, in order.

        *start_times*, if given, has one entry per pid: an int from ``process_start_time``
        taken when the process was known to be the right one, or None to skip the check.
        A process found at the pid with another start time is a reuse of the pid: False.
        A non-int pid is a bug in the caller: TypeError naming its index, and nothing is
        returned for the others.
        """
        sequence = _process.pid_sequence(pids)
        times = _process.check_start_times(start_times, len(sequence))
        if not sequence:
            return []
        return await self._backend.probe_processes(sequence, times)

    async def wait_for_exit(self, pid: int, timeout: float | None = None) -> bool:
        """Wait until the process *pid* exits: True once it has, False if *timeout* seconds pass first.

        Works for any process, not only children, through a pidfd (no polling); where
        ``pidfd_open`` is unavailable it polls, every 1 ms at first backing off to 50 ms. A
        zombie counts as exited; a pid with no process (or not a valid pid) returns True
        at once. ValueError for a negative or NaN *timeout*. Cancelling the awaiting task
        closes the pidfd.
        """
        return await self._backend.wait_for_exit(_process.check_pid(pid), _process.check_timeout(timeout))

    def process_start_time(self, pid: int) -> int | None:
        """When the process started, in clock ticks since boot (field 22 of ``/proc/<pid>/stat``).

        None when there is no such process or pid. Keep it with a pid and pass it to
        ``probe_processes(start_times=...)`` to tell the process from a later one that got
        the same pid. Synchronous: one ``/proc`` read.
        """
        return self._backend.process_start_time(_process.check_pid(pid))

    # --- scan: scan_tree ---

    # --- system: cpu, memory, threads, fd estimates, ports ---

    # --- mounts: file_mounts_digest ---

    async def file_mounts_digest(
        self, file_mounts: Mapping[str, str], *, prefix: bytes = b"", concurrency: int | None = None
    ) -> str:
        """SkyPilot's file-mount digest (hex SHA-256), with the files hashed concurrently.

        Feeds *prefix*, then byte for byte the stream of SkyPilot's
        ``_deterministic_cluster_yaml_hash`` for *file_mounts* (remote destination ->
        local source; see ``sky_async.mounts``). Raises ``sky_async.FileMountsError``
        listing every path that cannot be hashed (broken symlinks, FIFOs, sockets,
        devices, unreadable files and directories) instead of hanging or aborting on
        the first; TypeError/ValueError for malformed arguments.
        """
        from . import mounts

        pairs = mounts.check_file_mounts(file_mounts)
        head = mounts.check_prefix(prefix)
        limit = check_concurrency(concurrency)
        # The walk blocks on directory listings: off the event loop, stopped when cancelled.
        stop = threading.Event()
        try:
            plan = await asyncio.get_running_loop().run_in_executor(None, mounts.plan, pairs, stop)
        except asyncio.CancelledError:
            stop.set()
            raise
        items = await self._backend.hash_files(plan.files, "sha256", limit, False) if plan.files else []
        return mounts.finish(plan, head, items)

    def get_backend_info(self) -> dict[str, Any]:
        """Which backend serves the calls, and with what (versions, threads, I/O backend)."""
        return self._backend.info()


class SyncApi:
    """Blocking twins of the coroutines, for code without an event loop."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def hash_file(self, path: StrOrBytesPath, algorithm: str = "sha256") -> str:
        name = check_algorithm(algorithm)
        encoded = encode_path(path)
        (item,) = self._backend.hash_files_blocking([encoded], name, 1, False)
        return _single(item, path)

    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        request = _Request(paths, algorithm, concurrency)
        items = []
        if request.encoded:
            items = self._backend.hash_files_blocking(
                request.encoded, request.algorithm, request.concurrency, not return_exceptions
            )
        return request.finish(items, return_exceptions)

    # --- tail: read_last_n_lines, tail_files, follow ---

    def read_last_n_lines(
        self,
        path: StrOrBytesPath,
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
    ) -> list[str]:
        (result,) = self.tail_files(
            [path], n, chunk_size=chunk_size, encoding=encoding, errors=errors, concurrency=1
        )
        return result  # type: ignore[no-any-return]

    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        return self._tail_files(paths, n, chunk_size, encoding, errors, concurrency, return_exceptions)

    def _tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        chunk_size: int,
        encoding: str,
        errors: str,
        concurrency: int | None,
        return_exceptions: bool,
        raw: bool = False,
    ) -> list[Any]:
        """With *raw*, ``(lines as bytes without LF, whether the data ended with LF)`` per
        path, undecoded: what the command line prints byte for byte like tail."""
        from ._tail import TailRequest

        request = TailRequest(_as_path_list(paths), n, chunk_size, encoding, errors, concurrency)
        items = []
        if request.encoded:
            items = self._backend.tail_files_blocking(
                request.encoded,
                request.n,
                request.chunk_size,
                request.concurrency,
                None if raw else request.encoding,
                request.errors,
            )
        return request.finish(items, return_exceptions, raw)

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    def is_process_alive(self, pid: int) -> bool:
        return self._backend.is_process_alive(_process.check_pid(pid))

    def probe_processes(
        self, pids: Iterable[int], *, start_times: Iterable[int | None] | None = None
    ) -> list[bool]:
        sequence = _process.pid_sequence(pids)
        times = _process.check_start_times(start_times, len(sequence))
        if not sequence:
            return []
        return self._backend.probe_processes_blocking(sequence, times)

    def wait_for_exit(self, pid: int, timeout: float | None = None) -> bool:
        return self._backend.wait_for_exit_blocking(_process.check_pid(pid), _process.check_timeout(timeout))

    def process_start_time(self, pid: int) -> int | None:
        return self._backend.process_start_time(_process.check_pid(pid))

    # --- scan: scan_tree ---

    # --- system: cpu, memory, threads, fd estimates, ports ---

    # --- mounts: file_mounts_digest ---

    def file_mounts_digest(
        self, file_mounts: Mapping[str, str], *, prefix: bytes = b"", concurrency: int | None = None
    ) -> str:
        from . import mounts

        pairs = mounts.check_file_mounts(file_mounts)
        head = mounts.check_prefix(prefix)
        limit = check_concurrency(concurrency)
        plan = mounts.plan(pairs)
        items = self._backend.hash_files_blocking(plan.files, "sha256", limit, False) if plan.files else []
        return mounts.finish(plan, head, items)


def _single(item: Item, path: object) -> str:
    if isinstance(item, str):
        return item
    if item is None:  # pragma: no cover - a one-file call always reaches its file
        raise RuntimeError("internal error: the backend skipped the only file")
    code, message = item
    raise make_os_error(code, message, path)
