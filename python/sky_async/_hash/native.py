"""Hash_files on the native backend: the C++ engine through ``_native``."""

from __future__ import annotations

from .. import _native
from .._bridge import call
from .._errors import Item


class NativeHash:
    async def hash_files(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]:
        items: list[Item] = await call(_native.hash_files, paths, algorithm, concurrency, stop_on_error)
        return items

    def hash_files_blocking(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]:
        return _native.hash_files_blocking(paths, algorithm, concurrency, stop_on_error)
