"""The public API, written once over either backend.

A backend does the work on already-validated input (paths as bytes, a normalised
algorithm name) and reports each file as a hex digest, an ``(errno, message)``
pair, or ``None`` for a file it did not get to. Everything users see -- argument
checks, exception types, ordering, ``return_exceptions`` -- lives here, so both
backends behave the same by construction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Protocol, Union

from . import scan as _scan

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

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    # --- scan: scan_tree ---

    async def scan_tree(
        self,
        path: StrOrBytesPath,
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
    ) -> _scan.TreeScan:
        """Walk the tree at *path* concurrently; return its counts, sizes and problems.

        Counts files, directories, symlinks and special files below *path* (not *path*
        itself; a symlink as *path* is followed), sums the regular files' sizes, keeps
        the *largest* biggest files and up to *max_problems* problems (unreadable
        files and directories, broken symlinks, symlink loops, special files, names
        that are not UTF-8, files over *max_file_size* bytes) while counting them all,
        and with *collect_files* lists every regular file. Symlinked directories are
        only descended with *follow_symlinks*. See ``sky_async.scan`` for the rules.

        Raises FileNotFoundError (and the other OSErrors, with errno and filename)
        when *path* itself cannot be scanned, TypeError/ValueError for bad arguments.
        """
        options = _scan.check_scan_options(
            follow_symlinks, max_file_size, largest, collect_files, max_problems
        )
        root = encode_path(path)
        return _scan.finish_scan(await self._backend.scan_tree(root, *options), path, options)

    # --- system: cpu, memory, threads, fd estimates, ports ---

    # --- mounts: file_mounts_digest ---

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

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    # --- scan: scan_tree ---

    def scan_tree(
        self,
        path: StrOrBytesPath,
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
    ) -> _scan.TreeScan:
        options = _scan.check_scan_options(
            follow_symlinks, max_file_size, largest, collect_files, max_problems
        )
        root = encode_path(path)
        return _scan.finish_scan(self._backend.scan_tree_blocking(root, *options), path, options)

    # --- system: cpu, memory, threads, fd estimates, ports ---

    # --- mounts: file_mounts_digest ---


def _single(item: Item, path: object) -> str:
    if isinstance(item, str):
        return item
    if item is None:  # pragma: no cover - a one-file call always reaches its file
        raise RuntimeError("internal error: the backend skipped the only file")
    code, message = item
    raise make_os_error(code, message, path)
