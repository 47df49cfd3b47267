"""Process probing in pure Python: the definition sky_async implements, and the Python backend's engine.

SkyPilot has no ``is_process_alive`` of its own; its job and controller checks (psutil's
``pid_exists`` + ``is_running``, zombies read as not running, ``NoSuchProcess`` -> False)
come down to this definition, which the native backend implements identically:

- a pid <= 0 is not a process and is never probed: ``kill(0, 0)`` and ``kill(-n, 0)``
  address process groups and would succeed;
- a pid above ``/proc/sys/kernel/pid_max`` cannot exist and is never probed (a huge int
  is therefore not alive, not an OverflowError);
- ``kill(pid, 0)``: ESRCH -> not alive; success or EPERM (someone else's process) ->
  alive, unless ``/proc/<pid>/stat`` shows a zombie (``Z``, or ``X`` while being reaped);
- with an expected start time (field 22 of ``/proc/<pid>/stat``, clock ticks since boot,
  from :func:`process_start_time`), another start time means the pid was reused: not alive.

The argument checks that both backends share are in ``_process``.
"""

from __future__ import annotations

import asyncio
import math
import os
import select
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import _batch
from .._checks import require_int
from .api import check_pid

# The kernel's PID_MAX_LIMIT: no pid_max setting exceeds it.
PID_MAX_LIMIT = 4194304
# The polling fallback of wait_for_exit (no pidfd_open): 1 ms at first, so that a
# short-lived process is seen at once, doubling up to 50 ms for long waits.
FIRST_POLL_INTERVAL = 0.001
MAX_POLL_INTERVAL = 0.05

# Tests only: wait_for_exit polls as where pidfd_open is unavailable (ENOSYS, seccomp EPERM).
force_polling = False

_pid_max: int | None = None


def _forget_pid_max() -> None:
    # A child may be in another pid namespace, with its own limit.
    global _pid_max
    _pid_max = None


os.register_at_fork(after_in_child=_forget_pid_max)


def pid_max() -> int:
    """``/proc/sys/kernel/pid_max``, read once per process (again after fork)."""
    global _pid_max
    value = _pid_max
    if value is None:
        try:
            with open("/proc/sys/kernel/pid_max", "rb") as file:
                value = int(file.read())
        except (OSError, ValueError):
            value = PID_MAX_LIMIT
        if not 0 < value <= PID_MAX_LIMIT:
            value = PID_MAX_LIMIT
        _pid_max = value
    return value


def check_pids(pids: Sequence[Any]) -> None:
    """The element check the native backend does in C++, with the same message."""
    for index, pid in enumerate(pids):
        if type(pid) is not int:  # the common case without building a name per pid
            require_int(pid, f"pids[{index}]")


# --- probing -------------------------------------------------------------------------------------


def _read_stat(pid: int) -> tuple[bytes, int] | None:
    """(state, start time) from /proc/<pid>/stat, or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except OSError:
        return None
    # The command name may contain spaces and ')': count fields from the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    try:
        return fields[0], int(fields[19])
    except ValueError:
        return None


def probe(pid: int, start_time: int | None = None, limit: int | None = None) -> bool:
    """Whether *pid* (an int) is alive, and started at *start_time* if that is given."""
    if pid <= 0 or pid > (limit or pid_max()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, and belongs to someone else
        pass
    stat = _read_stat(pid)
    if stat is None:  # hidepid, or gone since: kill's answer stands
        return True
    state, started = stat
    if state in (b"Z", b"X"):
        return False
    return start_time is None or started == start_time


def is_process_alive(pid: int) -> bool:
    """Whether a process with this pid exists and has not exited (a zombie has).

    TypeError for anything but an int (bool included).
    """
    return probe(check_pid(pid))


def process_start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot; None if there is no such process."""
    if check_pid(pid) <= 0 or pid > pid_max():
        return None
    stat = _read_stat(pid)
    return None if stat is None else stat[1]


def probe_many(
    pids: Sequence[int],
    start_times: list[int | None] | None,
    stopped: Callable[[], bool] | None = None,
) -> list[bool]:
    """One result per pid; stops early (returning what it has) once *stopped()* is true."""
    limit = pid_max()
    results = []
    for index, pid in enumerate(pids):
        if stopped is not None and index % 256 == 0 and stopped():
            break
        results.append(probe(pid, None if start_times is None else start_times[index], limit))
    return results


