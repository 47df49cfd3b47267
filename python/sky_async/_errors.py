"""How a backend reports a failed item, and the exception it becomes (every feature shares this)."""

from __future__ import annotations

import os
from typing import Union

# One file's report from a backend: a value (a hex digest here; other features have their
# own values), ``(errno, message or None)`` for a failure, or None for a file never reached.
Item = Union[str, "tuple[int, str | None]", None]

NOT_A_REGULAR_FILE = "Not a regular file"


def make_os_error(code: int, message: str | None, path: object) -> OSError:
    # OSError's constructor returns the subclass for the errno (FileNotFoundError, ...).
    return OSError(code, message or os.strerror(code), path)
