"""The native backend: the C++ runtime, bridged to asyncio (``_bridge``).

A registry: each feature's adapter is ``Native<Feature>`` in ``_<feature>/native.py``; a
new feature adds one base class here.
"""

from __future__ import annotations

from typing import Any

from . import _native
from ._hash.native import NativeHash
from ._mounts.native import NativeMounts
from ._process.native import NativeProcess
from ._scan.native import NativeScan
from ._system.native import NativeSystem
from ._tail.native import NativeTail
from ._upload import native as gitignore_engine

__all__ = ["NativeBackend", "gitignore_engine"]


class NativeBackend(NativeHash, NativeTail, NativeProcess, NativeScan, NativeSystem, NativeMounts):
    name = "native"

    def info(self) -> dict[str, Any]:
        info = dict(_native.build_info())
        info.update(_native.runtime_info())
        info["backend"] = self.name
        return info
