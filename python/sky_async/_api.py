"""The public API, written once over either backend, composed from one mixin per feature.

A backend does the work on already-validated input (paths as bytes, a normalised
algorithm name) and reports each item as a value, an ``(errno, message)`` pair, or
``None`` for an item it did not get to. Everything users see -- argument checks,
exception types, ordering, ``return_exceptions`` -- lives in the features' ``api.py``
(``_<feature>/api.py``: ``<Feature>Backend``, ``<Feature>Api``, ``Sync<Feature>Api``), so
both backends behave the same by construction.

A registry: a new feature adds one base class to each of ``Backend``, ``Api`` and
``SyncApi``.
"""

from __future__ import annotations

from typing import Any, Protocol

from ._hash.api import HashApi, HashBackend, SyncHashApi
from ._mounts.api import MountsApi, MountsBackend, SyncMountsApi
from ._process.api import ProcessApi, ProcessBackend, SyncProcessApi
from ._scan.api import ScanApi, ScanBackend, SyncScanApi
from ._system.api import SyncSystemApi, SystemApi, SystemBackend
from ._tail.api import SyncTailApi, TailApi, TailBackend
from ._upload.api import PackApi, SyncPackApi


class Backend(HashBackend, TailBackend, ProcessBackend, ScanBackend, SystemBackend, MountsBackend, Protocol):
    """What a backend implements: the work on validated input, nothing users see directly.

    Every method gets arguments already checked by Api/SyncApi (paths as bytes, normalised
    names, clamped counts) and reports per item a value, ``(errno, message or None)``, or
    None for an item it never got to; the Api maps those to results and exceptions. Each
    awaitable method has a ``_blocking`` twin for SyncApi. Cancelling an awaitable method
    must stop its work and return only once the files it opened are closed.
    ``tests/python/test_backend_protocol.py`` checks both backends against this.
    """

    name: str

    def info(self) -> dict[str, Any]: ...


class Api(HashApi, TailApi, ProcessApi, ScanApi, SystemApi, MountsApi, PackApi):
    """``hash_file``/``hash_files`` and friends bound to one backend."""

    def __init__(self, backend: Backend) -> None:
        self._bound = backend
        self.sync = SyncApi(backend)

    @property
    def _backend(self) -> Backend:
        return self._bound

    @property
    def backend_name(self) -> str:
        return self._bound.name

    def get_backend_info(self) -> dict[str, object]:
        """Which backend serves the calls, and with what (versions, threads, I/O backend)."""
        return self._bound.info()


class SyncApi(
    SyncHashApi, SyncTailApi, SyncProcessApi, SyncScanApi, SyncSystemApi, SyncMountsApi, SyncPackApi
):
    """Blocking twins of the coroutines, for code without an event loop."""

    def __init__(self, backend: Backend) -> None:
        self._bound = backend

    @property
    def _backend(self) -> Backend:
        return self._bound
