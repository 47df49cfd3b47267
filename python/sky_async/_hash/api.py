"""Hash_file and hash_files: what both backends share (argument checks,
results and errors), the backend protocol, and the API mixins that ``_api`` composes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Protocol, overload

from .._checks import StrOrBytesPath, as_path_list, check_concurrency, encode_path, encode_paths
from .._errors import Item, make_os_error

SUPPORTED_ALGORITHMS: tuple[str, ...] = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


def check_algorithm(algorithm: object) -> str:
    if not isinstance(algorithm, str):
        raise TypeError(f"algorithm must be a str, not {type(algorithm).__name__}")
    name = algorithm.lower()
    if name not in SUPPORTED_ALGORITHMS:
        raise ValueError(
            f"unsupported hash algorithm {algorithm!r}; supported: {', '.join(SUPPORTED_ALGORITHMS)}"
        )
    return name


class _Request:
    """Validated input of one batch call, and the mapping of backend items back to results."""

    __slots__ = ("algorithm", "concurrency", "encoded", "originals", "positions", "results")

    def __init__(self, paths: object, algorithm: object, concurrency: object) -> None:
        self.algorithm = check_algorithm(algorithm)
        self.concurrency = check_concurrency(concurrency)
        self.originals = as_path_list(paths)
        self.encoded, self.positions, self.results = encode_paths(self.originals)

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


def _single(item: Item, path: object) -> str:
    if isinstance(item, str):
        return item
    if item is None:  # pragma: no cover - a one-file call always reaches its file
        raise RuntimeError("internal error: the backend skipped the only file")
    code, message = item
    raise make_os_error(code, message, path)


class HashBackend(Protocol):
    """What a backend implements for hash_files (see ``_api.Backend``)."""

    async def hash_files(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]: ...

    def hash_files_blocking(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]: ...


class HashApi:
    """The coroutines: hash_files."""

    @property
    def _backend(self) -> HashBackend:
        raise NotImplementedError  # the composed Api holds the backend

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

    @overload
    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[str]: ...
    @overload
    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[str | BaseException]: ...
    @overload
    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[str] | list[str | BaseException]: ...
    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[str] | list[str | BaseException]:
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


class SyncHashApi:
    """The blocking twins: hash_files."""

    @property
    def _backend(self) -> HashBackend:
        raise NotImplementedError  # the composed SyncApi holds the backend

    def hash_file(self, path: StrOrBytesPath, algorithm: str = "sha256") -> str:
        name = check_algorithm(algorithm)
        encoded = encode_path(path)
        (item,) = self._backend.hash_files_blocking([encoded], name, 1, False)
        return _single(item, path)

    @overload
    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[str]: ...
    @overload
    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[str | BaseException]: ...
    @overload
    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[str] | list[str | BaseException]: ...
    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[str] | list[str | BaseException]:
        request = _Request(paths, algorithm, concurrency)
        items = []
        if request.encoded:
            items = self._backend.hash_files_blocking(
                request.encoded, request.algorithm, request.concurrency, not return_exceptions
            )
        return request.finish(items, return_exceptions)
