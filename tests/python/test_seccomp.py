"""Where seccomp refuses io_uring (Docker's and containerd's default profiles), the native backend
falls back to threads by itself and the suite still passes.

The children run under ``tests/tools/no_io_uring`` (io_uring_setup/enter/register fail with
EPERM). The wrapper is taken from ``SKY_ASYNC_NO_IO_URING`` when set (the CMake test build makes
one), else compiled here from its source with the system C compiler.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sky_async
from conftest import clean_env, hashlib_digest, require_native

REPO = Path(__file__).resolve().parents[2]
WRAPPER_SOURCE = REPO / "tests" / "tools" / "no_io_uring.c"
SKIP_EXIT = 77  # the wrapper's "cannot install a seccomp filter"


@pytest.fixture(scope="session")
def no_io_uring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wrapper, checked to work here (skips where the kernel has no seccomp filters)."""
    given = os.environ.get("SKY_ASYNC_NO_IO_URING")
    if given:
        wrapper = Path(given)
    else:
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            pytest.skip("no C compiler to build tests/tools/no_io_uring.c (or set SKY_ASYNC_NO_IO_URING)")
        wrapper = tmp_path_factory.mktemp("no_io_uring") / "no_io_uring"
        subprocess.run([compiler, "-O2", "-o", str(wrapper), str(WRAPPER_SOURCE)], check=True)
    probe = subprocess.run([str(wrapper), "true"], capture_output=True, text=True, check=False)
    if probe.returncode == SKIP_EXIT:
        pytest.skip(probe.stderr.strip())
    assert probe.returncode == 0, probe.stderr
    return wrapper


def child_env() -> dict[str, str]:
    """No SKY_ASYNC_* setting (so the backends are chosen as for a user), importing this sky_async."""
    package_root = str(Path(sky_async.__file__).resolve().parent.parent)
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def run_blocked(wrapper: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(wrapper), sys.executable, *args],
        env=child_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_native_backend_falls_back_to_threads_and_says_why(no_io_uring: Path) -> None:
    require_native()
    code = (
        "import json, sky_async; "
        "print(json.dumps(sky_async.get_backend_info())); "
        "print(sky_async.sync.hash_file('/etc/hostname'))"
    )
    result = run_blocked(no_io_uring, "-c", code)
    assert result.returncode == 0, result.stderr
    info_line, digest = result.stdout.splitlines()
    info = json.loads(info_line)
    assert info["backend"] == "native"
    assert info["io_backend"] == "threads"
    assert info["io_backend_reason"] == "io_uring_setup: Operation not permitted"
    # Silently: a user in a container gets no warning for what is not their problem.
    assert result.stderr == ""
    assert digest == hashlib_digest("/etc/hostname")


@pytest.fixture
def nested_basetemp() -> Iterator[list[str]]:
    """A temporary root of its own for a nested pytest: in the shared one it would clean up
    old sessions' directories while another session may, and pytest's cleanup is not safe
    against a concurrent one (an abandoned scandir iterator: a ResourceWarning, an error).
    Short, under /tmp: the suites bind AF_UNIX sockets below it (108 bytes at most)."""
    root = tempfile.mkdtemp(prefix="sky-async-nested-")
    try:
        yield [f"--basetemp={root}"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_hash_suite_passes_with_io_uring_blocked(no_io_uring: Path, nested_basetemp: list[str]) -> None:
    require_native()
    # The native half of the hash tests; the Python backend never touches io_uring.
    pytest_args = [
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *nested_basetemp,
        "-k",
        "native",
        "tests/python/test_hash.py",
    ]
    result = run_blocked(no_io_uring, *pytest_args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "error" not in summary, summary
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 100, summary  # the native half really ran, not a handful of tests


# Subsets: the native cases of each suite, without those that force io_uring on purpose or
# only grow a tree or a file (the 200,000-entry scans, random trees, a 4 GiB hash).
BLOCKED_SUBSETS = {
    "test_tail.py": "native and not slow and not (rlimit_nofile_64 and io_uring)",
    "test_scan.py": "native and not slow and not two_hundred_thousand and not cancelling_a_scan "
    "and not agree_on_random",
    "test_process_probe.py": "native and not slow",
    "test_mounts.py": "native and not slow and not random_trees and not cancelling",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("test_file", "minimum"),
    [("test_tail.py", 50), ("test_scan.py", 30), ("test_process_probe.py", 30), ("test_mounts.py", 20)],
)
def test_other_batch_suites_pass_with_io_uring_blocked(
    no_io_uring: Path, test_file: str, minimum: int, nested_basetemp: list[str]
) -> None:
    """The native half of each batch operation's suite, in a child where io_uring is refused."""
    require_native()
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *nested_basetemp]
    pytest_args += ["-k", BLOCKED_SUBSETS[test_file]]
    result = run_blocked(no_io_uring, *pytest_args, f"tests/python/{test_file}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "error" not in summary, summary
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= minimum, summary
