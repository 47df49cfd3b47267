"""is_process_alive, probe_processes, wait_for_exit and process_start_time on both backends,
through the coroutines and the sync twins.

Oracles: kill(2)/waitid(2) facts set up by the test itself (a reaped child, a zombie, our own
pid, root's pid 1 seen as nobody) and /proc/<pid>/stat parsed here independently.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_PRELUDE, Caller, fd_count, run_python
from sky_async._api import Api
from sky_async._process import python as _process_py

try:
    from sky_async import _native
except ImportError:  # the native tests fail through the api fixture
    _native = None  # type: ignore[assignment]

PID_MAX = int(Path("/proc/sys/kernel/pid_max").read_text())
# Not pids: kill(2) would address process groups (<= 0), or no process can have them.
INVALID_PIDS = (0, -1, -2, -(2**100), PID_MAX + 1, 2**31, 2**63, 2**64, 2**200)


def last_allocated_pid() -> int:
    """The pid this namespace handed out last: the last field of /proc/loadavg."""
    return int(Path("/proc/loadavg").read_text().split()[-1])


def allocated_between(pid: int, first: int, last: int) -> bool:
    """Whether *pid* was handed out after last_allocated_pid() said *first* and by the time
    it said *last* (pids wrap at pid_max): such a process may have started and exited
    between two probes that both found nothing, so a probe in between may find it alive."""
    if first <= last:
        return first < pid <= last
    return pid > first or pid <= last


def stat_fields(pid: int) -> list[str]:
    """Fields 3.. of /proc/<pid>/stat (the oracle): split after the last ')'."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def spawn(*argv: str) -> int:
    """A child outside subprocess.Popen, so that nothing reaps it behind the test's back."""
    return os.posix_spawn(shutil.which(argv[0]) or argv[0], list(argv), os.environ)


def reaped_pid() -> int:
    pid = spawn("true")
    os.waitpid(pid, 0)
    return pid


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child that has exited and is not reaped until the end of the test."""
    pid = spawn("true")
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert stat_fields(pid)[0] == "Z"
    yield pid
    os.waitpid(pid, 0)


@pytest.fixture
def sleeper() -> Iterator[int]:
    pid = spawn("sleep", "60")
    yield pid
    os.kill(pid, 9)
    os.waitpid(pid, 0)


@pytest.fixture
def polling() -> Iterator[None]:
    """Both backends' wait_for_exit as where pidfd_open(2) is unavailable."""
    if _native is not None:
        _native._force_exit_polling(True)
    _process_py.force_polling = True
    try:
        yield
    finally:
        if _native is not None:
            _native._force_exit_polling(False)
        _process_py.force_polling = False


def pidfds_open() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[pidfd]"
    return count


async def warm_up(api: Api) -> None:
    """Each native worker opens its reactor's descriptors on its first wait: open them all
    before counting descriptors."""
    for _ in range(2 * (os.cpu_count() or 1) + 4):
        await api.wait_for_exit(os.getpid(), timeout=0)


# --- is_process_alive / probe_processes ----------------------------------------------------------


async def test_own_pid_is_alive(call: Caller) -> None:
    assert await call.is_process_alive(os.getpid()) is True
    assert await call.probe_processes([os.getpid()]) == [True]


async def test_reaped_child_is_not_alive(call: Caller) -> None:
    pid = reaped_pid()
    assert await call.is_process_alive(pid) is False
    assert await call.probe_processes([pid]) == [False]


async def test_zombie_is_not_alive(call: Caller, zombie: int) -> None:
    os.kill(zombie, 0)  # kill(2) succeeds for a zombie: a bare kill probe would say alive
    assert await call.is_process_alive(zombie) is False
    assert await call.probe_processes([zombie, os.getpid()]) == [False, True]


@pytest.mark.parametrize("pid", INVALID_PIDS)
async def test_invalid_pids_are_not_alive_and_not_probed(call: Caller, pid: int) -> None:
    # kill(0, 0) and kill(-1, 0) succeed (our process group; every process we may signal):
    # an implementation that passed these pids to kill(2) would answer True.
    os.kill(0, 0)
    os.kill(-1, 0)
    assert await call.is_process_alive(pid) is False
    assert await call.probe_processes([pid, os.getpid()]) == [False, True]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to watch the kill(2) calls")
