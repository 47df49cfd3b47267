"""The interpreter exits cleanly while native work is in flight, every time.

CPython ends a daemon thread that asks for the GIL once finalization has begun with
``pthread_exit``, which unwinds the thread's C++ frames. Before the fix the native module took
the GIL back in a destructor (``py::gil_scoped_release``), so that unwind called
``std::terminate`` and the process aborted ("terminate called without an active exception") in
about one exit in three. Each scenario below is therefore run many times in fresh interpreters:
one abort in 200 runs is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import API_PRELUDE, clean_env, require_native, write_random
from test_faults import IN_FLIGHT_SCRIPT, make_chain, remove_chain

RUNS = {"native": 200, "python": 20}  # the pure-Python backend has no C++ frame to unwind
KiB = 1024
MiB = 1024 * KiB

# Daemon threads loop over a blocking call; the main thread exits while they are inside it.
DAEMONS_THEN_EXIT = (
    API_PRELUDE
    + """
import threading, time
paths = sys.argv[2:]
def hash_many():
    while True:
        try:
            api.sync.hash_files(paths)
        except RuntimeError:
            pass  # told that the runtime is shutting down
def hash_one():
    while True:
        try:
            for path in paths:
                api.sync.hash_file(path)
        except RuntimeError:
            pass
for target in (hash_many, hash_many, hash_one, hash_one):
    threading.Thread(target=target, daemon=True).start()
time.sleep(0.03)
sys.exit(0)
"""
)


def run_many(runs: int, argv: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Runs ``python -c argv...`` *runs* times, two at a time; every child is waited for."""

    def run_once(_: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", *argv],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(run_once, range(runs)))


def describe_failures(results: list[subprocess.CompletedProcess[str]]) -> str:
    failed = [result for result in results if result.returncode != 0]
    aborts = sum(result.returncode == -signal.SIGABRT for result in results)
    first = failed[0] if failed else None
    detail = "" if first is None else f"; first: exit {first.returncode}, stderr {first.stderr[-2000:]!r}"
    return f"{len(failed)} of {len(results)} runs failed ({aborts} aborted){detail}"


@pytest.fixture(scope="module")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("exit-files")
    return [os.fspath(write_random(root / f"f{index}", 64 * KiB, seed=index)) for index in range(64)]


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["native", "python"])
def test_exit_with_daemon_threads_inside_hash_files_and_hash_file_never_aborts(
    backend_name: str, small_files: list[str]
) -> None:
    if backend_name == "native":
        require_native()
    results = run_many(RUNS[backend_name], [DAEMONS_THEN_EXIT, backend_name, *small_files])
    assert all(result.returncode == 0 for result in results), describe_failures(results)
    assert not any("terminate called" in result.stderr for result in results), describe_failures(results)


@pytest.fixture(scope="module")
def in_flight_inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    root = tmp_path_factory.mktemp("exit-in-flight")
    long_log = root / "no-newline.log"
    with open(long_log, "wb") as file:
        file.truncate(256 * MiB)  # sparse: one line that a tail of 1 line reads to the start
    small = root / "small.log"
    small.write_bytes(b"one\ntwo\nthree\n")
    chain = os.fspath(root / "c")
    make_chain(chain, 10_000)
    try:
        yield os.fspath(long_log), chain, os.fspath(small)
    finally:
        remove_chain(chain)


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["native", "python"])
def test_exit_with_tail_scan_and_wait_in_flight_never_aborts(
    backend_name: str, in_flight_inputs: tuple[str, str, str]
) -> None:
    if backend_name == "native":
        require_native()
    long_log, chain, small = in_flight_inputs
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        argv = [IN_FLIGHT_SCRIPT, backend_name, long_log, chain, str(sleeper.pid), small, "asyncio"]
        results = run_many(RUNS[backend_name], argv)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert all(result.returncode == 0 for result in results), describe_failures(results)
    # Each run also printed the right tail from a fresh loop after the first loop was closed.
    outputs = {result.stdout for result in results}
    assert outputs == {json.dumps([["two\n", "three"]]) + "\nexiting\n"}, outputs
