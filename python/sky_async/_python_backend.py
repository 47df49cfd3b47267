"""The pure-Python backend, with the native backend's semantics: ``PythonBackend``.

A registry: each feature's pure-Python implementation, and its adapter
``Python<Feature>``, is ``_<feature>/python.py``; the batches run on the shared pool of
``_batch``. A new feature adds one base class here.
"""

from __future__ import annotations

import platform
import ssl
from typing import Any

from ._batch import _get_executor
from ._hash.python import PythonHash
from ._mounts.python import PythonMounts
from ._process.python import PythonProcess
from ._scan.python import PythonScan
from ._system.python import PythonSystem
from ._tail.python import PythonTail
from ._version import __version__


class PythonBackend(PythonHash, PythonTail, PythonProcess, PythonScan, PythonSystem, PythonMounts):
    name = "python"

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "io_backend": None,
            "version": __version__,
            "threads": _get_executor().size,
            "openssl": ssl.OPENSSL_VERSION,
            "boost": None,
            "python": platform.python_version(),
        }
