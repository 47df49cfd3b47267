"""Tail_files on the native backend: the C++ engine through ``_native``."""

from __future__ import annotations

from .. import _native
from .._bridge import call
from .api import TailItem


class NativeTail:
    async def tail_files(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[TailItem]:
        items: list[TailItem] = await call(
            _native.tail_files, paths, n, chunk_size, concurrency, encoding, errors
        )
        return items

    def tail_files_blocking(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[TailItem]:
        return _native.tail_files_blocking(paths, n, chunk_size, concurrency, encoding, errors)
