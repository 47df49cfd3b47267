"""hash_files for the pure-Python backend: hashlib on the backend's pool (``_batch``).

At most ``concurrency`` jobs, each taking the next file in input order; hashlib releases
the GIL while it digests a large buffer, so the jobs hash in parallel. Cancelling stops
the jobs before their next read and waits until every file they opened is closed.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
from collections.abc import Callable

from .._batch import _Batch, read_regular_file, run_batch, run_batch_blocking
from .._errors import Item

CHUNK_SIZE = 256 * 1024

_buffers = threading.local()


def _thread_buffer() -> bytearray:
    buffer: bytearray | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = bytearray(CHUNK_SIZE)
    return buffer


class HashBatch(_Batch):
    __slots__ = ("algorithm",)

    def __init__(
        self,
        paths: list[bytes],
        algorithm: str,
        stop_on_error: bool,
        on_done: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(paths, stop_on_error, on_done, loop)
        self.algorithm = algorithm

    def process(self, index: int) -> Item:
        return _hash_path(self.paths[index], self.algorithm, _thread_buffer(), self, index)


def _hash_path(path: bytes, algorithm: str, buffer: bytearray, batch: _Batch, index: int) -> Item:
    """The hex digest of one file, ``(errno, message)`` for a failure, None if stopped first."""

    def read(fd: int, st: os.stat_result) -> Item:
        digest = hashlib.new(algorithm)
        view = memoryview(buffer)
        buffers = (buffer,)
        # To EOF, not to st_size: /proc and /sys files report a size that is not their length.
        while True:
            if batch.stopping_at(index):
                return None
            try:
                got = os.readv(fd, buffers)
            except BlockingIOError:  # O_NONBLOCK on a file system that honours it: block instead
                os.set_blocking(fd, True)
                continue
            if got == 0:
                return digest.hexdigest()
            digest.update(view[:got] if got < CHUNK_SIZE else buffer)

    return read_regular_file(path, batch, index, read)


async def hash_files(paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool) -> list[Item]:
    return await run_batch(
        functools.partial(HashBatch, paths, algorithm, stop_on_error), len(paths), concurrency
    )


def hash_files_blocking(
    paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
) -> list[Item]:
    return run_batch_blocking(
        functools.partial(HashBatch, paths, algorithm, stop_on_error), len(paths), concurrency
    )


class PythonHash:
    """Hash_files on the pure-Python backend."""

    async def hash_files(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]:
        return await hash_files(paths, algorithm, concurrency, stop_on_error)

    def hash_files_blocking(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]:
        return hash_files_blocking(paths, algorithm, concurrency, stop_on_error)
