"""``sky-async tail`` against coreutils ``tail``: the same bytes on stdout, one-line errors, exit codes."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import clean_env, interruptible_child

pytestmark = pytest.mark.skipif(shutil.which("tail") is None, reason="coreutils tail is not installed")

CONTENTS = {
    "final_newline": b"one\ntwo\nthree\n",
    "no_final_newline": b"one\ntwo\nthree",
    "crlf": b"a\r\nb\r\nc\r\n",
    "empty": b"",
    "only_newlines": b"\n\n\n",
    "invalid_utf8": b"\xff\xfe\n\xe2\x82\nend\xc3",
    "long": b"".join(b"log line %d\n" % i for i in range(5000)),
    "lone_cr": b"x\ry\rz",
}


@pytest.fixture(params=["native", "python"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    return clean_env(SKY_ASYNC_BACKEND=request.param, PYTHONPATH=os.environ.get("PYTHONPATH", ""))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {}
    for name, data in CONTENTS.items():
        made[name] = tmp_path / name
        made[name].write_bytes(data)
    return made


def sky_tail(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sky_async", "tail", *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


def gnu_tail(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["tail", *args], capture_output=True, timeout=60, check=False, env={"LC_ALL": "C"})


@pytest.mark.parametrize("name", sorted(CONTENTS))
@pytest.mark.parametrize("n", ["0", "1", "2", "10", "100000"])
def test_one_file_is_byte_for_byte_tails_output(
    env: dict[str, str], files: dict[str, Path], name: str, n: str
) -> None:
    ours = sky_tail(env, "-n", n, str(files[name]))
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == gnu_tail("-n", n, str(files[name])).stdout
    assert ours.stderr == b""


def test_default_is_ten_lines(env: dict[str, str], files: dict[str, Path]) -> None:
    assert sky_tail(env, str(files["long"])).stdout == gnu_tail(str(files["long"])).stdout


@pytest.mark.parametrize("flags", [[], ["-q"], ["-v"]])
def test_several_files_with_headers_are_byte_for_byte_tails_output(
    env: dict[str, str], files: dict[str, Path], flags: list[str]
) -> None:
    paths = [str(path) for path in files.values()] + [str(files["crlf"]), str(files["crlf"])]
    ours = sky_tail(env, *flags, "-n", "2", *paths)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == gnu_tail(*flags, "-n", "2", *paths).stdout


def test_unreadable_files_get_one_line_each_and_exit_1(
    env: dict[str, str], files: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.log"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    ours = sky_tail(
        env, "-n", "1", str(files["crlf"]), str(missing), str(tmp_path), str(fifo), str(files["long"])
    )
    assert ours.returncode == 1
    assert ours.stderr.decode().splitlines() == [
        f"sky-async: {missing}: No such file or directory",
        f"sky-async: {tmp_path}: Is a directory",
        f"sky-async: {fifo}: Not a regular file",
    ]
    # The readable files print exactly as tail prints them (tail has no header for a missing file).
    assert ours.stdout == gnu_tail("-n", "1", str(files["crlf"]), str(missing), str(files["long"])).stdout


@pytest.mark.parametrize("n", ["-1", "x", "+3", "1.5"])
def test_bad_line_count_is_a_usage_error_without_traceback(
    env: dict[str, str], files: dict[str, Path], n: str
) -> None:
    ours = sky_tail(env, "-n", n, str(files["crlf"]))
    assert ours.returncode == 2
    assert b"invalid number of lines" in ours.stderr
    assert b"Traceback" not in ours.stderr


def _read_until(proc: subprocess.Popen[bytes], expected: bytes, timeout: float = 30) -> bytes:
    assert proc.stdout is not None
    got = b""
    deadline = time.monotonic() + timeout
    while not got.endswith(expected):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"waited for {expected!r}, got {got!r}")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                pytest.fail(f"output ended: {got!r}")
            got += chunk
    return got


def test_follow_prints_appended_lines_with_headers_and_exits_130_on_ctrl_c(
    env: dict[str, str], tmp_path: Path
) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"a1\na2\n")
    b.write_bytes(b"b1\n")
    with interruptible_child(
        [sys.executable, "-m", "sky_async", "tail", "-f", "-n", "1", "-s", "0.05", str(a), str(b)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        start = _read_until(proc, b"b1\n")
        assert start == f"==> {a} <==\na2\n\n==> {b} <==\nb1\n".encode()
        with open(a, "ab") as file:
            file.write(b"a3\npart")
        assert _read_until(proc, b"a3\n") == f"\n==> {a} <==\na3\n".encode()
        with open(a, "ab") as file:
            file.write(b"ial\n")
        assert _read_until(proc, b"partial\n") == b"partial\n"
        with open(b, "ab") as file:
            file.write(b"b2\n")
        assert _read_until(proc, b"b2\n") == f"\n==> {b} <==\nb2\n".encode()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"Traceback" not in stderr


def test_follow_of_only_missing_files_fails_at_once(env: dict[str, str], tmp_path: Path) -> None:
    ours = sky_tail(env, "-f", str(tmp_path / "missing"))
    assert ours.returncode == 1
    assert ours.stderr.decode() == f"sky-async: {tmp_path / 'missing'}: No such file or directory\n"
