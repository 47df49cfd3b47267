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
