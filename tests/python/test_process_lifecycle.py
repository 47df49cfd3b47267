"""Process-level behaviour: backend selection by environment, Ctrl-C, fork, interpreter exit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import subprocess
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    API_PRELUDE,
    NATIVE_IMPORT_ERROR,
    MiB,
    clean_env,
    fds_open_on,
    hashlib_digest,
    require_native,
    run_python,
    wait_child,
    write_random,
)
from sky_async._api import Api

# Forking a process with threads: Python 3.12+ warns about it; SkyPilot does it anyway.
fork_warning = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")

DEFAULT_API_SCRIPT = """
import asyncio, json, sys
import sky_async
from sky_async import sync
path = sys.argv[1]
print(json.dumps({
    "info": sky_async.get_backend_info(),
    "async": asyncio.run(sky_async.hash_file(path)),
    "sync": sync.hash_files([path], "md5"),
}, default=str))
"""


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write_random(tmp_path / "sample.bin", 400_000, seed=9)


def _run_default_api(sample: Path, **env: str) -> tuple[dict[str, Any], str]:
    result = run_python(DEFAULT_API_SCRIPT, os.fspath(sample), env=clean_env(**env), cwd=sample.parent)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["async"] == hashlib_digest(sample)
    assert out["sync"] == [hashlib_digest(sample, "md5")]
    return out["info"], result.stderr


def test_environment_selects_the_python_backend(sample: Path) -> None:
    info, _ = _run_default_api(sample, SKY_ASYNC_BACKEND="python")
    assert info["backend"] == "python"
    assert info["io_backend"] is None


def test_native_backend_is_the_default(sample: Path) -> None:
    require_native()
    info, stderr = _run_default_api(sample)
    assert info["backend"] == "native"
    assert info["io_backend"] in ("io_uring", "threads")
    assert "RuntimeWarning" not in stderr


def test_environment_selects_the_threads_io_backend(sample: Path) -> None:
    require_native()
    info, _ = _run_default_api(sample, SKY_ASYNC_BACKEND="native", SKY_ASYNC_IO_BACKEND="threads")
    assert info["backend"] == "native"
    assert info["io_backend"] == "threads"


IO_URING_SYSCTL = Path("/proc/sys/kernel/io_uring_disabled")


@pytest.fixture
def io_uring_disabled() -> Any:
    """io_uring blocked for new rings the way kernel.io_uring_disabled=2 does it (EPERM for all)."""
    if os.geteuid() != 0 or not IO_URING_SYSCTL.exists():
        pytest.skip("needs root and kernel.io_uring_disabled (Linux 6.6+) to block io_uring")
    previous = IO_URING_SYSCTL.read_text()
    IO_URING_SYSCTL.write_text("2")
    try:
        yield
    finally:
        IO_URING_SYSCTL.write_text(previous)


def test_blocked_io_uring_falls_back_to_threads_silently(sample: Path, io_uring_disabled: None) -> None:
    require_native()
    info, stderr = _run_default_api(sample)
    assert info["backend"] == "native"
    assert info["io_backend"] == "threads"
    assert "Operation not permitted" in info["io_backend_reason"]
    assert stderr == ""


def test_forcing_a_blocked_io_uring_is_a_clear_error(sample: Path, io_uring_disabled: None) -> None:
    require_native()
    result = run_python(
        DEFAULT_API_SCRIPT,
        os.fspath(sample),
        env=clean_env(SKY_ASYNC_IO_BACKEND="io_uring"),
        cwd=sample.parent,
    )
    assert result.returncode != 0
    assert (
        "io_uring was requested but is unavailable: io_uring_setup: Operation not permitted" in result.stderr
    )


def test_unknown_backend_name_warns_and_falls_back_to_auto(sample: Path) -> None:
    info, stderr = _run_default_api(sample, SKY_ASYNC_BACKEND="cobol")
    assert "is not one of auto, native, python" in stderr
    # The warning points at the script's import, not at a line inside the package.
    (warning,) = [line for line in stderr.splitlines() if "is not one of auto" in line]
    assert "sky_async" not in warning.split("RuntimeWarning")[0], warning
    assert info["backend"] == ("native" if NATIVE_IMPORT_ERROR is None else "python")


# --- Ctrl-C and interpreter exit -----------------------------------------------------------------

FD_HELPERS = """
import os, time
def is_open(path):
    target = os.path.realpath(path)
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == target:
                return True
        except OSError:
            pass
    return False
def wait_open(path):
    deadline = time.monotonic() + 20
    while not is_open(path) and time.monotonic() < deadline:
        time.sleep(0.002)
"""

CTRL_C_SCRIPT = (
    API_PRELUDE
    + FD_HELPERS
    + """
