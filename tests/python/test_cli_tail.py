"""``sky-async tail`` against coreutils ``tail``: the same bytes on stdout, one-line errors, exit codes."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import clean_env, interruptible_child
from sky_async import cli

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


def sky_tail(env: dict[str, str], *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sky_async", "tail", *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def gnu_tail(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["tail", *args], input=stdin, capture_output=True, timeout=60, check=False, env={"LC_ALL": "C"}
    )


def assert_same_as_gnu(
    ours: subprocess.CompletedProcess[bytes], gnu: subprocess.CompletedProcess[bytes]
) -> None:
    """The same status, stdout and stderr, GNU's program name "tail" read as "sky-async tail"."""
    gnu_stderr = b"".join(
        b"sky-async " + line if line.startswith(b"tail: ") else line
        for line in gnu.stderr.splitlines(keepends=True)
    )
    assert (ours.returncode, ours.stdout, ours.stderr) == (gnu.returncode, gnu.stdout, gnu_stderr)


@pytest.mark.parametrize("name", sorted(CONTENTS))
@pytest.mark.parametrize("n", ["0", "1", "2", "10", "100000"])
def test_one_file_is_byte_for_byte_tails_output(
    env: dict[str, str], files: dict[str, Path], name: str, n: str
) -> None:
    ours = sky_tail(env, "-n", n, str(files[name]))
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == gnu_tail("-n", n, str(files[name])).stdout
    assert ours.stderr == b""


@pytest.mark.parametrize("count", [["-n", "3"], ["-n", "+2"], ["-c", "20"], ["-c", "+5"]], ids=" ".join)
@pytest.mark.parametrize("path", ["/proc/version", "/proc/filesystems", "/proc/self/limits"])
def test_proc_files_reporting_size_0_are_byte_for_byte_tails_output(
    env: dict[str, str], path: str, count: list[str]
) -> None:
    # Files whose content does not change between the two reads; their st_size is 0.
    if not os.path.exists(path) or os.stat(path).st_size != 0:
        pytest.skip(f"{path} is missing or reports a size")
    want = gnu_tail(*count, path)
    assert want.returncode == 0 and (want.stdout or path == "/proc/version")  # /proc/version: one line
    got = sky_tail(env, *count, path)
    assert (got.returncode, got.stdout, got.stderr) == (0, want.stdout, b"")


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


# Files that cannot be opened (MISSING, SOCK: open gives ENXIO) get no header; a directory
# opens, so it gets its header before "error reading". Where GNU tail's read fails while it
# copies the rest of a file (a directory with -n +1 or -c +K; with -c N where the directory
# seeks to a far end, as on ext4, not on tmpfs) it stops there, leaving the files after it.
@pytest.mark.parametrize("count", [[], ["-n", "+2"], ["-n", "+1"], ["-c", "3"], ["-c", "+2"]], ids=" ".join)
@pytest.mark.parametrize(
    "names",
    [
        ["MISSING"],
        ["DIR"],
        ["SOCK"],
        ["FILE", "MISSING", "DIR", "SOCK", "FILE"],
        ["MISSING", "FILE"],
        ["DIR", "FILE"],
        ["-v", "MISSING"],
        ["-v", "DIR"],
        ["-q", "DIR", "MISSING", "FILE"],
    ],
    ids=" ".join,
)
def test_unreadable_files_are_reported_as_gnu_tail_does(
    env: dict[str, str], files: dict[str, Path], tmp_path: Path, count: list[str], names: list[str]
) -> None:
    directory = tmp_path / "dir"
    directory.mkdir()
    sock = tmp_path / "sock"
    paths = {"MISSING": tmp_path / "missing.log", "DIR": directory, "SOCK": sock, "FILE": files["crlf"]}
    args = [*count, *(str(paths.get(name, name)) for name in names)]
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(sock))
        gnu = gnu_tail(*args)
        assert gnu.returncode == 1 and gnu.stderr
        assert_same_as_gnu(sky_tail(env, *args), gnu)


@pytest.mark.parametrize("name", ["it's", "a b", "a:b", 'say "hi"', "new\nline", ""], ids=repr)
def test_a_name_in_an_error_is_quoted_as_gnu_tail_quotes_it(
    env: dict[str, str], files: dict[str, Path], name: str
) -> None:
    args = ["-n", "1", str(files["crlf"]), name, str(files["crlf"])]
    assert_same_as_gnu(sky_tail(env, *args), gnu_tail(*args))


