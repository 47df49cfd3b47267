"""sky_async.compat: SkyPilot's twelve utilities with SkyPilot's exact results and errors."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sky_async import compat

# --- read_last_n_lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "n", "expected"),
    [
        (b"line1\nline2\nline3\n", 2, ["line2\n", "line3"]),
        (b"a\nb\n", 5, ["a\n", "b"]),
        (b"a\nb", 5, ["a\n", "b"]),
        (b"only one line\n", 5, ["only one line"]),
        (b"\n", 1, [""]),
        (b"\n\n", 5, ["\n", ""]),
        (b"x\n\ny\n", 2, ["\n", "y"]),
        (b"a\rb\n", 1, ["a\rb"]),
        (b"a\r\nb\r\n", 2, ["a\n", "b"]),
        (b"a\r\r\n", 1, ["a"]),
        (b"a\x0bb\x0cc\xc2\x85d\n", 5, ["a\x0bb\x0cc\x85d"]),
        (b"\xff\xfe ok\n\xe2\x82\n", 2, ["\ufffd\ufffd ok\n", "\ufffd"]),
        (b"\xef\xbb\xbfbom\n", 1, ["\ufeffbom"]),
        (b"nul\x00byte\n", 1, ["nul\x00byte"]),
        (b"", 3, []),
        (b"abc\n", 0, []),
    ],
)
def test_read_last_n_lines_matches_skypilot(tmp_path: Path, data: bytes, n: int, expected: list[str]) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(data)
    assert compat.read_last_n_lines(os.fspath(path), n) == expected
    assert compat.read_last_n_lines(os.fspath(path), n, chunk_size=1) == expected


def _whole_file_oracle(data: bytes, n: int) -> list[str]:
    """The same definition computed from the whole file at once, without chunks."""
    if n == 0 or not data:
        return []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines = lines[:-1]
    chosen = [line.decode("utf-8", "replace").rstrip("\r") for line in lines[-n:]]
    return [line + "\n" for line in chosen[:-1]] + chosen[-1:]


@settings(max_examples=300)
@given(
    st.binary(max_size=300).map(lambda b: b.replace(b"\x01", b"\n")), st.integers(0, 12), st.integers(1, 40)
)
def test_read_last_n_lines_agrees_with_a_whole_file_oracle(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, n: int, chunk_size: int
) -> None:
    path = tmp_path_factory.mktemp("tail") / "f"
    path.write_bytes(data)
    assert compat.read_last_n_lines(os.fspath(path), n, chunk_size) == _whole_file_oracle(data, n)


def test_read_last_n_lines_reads_only_the_tail_of_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    with open(path, "wb") as file:
        file.truncate(1 << 30)  # 1 GiB of NULs (a hole)...
        file.seek(0, os.SEEK_END)
        file.write(b"\nlast-1\nlast\n")  # ...then short lines
    assert compat.read_last_n_lines(os.fspath(path), 2) == ["last-1\n", "last"]


def test_read_last_n_lines_errors_are_skypilots(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="n must be non-negative"):
        compat.read_last_n_lines(os.fspath(tmp_path), -1)
    with pytest.raises(AssertionError, match="chunk_size must be positive"):
        compat.read_last_n_lines(os.fspath(tmp_path), 1, chunk_size=0)
    with pytest.raises(AssertionError, match="File not found"):
        compat.read_last_n_lines(os.fspath(tmp_path / "missing"), 1)
    with pytest.raises(RuntimeError, match="Failed to read last 1 lines from") as info:
        compat.read_last_n_lines(os.fspath(tmp_path), 1)
    assert isinstance(info.value.__cause__, IsADirectoryError)
    with pytest.raises(LookupError):
        (tmp_path / "f").write_bytes(b"x\n")
        compat.read_last_n_lines(os.fspath(tmp_path / "f"), 1, encoding="no-such-codec")


# --- hash_file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["md5", "sha256", "sha512", "SHA256", "sha3_256", "blake2b"])
def test_compat_hash_file_returns_a_live_hashlib_object(tmp_path: Path, algorithm: str) -> None:
    data = os.urandom(600_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    digest = compat.hash_file(os.fspath(path), algorithm)
    expected = hashlib.new(algorithm, data)
    assert digest.hexdigest() == expected.hexdigest()
    assert digest.digest() == expected.digest()
    assert (digest.name, digest.digest_size, digest.block_size) == (
        expected.name,
        expected.digest_size,
        expected.block_size,
    )
    copy = digest.copy()
    copy.update(b"more")
    expected.update(b"more")
    assert copy.hexdigest() == expected.hexdigest()


def test_compat_hash_file_opens_before_checking_the_algorithm(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        compat.hash_file(os.fspath(tmp_path / "missing"), "no-such-hash")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported hash type"):
        compat.hash_file(os.fspath(tmp_path / "f"), "no-such-hash")
    with pytest.raises(IsADirectoryError):
        compat.hash_file(os.fspath(tmp_path), "sha256")


# --- find_free_port ----------------------------------------------------------------------------


def test_find_free_port_skips_a_bound_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("", 0))
        port = taken.getsockname()[1]
        if port >= 65534:
            pytest.skip("the kernel handed out the last port")
        found = compat.find_free_port(port)
        assert found > port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as check:
        check.bind(("", found))


def test_find_free_port_edges() -> None:
    with pytest.raises(OSError, match=r"No free ports available\."):
        compat.find_free_port(65535)
    assert compat.find_free_port(0) == 0
    with pytest.raises(OverflowError):
        compat.find_free_port(-5)


# --- is_process_alive --------------------------------------------------------------------------


def test_is_process_alive_for_this_process_and_nonexistent_ones() -> None:
    assert compat.is_process_alive(os.getpid()) is True
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert compat.is_process_alive(pid_max + 1) is False
    assert compat.is_process_alive(2**40) is False


@pytest.mark.parametrize("pid", [0, -1, -os.getpid()])
def test_is_process_alive_never_probes_process_groups(pid: int) -> None:
    assert compat.is_process_alive(pid) is False


def test_a_zombie_is_not_alive_and_an_exited_process_is_not_either() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while True:  # exited but not yet reaped: a zombie
        stat = Path(f"/proc/{child.pid}/stat").read_text()
        if stat[stat.rfind(")") + 2] == "Z":
            break
    assert compat.is_process_alive(child.pid) is False
    child.wait()
    assert compat.is_process_alive(child.pid) is False


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become a user that cannot signal pid 1")
def test_a_process_we_may_not_signal_is_alive() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setuid(65534)
            os._exit(0 if compat.is_process_alive(1) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("bad", ["1", 1.0, None, True])
def test_is_process_alive_rejects_non_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        compat.is_process_alive(bad)  # type: ignore[arg-type]


# --- the rest is shared with sky_async.strings and sky_async.system ----------------------------


def test_compat_exposes_the_twelve_functions() -> None:
    assert sorted(compat.__all__) == sorted(
        [
            "read_last_n_lines",
            "hash_file",
            "find_free_port",
            "base36_encode",
            "format_float",
            "truncate_long_string",
            "get_cpu_count",
            "get_mem_size_gb",
            "get_parallel_threads",
            "is_process_alive",
            "get_max_workers_for_file_mounts",
            "estimate_fd_for_directory",
        ]
    )
    assert all(callable(getattr(compat, name)) for name in compat.__all__)
    assert compat.get_cpu_count() >= 1
    assert compat.get_mem_size_gb() > 0