import json, signal, threading
# Started with SIGINT ignored (from a background job), Python installs no KeyboardInterrupt
# handler and the signal below would be lost: install it whatever the parent's disposition.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
huge = sys.argv[2]
sent = []
def interrupt():
    wait_open(huge)
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=interrupt, daemon=True).start()
try:
    api.sync.hash_files([huge, huge, huge], "md5", concurrency=2)
except KeyboardInterrupt:
    seconds = time.monotonic() - sent[0]
    print(json.dumps({"outcome": "interrupted", "seconds": seconds, "open": is_open(huge)}))
else:
    print(json.dumps({"outcome": "completed"}))
"""
)


def test_ctrl_c_interrupts_a_blocking_hash_promptly_and_closes_its_files(
    backend_name: str, huge_sparse_file: Path
) -> None:
    if backend_name == "native":
        require_native()
    result = run_python(CTRL_C_SCRIPT, backend_name, os.fspath(huge_sparse_file))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["outcome"] == "interrupted"
    assert out["seconds"] < 2.0
    assert out["open"] is False


EXIT_SCRIPT = (
    API_PRELUDE
    + FD_HELPERS
    + """
import asyncio, threading
huge, small = sys.argv[2], sys.argv[3]
# An async hash abandoned in a closed loop ...
loop = asyncio.new_event_loop()
task = loop.create_task(api.hash_file(huge, "md5"))
loop.run_until_complete(asyncio.sleep(0))
wait_open(huge)
loop.close()
# ... and a blocking one in a daemon thread, both still running when the interpreter exits.
def blocking_hash():
    try:
        api.sync.hash_file(huge, "sha512")
    except Exception:
        pass  # it may be told that the interpreter is exiting
threading.Thread(target=blocking_hash, daemon=True).start()
print(asyncio.run(api.hash_file(small)), flush=True)
"""
)


def test_interpreter_exits_cleanly_with_hashes_still_running(
    backend_name: str, huge_sparse_file: Path, sample: Path
) -> None:
    if backend_name == "native":
        require_native()
    result = run_python(EXIT_SCRIPT, backend_name, os.fspath(huge_sparse_file), os.fspath(sample), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [hashlib_digest(sample)]
    assert "Fatal Python error" not in result.stderr
    assert "Traceback" not in result.stderr


# --- fork ----------------------------------------------------------------------------------------


def _fork_and_hash(api: Api, paths: list[Path], expected: list[str]) -> int:
    """Fork; the child hashes *paths* both ways. Returns the child's exit code (0: correct)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            if api.sync.hash_files(paths, "sha1") != expected:
                code = 2
            elif asyncio.run(api.hash_files(paths, "sha1", concurrency=2)) != expected:
                code = 3
            else:
                code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return wait_child(pid)


@pytest.fixture
def fork_files(tmp_path: Path) -> tuple[list[Path], list[str]]:
    paths = [write_random(tmp_path / f"f{index}", 70_000 * index + 5, seed=index) for index in range(6)]
    return paths, [hashlib_digest(path, "sha1") for path in paths]


@fork_warning
def test_forked_child_hashes_correctly_and_the_parent_keeps_working(
    api: Api, fork_files: tuple[list[Path], list[str]]
) -> None:
    paths, expected = fork_files
    # Use the runtime (threads, rings, a loop) before forking.
    assert api.sync.hash_files(paths, "sha1") == expected
    assert asyncio.run(api.hash_files(paths, "sha1")) == expected
    assert _fork_and_hash(api, paths, expected) == 0
    assert api.sync.hash_files(paths, "sha1") == expected
    assert asyncio.run(api.hash_files(paths, "sha1")) == expected
    assert _fork_and_hash(api, paths, expected) == 0  # and again, from the same parent


@fork_warning
def test_fork_while_another_thread_is_hashing(
    api: Api, fork_files: tuple[list[Path], list[str]], tmp_path: Path
) -> None:
    paths, expected = fork_files
    big = tmp_path / "big.bin"
    with open(big, "wb") as file:
        file.truncate(384 * MiB)
    zeros = hashlib.sha1()
    for _ in range(384):
        zeros.update(bytes(MiB))
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(api.sync.hash_file(big, "sha1")))
    worker.start()
    deadline = time.monotonic() + 20
    while not fds_open_on([big]) and time.monotonic() < deadline:
        time.sleep(0.001)
    try:
        assert _fork_and_hash(api, paths, expected) == 0
    finally:
        worker.join(timeout=60)
    assert outcome == [zeros.hexdigest()]
    assert asyncio.run(api.hash_files(paths, "sha1")) == expected


_pool_api: list[Api] = []


def _hash_in_pool_worker(path: Path) -> tuple[str, str]:
    api = _pool_api[0]
    return api.sync.hash_file(path, "sha1"), asyncio.run(api.hash_file(path, "sha1"))


