"""tail_files for the pure-Python backend: SkyPilot's algorithm (``_tail``) on the backend's pool.

A batch is worked through as the hash batches are (``_fallback._Batch``): at most
``concurrency`` jobs, each taking the next file in input order, so at most that many files
are open at once; cancelling stops the jobs before their next read and waits until every
file they opened is closed.
"""

from __future__ import annotations

import errno
import functools
import os
import stat

from . import _fd_budget
from ._api import NOT_A_REGULAR_FILE
from ._fallback import _OPEN_FLAGS, _Batch, _is_special_file, run_batch, run_batch_blocking
from ._tail import TailItem, decode_lines, read_tail_pieces


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
        super().__init__(paths, "", False, on_done, loop)
        self.n = n
        self.chunk_size = chunk_size
        self.encoding = encoding
        self.errors = errors

    def process(self, index: int) -> TailItem:
        item = _tail_path(self.paths[index], self.n, self.chunk_size, self, index)
        if self.encoding is not None and item is not None and not isinstance(item[0], int):
            try:
                return (decode_lines(item[0], self.encoding, self.errors), item[1])  # type: ignore[arg-type]
            except (UnicodeError, LookupError) as exc:  # errors='strict', or an unknown handler
                return exc
        return item


def _tail_path(path: bytes, n: int, chunk_size: int, batch: _Batch, index: int) -> TailItem:
    try:
        fd = _fd_budget.open_file(path, _OPEN_FLAGS, functools.partial(batch.stopping_at, index))
    except OSError as exc:
        if exc.errno == errno.ENXIO and _is_special_file(path):
            return (errno.EINVAL, NOT_A_REGULAR_FILE)  # a socket, or a device without a driver
        return (exc.errno or errno.EIO, None)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return (errno.EISDIR, None)
        if not stat.S_ISREG(st.st_mode):
            return (errno.EINVAL, NOT_A_REGULAR_FILE)
        stopping = functools.partial(batch.stopping_at, index)
        try:
            return read_tail_pieces(fd, st.st_size, n, chunk_size, stopping)
        except BlockingIOError:  # O_NONBLOCK on a file system that honours it: block instead
            os.set_blocking(fd, True)
            return read_tail_pieces(fd, st.st_size, n, chunk_size, stopping)
    except OSError as exc:
        return (exc.errno or errno.EIO, None)
    except MemoryError:  # a chunk_size or n so large that the region read does not fit
        return (errno.ENOMEM, None)
    finally:
        _fd_budget.close(fd)


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
