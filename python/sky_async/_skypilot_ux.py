"""SkyPilot's way of raising a user-facing error, for compat's exact definitions.

SkyPilot raises such errors inside ``ux_utils.print_exception_no_traceback()``, which
sets ``sys.tracebacklimit = 0`` and restores it only when the block ends normally; a
raise inside it therefore leaves the limit at 0 for the rest of the process (unless
``SKYPILOT_DEBUG`` is ``true`` or ``1``, when the block does nothing). A drop-in has to
leave the same state behind, or a caller printing tracebacks afterwards would see a
difference.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def _debugging() -> bool:
    """SkyPilot's ``env_options.Options.SHOW_DEBUG_INFO.get()``."""
    return os.getenv("SKYPILOT_DEBUG", "False").lower() in ("true", "1")


@contextlib.contextmanager
def print_exception_no_traceback(applies: bool = True) -> Iterator[None]:
    """SkyPilot's context manager of that name; a no-op when *applies* is false (the
    sky_async forms of the same definitions, which leave ``sys`` alone)."""
    if not applies or _debugging():
        yield
        return
    original = getattr(sys, "tracebacklimit", 1000)
    sys.tracebacklimit = 0
    yield
    sys.tracebacklimit = original
