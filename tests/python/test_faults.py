"""The fault suite: stress and hostile conditions, each asserting the exact outcome.

Every case checks for a correct result or a clear typed error, no hang (each await is
bounded), no leaked descriptor and no lost result. Cases that run long are marked
``slow``; scripts/test runs them once, and skips them in the asyncio debug-mode rerun.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import gc
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    API_PRELUDE,
    GiB,
    MiB,
    clean_env,
    fd_count,
    fds_open_on,
    hashlib_digest,
    loop_factories,
    require_native,
    run_python,
    wait_child,
    wait_until_open,
    write_random,
)
from sky_async import FileMountsError
from sky_async._api import Api
from skypilot_mounts_oracle import skypilot_file_mounts_digest as mounts_oracle
from test_scan import make_chain, remove_chain
from test_tail import oracle as tail_oracle

# Forking a process with threads: Python 3.12+ warns about it; SkyPilot does it anyway.
fork_warning = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")

# Bounds that only stop a hang; the operations take a small fraction of them.
HANG_BOUND = 30.0


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str]]:
    root = tmp_path_factory.mktemp("faults")
    paths = [
        write_random(root / f"f{index:03d}", (index * 7919) % (300 * 1024), seed=index) for index in range(60)
    ]
    return paths, [hashlib_digest(path) for path in paths]


async def test_cancelling_at_random_points_leaks_nothing_and_the_loop_stays_usable(
    api: Api, batch: tuple[list[Path], list[str]]
) -> None:
    """1,000 hash_files calls, each cancelled after a random delay (often mid-file)."""
    paths, digests = batch
    rng = random.Random(20261129)
    # The runtime's threads, rings and this loop's completion queue exist from the first call on.
    assert await api.hash_files(paths) == digests
    before = fd_count()
    outcomes = {"cancelled": 0, "finished": 0}
    for _ in range(1000):
        task = asyncio.ensure_future(api.hash_files(paths))
        # From "before it started" to "probably done": the cancel lands everywhere in between.
        await asyncio.sleep(rng.choice((0, 0, 0.0001, 0.0005, 0.001, 0.003)))
        task.cancel()
        try:
            result = await asyncio.wait_for(asyncio.shield(task), HANG_BOUND)
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
        else:
            assert result == digests
            outcomes["finished"] += 1
    assert fd_count() == before
    # The loop and the backend still work, with every result right.
    assert await api.hash_files(paths) == digests
    assert outcomes["cancelled"] > 0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
        )
    ]


def heap_in_use() -> tuple[int, int]:
    """Python blocks allocated, and bytes malloc has handed out (C++ allocations included)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    return sys.getallocatedblocks(), libc.mallinfo2().uordblks


@pytest.mark.slow
@pytest.mark.single_loop
async def test_one_hundred_thousand_awaited_calls_in_one_gather_leave_nothing_behind(
    api: Api, tmp_path: Path
) -> None:
    """Every call gets its result; once caches and pools are warm, a round allocates nothing lasting.

    RSS is no measure here (freed arenas are kept by the allocators), so the test counts live
    Python blocks and malloc's bytes in use: a leak of one object or one C++ result per call
    would show as 100,000 blocks or megabytes.
    """
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    expected = hashlib_digest(empty)
    growth = []
    for _ in range(3):
        gc.collect()
        blocks, heap = heap_in_use()
        results = await asyncio.wait_for(
            asyncio.gather(*(api.hash_file(empty) for _ in range(100_000))), HANG_BOUND * 4
        )
        assert len(results) == 100_000
        assert all(result == expected for result in results)
        del results
        gc.collect()
        after_blocks, after_heap = heap_in_use()
        growth.append((after_blocks - blocks, after_heap - heap))
    # Rounds one and two fill free lists and pools; the third must find them warm.
    blocks, heap = growth[2]
    assert blocks < 1000, growth
    assert heap < 1 * MiB, growth


