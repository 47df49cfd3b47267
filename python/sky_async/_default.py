"""The backend every public function is bound to, chosen once from ``SKY_ASYNC_BACKEND``.

``sky_async`` and ``sky_async.sync`` both take their functions from ``default_api``.
"""

from __future__ import annotations

import os as _os
import re as _re
import warnings as _warnings
from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES

from ._api import Api
from ._python_backend import PythonBackend
from ._upload import gitignore as _gitignore

# The shared libraries the native module links against, and the Debian 12 packages that
# ship them (other systems name them alike).
_LIBRARY_PACKAGES = {
    "liburing.so": "liburing2",
    "libcrypto.so": "libssl3",
    "libssl.so": "libssl3",
    "libstdc++.so": "libstdc++6",
}


def _missing_native(exc: ImportError) -> str:
    """What is missing, in words a user can act on, for the fallback warning."""
    # No compiled file at all: a pure-Python build, or a source tree never built. (Python
    # then blames "a circular import", as a missing submodule of a package being imported.)
    here = _os.path.dirname(__file__)
    if not any(_os.path.exists(_os.path.join(here, "_native" + suffix)) for suffix in _EXTENSION_SUFFIXES):
        return (
            "this installation has no native module: it was built without one "
            "(SKY_ASYNC_BUILD_NATIVE=0, a pure-Python wheel, or a source tree never built); "
            "build from source with a C++20 compiler and the Boost 1.81, liburing and OpenSSL 3 "
            "development files to have it"
        )
    text = str(exc)
    library = _re.search(r"([\w+.-]+\.so(?:\.\d+)*): cannot open shared object file", text)
    if library is not None:
        name = library.group(1)
        package = next((pkg for stem, pkg in _LIBRARY_PACKAGES.items() if name.startswith(stem)), None)
        hint = f" (Debian's package {package})" if package else ""
        return f"the shared library {name} it needs is not installed{hint}: {text}"
    if "GLIBCXX_" in text or "GLIBC_" in text:
        return f"the system's C or C++ runtime is older than the one it was built with: {text}"
    return text


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
            from ._native_backend import NativeBackend, gitignore_engine
        except ImportError as exc:
            if choice == "native":
                raise
            _warnings.warn(
                f"sky_async: the native module could not be loaded ({_missing_native(exc)}); "
                "using the pure-Python backend",
                RuntimeWarning,
                stacklevel=4,
            )
        else:
            # git's ignore rules are not a backend operation (they are called synchronously,
            # from the upload path), so their module is told which engine to run.
            _gitignore.use_native_engine(gitignore_engine)
            return Api(NativeBackend())
    return Api(PythonBackend())


default_api = _load_api()
