"""tail_files for the pure-Python backend: SkyPilot's algorithm (``_tail``) on the backend's pool.

A batch is worked through as the hash batches are (``_batch._Batch``): at most
``concurrency`` jobs, each taking the next file in input order, so at most that many files
are open at once; cancelling stops the jobs before their next read and waits until every
file they opened is closed.
"""

from __future__ import annotations

import errno
import functools
import os
from typing import Any, Union

from .._batch import _Batch, read_regular_file, run_batch, run_batch_blocking
from .api import TailItem, decode_lines, read_tail_pieces

# What reading one file gives, before decoding: (pieces, final_newline), (errno, message or
# None), or None for a file never reached.
_Pieces = Union["tuple[list[bytes], bool]", "tuple[int, str | None]", None]


class TailBatch(_Batch):
    __slots__ = ("chunk_size", "encoding", "errors", "n")

    def __init__(  # type: ignore[no-untyped-def]
        self,
        paths: list[bytes],
        n: int,
        chunk_size: int,
        encoding: str | None,
        errors: str,
        on_done,
        loop=None,
    ) -> None:
        super().__init__(paths, False, on_done, loop)
        self.n = n
        self.chunk_size = chunk_size
        self.encoding = encoding
        self.errors = errors

    def process(self, index: int) -> TailItem:
        item = _tail_path(self.paths[index], self.n, self.chunk_size, self, index)
        if self.encoding is not None and item is not None and not isinstance(item[0], int):
            try:
                return (decode_lines(item[0], self.encoding, self.errors), item[1])
            except (UnicodeError, LookupError) as exc:  # errors='strict', or an unknown handler
                return exc
        return item


def _tail_path(path: bytes, n: int, chunk_size: int, batch: _Batch, index: int) -> _Pieces:
    stopping = functools.partial(batch.stopping_at, index)

    def read(fd: int, st: os.stat_result) -> _Pieces:
        try:
            try:
                return read_tail_pieces(fd, st.st_size, n, chunk_size, stopping)
            except BlockingIOError:  # O_NONBLOCK on a file system that honours it: block instead
                os.set_blocking(fd, True)
                return read_tail_pieces(fd, st.st_size, n, chunk_size, stopping)
        except MemoryError:  # a chunk_size or n so large that the region read does not fit
            return (errno.ENOMEM, None)

    return read_regular_file(path, batch, index, read)


async def tail_files(
    paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
) -> list[TailItem]:
    make = functools.partial(TailBatch, paths, n, chunk_size, encoding, errors)
    return await run_batch(make, len(paths), concurrency)


def tail_files_blocking(
    paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
) -> list[TailItem]:
    make = functools.partial(TailBatch, paths, n, chunk_size, encoding, errors)
    return run_batch_blocking(make, len(paths), concurrency)


class PythonTail:
    """Tail_files on the pure-Python backend."""

    async def tail_files(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[Any]:
        return await tail_files(paths, n, chunk_size, concurrency, encoding, errors)

    def tail_files_blocking(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[Any]:
        return tail_files_blocking(paths, n, chunk_size, concurrency, encoding, errors)
