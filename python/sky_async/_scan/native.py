"""Scan_tree on the native backend: the C++ engine through ``_native``."""

from __future__ import annotations

from typing import Any

from .. import _native
from .._bridge import call
from ..scan import ScanOptions


class NativeScan:
    async def scan_tree(self, root: bytes, options: ScanOptions) -> Any:
        return await call(_native.scan_tree, root, *options)

    def scan_tree_blocking(self, root: bytes, options: ScanOptions) -> Any:
        return _native.scan_tree_blocking(root, *options)
