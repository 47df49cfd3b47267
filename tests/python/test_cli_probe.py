"""``sky-async probe``: output, --json, --wait, exit statuses, usage errors; on both backends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import clean_env, require_native


def probe(backend_name: str, *args: str) -> subprocess.CompletedProcess[str]:
    if backend_name == "native":
        require_native()
    return subprocess.run(
        [sys.executable, "-m", "sky_async", "probe", *args],
        env=clean_env(SKY_ASYNC_BACKEND=backend_name),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def reaped_pid() -> int:
    pid = os.posix_spawn(shutil.which("true") or "/bin/true", ["true"], os.environ)
    os.waitpid(pid, 0)
    return pid


@pytest.fixture
def sleeper() -> Iterator[int]:
    pid = os.posix_spawn(shutil.which("sleep") or "/bin/sleep", ["sleep", "60"], os.environ)
    yield pid
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def test_all_alive_prints_a_line_per_pid_and_exits_0(backend_name: str, sleeper: int) -> None:
    result = probe(backend_name, str(os.getpid()), str(sleeper), str(os.getpid()))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{os.getpid()} alive\n{sleeper} alive\n{os.getpid()} alive\n"
    assert result.stderr == ""


def test_any_not_alive_exits_1(backend_name: str) -> None:
    gone = reaped_pid()
    result = probe(backend_name, str(os.getpid()), str(gone), "0", "-1", str(2**70))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{os.getpid()} alive",
        f"{gone} not alive",
        "0 not alive",
        "-1 not alive",
        f"{2**70} not alive",
    ]


def test_json_output(backend_name: str) -> None:
    gone = reaped_pid()
    result = probe(backend_name, "--json", str(os.getpid()), str(gone))
    assert result.returncode == 1
    assert json.loads(result.stdout) == [{"pid": os.getpid(), "alive": True}, {"pid": gone, "alive": False}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["12", "abc"], "sky-async: probe: 'abc' is not a process id (an integer)\n"),
        (["1.5"], "sky-async: probe: '1.5' is not a process id (an integer)\n"),
        (["--timeout", "1", "1"], "sky-async: probe: --timeout needs --wait\n"),
        (
            ["--wait", "--timeout", "-1", "1"],
            "sky-async: probe: --timeout must be a number of seconds >= 0, not '-1'\n",
        ),
        (
            ["--wait", "--timeout", "x", "1"],
            "sky-async: probe: --timeout must be a number of seconds >= 0, not 'x'\n",
        ),
    ],
)
def test_usage_error_is_one_line_and_exit_2(backend_name: str, args: list[str], message: str) -> None:
    result = probe(backend_name, *args)
    assert result.returncode == 2
    assert result.stderr == message
    assert result.stdout == ""


def test_no_pid_is_a_usage_error(backend_name: str) -> None:
    result = probe(backend_name)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_wait_until_every_pid_exits(backend_name: str) -> None:
    shell = subprocess.run(
        ["sh", "-c", "sleep 0.3 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True
    )
    grandchild = int(shell.stdout)
    result = probe(backend_name, "--wait", "--timeout", "30", shell.stdout.strip(), str(reaped_pid()), "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{grandchild} exited"
    assert [line.split()[1] for line in lines] == ["exited"] * 3


def test_wait_timeout_reports_still_running_and_exits_1(backend_name: str, sleeper: int) -> None:
    result = probe(backend_name, "--wait", "--timeout", "0.1", "--json", str(sleeper), str(reaped_pid()))
    assert result.returncode == 1, result.stderr
    states = json.loads(result.stdout)
    assert [state["exited"] for state in states] == [False, True]
    assert states[0]["pid"] == sleeper


def test_probe_is_listed_in_help(backend_name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sky_async", "--help"],
        env=clean_env(SKY_ASYNC_BACKEND=backend_name),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "probe" in result.stdout