def test_invalid_pids_never_reach_kill(backend_name: str, api: Api, tmp_path: Path) -> None:
    code = (
        API_PRELUDE
        + """
import asyncio, json
pids = json.loads(sys.argv[2])
out = [api.sync.is_process_alive(p) for p in pids] + api.sync.probe_processes(pids)
out += asyncio.run(api.probe_processes(pids))
print(json.dumps(out))
"""
    )
    trace = tmp_path / "trace"
    result = subprocess.run(
        [
            *("strace", "-f", "-qq", "-e", "trace=kill", "-o", str(trace)),
            *(sys.executable, "-c", code, backend_name, json.dumps([*INVALID_PIDS, os.getpid()])),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0 and "ptrace" in result.stderr:
        pytest.skip(f"strace cannot trace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ([False] * len(INVALID_PIDS) + [True]) * 3
    kills = [line for line in trace.read_text().splitlines() if " kill(" in line]
    # Only the valid pid (this test's process) was probed, once per call.
    assert {line.split(" kill(")[1].split(",")[0] for line in kills} == {str(os.getpid())}, kills
    assert len(kills) == 3


def test_someone_elses_process_is_alive(backend_name: str, api: Api) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    code = (
        API_PRELUDE
        + """
import asyncio, errno, json, os
os.setgid(65534)
os.setuid(65534)
try:
    os.kill(1, 0)
    precondition = "kill(1, 0) succeeded"
except PermissionError:
    precondition = "EPERM"
out = {
    "precondition": precondition,
    "sync": api.sync.is_process_alive(1),
    "async": asyncio.run(api.is_process_alive(1)),
    "batch": api.sync.probe_processes([1]),
    "abatch": asyncio.run(api.probe_processes([1])),
}
print(json.dumps(out))
"""
    )
    result = run_python(code, backend_name)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["precondition"] == "EPERM"
    assert out == {"precondition": "EPERM", "sync": True, "async": True, "batch": [True], "abatch": [True]}


@pytest.mark.parametrize("pid", ["1", 1.0, None, True, False, b"1", [1]])
async def test_pid_that_is_not_an_int_raises_type_error(call: Caller, pid: Any) -> None:
    with pytest.raises(TypeError, match=rf"^pid must be an int, not {type(pid).__name__}$"):
        await call.is_process_alive(pid)
    with pytest.raises(TypeError, match=rf"^pid must be an int, not {type(pid).__name__}$"):
        await call.wait_for_exit(pid, timeout=0)
    with pytest.raises(TypeError, match=rf"^pid must be an int, not {type(pid).__name__}$"):
        call.api.process_start_time(pid)


@pytest.mark.parametrize("bad", ["2", 2.0, None, True])
async def test_batch_with_a_non_int_pid_raises_type_error_naming_its_index(call: Caller, bad: Any) -> None:
    with pytest.raises(TypeError, match=rf"^pids\[2\] must be an int, not {type(bad).__name__}$"):
        await call.probe_processes([os.getpid(), 1, bad, 3])


@pytest.mark.parametrize("pids", ["123", b"12", 5, None, object()])
async def test_pids_that_are_not_an_iterable_of_ints_raise_type_error(call: Caller, pids: Any) -> None:
    with pytest.raises(TypeError, match=r"^pids must be an iterable of ints, not "):
        await call.probe_processes(pids)


async def test_pids_may_be_any_iterable_and_int_subclasses(call: Caller) -> None:
    class Pid(enum.IntEnum):
        OWN = os.getpid()

    me = os.getpid()
    assert await call.probe_processes((me, 0)) == [True, False]
    assert await call.probe_processes(iter([me, 0])) == [True, False]
    assert await call.probe_processes(p for p in [me]) == [True]
    assert await call.probe_processes(range(0)) == []
    assert await call.probe_processes([Pid.OWN]) == [True]
    assert await call.is_process_alive(Pid.OWN) is True


async def test_start_times_tell_the_process_from_a_reuse_of_its_pid(call: Caller, sleeper: int) -> None:
    started = call.api.process_start_time(sleeper)
    assert started == int(stat_fields(sleeper)[19])
    own = call.api.process_start_time(os.getpid())
    assert own == int(stat_fields(os.getpid())[19])
    pids = [sleeper, sleeper, sleeper, os.getpid(), reaped_pid()]
    assert await call.probe_processes(pids, start_times=[started, started + 1, None, own, started]) == [
        True,
        False,
        True,
        True,
        False,
    ]
    assert await call.probe_processes(pids) == [True, True, True, True, False]


async def test_process_start_time_of_no_process_is_none(call: Caller, zombie: int) -> None:
    for pid in (*INVALID_PIDS, reaped_pid()):
        assert call.api.process_start_time(pid) is None
    # A zombie is still the same process until reaped.
    assert call.api.process_start_time(zombie) == int(stat_fields(zombie)[19])


@pytest.mark.parametrize(
    ("start_times", "error", "message"),
    [
        ([1], ValueError, r"^start_times must have one entry per pid: 1 for 2 pids$"),
        ([1, "2"], TypeError, r"^start_times\[1\] must be an int or None, not str$"),
        ([1, True], TypeError, r"^start_times\[1\] must be an int or None, not bool$"),
        ([1, -1], ValueError, r"^start_times\[1\] must be between 0 and 2\*\*64 - 1, got -1$"),
        ([1, 2**64], ValueError, r"^start_times\[1\] must be between 0 and 2\*\*64 - 1"),
        ("12", TypeError, r"^start_times must be a sequence of int or None, not str$"),
        (5, TypeError, r"^start_times must be a sequence of int or None, not int$"),
    ],
)
async def test_bad_start_times_raise(call: Caller, start_times: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        await call.probe_processes([1, 2], start_times=start_times)


async def test_command_name_with_parentheses_and_spaces_is_parsed(call: Caller, tmp_path: Path) -> None:
    # The kernel takes the command name from the executed file's name: "a) Z 1 (b" makes a
    # parser that stops at the first ')' read the state as Z (a zombie).
    link = tmp_path / "a) Z 1 (b"
    link.symlink_to(shutil.which("sleep") or "/bin/sleep")
    pid = os.posix_spawn(link, [str(link), "30"], os.environ)
    try:
        comm = Path(f"/proc/{pid}/comm")
        deadline = time.monotonic() + 10
        while comm.read_text() != "a) Z 1 (b\n" and time.monotonic() < deadline:
            time.sleep(0.001)
        assert comm.read_text() == "a) Z 1 (b\n"
        assert await call.is_process_alive(pid) is True
        assert await call.probe_processes([pid]) == [True]
        assert call.api.process_start_time(pid) == int(stat_fields(pid)[19])
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


async def test_batch_of_10000_pids_equals_the_per_pid_function(call: Caller, zombie: int) -> None:
    live = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    pids = [*live, zombie, 0, -3, PID_MAX + 5, 2**64, reaped_pid()]
    candidate = 1
    while len(pids) < 10_000:
        pids.append(candidate)
        candidate = candidate % PID_MAX + 1
    first_pid = last_allocated_pid()
    before = [call.api.sync.is_process_alive(pid) for pid in pids]
    batch = await call.probe_processes(pids)
    after = [call.api.sync.is_process_alive(pid) for pid in pids]
    last_pid = last_allocated_pid()
    assert len(batch) == len(pids)
    # Other programs start and exit meanwhile: compare where the system stood still, which
    # excludes the pids handed out during the probes.
    same = [i for i in range(len(pids)) if before[i] == after[i]]
    assert len(same) > len(pids) - 100
    stable = [i for i in same if not allocated_between(pids[i], first_pid, last_pid)]
    assert len(stable) > len(same) - 1000, f"pids handed out during the probes: {first_pid} to {last_pid}"
    assert [batch[i] for i in stable] == [before[i] for i in stable]
    assert batch[len(live) : len(live) + 6] == [False] * 6
    assert sum(batch) >= 3


async def test_empty_batch_gives_no_results(call: Caller) -> None:
    assert await call.probe_processes([]) == []
    assert await call.probe_processes([], start_times=[]) == []


async def test_cancelling_a_large_probe_raises_cancelled_error(api: Api) -> None:
    pids = list(range(1, 50_001)) * 2
    task = asyncio.create_task(api.probe_processes(pids))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await api.probe_processes([os.getpid()]) == [True]


def test_probing_works_in_a_forked_child(api: Api) -> None:
    assert api.sync.probe_processes([os.getpid()]) == [True]  # the parent's runtime is running
    parent = os.getpid()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        ok = api.sync.probe_processes([os.getpid(), parent, 0]) == [True, True, False]
        ok = ok and asyncio.run(api.wait_for_exit(os.getpid(), timeout=0)) is False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --- wait_for_exit -------------------------------------------------------------------------------


async def test_wait_for_exit_of_a_child(call: Caller) -> None:
    pid = spawn("sleep", "0.2")
    try:
        assert await call.wait_for_exit(pid, timeout=30) is True
        # Woken by the exit itself, not by a reap: the child is still a zombie.
        assert stat_fields(pid)[0] == "Z"
    finally:
        os.waitpid(pid, 0)


async def test_wait_for_exit_of_a_process_that_is_not_our_child(call: Caller) -> None:
    shell = subprocess.run(
        ["sh", "-c", "sleep 0.3 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True
    )
    pid = int(shell.stdout)
    assert pid != os.getpid() and await call.is_process_alive(pid) is True
    assert await call.wait_for_exit(pid, timeout=30) is True
    assert await call.is_process_alive(pid) is False


@pytest.mark.parametrize("timeout", [0, 0.05])
async def test_wait_for_exit_times_out(call: Caller, timeout: float, sleeper: int) -> None:
    assert await call.wait_for_exit(sleeper, timeout=timeout) is False
    assert await call.wait_for_exit(os.getpid(), timeout) is False


async def test_wait_for_exit_of_a_gone_or_invalid_pid_is_immediate(call: Caller, zombie: int) -> None:
    for pid in (reaped_pid(), zombie, *INVALID_PIDS):
        assert await call.wait_for_exit(pid) is True, pid


@pytest.mark.parametrize(
    ("timeout", "error", "message"),
    [
        (-1, ValueError, r"^timeout must not be negative, got -1$"),
        (-0.5, ValueError, r"^timeout must not be negative, got -0.5$"),
        (float("nan"), ValueError, r"^timeout must be a number of seconds, not NaN$"),
        ("1", TypeError, r"^timeout must be a number of seconds or None, not str$"),
        (True, TypeError, r"^timeout must be a number of seconds or None, not bool$"),
    ],
)
async def test_bad_timeout_raises(call: Caller, timeout: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        await call.wait_for_exit(os.getpid(), timeout=timeout)


async def test_huge_timeouts_mean_no_timeout(call: Caller, zombie: int) -> None:
    for timeout in (float("inf"), 1e300, 10**30):
        assert await call.wait_for_exit(zombie, timeout=timeout) is True


async def test_cancelling_a_wait_raises_cancelled_error_and_closes_the_pidfd(api: Api, sleeper: int) -> None:
    await warm_up(api)
    fds = fd_count()
    task = asyncio.create_task(api.wait_for_exit(sleeper))
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pidfds_open() == 0
    assert fd_count() == fds


async def test_wait_for_in_asyncio_wait_for_times_out_cleanly(api: Api, sleeper: int) -> None:
    await warm_up(api)
    fds = fd_count()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(api.wait_for_exit(sleeper), 0.05)
    assert fd_count() == fds


async def test_many_waits_at_once(api: Api) -> None:
    pids = [spawn("sleep", f"0.{i % 3 + 1}") for i in range(20)]
    try:
        assert await asyncio.gather(*(api.wait_for_exit(pid, timeout=30) for pid in pids)) == [True] * 20
    finally:
        for pid in pids:
            os.waitpid(pid, 0)


@pytest.mark.usefixtures("polling")
async def test_polling_fallback_waits_times_out_and_cancels(call: Caller, api: Api, sleeper: int) -> None:
    pid = spawn("sleep", "0.2")
    try:
        assert await call.wait_for_exit(pid, timeout=30) is True
        assert stat_fields(pid)[0] == "Z"
    finally:
        os.waitpid(pid, 0)
    assert await call.wait_for_exit(sleeper, timeout=0.05) is False
    assert await call.wait_for_exit(reaped_pid()) is True
    assert pidfds_open() == 0
    if call.mode == "async":
        task = asyncio.create_task(api.wait_for_exit(sleeper))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
