"""Process arguments, checked the same way by both backends, so that their errors are the same.

The definition of a live process, and the pure-Python backend's engine, are in ``_process_py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from .._checks import require_int

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


class ProcessBackend(Protocol):
    """What a backend implements for the process probes and exit waits (see ``_api.Backend``)."""

    # *pid* is an int (any size); *pids* a list or tuple whose elements the backend checks
    # (TypeError naming the index); *timeout* seconds or None for none.
    def is_process_alive(self, pid: int) -> bool: ...

    def process_start_time(self, pid: int) -> int | None: ...

    async def probe_processes(
        self, pids: Sequence[Any], start_times: list[int | None] | None
    ) -> list[bool]: ...

    def probe_processes_blocking(
        self, pids: Sequence[Any], start_times: list[int | None] | None
    ) -> list[bool]: ...

    async def wait_for_exit(self, pid: int, timeout: float | None) -> bool: ...

    def wait_for_exit_blocking(self, pid: int, timeout: float | None) -> bool: ...


class ProcessApi:
    """The coroutines: the process probes and exit waits."""

    @property
    def _backend(self) -> ProcessBackend:
        raise NotImplementedError  # the composed Api holds the backend

    async def is_process_alive(self, pid: int) -> bool:
        """Whether a process with this pid exists and has not exited.

        A zombie (exited, not yet reaped) is not alive; someone else's process (EPERM) is.
        A pid <= 0 or above ``/proc/sys/kernel/pid_max`` (a huge int included) is not
        alive and is never passed to ``kill(2)``. TypeError for anything but an int; a
        bool is rejected too (``True`` is not a pid). The probe is one ``kill(2)`` and one
        ``/proc`` read, done inline: cheaper than a hop to a worker thread.
        """
        return self._backend.is_process_alive(check_pid(pid))

    async def probe_processes(
        self, pids: Iterable[int], *, start_times: Iterable[int | None] | None = None
    ) -> list[bool]:
        """``is_process_alive`` for many pids at once, on worker threads; one bool per pid, in order.

        *start_times*, if given, has one entry per pid: an int from ``process_start_time``
        taken when the process was known to be the right one, or None to skip the check.
        A process found at the pid with another start time is a reuse of the pid: False.
        A non-int pid is a bug in the caller: TypeError naming its index, and nothing is
        returned for the others.
        """
        sequence = pid_sequence(pids)
        times = check_start_times(start_times, len(sequence))
        if not sequence:
            return []
        return await self._backend.probe_processes(sequence, times)

    async def wait_for_exit(self, pid: int, timeout: float | None = None) -> bool:
        """Wait until the process *pid* exits: True once it has, False if *timeout* seconds pass first.

        Works for any process, not only children, through a pidfd (no polling); where
        ``pidfd_open`` is unavailable it polls, every 1 ms at first backing off to 50 ms. A
        zombie counts as exited; a pid with no process (or not a valid pid) returns True
        at once. ValueError for a negative or NaN *timeout*. Cancelling the awaiting task
        closes the pidfd.
        """
        return await self._backend.wait_for_exit(check_pid(pid), check_timeout(timeout))

    def process_start_time(self, pid: int) -> int | None:
        """When the process started, in clock ticks since boot (field 22 of ``/proc/<pid>/stat``).

        None when there is no such process or pid. Keep it with a pid and pass it to
        ``probe_processes(start_times=...)`` to tell the process from a later one that got
        the same pid. Synchronous: one ``/proc`` read.
        """
        return self._backend.process_start_time(check_pid(pid))


class SyncProcessApi:
    """The blocking twins: the process probes and exit waits."""

    @property
    def _backend(self) -> ProcessBackend:
        raise NotImplementedError  # the composed SyncApi holds the backend

    def is_process_alive(self, pid: int) -> bool:
        return self._backend.is_process_alive(check_pid(pid))

    def probe_processes(
        self, pids: Iterable[int], *, start_times: Iterable[int | None] | None = None
    ) -> list[bool]:
        sequence = pid_sequence(pids)
        times = check_start_times(start_times, len(sequence))
        if not sequence:
            return []
        return self._backend.probe_processes_blocking(sequence, times)

    def wait_for_exit(self, pid: int, timeout: float | None = None) -> bool:
        return self._backend.wait_for_exit_blocking(check_pid(pid), check_timeout(timeout))

    def process_start_time(self, pid: int) -> int | None:
        return self._backend.process_start_time(check_pid(pid))