def test_eight_threads_with_their_own_loops_hash_at_once(
    api: Api, batch: tuple[list[Path], list[str]]
) -> None:
    paths, digests = batch
    errors: list[BaseException] = []
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(asyncio.run(asyncio.wait_for(api.hash_files(paths * 5), HANG_BOUND)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_BOUND * 2)
    assert not errors
    assert results == [digests * 5] * 8


async def test_file_truncated_while_being_hashed_gives_a_digest_of_what_was_read(
    api: Api, tmp_path: Path
) -> None:
    """Reading to EOF means a file cut short mid-read hashes as its bytes up to the cut."""
    path = write_random(tmp_path / "shrinking", 64 * MiB, seed=1)
    content = path.read_bytes()
    task = asyncio.ensure_future(api.hash_file(path))
    await asyncio.sleep(0.002)
    os.truncate(path, 1 * MiB)
    digest = await asyncio.wait_for(task, HANG_BOUND)
    # Whatever the timing, the result is the hash of some prefix of the original file that
    # is at least as long as what is left: never an error, never garbage.
    # A cut landing mid-read leaves the digest of a longer prefix ending on a chunk boundary
    # (both backends read in multiples of 64 KiB), or of the whole file if the read won.
    prefixes = set()
    running = hashlib.sha256(content[: 1 * MiB])
    prefixes.add(running.hexdigest())
    for start in range(1 * MiB, len(content), 64 * 1024):
        running.update(content[start : start + 64 * 1024])
        prefixes.add(running.hexdigest())
    assert digest in prefixes


async def test_file_replaced_by_rename_while_being_hashed_hashes_one_of_the_two(
    api: Api, tmp_path: Path
) -> None:
    """An open file keeps its inode: the digest is of the old file or of the new one, whole."""
    path = write_random(tmp_path / "data", 32 * MiB, seed=2)
    old = hashlib_digest(path)
    replacement = write_random(tmp_path / "next", 3 * MiB, seed=3)
    new = hashlib_digest(replacement)
    task = asyncio.ensure_future(api.hash_file(path))
    await asyncio.sleep(0.001)
    os.rename(replacement, path)
    assert await asyncio.wait_for(task, HANG_BOUND) in (old, new)


async def test_hostile_names_hash_like_any_other(api: Api, tmp_path: Path) -> None:
    names = [b"new\nline", b"tab\tand space ", b"\xff\xfe-not-utf8", b"-starts-with-dash", "ünïcødé".encode()]
    paths = []
    for index, name in enumerate(names):
        path = os.path.join(os.fsencode(tmp_path), name)
        with open(path, "wb") as file:
            file.write(random.Random(index).randbytes(1000 + index))
        paths.append(path)
    results = await api.hash_files(paths)
    assert results == [hashlib_digest(os.fsdecode(path)) for path in paths]


@pytest.mark.parametrize(
    "path", ["/proc/self/status", "/proc/self/maps", "/sys/kernel/mm/transparent_hugepage/enabled"]
)
async def test_proc_and_sys_files_hash_or_fail_cleanly(api: Api, path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this kernel")
    (result,) = await api.hash_files([path], return_exceptions=True)
    # The content changes between reads for /proc/self/*, so only the form can be checked.
    assert isinstance(result, str)
    assert len(result) == 64


# --- every batch operation: a shared workload and its oracles --------------------------------------


class Workload:
    """A small tree of logs and the exact results every batch operation must give for it."""

    def __init__(self, root: Path, sleeper: int, gone: int) -> None:
        self.root = root
        self.logs = sorted((root / "logs").iterdir())
        self.tails = [tail_oracle(path.read_bytes(), 5) for path in self.logs]
        self.digests = [hashlib_digest(path) for path in self.logs]
        self.scan = walk_summary(root)
        self.mounts = {"/workload": str(root), "/one": str(self.logs[0])}
        self.mounts_digest = mounts_oracle(self.mounts)
        self.sleeper = sleeper
        # This process (alive), a reaped child (gone), and pids that are never probed.
        self.pids = [os.getpid(), gone, 0, -1]
        self.alive = [True, False, False, False]


def walk_summary(root: Path | str) -> tuple[int, int, int, list[str]]:
    """(files, directories, bytes, file paths) by os.walk: the oracle for a tree without links."""
    files, directories, size, paths = 0, 0, 0, []
    for top, dirnames, filenames in os.walk(root):
        directories += len(dirnames)
        for name in filenames:
            path = os.path.join(top, name)
            files += 1
            size += os.lstat(path).st_size
            paths.append(path)
    return files, directories, size, sorted(paths)


def scan_summary(result: Any) -> tuple[int, int, int, list[str]]:
    assert result.total_problems == 0, result.problems
    return result.files, result.directories, result.bytes, sorted(result.file_paths)


def write_logs(directory: Path, count: int, lines: int) -> None:
    directory.mkdir(parents=True)
    for index in range(count):
        body = b"".join(b"log %d line %d\n" % (index, line) for line in range(lines + index % 7))
        (directory / f"{index:05d}.log").write_bytes(body)


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    root = tmp_path_factory.mktemp("workload")
    write_logs(root / "logs", 40, 30)
    (root / "nested" / "deeper").mkdir(parents=True)
    write_random(root / "nested" / "deeper" / "blob", 200_000, seed=5)
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names no process (pids are not reused this soon)
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        yield Workload(root, sleeper.pid, gone.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


async def warm_up_waits(api: Api) -> None:
    """A native worker opens its reactor's descriptors on its first wait: open them all first."""
    for _ in range(2 * (os.cpu_count() or 1) + 4):
        await api.wait_for_exit(os.getpid(), timeout=0)


# One batch call per operation, and the check that its result is the exact one.
OPERATIONS = {
    "tail_files": (
        lambda api, w: api.tail_files(w.logs, 5),
        lambda result, w: result == w.tails,
    ),
    "scan_tree": (
        lambda api, w: api.scan_tree(w.root, collect_files=True),
        lambda result, w: scan_summary(result) == w.scan,
    ),
    "file_mounts_digest": (
        lambda api, w: api.file_mounts_digest(w.mounts),
        lambda result, w: result == w.mounts_digest,
    ),
    "probe_processes": (
        lambda api, w: api.probe_processes(w.pids * 50),
        lambda result, w: result == w.alive * 50,
    ),
    # Never exits within the timeout: the outcome is False (timed out) or cancelled.
    "wait_for_exit": (
        lambda api, w: api.wait_for_exit(w.sleeper, timeout=0.002),
        lambda result, w: result is False,
    ),
}


async def settled_fd_count(expected: int, timeout: float = 5.0) -> int:
    """The descriptor count once it is back to *expected*, or what it is at the deadline.

    Every cancelled operation, file_mounts_digest's walk included, now closes its
    descriptors before its task ends; the wait only keeps a late close from failing the
    count, and reports the count it settled on.
    """
    deadline = time.monotonic() + timeout
    while (count := fd_count()) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return count


@pytest.mark.single_loop
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_cancelling_every_batch_operation_at_random_points_leaks_nothing(
    api: Api, workload: Workload, operation: str
) -> None:
    """1,000 calls of each batch operation, each cancelled after a random delay."""
    start, correct = OPERATIONS[operation]
    rng = random.Random(operation)
    await warm_up_waits(api)
    assert correct(await start(api, workload), workload)  # the runtime and its queues are up
    before = fd_count()
    outcomes = {"cancelled": 0, "finished": 0}
    for _ in range(1000):
        task = asyncio.ensure_future(start(api, workload))
        await asyncio.sleep(rng.choice((0, 0, 0, 0.0001, 0.0005, 0.001)))
        task.cancel()
        try:
            result = await asyncio.wait_for(asyncio.shield(task), HANG_BOUND)
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
        else:
            assert correct(result, workload), result
            outcomes["finished"] += 1
    assert await settled_fd_count(before) == before
    assert fds_open_on([workload.root]) == []
    # The loop and the backend still work, with the exact result.
    assert correct(await start(api, workload), workload)
    assert outcomes["cancelled"] > 0, outcomes


# --- RLIMIT_NOFILE of 64 with everything at once ------------------------------------------------

LOW_FD_ALL_AT_ONCE = (
    API_PRELUDE
    + """
import asyncio, json, os, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
root = sys.argv[2]
paths = [os.path.join(root, "logs", name) for name in sorted(os.listdir(os.path.join(root, "logs")))]
async def everything():
    hashes, tails, scan = await asyncio.gather(
        api.hash_files(paths, concurrency=256, return_exceptions=True),
        api.tail_files(paths, 2, concurrency=256, return_exceptions=True),
        api.scan_tree(root, collect_files=True),
    )
    return {
        "hashes": [r if isinstance(r, str) else repr(r) for r in hashes],
        "tails": [r if isinstance(r, list) else repr(r) for r in tails],
        "scan": [scan.files, scan.directories, scan.bytes, sorted(scan.file_paths),
                 [[p.kind, p.path, p.message] for p in scan.problems]],
    }
first = asyncio.run(everything())
started = len(os.listdir("/proc/self/fd"))
second = asyncio.run(everything())
first["same_again"] = first == second
first["fds_leaked"] = len(os.listdir("/proc/self/fd")) - started
print(json.dumps(first))
"""
)


@pytest.fixture(scope="module")
def five_thousand_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("five-thousand")
    write_logs(root / "logs", 5000, 3)
    for index in range(50):
        (root / "tree" / f"d{index // 10}" / f"e{index}").mkdir(parents=True)
        (root / "tree" / f"d{index // 10}" / f"e{index}" / "x").write_bytes(b"x" * index)
    return root


@pytest.mark.parametrize(
    "env",
    [
        {"SKY_ASYNC_IO_BACKEND": "io_uring"},
        {"SKY_ASYNC_IO_BACKEND": "threads"},
        {},
    ],
    ids=["native-io_uring", "native-threads", "python"],
)
def test_hashing_tailing_and_scanning_5000_files_at_once_under_rlimit_nofile_64(
    five_thousand_logs: Path, env: dict[str, str]
) -> None:
    backend = "python" if not env else "native"
    if backend == "native":
        require_native()
    result = run_python(LOW_FD_ALL_AT_ONCE, backend, os.fspath(five_thousand_logs), env=clean_env(**env))
    if "io_uring was requested but is unavailable" in result.stderr:
        pytest.skip("io_uring is unavailable here")
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    logs = sorted((five_thousand_logs / "logs").iterdir())
    assert out["hashes"] == [hashlib_digest(path) for path in logs]
    assert out["tails"] == [tail_oracle(path.read_bytes(), 2) for path in logs]
    files, directories, size, paths = walk_summary(five_thousand_logs)
    assert out["scan"] == [files, directories, size, paths, []]
    assert out["same_again"]
    assert out["fds_leaked"] == 0


# --- fork ------------------------------------------------------------------------------------------


def check_everything_blocking(api: Api, w: Workload) -> list[str]:
    """The names of the operations that gave a wrong result, run through the blocking twins."""
    wrong = []
    if api.sync.tail_files(w.logs, 5) != w.tails:
        wrong.append("sync.tail_files")
    if scan_summary(api.sync.scan_tree(w.root, collect_files=True)) != w.scan:
        wrong.append("sync.scan_tree")
    if api.sync.probe_processes(w.pids) != w.alive:
        wrong.append("sync.probe_processes")
    if api.sync.file_mounts_digest(w.mounts) != w.mounts_digest:
        wrong.append("sync.file_mounts_digest")
    return wrong


async def check_everything(api: Api, w: Workload) -> list[str]:
    """The same through the coroutines, all at once."""
    tails, scan, alive, digest, waited, hashes = await asyncio.wait_for(
        asyncio.gather(
            api.tail_files(w.logs, 5),
            api.scan_tree(w.root, collect_files=True),
            api.probe_processes(w.pids),
            api.file_mounts_digest(w.mounts),
            api.wait_for_exit(w.sleeper, timeout=0.01),
            api.hash_files(w.logs),
        ),
        HANG_BOUND,
    )
    checks = {
        "tail_files": tails == w.tails,
        "scan_tree": scan_summary(scan) == w.scan,
        "probe_processes": alive == w.alive,
        "file_mounts_digest": digest == w.mounts_digest,
        "wait_for_exit": waited is False,
        "hash_files": hashes == w.digests,
    }
    return [name for name, ok in checks.items() if not ok]


def fork_and_check(api: Api, w: Workload) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            wrong = check_everything_blocking(api, w) + asyncio.run(check_everything(api, w))
            if wrong:
                print("wrong in the forked child:", wrong, file=sys.stderr)
            code = 2 if wrong else 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return wait_child(pid)


@fork_warning
def test_forked_child_tails_scans_probes_and_digests_and_the_parent_keeps_working(
    api: Api, workload: Workload
) -> None:
    assert check_everything_blocking(api, workload) == []
    assert asyncio.run(check_everything(api, workload)) == []  # every part of the runtime is up
    assert fork_and_check(api, workload) == 0
    assert check_everything_blocking(api, workload) == []
    assert asyncio.run(check_everything(api, workload)) == []
    assert fork_and_check(api, workload) == 0  # and again, from the same parent


@fork_warning
def test_fork_while_another_thread_is_scanning_and_tailing(
    api: Api, workload: Workload, tmp_path: Path
) -> None:
    long_log = tmp_path / "no-newline.log"
    with open(long_log, "wb") as file:
        file.truncate(32 * MiB)  # no LF: read 256 bytes at a time, a long tail
    outcome: list[Any] = []
    worker = threading.Thread(
        target=lambda: outcome.append(api.sync.tail_files([long_log], 1, chunk_size=256)[0])
    )
    worker.start()
    deadline = time.monotonic() + 20
    while not fds_open_on([long_log]) and time.monotonic() < deadline:
        time.sleep(0.001)
    try:
        assert fork_and_check(api, workload) == 0
    finally:
        worker.join(timeout=HANG_BOUND * 2)
    assert outcome == [["\x00" * (32 * MiB)]]
    assert asyncio.run(check_everything(api, workload)) == []


_pool_state: list[tuple[Api, Workload]] = []


def _check_in_pool_worker(index: int) -> list[str]:
    api, w = _pool_state[0]
    if index % 2:
        return check_everything_blocking(api, w)
    return asyncio.run(check_everything(api, w))


@fork_warning
def test_multiprocessing_fork_pool_tails_scans_probes_and_digests(api: Api, workload: Workload) -> None:
    assert asyncio.run(check_everything(api, workload)) == []  # the runtime is up before the fork
    _pool_state[:] = [(api, workload)]
    try:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map_async(_check_in_pool_worker, range(4)).get(timeout=HANG_BOUND * 2)
    finally:
        _pool_state.clear()
    assert results == [[]] * 4
    assert check_everything_blocking(api, workload) == []


# --- loops closed and interpreters exiting with work in flight ---------------------------------

IN_FLIGHT_SCRIPT = (
    API_PRELUDE
    + """
import asyncio, json, os, threading
long_log, tree, sleeper, small = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
use_uvloop = sys.argv[6] == "uvloop"
def new_loop():
    if use_uvloop:
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
def fds_on(path):
    found = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            found += os.readlink("/proc/self/fd/" + name) == path
        except OSError:
            pass
    return found
# Operations abandoned in a closed loop: a long tail, a deep scan, a wait that never ends.
loop = new_loop()
tasks = [
    loop.create_task(api.tail_files([long_log], 1, chunk_size=64)),
    loop.create_task(api.scan_tree(tree)),
    loop.create_task(api.wait_for_exit(sleeper)),
]
loop.run_until_complete(asyncio.sleep(0.05))
assert not any(task.done() for task in tasks), tasks
loop.close()
# A new loop works at once, with the right results.
loop = new_loop()
print(json.dumps(loop.run_until_complete(api.tail_files([small], 2))), flush=True)
loop.close()
# The same operations blocking in daemon threads, still running when the interpreter exits.
def blocking(call):
    try:
        call()
    except Exception:
        pass  # it may be told that the interpreter is exiting
for call in (
    lambda: api.sync.tail_files([long_log], 1, chunk_size=64),
    lambda: api.sync.scan_tree(tree),
    lambda: api.sync.wait_for_exit(sleeper),
):
    threading.Thread(target=blocking, args=(call,), daemon=True).start()
# And once more in a loop the interpreter never closes.
loop = new_loop()
pending = [loop.create_task(api.wait_for_exit(sleeper)), loop.create_task(api.scan_tree(tree))]
loop.run_until_complete(asyncio.sleep(0.01))
print("exiting", flush=True)
"""
)


@pytest.fixture(scope="module")
def deep_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """root/d/d/.../d, 10,000 levels, with leaf (5 bytes) at the bottom and e/x every 1,000."""
    root = str(tmp_path_factory.mktemp("deep") / "c")
    make_chain(root, 10_000)
    yield root
    remove_chain(root)


@pytest.mark.parametrize("loop_name", list(loop_factories()))
def test_loop_closed_and_interpreter_exiting_with_tail_scan_and_wait_in_flight(
    backend_name: str, workload: Workload, deep_chain: str, tmp_path: Path, loop_name: str
) -> None:
    if backend_name == "native":
        require_native()
    long_log = tmp_path / "no-newline.log"
    with open(long_log, "wb") as file:
        file.truncate(256 * MiB)
    small = workload.logs[3]
    result = run_python(
        IN_FLIGHT_SCRIPT,
        backend_name,
        os.fspath(long_log),
        deep_chain,
        str(workload.sleeper),
        os.fspath(small),
        loop_name,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tail_line, exiting = result.stdout.splitlines()
    assert json.loads(tail_line) == [tail_oracle(small.read_bytes(), 2)]
    assert exiting == "exiting"
    assert "Fatal Python error" not in result.stderr
    assert "Traceback" not in result.stderr


# --- files that change while tail_files reads them ---------------------------------------------


def numbered_lines(first: int, count: int) -> bytes:
    return b"".join(b"line %08d\n" % index for index in range(first, first + count))


async def tail_while(api: Api, path: Path, change: Any, others: list[Path]) -> Any:
    """tail_files of *path* (every line, read 64 bytes at a time) and *others*; *change* runs
    once *path* is open. Returns *path*'s result after checking the others' exact results."""
    task = asyncio.ensure_future(api.tail_files([path, *others], 10**9, chunk_size=64))
    await wait_until_open(path)
    change()
    result, *rest = await asyncio.wait_for(task, HANG_BOUND)
    assert rest == [tail_oracle(other.read_bytes(), 10**9) for other in others]  # none lost
    return result


@pytest.fixture
def stable_logs(workload: Workload) -> list[Path]:
    return workload.logs[:5]


async def test_tailing_a_file_that_grows_gives_the_lines_of_one_of_its_states(
    api: Api, tmp_path: Path, stable_logs: list[Path]
) -> None:
    path = tmp_path / "growing.log"
    old = numbered_lines(0, 200_000)  # 3.6 MiB: tens of thousands of 64-byte reads
    path.write_bytes(old)
    appended = numbered_lines(200_000, 1000)

    def grow() -> None:
        with open(path, "ab") as file:
            file.write(appended)

    result = await tail_while(api, path, grow, stable_logs)
    # Read backwards from the size it had when opened, or from the new one: a whole state.
    assert result in (tail_oracle(old, 10**9), tail_oracle(old + appended, 10**9))


async def test_tailing_a_file_that_is_truncated_gives_short_reads_not_an_error(
    api: Api, tmp_path: Path, stable_logs: list[Path]
) -> None:
    path = tmp_path / "shrinking.log"
    old = numbered_lines(0, 200_000)
    path.write_bytes(old)
    result = await tail_while(api, path, lambda: os.truncate(path, 100), stable_logs)
    assert isinstance(result, list) and all(isinstance(line, str) for line in result)
    if result != tail_oracle(old, 10**9):  # unless the read won the race, some reads were short:
        assert len(result) < 200_000
        # every byte read was in the file at its offset (a short read joins pieces of lines)
        assert set("".join(result)) <= set("line 0123456789\n")


async def test_tailing_a_file_replaced_by_rename_gives_the_old_or_the_new_file(
    api: Api, tmp_path: Path, stable_logs: list[Path]
) -> None:
    path = tmp_path / "rotating.log"
    old = numbered_lines(0, 200_000)
    path.write_bytes(old)
    new = numbered_lines(7_000_000, 50)
    replacement = tmp_path / "next.log"
    replacement.write_bytes(new)
    result = await tail_while(api, path, lambda: os.rename(replacement, path), stable_logs)
    # The open descriptor keeps the old inode: its lines, or the new file's if opened later.
    assert result in (tail_oracle(old, 10**9), tail_oracle(new, 10**9))


# --- hostile trees: scan_tree, preflight, file_mounts_digest ------------------------------------


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Iterator[bytes]:
    """Every awkward kind of entry a file mount can hold, with bytes names."""
    root = os.path.join(os.fsencode(tmp_path), b"hostile")
    os.makedirs(os.path.join(root, b"sub\nwith newline"))
    entries = {
        b"new\nline": b"newline",
        b"\xff\xfe-not-utf8": b"latin",
        b"sub\nwith newline/inner": b"inner",
        b"-dash": b"",
    }
    for name, body in entries.items():
        with open(os.path.join(root, name), "wb") as file:
            file.write(body)
    os.symlink(b"self", os.path.join(root, b"self"))  # ELOOP
    os.symlink(b"..", os.path.join(root, b"sub\nwith newline", b"up"))  # a loop through a directory
    os.mkfifo(os.path.join(root, b"fifo"))
    server = socket.socket(socket.AF_UNIX)
    server.bind(os.path.join(root, b"sock"))
    try:
        yield root
    finally:
        server.close()


async def test_scan_of_a_hostile_tree_reports_each_problem_exactly(api: Api, hostile_tree: bytes) -> None:
    root = hostile_tree
    before = fd_count()
    result = await asyncio.wait_for(api.scan_tree(root, collect_files=True), HANG_BOUND)
    j = os.path.join
    assert (result.files, result.directories, result.symlinks, result.special_files) == (4, 1, 2, 2)
    assert result.bytes == len(b"newline" + b"latin" + b"inner")
    assert sorted(result.file_paths) == sorted(
        [
            j(root, b"new\nline"),
            j(root, b"\xff\xfe-not-utf8"),
            j(root, b"sub\nwith newline/inner"),
            j(root, b"-dash"),
        ]
    )
    assert sorted((p.kind, p.path) for p in result.problems) == sorted(
        [
            ("symlink_loop", j(root, b"self")),
            # sub\nwith newline/up -> .. loops only when followed.
            ("special_file", j(root, b"fifo")),
            ("special_file", j(root, b"sock")),
            ("invalid_utf8_name", j(root, b"\xff\xfe-not-utf8")),
        ]
    )
    assert fd_count() == before


async def test_file_mounts_digest_of_a_hostile_tree_lists_every_problem(
    api: Api, hostile_tree: bytes
) -> None:
    before = fd_count()
    with pytest.raises(FileMountsError) as caught:
        await asyncio.wait_for(api.file_mounts_digest({"/h": os.fsdecode(hostile_tree)}), HANG_BOUND)
    problems = {(path, error.errno) for path, error in caught.value.problems}
    decoded = os.fsdecode(hostile_tree)
    assert problems == {
        (decoded + "/fifo", errno.EINVAL),
        (decoded + "/sock", errno.EINVAL),
        (decoded + "/self", errno.ELOOP),
    }
    assert fd_count() == before
    # Without the special entries the digest is SkyPilot's, hostile names and all.
    for name in (b"fifo", b"sock", b"self"):
        os.unlink(os.path.join(hostile_tree, name))
    mounts = {"/h": os.fsdecode(hostile_tree)}
    expected = mounts_oracle_bytes(hostile_tree)
    assert await api.file_mounts_digest(mounts) == expected


def mounts_oracle_bytes(root: bytes) -> str:
    """SkyPilot's stream for one directory mount at "/h", fed raw bytes names (as
    sky_async.mounts documents for names that are not UTF-8) in byte order."""
    digest = hashlib.sha256(b"/h\0dir")
    for top, dirnames, filenames in os.walk(root):
        digest.update(top + b"\0")
        dirnames.sort()
        for name in dirnames:
            digest.update(name + b"\0")
        digest.update(b"\0")
        for name in sorted(filenames):
            digest.update(name + b"\0")
            with open(os.path.join(top, name), "rb") as file:
                digest.update(hashlib.sha256(file.read()).digest())
        digest.update(b"\0")
    digest.update(b"\0\0")
    return digest.hexdigest()


def run_preflight(backend: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sky_async", "preflight", "--json", *args],
        env=clean_env(SKY_ASYNC_BACKEND=backend),
        capture_output=True,
        text=True,
        timeout=HANG_BOUND * 2,
        check=False,
    )


def test_preflight_of_a_hostile_tree_reports_it_without_a_traceback(
    backend_name: str, hostile_tree: bytes
) -> None:
    if backend_name == "native":
        require_native()
    done = run_preflight(backend_name, os.fsdecode(hostile_tree))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (tree,) = json.loads(done.stdout)["trees"]
    assert (tree["files"], tree["directories"], tree["symlinks"], tree["special_files"]) == (4, 1, 2, 2)
    assert sorted(p["kind"] for p in tree["problems"]) == [
        "invalid_utf8_name",
        "special_file",
        "special_file",
        "symlink_loop",  # self (ELOOP); sub\nwith newline/up -> .. is no loop when not followed
    ]


def test_preflight_and_file_mounts_digest_of_a_10000_deep_chain(
    backend_name: str, api: Api, deep_chain: str
) -> None:
    if backend_name == "native":
        require_native()
    done = run_preflight(backend_name, deep_chain)
    assert done.returncode == 0, done.stderr
    (tree,) = json.loads(done.stdout)["trees"]
    assert (tree["files"], tree["directories"], tree["problems"]) == (11, 10_010, [])
    # Paths past PATH_MAX cannot be opened by name (nor by SkyPilot's os.walk, which skips
    # them silently): a clear error naming the first of them, never a hang or a crash.
    before = fd_count()
    with pytest.raises(FileMountsError) as caught:
        api.sync.file_mounts_digest({"/deep": deep_chain})
    assert {error.errno for _, error in caught.value.problems} == {errno.ENAMETOOLONG}
    assert fd_count() == before


UNPRIVILEGED_SCRIPT = (
    API_PRELUDE
    + """
import asyncio, json, os
import concurrent.futures.thread  # imported lazily, from under /root, which nobody cannot read
from sky_async import FileMountsError
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
root = sys.argv[2]
out = {"uid": os.getuid()}
try:
    asyncio.run(api.file_mounts_digest({"/t": root}))
except FileMountsError as exc:
    out["mounts"] = [[path, error.errno] for path, error in exc.problems]
scan = api.sync.scan_tree(root)
out["scan"] = [[p.kind, p.path, p.errno] for p in scan.problems]
out["fds"] = len(os.listdir("/proc/self/fd"))
print(json.dumps(out), flush=True)
"""
)


def test_unreadable_directories_for_an_unprivileged_user(backend_name: str, api: Api) -> None:
    """As root nothing is unreadable: a child drops to nobody (65534) first."""
    if backend_name == "native":
        require_native()
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    base = tempfile.mkdtemp(prefix="sky_async-faults-perm-")
    root = os.path.join(base, "perm")
    try:
        os.chmod(base, 0o755)
        os.makedirs(os.path.join(root, "locked", "deeper"))
        os.makedirs(os.path.join(root, "open"))
        Path(root, "open", "fine").write_bytes(b"fine")
        Path(root, "locked", "deeper", "hidden").write_bytes(b"hidden")
        os.chmod(os.path.join(root, "locked"), 0o700)
        result = run_python(UNPRIVILEGED_SCRIPT, backend_name, root)
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["uid"] == 65534
        locked = os.path.join(root, "locked")
        assert out["mounts"] == [[locked, errno.EACCES]]
        assert out["scan"] == [["unreadable_directory", locked, errno.EACCES]]
        preflight = subprocess.run(
            [
                sys.executable,
                "-c",
                # Imports first: modules are imported lazily, from under /root, unreadable to nobody.
                "import os, sys, concurrent.futures.thread, sky_async.cli.preflight\n"
                "from sky_async.cli import main\n"
                "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
                "sys.exit(main(['preflight', '--json', sys.argv[1]]))",
                root,
            ],
            env=clean_env(SKY_ASYNC_BACKEND=backend_name),
            capture_output=True,
            text=True,
            timeout=HANG_BOUND * 2,
            check=False,
        )
        assert preflight.returncode == 1, preflight.stderr
        (tree,) = json.loads(preflight.stdout)["trees"]
        assert [(p["kind"], p["path"]) for p in tree["problems"]] == [("unreadable_directory", locked)]
    finally:
        shutil.rmtree(base)


async def test_scan_of_proc_self(api: Api) -> None:
    before = fd_count()
    result = await asyncio.wait_for(api.scan_tree("/proc/self"), HANG_BOUND)
    assert result.files > 20 and result.directories > 5
    # /proc changes as it is read (tasks, fds): whatever is reported is a known kind with a path.
    assert all(p.path.startswith("/proc/self/") for p in result.problems)
    assert fd_count() == before


async def test_tail_of_proc_self_status_gives_its_last_lines(api: Api) -> None:
    # Its st_size is 0, as for every /proc and /sys file: tail reads it forwards.
    before = fd_count()
    (lines,) = await api.tail_files(["/proc/self/status"], 2)
    assert [line.split(":")[0] for line in lines] == ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
    assert fd_count() == before


@pytest.fixture(scope="module")
def sparse_4gib_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """4 GiB of hole then two lines, and its SHA-256 (hashed from memory, not the disk)."""
    path = tmp_path_factory.mktemp("sparse") / "sparse.log"
    tail = b"\nlast but one\nlast\n"
    with open(path, "wb") as file:
        file.truncate(4 * GiB)
        file.seek(4 * GiB)
        file.write(tail)
    digest = hashlib.sha256()
    zeros = bytes(64 * MiB)
    for _ in range(64):
        digest.update(zeros)
    digest.update(tail)
    return path, digest.hexdigest()


def _rchar() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split(":")[1]) for line in io if line.startswith("rchar:"))


@pytest.mark.slow
@pytest.mark.single_loop
async def test_4gib_sparse_file_tails_in_kilobytes_and_hashes_right(
    api: Api, sparse_4gib_log: tuple[Path, str]
) -> None:
    path, digest = sparse_4gib_log
    before = _rchar()
    assert await api.tail_files([path], 2) == [["last but one\n", "last"]]
    assert _rchar() - before < 64 * 1024
    assert await asyncio.wait_for(api.hash_files([path]), HANG_BOUND * 2) == [digest]


# --- concurrency: threads with their own loops doing everything at once ------------------------


def test_eight_threads_with_their_own_loops_hash_tail_scan_and_probe_at_once(
    api: Api, workload: Workload
) -> None:
    errors: list[BaseException] = []
    results: list[list[str]] = []

    def run() -> None:
        try:
            results.append(asyncio.run(check_everything(api, workload)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_BOUND * 2)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors
    assert results == [[]] * 8


# --- process functions never signal ---------------------------------------------------------------

SIGNAL_SCRIPT = (
    API_PRELUDE
    + """
import asyncio, json, os
sleeper, gone = int(sys.argv[2]), int(sys.argv[3])
pids = [os.getpid(), sleeper, gone, 1]
async def run():
    return [
        await api.is_process_alive(sleeper),
        await api.probe_processes(pids),
        await api.wait_for_exit(sleeper, timeout=0.05),
        await api.wait_for_exit(gone),
    ]
out = asyncio.run(run())
out += [api.sync.probe_processes(pids), api.sync.wait_for_exit(sleeper, timeout=0.05)]
print(json.dumps(out))
"""
)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to watch the signal calls")
def test_process_functions_only_ever_send_signal_zero(
    backend_name: str, workload: Workload, tmp_path: Path
) -> None:
    """kill(pid, 0) checks for existence; no call may deliver a real signal to anything."""
    if backend_name == "native":
        require_native()
    trace = tmp_path / "trace"
    result = subprocess.run(
        [
            *("strace", "-f", "-qq", "-o", str(trace)),
            *("-e", "trace=kill,tkill,tgkill,pidfd_send_signal,rt_sigqueueinfo,rt_tgsigqueueinfo"),
            *(
                sys.executable,
                "-c",
                SIGNAL_SCRIPT,
                backend_name,
                str(workload.sleeper),
                str(_find_gone_pid()),
            ),
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0 and "ptrace" in result.stderr:
        pytest.skip(f"strace cannot trace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    probed = [True, True, False, True]
    assert json.loads(result.stdout) == [True, probed, False, True, probed, False]
    calls = [match.groups() for match in re.finditer(r"^\d+\s+(\w+)\(([^)]*)\)", trace.read_text(), re.M)]
    assert calls, "strace saw no kill(2) at all"
    assert {name for name, _ in calls} == {"kill"}, calls
    assert {args.split(",")[1].strip() for _, args in calls} == {"0"}, calls
    assert Path(f"/proc/{workload.sleeper}").exists()  # still there, unharmed


def _find_gone_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
