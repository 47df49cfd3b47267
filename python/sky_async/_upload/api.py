"""pack_mounts in the public API: the upload archive, on the caller's side of either backend
(it needs no backend operation)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

from . import pack as _pack


class PackApi:
    """The coroutine: pack_mounts."""

    async def pack_mounts(
        self,
        sources: Sequence[str | os.PathLike[str]],
        output: str | os.PathLike[str],
        *,
        ignore: Literal["skypilot"] | None = "skypilot",
        concurrency: int | None = None,
    ) -> _pack.PackResult:
        """Write the upload archive SkyPilot 0.14.1's ``zip_files_and_folders`` writes for
        *sources* to *output*, byte for byte, and return its counts, sizes, the excluded
        paths and SkyPilot's blob id of it (computed while the files are read, not by
        reading the zip back).

        ``ignore="skypilot"`` leaves out what SkyPilot does (a source directory's root
        ``.skyignore`` if it has one, else git's rules); ``None`` keeps everything. Runs in
        a thread; a cancelled call leaves nothing at *output* and no open descriptor.
        ValueError for a missing source, an output inside a source or an unknown
        *ignore*; OSError for a file that changes size while read, a FIFO or a device.

        Files of up to 8 MiB are read, hashed and compressed by a pool of threads and
        written in archive order; at most *concurrency* files are open at once (None: one
        per CPU, at most 8, plus one), and the files read and not yet written hold at most
        64 MiB. The first failure in archive order is the one raised.
        """
        return await _pack.pack_async(sources, output, ignore, concurrency)


class SyncPackApi:
    """The blocking twin: pack_mounts."""

    def pack_mounts(
        self,
        sources: Sequence[str | os.PathLike[str]],
        output: str | os.PathLike[str],
        *,
        ignore: Literal["skypilot"] | None = "skypilot",
        concurrency: int | None = None,
    ) -> _pack.PackResult:
        return _pack.pack_blocking(sources, output, ignore, concurrency)