# Counts GNU tail 9.1 refuses, with -n and with -c (a quote or a byte to escape in the message,
# too large, a suffix only later versions have).
BAD_COUNTS = [
    "abc",
    "a'b",
    "a\\b",
    "\t\x01\x7f\xe9",
    "x",
    "1.5",
    "--3",
    "",
    "3 ",
    "+x",
    " -3",
    "1D",
    "1B",
    "1bB",
    "0x10",
    "1e3",
    "1KiBx",
    "18446744073709551616",
    "1Q",
    "1R",
    "1Y",
    "16EiB",
    "9" * 5000,
]


@pytest.mark.parametrize("option", ["-n", "-c", "--lines", "--bytes"])
@pytest.mark.parametrize("count", BAD_COUNTS)
def test_bad_count_is_gnus_error_and_exit_1(
    env: dict[str, str], files: dict[str, Path], option: str, count: str
) -> None:
    gnu = gnu_tail(option, count, str(files["crlf"]))
    assert gnu.returncode == 1 and gnu.stdout == b""
    assert_same_as_gnu(sky_tail(env, option, count, str(files["crlf"])), gnu)


@pytest.mark.parametrize("seconds", ["x", "-1", ""])
def test_bad_sleep_interval_is_gnus_error_and_exit_1(
    env: dict[str, str], files: dict[str, Path], seconds: str
) -> None:
    args = ["-s", seconds, str(files["crlf"])]
    assert_same_as_gnu(sky_tail(env, *args), gnu_tail(*args))


# Counts GNU tail reads, each with its meaning: signs, suffixes, leading blanks and zeros.
COUNTS = [
    ["-n", "3"],
    ["-n", "-3"],
    ["-n", " +3"],
    ["-n", "010"],
    ["-n", "+1"],
    ["-n", "+0"],
    ["-n", "+2"],
    ["-n", "+4999"],
    ["-n", "1K"],
    ["-n", "1KiB"],
    ["-n", "18446744073709551615"],
    ["-c", "5"],
    ["-c", "-1"],
    ["-c", "+1"],
    ["-c", "+0"],
    ["-c", "+9"],
    ["-c", "1b"],
    ["-c", "2KB"],
    ["-c", "1k"],
    ["-c", "100000"],
    ["-c", "+100000"],
    ["-n", "2", "-c", "3"],
    ["-c", "3", "-n", "2"],  # the last one given counts
    ["--lines=+3"],
    ["--bytes=4"],
]


@pytest.mark.parametrize("count", COUNTS, ids=" ".join)
def test_counts_lines_from_k_and_bytes_are_byte_for_byte_tails_output(
    env: dict[str, str], files: dict[str, Path], count: list[str]
) -> None:
    paths = [str(files[name]) for name in sorted(CONTENTS)]
    assert_same_as_gnu(sky_tail(env, *count, *paths), gnu_tail(*count, *paths))


@pytest.mark.parametrize(
    "args",
    [["-3"], ["+3"], ["-3c"], ["+3c"], ["-2b"], ["-l"], ["-2l"], ["+"], ["-c3"], ["-0"]],
    ids=" ".join,
)
@pytest.mark.parametrize("name", ["long", "no_final_newline", "crlf"])
def test_obsolete_forms_are_tails(
    env: dict[str, str], files: dict[str, Path], args: list[str], name: str
) -> None:
    path = str(files[name])
    assert_same_as_gnu(sky_tail(env, *args, path), gnu_tail(*args, path))


def test_obsolete_form_without_a_file_reads_standard_input(env: dict[str, str]) -> None:
    data = CONTENTS["long"]
    assert_same_as_gnu(sky_tail(env, "-3", stdin=data), gnu_tail("-3", stdin=data))


@pytest.mark.parametrize("args", [["-3", "a", "b"], ["a", "-3"], ["-n", "2", "-v3", "a"]], ids=" ".join)
def test_a_digit_option_elsewhere_is_gnus_usage_error(
    env: dict[str, str], files: dict[str, Path], args: list[str]
) -> None:
    args = [str(files["crlf"]) if arg in "ab" else arg for arg in args]
    gnu = gnu_tail(*args)
    assert gnu.returncode == 1 and gnu.stderr == b"tail: option used in invalid context -- 3\n"
    assert_same_as_gnu(sky_tail(env, *args), gnu)


