"""File_mounts_digest on the native backend: the C++ engine through ``_native``."""

from __future__ import annotations

from .. import _native
from .._bridge import call
from ..mounts import MountsItem


class NativeMounts:
    async def file_mounts_digest(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> MountsItem:
        item: MountsItem = await call(_native.file_mounts_digest, file_mounts, prefix, concurrency)
        return item

    def file_mounts_digest_blocking(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> MountsItem:
        return _native.file_mounts_digest_blocking(file_mounts, prefix, concurrency)
