"""sky_async.compat: SkyPilot's twelve utilities with SkyPilot's exact results and errors."""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sky_async
from conftest import NATIVE_IMPORT_ERROR, clean_env, require_native, run_python
from hypothesis import given, settings
from hypothesis import strategies as st
from sky_async import compat
from sky_async._system import python as system

# Both paths compat can take for a function (the measured choice picks one): every
# read_last_n_lines and is_process_alive test below runs on each.
PATHS = ("python", "native")


@pytest.fixture(params=PATHS)
def impl(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "native":
        require_native()
    return compat.implementations(request.param)


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
def test_read_last_n_lines_matches_skypilot(
    impl: dict[str, Any], tmp_path: Path, data: bytes, n: int, expected: list[str]
) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(data)
    read_last_n_lines = impl["read_last_n_lines"]
    assert read_last_n_lines(os.fspath(path), n) == expected
    assert read_last_n_lines(os.fspath(path), n, chunk_size=1) == expected
    assert compat.read_last_n_lines(os.fspath(path), n) == expected


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
    expected = _whole_file_oracle(data, n)
    for path_taken in PATHS:
        read_last_n_lines = compat.implementations(path_taken)["read_last_n_lines"]
        assert read_last_n_lines(os.fspath(path), n, chunk_size) == expected, path_taken


def test_read_last_n_lines_reads_only_the_tail_of_a_large_file(impl: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    with open(path, "wb") as file:
        file.truncate(1 << 30)  # 1 GiB of NULs (a hole)...
        file.seek(0, os.SEEK_END)
        file.write(b"\nlast-1\nlast\n")  # ...then short lines
    assert impl["read_last_n_lines"](os.fspath(path), 2) == ["last-1\n", "last"]


def test_read_last_n_lines_errors_are_skypilots(impl: dict[str, Any], tmp_path: Path) -> None:
    read_last_n_lines = impl["read_last_n_lines"]
    with pytest.raises(AssertionError, match=r"^n must be non-negative\. Got -1$"):
        read_last_n_lines(os.fspath(tmp_path), -1)
    with pytest.raises(AssertionError, match=r"^chunk_size must be positive\. Got 0$"):
        read_last_n_lines(os.fspath(tmp_path), 1, chunk_size=0)
    missing = os.fspath(tmp_path / "missing")
    with pytest.raises(AssertionError) as missing_info:
        read_last_n_lines(missing, 1)
    assert str(missing_info.value) == f"File not found: {missing}"
    with pytest.raises(AssertionError, match="File not found"):
        read_last_n_lines(missing, 0)  # the existence assert comes before n == 0
    with pytest.raises(RuntimeError) as info:
        read_last_n_lines(os.fspath(tmp_path), 1)
    assert isinstance(info.value.__cause__, IsADirectoryError)
    assert str(info.value) == f"Failed to read last 1 lines from {tmp_path}: {info.value.__cause__}"
    (tmp_path / "f").write_bytes(b"x\n\xff\n")
    with pytest.raises(LookupError):
        read_last_n_lines(os.fspath(tmp_path / "f"), 1, encoding="no-such-codec")
    # Decoding errors are not wrapped: the UnicodeDecodeError of the bad line itself.
    with pytest.raises(UnicodeDecodeError) as decode_info:
        read_last_n_lines(os.fspath(tmp_path / "f"), 2, errors="strict")
    assert decode_info.value.args == ("utf-8", b"\xff", 0, 1, "invalid start byte")
    assert decode_info.value.__cause__ is None


@pytest.mark.usefixtures("native_compat")
@pytest.mark.parametrize(
    "args",
    [
        ("log", 2),
        ("log", 2, 3, "utf-8", "strict"),
        ("log", 5, 8192, "latin-1"),
        ("log", 5, 8192, "UTF8"),
        ("log", 5, 8192, "utf-8", "ignore"),
        ("log", 5, 8192, "utf-8", "backslashreplace"),
        ("log", 5, 8192, "utf-8", "surrogateescape"),
        ("log", 5, 8192, "utf-16"),
        ("log", 5, 8192, "hex"),
        ("log", 5, 8192, "utf-8", "no-such-handler"),
        ("log", 5, 8192, 7),
        ("log", 2.0),
        ("log", True),
        ("log", 2**70),
        ("log", 2, 2**70),
        ("log", -1),
        ("log", 1, 0),
        ("log", 1, -3),
        ("log", "2"),
        ("ascii", 3, 8192, "utf-8", "strict"),
        ("empty", 3),
        ("dir", 1),
        ("dir", 0),
        ("missing", 1),
        ("missing", 0),
        ("dangling", 1),
        ("/dev/null", 3),
        ("/proc/self/status", 3),
        ("/sys/devices/system/cpu/online", 3),
        ("bytes", 2),
        ("pathlike", 2),
        ("nul", 2),
    ],
)
def test_read_last_n_lines_is_the_same_on_both_paths(tmp_path: Path, args: tuple[Any, ...]) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"one\r\ntwo \xff\xfe\n\xe2\x82\nfour\x00\nfive")
    (tmp_path / "ascii").write_bytes(b"a\nb\r\nc\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    paths: dict[str, Any] = {
        "log": os.fspath(log),
        "ascii": os.fspath(tmp_path / "ascii"),
        "empty": os.fspath(tmp_path / "empty"),
        "dir": os.fspath(tmp_path),
        "missing": os.fspath(tmp_path / "missing"),
        "dangling": os.fspath(tmp_path / "dangling"),
        "bytes": os.fsencode(log),
        "pathlike": log,
        "nul": os.fspath(log) + "\0",
    }
    first, *rest = args
    _same_with_chaining("read_last_n_lines", paths.get(first, first), *rest)


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


def test_is_process_alive_for_this_process_and_nonexistent_ones(impl: dict[str, Any]) -> None:
    is_process_alive = impl["is_process_alive"]
    assert is_process_alive(os.getpid()) is True
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert is_process_alive(pid_max) in (True, False)
    assert is_process_alive(pid_max + 1) is False
    assert is_process_alive(2**40) is False
    assert is_process_alive(2**200) is False
    assert compat.is_process_alive(os.getpid()) is True


@pytest.mark.parametrize("pid", [0, -1, -os.getpid()])
def test_is_process_alive_never_probes_process_groups(impl: dict[str, Any], pid: int) -> None:
    assert impl["is_process_alive"](pid) is False


def test_a_zombie_is_not_alive_and_an_exited_process_is_not_either(impl: dict[str, Any]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while True:  # exited but not yet reaped: a zombie
        stat = Path(f"/proc/{child.pid}/stat").read_text()
        if stat[stat.rfind(")") + 2] == "Z":
            break
    assert impl["is_process_alive"](child.pid) is False
    child.wait()
    assert impl["is_process_alive"](child.pid) is False


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become a user that cannot signal pid 1")
def test_a_process_we_may_not_signal_is_alive(impl: dict[str, Any]) -> None:
    is_process_alive = impl["is_process_alive"]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setuid(65534)
            os._exit(0 if is_process_alive(1) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("bad", ["1", 1.0, None, True, False])
def test_is_process_alive_rejects_non_integers(impl: dict[str, Any], bad: object) -> None:
    with pytest.raises(TypeError, match=f"^pid must be an int, not {type(bad).__name__}$"):
        impl["is_process_alive"](bad)


@pytest.mark.usefixtures("native_compat")
@pytest.mark.parametrize(
    "pid", [1, 0, -1, -(2**70), 2**31, 2**63, 2**64, 4194304, 4194305, "1", 1.0, True, None]
)
def test_is_process_alive_is_the_same_on_both_paths(pid: object) -> None:
    _same("is_process_alive", pid)
    _same("is_process_alive", os.getpid())


# --- the rest is shared with sky_async._system.strings and sky_async._system.python ---


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


# --- the measured choice: both paths give SkyPilot's results and errors -------------------------

NATIVE_VERSIONS = sorted(
    name for name, fn in compat.implementations("native").items() if fn is not compat._PYTHON[name]
)


def _outcome(fn: Any, *args: Any) -> Any:
    """The result, or the exception's type, args and (for OSError) filename."""
    try:
        return ("value", fn(*args))
    except Exception as exc:  # the comparison is the point
        return ("error", type(exc), exc.args, getattr(exc, "filename", None))


def _same_with_chaining(name: str, *args: Any) -> None:
    """_same, and an exception's message and cause (RuntimeError wrapping an OSError) too."""
    _same(name, *args)
    errors = []
    for path_taken in PATHS:
        try:
            compat.implementations(path_taken)[name](*args)
        except Exception as exc:  # the comparison is the point
            cause = exc.__cause__
            errors.append((str(exc), type(cause), None if cause is None else cause.args))
        else:
            errors.append(None)
    assert errors[0] == errors[1], (name, args)


def _same(name: str, *args: Any) -> None:
    expected = _outcome(compat.implementations("python")[name], *args)
    got = _outcome(compat.implementations("native")[name], *args)
    if expected[0] == "value" and isinstance(expected[1], float) and math.isnan(expected[1]):
        assert got[0] == "value" and math.isnan(got[1])
    else:
        assert got == expected, (name, args)


@pytest.fixture
def native_compat() -> None:
    require_native()
    assert NATIVE_VERSIONS, "the native module is loaded but compat found no native versions"


def test_every_function_has_a_python_version_and_the_native_ones_are_the_measured_set() -> None:
    assert sorted(compat.implementations("python")) == sorted(compat.__all__)
    if NATIVE_IMPORT_ERROR is None:
        assert (
            sorted(
                [
                    "base36_encode",
                    "estimate_fd_for_directory",
                    "find_free_port",
                    "format_float",
                    "get_cpu_count",
                    "get_max_workers_for_file_mounts",
                    "get_mem_size_gb",
                    "get_parallel_threads",
                    "is_process_alive",
                    "read_last_n_lines",
                ]
            )
            == NATIVE_VERSIONS
        )


@pytest.mark.usefixtures("native_compat")
@pytest.mark.parametrize(
    "arg",
    ["ff", "0x10", "  FF\n", "+0X_f_f", "de_ad", "0", "-0", "f" * 128, "deadbeef", "\u0663", "\u3000ff", "",
     "0x", "xyz", "1__2", "-ff", "\uff11", 255, None, b"ff", bytearray(b"10")],
)  # fmt: skip
def test_base36_encode_is_the_same_on_both_paths(arg: object) -> None:
    _same("base36_encode", arg)


@settings(max_examples=200)
@given(st.text(alphabet="0123456789abcdefABCDEF_xX +-\t", max_size=40))
def test_base36_encode_is_the_same_on_both_paths_for_generated_text(text: str) -> None:
    if NATIVE_IMPORT_ERROR is None:
        _same("base36_encode", text)


@pytest.mark.usefixtures("native_compat")
@pytest.mark.parametrize(
    "args",
    [(4,), (True,), (2.0,), (-0.0,), (1e300,), (2.675, 2), (2.5, 0), (0.96,), (-1e-7, 2), (math.inf,),
     (-math.inf, 0), (math.nan, 3), (1234567.89, 2), (0.1, 60), (7.0, -3), (1.25, -1), (1.25, 1.5), ("1.5",),
     (None,), (1.5, True), (2.5, 10**6), (0.5, 2**40)],
)  # fmt: skip
def test_format_float_is_the_same_on_both_paths(args: tuple[Any, ...]) -> None:
    _same("format_float", *args)


@settings(max_examples=300)
@given(st.floats(), st.integers(min_value=-2, max_value=25))
def test_format_float_is_the_same_on_both_paths_for_generated_floats(num: float, precision: int) -> None:
    if NATIVE_IMPORT_ERROR is None:
        _same("format_float", num, precision)


@pytest.mark.usefixtures("native_compat")
@pytest.mark.parametrize(
    "cloud", [None, "", "kubernetes", "KUBERNETES", "\u212aubernetes", "k8s", 0, 42, [], ["x"]]
)
def test_get_parallel_threads_is_the_same_on_both_paths(cloud: object) -> None:
    _same("get_parallel_threads", cloud)


@pytest.mark.usefixtures("native_compat")
@pytest.mark.parametrize(
    ("name", "value"),
    [("SKYPILOT_POD_CPU_CORE_LIMIT", v) for v in (None, "2", "2.9", "-3", "", "abc", "nan", "inf", "1e30")]
    + [("SKYPILOT_POD_MEMORY_GB_LIMIT", v) for v in ("2", "inf", "lots")]
    + [("SKYPILOT_POD_MEMORY_BYTES_LIMIT", v) for v in ("3221225472", "")],
)
def test_cpu_and_memory_are_the_same_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str | None
) -> None:
    for variable in (
        "SKYPILOT_POD_CPU_CORE_LIMIT",
        "SKYPILOT_POD_MEMORY_GB_LIMIT",
        "SKYPILOT_POD_MEMORY_BYTES_LIMIT",
    ):
        monkeypatch.delenv(variable, raising=False)
    if value is not None:
        monkeypatch.setenv(name, value)
    _same("get_cpu_count")
    _same("get_mem_size_gb")


@pytest.mark.usefixtures("native_compat")
def test_directory_estimates_are_the_same_on_both_paths(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    for index in range(100):
        (tmp_path / "dir" / f"f{index}").write_text("")
    (tmp_path / "file").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    for path in ("dir", "file", "link", "missing"):
        _same("estimate_fd_for_directory", os.fspath(tmp_path / path))
    for odd in (tmp_path / "dir", os.fsencode(tmp_path / "dir"), "a\0b", None, "\udcff"):
        _same("estimate_fd_for_directory", odd)
    mounts = {
        "/r/dir": os.fspath(tmp_path / "dir"),
        "/r/file": os.fspath(tmp_path / "file"),
        "s3": "s3://b/x",
    }
    for cloud in (None, "kubernetes", 0):
        _same("get_max_workers_for_file_mounts", mounts, cloud)
    for odd_mounts in ({}, {"/r": None}, {"/r": "a\0b"}, ["/r"], {"/r": tmp_path / "dir"}):
        _same("get_max_workers_for_file_mounts", odd_mounts)


@pytest.mark.usefixtures("native_compat")
def test_find_free_port_is_the_same_on_both_paths() -> None:
    for start in (0, 65535, 70000, -5, "8000", None, 2**70):
        _same("find_free_port", start)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("", 0))
        port = taken.getsockname()[1]
        if port < 65534:
            _same("find_free_port", port)


@pytest.mark.usefixtures("native_compat")
def test_get_cpu_count_keeps_skypilots_zero_division_for_a_v2_period_of_zero() -> None:
    # The native path reads the real /sys/fs/cgroup, so check the rule through a child whose
    # cgroup root is a fixture: the C++ side is covered by system_test.cpp; here the binding's
    # translation of the error into ZeroDivisionError.
    from sky_async import _native

    assert isinstance(_native.get_cpu_count(True), int)
    assert compat.get_cpu_count() == system._cpu_count(skypilot=True)


def test_get_backend_info_shape() -> None:
    info = compat.get_backend_info()
    assert set(info) == {"backend", "available", "version", "functions"}
    assert sorted(info["functions"]) == sorted(compat.__all__)
    assert set(info["functions"].values()) <= {"native", "python"}
    for name, path in info["functions"].items():
        assert getattr(compat, name) is compat.implementations(path)[name]
    if NATIVE_IMPORT_ERROR is None and os.environ.get("SKY_ASYNC_BACKEND", "auto") != "python":
        assert info["backend"] == "native" and info["available"] is True
        assert info["version"] == sky_async.__version__
        assert info["functions"] == compat.MEASURED_CHOICE
    assert info["functions"]["hash_file"] == "python"
    assert compat.MEASURED_CHOICE["read_last_n_lines"] == "python"
    assert compat.MEASURED_CHOICE["is_process_alive"] == "native"


def test_sky_async_backend_python_makes_compat_pure_python() -> None:
    result = run_python(
        """
        import json
        from sky_async import compat
        info = compat.get_backend_info()
        assert all(getattr(compat, n) is compat._PYTHON[n] for n in compat.__all__)
        print(json.dumps(info))
        """,
        env=clean_env(SKY_ASYNC_BACKEND="python"),
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["backend"] == "python"
    assert set(info["functions"].values()) == {"python"}
    assert info["available"] is (NATIVE_IMPORT_ERROR is None)


def test_compat_is_pure_python_without_the_native_module(tmp_path: Path) -> None:
    # A copy of the package without the compiled module.
    import shutil

    package = Path(compat.__file__).parent
    copy = tmp_path / "sky_async"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("_native*.so", "__pycache__"))
    result = run_python(
        """
        import json, warnings
        warnings.simplefilter("ignore")
        from sky_async import compat
        assert compat.base36_encode("ff") == "73"
        print(json.dumps(compat.get_backend_info()))
        """,
        env=clean_env(PYTHONPATH=str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info == {
        "backend": "python",
        "available": False,
        "version": None,
        "functions": {n: "python" for n in compat.__all__},
    }