def test_a_digit_after_double_dash_is_a_file_name(
    env: dict[str, str], files: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "-3").write_bytes(b"dash three\n")
    ours = subprocess.run(
        [sys.executable, "-m", "sky_async", "tail", "-n", "1", "--", "-3", str(files["crlf"])],
        env=env,
        cwd=tmp_path,
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    gnu = subprocess.run(
        ["tail", "-n", "1", "--", "-3", str(files["crlf"])],
        env={"LC_ALL": "C"},
        cwd=tmp_path,
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert_same_as_gnu(ours, gnu)


# Standard input: enough that the kept lines and bytes are trimmed while it is read.
PIPED = b"".join(b"piped line %d\n" % i for i in range(100_000)) + b"no newline"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-"],
        ["-n", "3"],
        ["-n", "70000"],
        ["-n", "+99990"],
        ["-c", "20"],
        ["-c", "+1500000"],
        ["-c", "300000"],
        ["-v"],
        ["-", "FILE", "-"],
        ["FILE", "-"],
        ["-q", "-", "FILE"],
    ],
    ids=" ".join,
)
def test_standard_input_is_tails_with_its_header(
    env: dict[str, str], files: dict[str, Path], args: list[str]
) -> None:
    args = [str(files["crlf"]) if arg == "FILE" else arg for arg in args]
    assert_same_as_gnu(sky_tail(env, *args, stdin=PIPED), gnu_tail(*args, stdin=PIPED))


def test_standard_input_that_is_a_file_is_read_from_where_it_is(
    env: dict[str, str], files: dict[str, Path]
) -> None:
    results = []
    for command in ([sys.executable, "-m", "sky_async", "tail"], ["tail"]):
        with open(files["long"], "rb") as stdin:
            stdin.seek(len(CONTENTS["long"]) - 100)
            results.append(
                subprocess.run(
                    [*command, "-c", "+3"],
                    stdin=stdin,
                    env=env if command[0] != "tail" else {"LC_ALL": "C"},
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
            )
    assert_same_as_gnu(*results)


def _with_fifo_writer(
    fifo: Path, data: bytes, command: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    """*command*'s result while another process writes *data* into *fifo* (killed after)."""
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}, 'wb').write({data!r})"])
    try:
        return subprocess.run(command, env=env, input=b"", capture_output=True, timeout=60, check=False)
    finally:
        writer.kill()
        writer.wait()


@pytest.mark.parametrize("count", [["-n", "2"], ["-c", "4"], ["-n", "+2"]], ids=" ".join)
def test_a_fifo_named_on_the_command_line_is_read(
    env: dict[str, str], files: dict[str, Path], tmp_path: Path, count: list[str]
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = [*count, str(files["crlf"]), str(fifo)]
    data = b"first\nsecond\nthird\n"
    ours = _with_fifo_writer(fifo, data, [sys.executable, "-m", "sky_async", "tail", *args], env)
    gnu = _with_fifo_writer(fifo, data, ["tail", *args], {"LC_ALL": "C"})
    assert_same_as_gnu(ours, gnu)
    assert ours.returncode == 0


def test_last_zero_lines_opens_nothing_as_gnu_tail(env: dict[str, str], tmp_path: Path) -> None:
    args = ["-n", "0", str(tmp_path / "missing"), str(tmp_path)]
    assert_same_as_gnu(sky_tail(env, *args), gnu_tail(*args))
    assert sky_tail(env, *args).returncode == 0


@pytest.mark.parametrize("count", [["-c", "3"], ["-n", "+2"], ["-c", "+2"]], ids=" ".join)
def test_follow_refuses_what_it_cannot_follow(
    env: dict[str, str], files: dict[str, Path], count: list[str]
) -> None:
    ours = sky_tail(env, "-f", *count, str(files["crlf"]))
    assert (ours.returncode, ours.stdout) == (2, b"")
    assert b"-f follows named files with -n N" in ours.stderr


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


@pytest.mark.parametrize("count", [["-n", "+1"], ["-c", "+1"]], ids=" ".join)
def test_a_reader_that_goes_away_ends_it_quietly_with_141(
    env: dict[str, str], tmp_path: Path, count: list[str]
) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1000 + b"\n" * (8 * 1024 * 1024))  # far more than a pipe holds
    with subprocess.Popen(
        [sys.executable, "-m", "sky_async", "tail", *count, str(big)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.read(10) == b"x" * 10
            proc.stdout.close()
            stderr = proc.stderr.read()
            assert proc.wait(timeout=60) == 141
            assert stderr == b""
        finally:
            proc.kill()
            proc.wait()


def test_obsolete_form_in_process(files: dict[str, Path], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = str(files["long"])
    assert cli.main(["tail", "-2", path]) == 0
    assert capsysbinary.readouterr().out == gnu_tail("-2", path).stdout
