"""Process arguments, checked the same way by both backends, so that their errors are the same.

The definition of a live process, and the pure-Python backend's engine, are in ``_process_py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._checks import require_int

# Longer timeouts (about 31 years) and infinity mean no timeout.
MAX_TIMEOUT = 1e9


# --- argument checks (both backends) -------------------------------------------------------------


def check_pid(pid: object) -> int:
    return require_int(pid, "pid")


def pid_sequence(pids: object) -> Sequence[Any]:
    """A list or tuple as given (its elements are checked by the backend), any other iterable as a list."""
    if isinstance(pids, (list, tuple)):
        return pids
    if isinstance(pids, (str, bytes, bytearray, int)):
        raise TypeError(f"pids must be an iterable of ints, not {type(pids).__name__}")
    try:
        listed: list[Any] = list(pids)  # type: ignore[call-overload]  # TypeError for a non-iterable
        return listed
    except TypeError:
        raise TypeError(f"pids must be an iterable of ints, not {type(pids).__name__}") from None


def check_start_times(start_times: object, count: int) -> list[int | None] | None:
    if start_times is None:
        return None
    if isinstance(start_times, (str, bytes, bytearray)):
        raise TypeError(f"start_times must be a sequence of int or None, not {type(start_times).__name__}")
    try:
        times: list[int | None] = list(start_times)  # type: ignore[call-overload]  # TypeError below
    except TypeError:
        raise TypeError(
            f"start_times must be a sequence of int or None, not {type(start_times).__name__}"
        ) from None
    if len(times) != count:
        raise ValueError(f"start_times must have one entry per pid: {len(times)} for {count} pids")
    for index, value in enumerate(times):
        if value is None:
            continue
        if type(value) is not int:
            require_int(value, f"start_times[{index}]", "an int or None")
        if not 0 <= value < 2**64:
            raise ValueError(f"start_times[{index}] must be between 0 and 2**64 - 1, got {value}")
    return times


def check_timeout(timeout: object) -> float | None:
    """Seconds, or None for no timeout."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    value = float(timeout)
    if math.isnan(value):
        raise ValueError("timeout must be a number of seconds, not NaN")
    if value < 0:
        raise ValueError(f"timeout must not be negative, got {timeout}")
    return None if value > MAX_TIMEOUT else value
