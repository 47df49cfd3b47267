"""Scan_tree: what both backends share (argument checks,
results and errors), the backend protocol, and the API mixins that ``_api`` composes."""

from __future__ import annotations

import os
from typing import Any, Protocol, overload

from .. import _batch
from .. import scan as _scan
from .._checks import StrOrBytesPath, encode_path


class ScanBackend(Protocol):
    """What a backend implements for scan_tree (see ``_api.Backend``)."""

    # *options* checked by sky_async.scan.check_scan_options (max_file_size 0: no limit;
    # excluded: the entries to leave out, by their paths relative to the root).
    # The item: the raw result dict (see sky_async.scan.finish_scan), (errno, message or
    # None) when *root* cannot be scanned, or None when the walk was stopped at exit.
    async def scan_tree(self, root: bytes, options: _scan.ScanOptions) -> Any: ...

    def scan_tree_blocking(self, root: bytes, options: _scan.ScanOptions) -> Any: ...


class ScanApi:
    """The coroutines: scan_tree."""

    @property
    def _backend(self) -> ScanBackend:
        raise NotImplementedError  # the composed Api holds the backend

    @overload
    async def scan_tree(
        self,
        path: str | os.PathLike[str],
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[str]: ...
    @overload
    async def scan_tree(
        self,
        path: bytes | os.PathLike[bytes],
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[bytes]: ...
    async def scan_tree(
        self,
        path: StrOrBytesPath,
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[str] | _scan.TreeScan[bytes]:
        """Walk the tree at *path* concurrently; return its counts, sizes and problems.

        Counts files, directories, symlinks and special files below *path* (not *path*
        itself; a symlink as *path* is followed), sums the regular files' sizes, keeps
        the *largest* biggest files and up to *max_problems* problems (unreadable
        files and directories, broken symlinks, symlink loops, special files, names
        that are not UTF-8, files over *max_file_size* bytes) while counting them all,
        and with *collect_files* lists every regular file. Symlinked directories are
        only descended with *follow_symlinks*. With *ignore* (``"skypilot"``, ``"git"``,
        ``"skyignore"`` or ``"rsync"``) the paths those rules exclude are left out and
        not descended, and ``TreeScan.excluded`` lists them with their rules. See
        ``sky_async.scan`` for the rules.

        Raises FileNotFoundError (and the other OSErrors, with errno and filename)
        when *path* itself cannot be scanned, TypeError/ValueError for bad arguments
        (and, with *ignore*, the rule set's own errors: see ``sky_async.scan``).
        """
        options = _scan.check_scan_options(
            follow_symlinks, max_file_size, largest, collect_files, max_problems
        )
        mode = _scan.check_ignore(ignore)
        root = encode_path(path)
        if mode is None:
            return _scan.finish_scan(await self._backend.scan_tree(root, options), path, options)
        # The rules' engines read the tree: on the pool, off the event loop.
        exclusions = await _batch.run_stoppable(lambda _stop: _scan.find_exclusions(root, mode))
        options = _scan.with_exclusions(options, exclusions)
        return _scan.finish_scan(await self._backend.scan_tree(root, options), path, options, exclusions)


class SyncScanApi:
    """The blocking twins: scan_tree."""

    @property
    def _backend(self) -> ScanBackend:
        raise NotImplementedError  # the composed SyncApi holds the backend

    @overload
    def scan_tree(
        self,
        path: str | os.PathLike[str],
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[str]: ...
    @overload
    def scan_tree(
        self,
        path: bytes | os.PathLike[bytes],
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[bytes]: ...
    def scan_tree(
        self,
        path: StrOrBytesPath,
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[str] | _scan.TreeScan[bytes]:
        options = _scan.check_scan_options(
            follow_symlinks, max_file_size, largest, collect_files, max_problems
        )
        mode = _scan.check_ignore(ignore)
        root = encode_path(path)
        if mode is None:
            return _scan.finish_scan(self._backend.scan_tree_blocking(root, options), path, options)
        exclusions = _scan.find_exclusions(root, mode)
        options = _scan.with_exclusions(options, exclusions)
        return _scan.finish_scan(self._backend.scan_tree_blocking(root, options), path, options, exclusions)
