"""The package's sizing helpers and port probe (get_cpu_count, get_mem_size_gb,
get_parallel_threads, estimate_fd_for_directory, get_max_workers_for_file_mounts,
find_free_port) and its string helpers, on both backends, through the coroutines and
their blocking twins. sky_async._system.python (SkyPilot's formulas in pure Python) is the oracle."""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import resource
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import Caller, fd_count, run_python
from sky_async._api import Api
from sky_async._system import python as system
from sky_async._system import strings as strings

ENV_VARS = ("SKYPILOT_POD_CPU_CORE_LIMIT", "SKYPILOT_POD_MEMORY_GB_LIMIT", "SKYPILOT_POD_MEMORY_BYTES_LIMIT")


@pytest.fixture(autouse=True)
def _no_skypilot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def make_dir(path: Path, entries: int) -> Path:
    path.mkdir()
    for index in range(entries):
        (path / f"f{index}").write_text("")
    return path


# --- cheap synchronous ones ------------------------------------------------------------------


def test_cpu_count_matches_the_python_definition(api: Api) -> None:
    assert api.get_cpu_count() == system.get_cpu_count()
    assert api.get_cpu_count() >= 0


@pytest.mark.parametrize(
    ("value", "expected"), [("2", 2), ("2.9", 2), ("0.5", 0), ("1e1", 10), ("-3", -3), (" 1_0 ", 10)]
)
def test_cpu_count_environment_override(
    api: Api, monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", value)
    assert api.get_cpu_count() == expected


@pytest.mark.parametrize("value", ["", "abc", "nan", "0x10", "1__0"])
def test_cpu_count_unparseable_environment(api: Api, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", value)
    with pytest.raises(ValueError, match=f"^Failed to parse the number of CPUs from {value}$"):
        api.get_cpu_count()


@pytest.mark.parametrize("value", ["inf", "-inf", "1e30"])
def test_cpu_count_out_of_range_environment(api: Api, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", value)
    with pytest.raises(
        OverflowError, match=f"^Failed to parse the number of CPUs from {value}: out of range$"
    ):
        api.get_cpu_count()


def test_mem_size_matches_the_python_definition(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.get_mem_size_gb() == system.get_mem_size_gb()
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_BYTES_LIMIT", str(3 * 1024**3))
    assert api.get_mem_size_gb() == 3.0
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_GB_LIMIT", "2.5")
    assert api.get_mem_size_gb() == 2.5
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_GB_LIMIT", "nan")
    assert math.isnan(api.get_mem_size_gb())


@pytest.mark.parametrize(
    ("name", "unit"), [("SKYPILOT_POD_MEMORY_GB_LIMIT", "GB"), ("SKYPILOT_POD_MEMORY_BYTES_LIMIT", "bytes")]
)
def test_mem_size_unparseable_environment(
    api: Api, monkeypatch: pytest.MonkeyPatch, name: str, unit: str
) -> None:
    monkeypatch.setenv(name, "lots")
    with pytest.raises(ValueError, match=rf"^Failed to parse the memory size from lots \({unit}\)$"):
        api.get_mem_size_gb()


@pytest.mark.parametrize(
    "cloud", [None, "", "kubernetes", "Kubernetes", "KUBERNETES", "\u212aubernetes", "k8s", "aws"]
)
def test_parallel_threads_matches_the_python_definition(api: Api, cloud: str | None) -> None:
    assert api.get_parallel_threads(cloud) == system.get_parallel_threads(cloud)
    assert api.get_parallel_threads(cloud) == max(4, (os.cpu_count() or 1) - 1) * (
        4 if cloud and cloud.lower() == "kubernetes" else 1
    )


@pytest.mark.parametrize("bad", [42, b"kubernetes", ["kubernetes"]])
def test_parallel_threads_rejects_a_cloud_that_is_not_a_str(api: Api, bad: object) -> None:
    with pytest.raises(TypeError, match="cloud_str must be a str or None"):
        api.get_parallel_threads(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "hex_str",
    ["ff", "0x10", "  FF\n", "+0X_f_f", "de_ad", "0", "-0", "f" * 128, "0123456789abcdef" * 2, "\u0663"],
)
def test_base36_encode_matches_the_python_definition(api: Api, hex_str: str) -> None:
    assert api.base36_encode(hex_str) == strings.base36_encode(hex_str)


@pytest.mark.parametrize("bad", ["", "0x", "xyz", "1__2", "-ff", "\uff11\u00e9"])
def test_base36_encode_errors_are_the_python_definitions(api: Api, bad: str) -> None:
    with pytest.raises(ValueError) as expected:
        strings.base36_encode(bad)
    with pytest.raises(ValueError) as got:
        api.base36_encode(bad)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("bad", [255, None])
def test_base36_encode_rejects_non_strings(api: Api, bad: object) -> None:
    with pytest.raises(TypeError):
        api.base36_encode(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("num", "precision"),
    [
        (4, 1),
        (True, 1),
        (2.0, 1),
        (-0.0, 1),
        (1e300, 1),
        (2.675, 2),
        (2.5, 0),
        (0.96, 1),
        (-1e-7, 2),
        (math.inf, 1),
        (math.nan, 3),
        (1234567.89, 2),
        (0.1, 60),
        (7.0, -3),
    ],
)
def test_format_float_matches_the_python_definition(api: Api, num: float, precision: int) -> None:
    assert api.format_float(num, precision) == strings.format_float(num, precision)


@pytest.mark.parametrize(
    ("num", "precision", "error"),
    [(1.25, -1, ValueError), (1.25, 1.5, ValueError), ("1.5", 1, AttributeError)],
)
def test_format_float_errors_are_the_python_definitions(
    api: Api, num: Any, precision: Any, error: type
) -> None:
    with pytest.raises(error):
        api.format_float(num, precision)


@pytest.mark.parametrize(
    ("s", "max_length", "middle"),
    [
        ("this is a very long string that needs truncation", 20, False),
        ("us-west-2-availability-zone-1", 15, True),
        ("日本語のテキストです 長い 文字列", 12, False),
        ("abc", -1, False),
    ],
)
def test_truncate_long_string_matches_the_python_definition(
    api: Api, s: str, max_length: int, middle: bool
) -> None:
    assert api.truncate_long_string(s, max_length, middle) == strings.truncate_long_string(
        s, max_length, middle
    )


# --- estimate_fd_for_directory ---------------------------------------------------------------


async def test_fd_estimate_counts_top_level_entries_with_a_floor(call: Caller, tmp_path: Path) -> None:
    assert await call("estimate_fd_for_directory", tmp_path) == 5  # starts the runtime (its own fds)
    before = fd_count()
    (tmp_path / "a").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep").write_text("not counted")
    assert await call("estimate_fd_for_directory", tmp_path) == 15
    assert await call("estimate_fd_for_directory", os.fsencode(tmp_path)) == 15
    assert await call("estimate_fd_for_directory", str(tmp_path / "a")) == 5
    assert await call("estimate_fd_for_directory", tmp_path / "missing") == 5
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    assert await call("estimate_fd_for_directory", tmp_path / "link") == 5
    assert await call("estimate_fd_for_directory", tmp_path) == 20
    assert fd_count() == before


async def test_fd_estimate_of_a_large_directory(call: Caller, tmp_path: Path) -> None:
    source = make_dir(tmp_path / "big", 1500)
    assert await call("estimate_fd_for_directory", source) == 7500 == system.estimate_fd_for_directory(source)


@pytest.mark.parametrize(("bad", "error"), [(None, TypeError), (42.0, TypeError), ("a\0b", ValueError)])
async def test_fd_estimate_rejects_what_is_not_a_path(call: Caller, bad: object, error: type) -> None:
    with pytest.raises(error):
        await call("estimate_fd_for_directory", bad)


# A directory nobody but root may list, checked in a child process running as nobody.
UNLISTABLE_CHECK = """
import asyncio, errno, json, logging, os, resource, sys, collections.abc
from sky_async._system import python as system
from sky_async._api import Api
if sys.argv[1] == "native":
    from sky_async._native_backend import NativeBackend as Backend
else:
    from sky_async._python_backend import PythonBackend as Backend
api = Api(Backend())
asyncio.run(asyncio.sleep(0))
# Everything is imported: the interpreter's own files may be out of nobody's reach.
os.setgid(65534); os.setuid(65534)
locked, other = sys.argv[2], sys.argv[3]
out = {}
for mode in ("async", "sync"):
    for name, args in (("estimate_fd_for_directory", (locked,)),
                       ("get_max_workers_for_file_mounts", ({"/r/ok": other, "/r/locked": locked},))):
        try:
            if mode == "sync":
                getattr(api.sync, name)(*args)
            else:
                asyncio.run(getattr(api, name)(*args))
            out[mode + name] = "no error"
        except OSError as exc:
            out[mode + name] = [type(exc).__name__, exc.errno, exc.filename]
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become a user that cannot list a directory")
def test_an_unlistable_directory_raises_permission_error_naming_it(backend_name: str) -> None:
    import json
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp())  # pytest's own temporary directories are private to root
    try:
        root.chmod(0o755)
        locked = root / "locked"
        locked.mkdir()
        locked.chmod(0o000)
        other = make_dir(root / "other", 3)
        other.chmod(0o755)
        result = run_python(UNLISTABLE_CHECK, backend_name, str(locked), str(other))
    finally:
        shutil.rmtree(root)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert len(outcome) == 4
    for value in outcome.values():
        assert value == ["PermissionError", errno.EACCES, str(locked)]


# --- get_max_workers_for_file_mounts ---------------------------------------------------------


@pytest.mark.parametrize("cloud", [None, "kubernetes"])
async def test_max_workers_matches_the_python_definition(
    call: Caller, tmp_path: Path, cloud: str | None
) -> None:
    small = make_dir(tmp_path / "small", 3)
    big = make_dir(tmp_path / "big", 100)
    mounts = {
        "/r/small": str(small),
        "/r/big": big,
        "/r/file": str(tmp_path / "missing"),
        "s3": "s3://bucket/x",
    }
    expected = system.get_max_workers_for_file_mounts({k: os.fspath(v) for k, v in mounts.items()}, cloud)
    assert await call("get_max_workers_for_file_mounts", mounts, cloud) == expected
    assert await call("get_max_workers_for_file_mounts", {}, cloud) == system.get_max_workers_for_file_mounts(
        {}, cloud
    )


async def test_max_workers_warns_once_about_a_low_limit(
    call: Caller, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(system, "_low_fd_limit_warned", False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        with caplog.at_level(logging.WARNING, logger="sky_async.system"):
            assert await call("get_max_workers_for_file_mounts", {}) == min(
                max((512 - 100) // 5, 1), system.get_parallel_threads()
            )
            await call("get_max_workers_for_file_mounts", {})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Open file descriptor limit (512) is low. File sync to remote clusters may be slow. "
        "Consider increasing the limit using `ulimit -n <number>` or modifying system limits."
    ]


@pytest.mark.parametrize(
    ("mounts", "cloud", "error", "match"),
    [
        (["/r"], None, TypeError, "must be a mapping"),
        ({"/r": None}, None, TypeError, "'/r'"),
        ({"/r": "a\0b"}, None, ValueError, "embedded null byte"),
        ({}, 42, TypeError, "cloud_str must be a str or None"),
    ],
)
async def test_max_workers_rejects_bad_arguments(
    call: Caller, mounts: Any, cloud: Any, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        await call("get_max_workers_for_file_mounts", mounts, cloud)


# --- find_free_port --------------------------------------------------------------------------


async def test_find_free_port_skips_a_bound_port_and_releases_the_one_it_finds(call: Caller) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("", 0))
        port = taken.getsockname()[1]
        if port >= 65534:
            pytest.skip("the kernel handed out the last port")
        await call("find_free_port", port)  # starts the runtime (its own fds)
        before = fd_count()
        found = await call("find_free_port", port)
        assert found > port
        assert fd_count() == before
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as check:
        check.bind(("", found))


async def test_find_free_port_edges(call: Caller) -> None:
    assert await call("find_free_port", 0) == 0
    for start in (65535, 70000, 2**70):
        with pytest.raises(OSError, match="No free ports available") as info:
            await call("find_free_port", start)
        assert info.value.errno == errno.EADDRINUSE
    with pytest.raises(ValueError, match="start_port must be 0 or more, got -5"):
        await call("find_free_port", -5)
    for bad in (True, 1.5, "8000", None):
        with pytest.raises(TypeError, match="start_port must be an int"):
            await call("find_free_port", bad)


# --- cancellation and exports ----------------------------------------------------------------


async def test_cancelling_an_estimate_leaves_no_descriptor_open(api: Api, tmp_path: Path) -> None:
    import asyncio

    source = make_dir(tmp_path / "big", 3000)
    assert await api.estimate_fd_for_directory(source) == 15000  # starts the runtime (its own fds)
    before = fd_count()
    for _ in range(10):
        task = asyncio.ensure_future(api.estimate_fd_for_directory(source))
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            assert await task == 15000
    assert await api.estimate_fd_for_directory(source) == 15000
    for _ in range(100):  # the Python backend's abandoned listings finish in the pool
        if fd_count() == before:
            break
        await asyncio.sleep(0.01)
    assert fd_count() == before


def test_the_package_and_sync_export_the_functions() -> None:
    result = run_python(
        """
        import asyncio, sky_async, os
        from sky_async import sync
        names = ["get_cpu_count", "get_mem_size_gb", "get_parallel_threads", "estimate_fd_for_directory",
                 "get_max_workers_for_file_mounts", "find_free_port"]
        assert all(name in sky_async.__all__ and name in sync.__all__ for name in names)
        assert sky_async.get_cpu_count() == sync.get_cpu_count() >= 0
        assert asyncio.run(sky_async.estimate_fd_for_directory("/")) == sync.estimate_fd_for_directory("/")
        assert sky_async.base36_encode("ff") == "73" and sky_async.format_float(2.0) == "2"
        assert sky_async.truncate_long_string("abcdef", 4, True) == "a..."
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
