"""SkyPilot's ``read_last_n_lines``, and the pieces of it that sky_async shares.

``read_last_n_lines`` below is SkyPilot's function (``sky/utils/common_utils.py``) with its
exact results and errors: the drop-in for ``sky_async.compat`` and the baseline of
``bench/tail_bench.py``. Its two halves are also used on their own:

- ``read_tail_pieces``: which bytes are the last lines (backwards reads, split on LF only);
  the pure-Python backend runs it; the native backend does the same in C++.
- ``decode_lines``: how those bytes become SkyPilot's strings. Both backends' results go
  through it, so that every Python codec and error handler behaves exactly as in SkyPilot.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Protocol, Union, overload

from .._checks import StrOrBytesPath, as_path_list, check_concurrency, encode_paths, require_int
from .._errors import make_os_error
from .._skypilot_ux import print_exception_no_traceback

# The largest n and chunk_size passed down: beyond any real file's line count or size, so
# clamping changes no result while keeping the values inside a C size_t.
MAX_COUNT = 2**62

# What os.fsencode uses for a str.
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def read_last_n_lines(
    file_path: str, n: int, chunk_size: int = 8192, encoding: str = "utf-8", errors: str = "replace"
) -> list[str]:
    """SkyPilot's read_last_n_lines: the last *n* lines of a file, read backwards.

    Every line but the last keeps a ``'\\n'``; trailing CRs are stripped; only LF splits
    lines; a final LF does not start an empty line. Errors as SkyPilot's: AssertionError
    for a negative *n*, a non-positive *chunk_size* or a missing file; RuntimeError
    wrapping any OSError; decoding errors unwrapped.
    """
    assert n >= 0, f"n must be non-negative. Got {n}"
    assert chunk_size > 0, f"chunk_size must be positive. Got {chunk_size}"
    assert os.path.exists(file_path), f"File not found: {file_path}"
    if n == 0:
        return []
    try:
        with open(file_path, "rb") as file:
            cursor = file.seek(0, os.SEEK_END)
            chunks: list[bytes] = []
            newlines = 0
            while cursor > 0 and newlines <= n:
                size = min(chunk_size, cursor)
                cursor -= size
                file.seek(cursor)
                chunk = file.read(size)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except OSError as exc:
        with print_exception_no_traceback():
            raise RuntimeError(f"Failed to read last {n} lines from {file_path}: {exc}") from exc
    pieces = b"".join(reversed(chunks)).split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return decode_lines(pieces[-n:], encoding, errors)


def read_tail_pieces(
    fd: int,
    size: int,
    n: int,
    chunk_size: int,
    stopping: Callable[[], bool] | None = None,
) -> tuple[list[bytes], bool] | None:
    """The raw last *n* lines of the open file *fd* of *size* bytes, SkyPilot's selection.

    Returns ``(pieces, final_newline)``: the lines without their LF (CRs kept, nothing
    decoded), and whether the bytes read ended with LF. Reads backwards in *chunk_size*
    blocks until more than *n* LFs were seen; a concurrent truncation gives short reads,
    not an error. A *size* of 0 (also what /proc and /sys files report) reads forwards to
    the end instead. None if *stopping()* became true before a read.
    """
    if n == 0:
        return [], False
    if size == 0:
        # Also what /proc and /sys files report, content or not: read them forwards.
        unsized = _read_unsized(fd, n, chunk_size, stopping)
        if unsized is None:
            return None
        return _select(unsized, n)
    chunks: list[bytes] = []
    cursor = size
    newlines = 0
    while cursor > 0 and newlines <= n:
        if stopping is not None and stopping():
            return None
        want = min(chunk_size, cursor)
        cursor -= want
        chunk = _pread_full(fd, want, cursor)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    return _select(b"".join(reversed(chunks)), n)


# Reads of a file whose size says nothing, whatever chunk_size asks for backwards.
_UNSIZED_MIN_READ = 4096
_UNSIZED_MAX_READ = 65536


def _read_unsized(fd: int, n: int, chunk_size: int, stopping: Callable[[], bool] | None) -> bytes | None:
    """The file's bytes read forwards to EOF, less what precedes the (n+1)-th LF from the
    end, so that memory stays about twice the last n lines whatever the length read."""
    step = min(max(chunk_size, _UNSIZED_MIN_READ), _UNSIZED_MAX_READ)
    kept = bytearray()
    offset = 0
    newlines = 0
    while True:
        if stopping is not None and stopping():
            return None
        chunk = _pread_full(fd, step, offset)
        kept += chunk
        offset += len(chunk)
        newlines += chunk.count(b"\n")
        if len(chunk) < step:
            return bytes(kept)
        if newlines > 2 * (n + 1):
            cut = len(kept)
            for _ in range(n + 1):
                cut = kept.rfind(b"\n", 0, cut)
            del kept[:cut]
            newlines = n + 1


def _select(data: bytes, n: int) -> tuple[list[bytes], bool]:
    """The last *n* pieces of *data* split on LF, less the empty piece after a final LF."""
    if not data:  # empty, or truncated to nothing while we read
        return [], False
    pieces = data.split(b"\n")
    final_newline = pieces[-1] == b""
    if final_newline:
        pieces.pop()
    return pieces[-n:], final_newline


def _pread_full(fd: int, want: int, offset: int) -> bytes:
    """Up to *want* bytes at *offset*, fewer only at EOF (as a buffered ``read(want)``)."""
    data = os.pread(fd, want, offset)
    if len(data) == want or not data:
        return data
    parts = [data]
    got = len(data)
    while got < want:
        more = os.pread(fd, want - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def decode_lines(pieces: list[bytes], encoding: str, errors: str) -> list[str]:
    """SkyPilot's last step: decode each line on its own, strip its trailing CRs, and end
    every line but the last with ``'\\n'``."""
    lines = [piece.decode(encoding, errors).rstrip("\r") for piece in pieces]
    last = len(lines) - 1
    for index in range(last):
        lines[index] += "\n"
    return lines


def with_endings(pieces: list[bytes], final_newline: bool) -> list[bytes]:
    """The raw last lines as ``tail_files(encoding=None)`` returns them: each piece with the LF
    that ended it (CRs kept), the last one with an LF only if the data ended with one, so
    that their concatenation is what ``tail -n`` prints."""
    lines = [piece + b"\n" for piece in pieces]
    if lines and not final_newline:
        lines[-1] = pieces[-1]
    return lines


def check_codec(encoding: object, errors: object) -> str:
    """The codec's canonical name (``'utf-8'`` for ``'UTF8'``); TypeError/LookupError now, for
    arguments that could otherwise only fail once lines are decoded."""
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a str, not {type(encoding).__name__}")
    if not isinstance(errors, str):
        raise TypeError(f"errors must be a str, not {type(errors).__name__}")
    name = codecs.lookup(encoding).name
    b"".decode(encoding, errors)  # LookupError for a codec that is not a text encoding ('hex')
    return name


def require_encoding(encoding: object) -> None:
    """TypeError for ``encoding=None``, which read_last_n_lines (always decoding) refuses and
    tail_files takes; any other value is checked by TailRequest."""
    if encoding is None:
        raise TypeError("encoding must be a str, not NoneType")


def check_line_count(n: object, name: str = "n") -> int:
    count = require_int(n, name)
    if count < 0:
        raise ValueError(f"{name} must be non-negative, got {count}")
    return min(count, MAX_COUNT)


def check_chunk_size(chunk_size: object) -> int:
    size = require_int(chunk_size, "chunk_size")
    if size <= 0:
        raise ValueError(f"chunk_size must be positive, got {size}")
    return min(size, MAX_COUNT)


# Per file, a backend reports ``(lines, final_newline)`` (decoded lines as read_last_n_lines
# returns them, or with no encoding the raw pieces as bytes, without their LF), or just the
# list of decoded lines when an encoding was given (the native backend: final_newline is only
# needed raw, and a tuple per file was a tenth of the conversion's cost), the exception
# decoding raised, ``(errno, message or None)``, or None for a file it never got to.
TailItem = Union[
    "list[str]", "tuple[list[str] | list[bytes], bool]", "tuple[int, str | None]", BaseException, None
]


class TailRequest:
    """Validated input of one tail call, and the mapping of backend items back to results."""

    __slots__ = (
        "chunk_size",
        "concurrency",
        "encoded",
        "encoding",
        "errors",
        "n",
        "originals",
        "positions",
        "results",
    )

    def __init__(
        self,
        paths: list[Any],
        n: object,
        chunk_size: object,
        encoding: object,
        errors: object,
        concurrency: object,
    ) -> None:
        self.n = check_line_count(n)
        self.chunk_size = check_chunk_size(chunk_size)
        # None: the lines undecoded, as bytes (*errors* is not used, nor checked).
        self.encoding = None if encoding is None else check_codec(encoding, errors)
        self.errors: str = "strict" if encoding is None else errors  # type: ignore[assignment]
        self.concurrency = check_concurrency(concurrency)
        self.originals = paths
        self.results: list[Any]
        self.positions: Sequence[int]
        if all(type(path) is str for path in paths):
            # The usual list of str, encoded as os.fsencode does but in one comprehension:
            # 0.16 ms instead of 0.27 ms per 1,000 paths through encode_paths (its call
            # per path), measured after the merge with main.
            try:
                self.encoded = [path.encode(_FS_ENCODING, _FS_ERRORS) for path in paths]
            except UnicodeEncodeError:  # a lone surrogate: that path alone fails, in encode_paths
                pass
            else:
                if not any(b"\0" in path for path in self.encoded):
                    self.positions = range(len(paths))
                    self.results = [None] * len(paths)
                    return
        self.encoded, self.positions, self.results = encode_paths(paths)

    def finish(self, items: list[TailItem], return_exceptions: bool) -> list[Any]:
        """The lines (bytes with their endings when there is no encoding) or the exception,
        per path."""
        results = self.results
        for index, item in zip(self.positions, items):
            if item is None:
                continue
            if type(item) is list:
                results[index] = item
                continue
            if isinstance(item, BaseException):
                results[index] = item
                continue
            first, second = item
            if isinstance(first, int):
                results[index] = make_os_error(first, second, self.originals[index])  # type: ignore[arg-type]
            elif self.encoding is None:
                results[index] = with_endings(first, second)  # type: ignore[arg-type]
            else:
                results[index] = first
        if not return_exceptions:
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return results


class TailBackend(Protocol):
    """What a backend implements for tail_files (see ``_api.Backend``)."""

    # Per path a TailItem (sky_async._tail.api): (lines, final_newline) with lines decoded as
    # read_last_n_lines returns them, or raw bytes pieces when *encoding* is None; the
    # exception decoding raised; (errno, message or None); or None if never reached.
    async def tail_files(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[TailItem]: ...

    def tail_files_blocking(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[TailItem]: ...


class TailApi:
    """The coroutines: tail_files."""

    @property
    def _backend(self) -> TailBackend:
        raise NotImplementedError  # the composed Api holds the backend

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
        require_encoding(encoding)
        (result,) = await self.tail_files(
            [path], n, chunk_size=chunk_size, encoding=encoding, errors=errors, concurrency=1
        )
        return result

    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[list[str]]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[list[str] | BaseException]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[list[bytes]]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[list[bytes] | BaseException]: ...
    @overload
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
    ) -> list[list[str]] | list[list[str] | BaseException]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool,
    ) -> list[list[bytes]] | list[list[bytes] | BaseException]: ...
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str | None = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """read_last_n_lines for many files concurrently; one result per path, in input order.

        Without *return_exceptions* the first failure (in input order) is raised; with
        it, a failed file's slot holds its exception and every other file still gets
        its lines. *concurrency* bounds the files open at once.

        With ``encoding=None`` the lines are not decoded: each is the file's bytes as they
        are, CRs kept, with the LF that ends it (the last line only if the file ends with
        one), so that ``b"".join(lines)`` is what ``tail -n`` prints. *errors* is then
        ignored. For ``a\\nb\\nc`` and ``n=2``: ``[b"b\\n", b"c"]``, where the default gives
        ``["b\\n", "c"]``; for ``a\\nb\\n``: ``[b"a\\n", b"b\\n"]``.
        """
        request = TailRequest(as_path_list(paths), n, chunk_size, encoding, errors, concurrency)
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


class SyncTailApi:
    """The blocking twins: tail_files."""

    @property
    def _backend(self) -> TailBackend:
        raise NotImplementedError  # the composed SyncApi holds the backend

    def read_last_n_lines(
        self,
        path: StrOrBytesPath,
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
    ) -> list[str]:
        require_encoding(encoding)
        (result,) = self.tail_files(
            [path], n, chunk_size=chunk_size, encoding=encoding, errors=errors, concurrency=1
        )
        return result

    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[list[str]]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[list[str] | BaseException]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[list[bytes]]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[list[bytes] | BaseException]: ...
    @overload
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
    ) -> list[list[str]] | list[list[str] | BaseException]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool,
    ) -> list[list[bytes]] | list[list[bytes] | BaseException]: ...
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str | None = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        request = TailRequest(as_path_list(paths), n, chunk_size, encoding, errors, concurrency)
        items = []
        if request.encoded:
            items = self._backend.tail_files_blocking(
                request.encoded,
                request.n,
                request.chunk_size,
                request.concurrency,
                request.encoding,
                request.errors,
            )
        return request.finish(items, return_exceptions)