@fork_warning
def test_multiprocessing_fork_pool_hashes_correctly(
    api: Api, fork_files: tuple[list[Path], list[str]]
) -> None:
    paths, expected = fork_files
    assert api.sync.hash_files(paths, "sha1") == expected  # the runtime is up before the fork
    _pool_api[:] = [api]
    try:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map_async(_hash_in_pool_worker, paths).get(timeout=60)
    finally:
        _pool_api.clear()
    assert results == [(digest, digest) for digest in expected]
    assert api.sync.hash_files(paths, "sha1") == expected


# --- Descriptor limits -----------------------------------------------------------------------------

# A child process on each backend and I/O backend, chosen by its environment.
every_child_backend = pytest.mark.parametrize(
    "env",
    [
        {"SKY_ASYNC_BACKEND": "native", "SKY_ASYNC_IO_BACKEND": "io_uring"},
        {"SKY_ASYNC_BACKEND": "native", "SKY_ASYNC_IO_BACKEND": "threads"},
        {"SKY_ASYNC_BACKEND": "python"},
    ],
    ids=["native-io_uring", "native-threads", "python"],
)


def run_on_child_backend(script: str, argument: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """*script* run with *argument* in a child on the backend *env* selects; skipped where
    that backend is not here (no extension, io_uring blocked)."""
    if env["SKY_ASYNC_BACKEND"] == "native":
        require_native()
    result = run_python(script, argument, env=clean_env(**env))
    if "io_uring was requested but is unavailable" in result.stderr:
        pytest.skip("io_uring is unavailable here")
    return result


LOW_FD_LIMIT_SCRIPT = """
import asyncio, json, os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
import sky_async
paths = [os.path.join(sys.argv[1], name) for name in sorted(os.listdir(sys.argv[1]))]
def run():
    results = asyncio.run(sky_async.hash_files(paths, concurrency=256, return_exceptions=True))
    return [r if isinstance(r, str) else repr(r) for r in results]
# The first call also starts the runtime, whose threads keep their rings and eventfds open.
first = run()
started = len(os.listdir("/proc/self/fd"))
second = run()
print(json.dumps({
    "results": first,
    "same_again": first == second,
    "paths": paths,
    "fds_leaked": len(os.listdir("/proc/self/fd")) - started,
    "io_backend": sky_async.get_backend_info()["io_backend"],
}))
"""


@every_child_backend
def test_more_files_in_flight_than_descriptors_all_hash_correctly(
    tmp_path: Path, env: dict[str, str]
) -> None:
    for index in range(1500):
        write_random(tmp_path / f"f{index:04d}", 3000 + index, seed=index)
    result = run_on_child_backend(LOW_FD_LIMIT_SCRIPT, os.fspath(tmp_path), env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["results"] == [hashlib_digest(Path(p)) for p in out["paths"]]
    assert out["same_again"]
    assert out["fds_leaked"] == 0


SHORT_WRITES_SCRIPT = """
import asyncio, os, sys, threading, time
import sky_async

def short_blocking_writes(seconds):
    # This thread writes 1 MiB at a time to a pipe another thread drains slowly, so every
    # write blocks; returns how many returned short.
    read_end, write_end = os.pipe()
    def drain():
        while os.read(read_end, 4096):
            time.sleep(0.0005)
        os.close(read_end)
    drainer = threading.Thread(target=drain)
    drainer.start()
    block = b"x" * (1 << 20)
    short = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        written = os.write(write_end, block)
        short += written < len(block)
        while written < len(block):
            written += os.write(write_end, block[written:])
    os.close(write_end)
    drainer.join()
    return short

sky_async.sync.hash_file(sys.argv[1])  # the first call starts the runtime, on this thread
after_start = short_blocking_writes(0.3)
asyncio.run(sky_async.hash_files([sys.argv[1]] * 50))
after_async = short_blocking_writes(0.3)
print(after_start, after_async, sky_async.get_backend_info().get("io_backend"))
"""


@every_child_backend
def test_the_callers_blocking_writes_are_never_cut_short(sample: Path, env: dict[str, str]) -> None:
    """A thread that created an io_uring ring gets task work from the kernel (when a ring
    is torn down, for one), which cuts short the blocking call it is in: a write to a full
    pipe returned early, and print() then dropped the rest of its text (a child's 141 KB of
    JSON arrived as its first 64 KiB, about one run in thirty). The runtime's rings are
    made by its own threads, so the calling thread's writes are never cut short."""
    result = run_on_child_backend(SHORT_WRITES_SCRIPT, os.fspath(sample), env)
    assert result.returncode == 0, result.stderr
    after_start, after_async, io_backend = result.stdout.split()
    assert (after_start, after_async) == ("0", "0"), io_backend