# --- waiting -------------------------------------------------------------------------------------


def _start_wait(pid: int) -> tuple[bool, int | None, int | None]:
    """(already exited, a pidfd or None to poll, the start time that identifies the process)."""
    if pid <= 0 or pid > pid_max():
        return True, None, None
    fd = None
    if not force_polling:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True, None, None
        except (OSError, AttributeError):  # ENOSYS, seccomp EPERM, a thread id, EMFILE; Python < 3.9
            fd = None
    # Read once the pidfd pins the process: both then describe the same one.
    stat = _read_stat(pid)
    start = None if stat is None else stat[1]
    if not probe(pid, start):
        if fd is not None:
            os.close(fd)
        return True, None, None
    return False, fd, start


def _set_once(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


async def wait_for_exit(pid: int, timeout: float | None) -> bool:
    """True once *pid* has exited, False if *timeout* seconds pass first."""
    exited, fd, start = _start_wait(pid)
    if exited:
        return True
    loop = asyncio.get_running_loop()
    if fd is None:
        return await _poll(pid, start, None if timeout is None else loop.time() + timeout)
    try:
        outcome: asyncio.Future[bool] = loop.create_future()
        # A pidfd becomes readable when the process exits (as a zombie, too).
        loop.add_reader(fd, _set_once, outcome, True)
        timer = None if timeout is None else loop.call_later(timeout, _set_once, outcome, False)
        try:
            exited = await outcome
        finally:
            if timer is not None:
                timer.cancel()
            loop.remove_reader(fd)
    finally:
        os.close(fd)
    # An exit that raced with the deadline still counts.
    return exited or not probe(pid, start)


async def _poll(pid: int, start: int | None, deadline: float | None) -> bool:
    loop = asyncio.get_running_loop()
    interval = FIRST_POLL_INTERVAL
    while True:
        delay = interval if deadline is None else min(interval, deadline - loop.time())
        if delay <= 0:
            return not probe(pid, start)
        await asyncio.sleep(delay)
        if not probe(pid, start):
            return True
        interval = min(interval * 2, MAX_POLL_INTERVAL)


def wait_for_exit_blocking(pid: int, timeout: float | None) -> bool:
    """wait_for_exit for a thread without an event loop; Ctrl-C interrupts it."""
    exited, fd, start = _start_wait(pid)
    if exited:
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    if fd is None:
        interval = FIRST_POLL_INTERVAL
        while True:
            delay = interval if deadline is None else min(interval, deadline - time.monotonic())
            if delay <= 0:
                return not probe(pid, start)
            time.sleep(delay)
            if not probe(pid, start):
                return True
            interval = min(interval * 2, MAX_POLL_INTERVAL)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            # poll() takes a C int of milliseconds: wait in slices of a day at most.
            remaining = 86_400.0 if deadline is None else deadline - time.monotonic()
            if poller.poll(max(0, math.ceil(min(remaining, 86_400.0) * 1000))):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return not probe(pid, start)
    finally:
        os.close(fd)


class PythonProcess:
    """The process probes and exit waits on the pure-Python backend."""

    def is_process_alive(self, pid: int) -> bool:
        return probe(pid)

    def process_start_time(self, pid: int) -> int | None:
        return process_start_time(pid)

    async def probe_processes(self, pids: Sequence[Any], start_times: list[int | None] | None) -> list[bool]:
        check_pids(pids)
        return await _batch.run_stoppable(lambda stop: probe_many(pids, start_times, stop.is_set))

    def probe_processes_blocking(
        self, pids: Sequence[Any], start_times: list[int | None] | None
    ) -> list[bool]:
        check_pids(pids)
        return probe_many(pids, start_times)

    async def wait_for_exit(self, pid: int, timeout: float | None) -> bool:
        return await wait_for_exit(pid, timeout)

    def wait_for_exit_blocking(self, pid: int, timeout: float | None) -> bool:
        return wait_for_exit_blocking(pid, timeout)
