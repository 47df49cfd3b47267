"""The backend every public function is bound to, chosen once from ``SKY_ASYNC_BACKEND``.

``sky_async`` and ``sky_async.sync`` both take their functions from ``default_api``.
"""

from __future__ import annotations

import os as _os
import warnings as _warnings

from ._api import Api
from ._python_backend import PythonBackend


# The warnings point at the code that imported sky_async: stacklevel 1 is this function,
# 2 this module, 3 sky_async/__init__.py, which imports this module first (import machinery
# frames are skipped).
def _load_api() -> Api:
    choice = _os.environ.get("SKY_ASYNC_BACKEND", "auto").strip().lower() or "auto"
    if choice not in ("auto", "native", "python"):
        _warnings.warn(
            f"SKY_ASYNC_BACKEND={choice!r} is not one of auto, native, python; using auto",
            RuntimeWarning,
            stacklevel=4,
        )
        choice = "auto"
    if choice != "python":
        try:
            from ._native_backend import NativeBackend
        except ImportError as exc:
            if choice == "native":
                raise
            _warnings.warn(
                f"sky_async: the native module could not be loaded ({exc}); using the pure-Python backend",
                RuntimeWarning,
                stacklevel=4,
            )
        else:
            return Api(NativeBackend())
    return Api(PythonBackend())


default_api = _load_api()
