"""File_mounts_digest: what both backends share (argument checks,
results and errors), the backend protocol, and the API mixins that ``_api`` composes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from .. import mounts
from .._checks import check_concurrency


class MountsBackend(Protocol):
    """What a backend implements for file_mounts_digest (see ``_api.Backend``)."""

    # *file_mounts* as sky_async.mounts.check_file_mounts returns them: (destination,
    # source) bytes pairs, sorted, the sources not yet ``~``-expanded. The item: the hex
    # digest, or every path that cannot be hashed as (path, errno, message or None), in
    # path order (sky_async.mounts.MountsItem).
    async def file_mounts_digest(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> mounts.MountsItem: ...

    def file_mounts_digest_blocking(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> mounts.MountsItem: ...


class MountsApi:
    """The coroutines: file_mounts_digest."""

    @property
    def _backend(self) -> MountsBackend:
        raise NotImplementedError  # the composed Api holds the backend

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
        pairs = mounts.check_file_mounts(file_mounts)
        head = mounts.check_prefix(prefix)
        limit = check_concurrency(concurrency)
        return mounts.digest_or_raise(await self._backend.file_mounts_digest(pairs, head, limit))


class SyncMountsApi:
    """The blocking twins: file_mounts_digest."""

    @property
    def _backend(self) -> MountsBackend:
        raise NotImplementedError  # the composed SyncApi holds the backend

    def file_mounts_digest(
        self, file_mounts: Mapping[str, str], *, prefix: bytes = b"", concurrency: int | None = None
    ) -> str:
        pairs = mounts.check_file_mounts(file_mounts)
        head = mounts.check_prefix(prefix)
        limit = check_concurrency(concurrency)
        return mounts.digest_or_raise(self._backend.file_mounts_digest_blocking(pairs, head, limit))
