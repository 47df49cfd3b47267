"""sky_async.compat under the caller's patches: what a test replaces with ``mock.patch``
(``os.cpu_count``, ``os.sched_getaffinity``, ``psutil.cpu_count``, ``psutil.virtual_memory``,
``socket.socket.bind``, ``open``...) moves compat's results exactly as it moves SkyPilot's
(skypilot 0.14.1, sky/utils/common_utils.py and subprocess_utils.py), on both paths; and
without a patch the native path is still the one taken.

Each expected value is SkyPilot's formula applied to the patched sources.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from conftest import clean_env, require_native, run_python
from sky_async import compat

GiB = 1024**3
_CPU_VARIABLES = ("SKYPILOT_POD_CPU_CORE_LIMIT",)
_MEMORY_VARIABLES = ("SKYPILOT_POD_MEMORY_GB_LIMIT", "SKYPILOT_POD_MEMORY_BYTES_LIMIT")

try:
    import psutil
except ImportError:
    psutil = None

needs_psutil = pytest.mark.skipif(
    psutil is None, reason="psutil is not installed (it is in the test extras: pip install '.[test]')"
)


@pytest.fixture
def impl(backend_name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """compat's functions on one path, with SkyPilot's resource variables unset."""
    if backend_name == "native":
        require_native()
    for variable in _CPU_VARIABLES + _MEMORY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return compat.implementations(backend_name)


def _host_cpus() -> int:
    """psutil.cpu_count(), where SkyPilot's get_cpu_count starts (sysconf, as psutil reads it)."""
    return psutil.cpu_count() if psutil is not None else os.sysconf("SC_NPROCESSORS_ONLN")


def _total_memory() -> int:
    """psutil.virtual_memory().total, as SkyPilot reads it (MemTotal, as psutil reads it)."""
    return psutil.virtual_memory().total if psutil is not None else _meminfo_total()


def _meminfo_total() -> int:
    with open("/proc/meminfo") as file:
        return next(int(line.split()[1]) * 1024 for line in file if line.startswith("MemTotal:"))


def _cgroup_v2() -> bool:
    return os.path.isfile("/sys/fs/cgroup/cgroup.controllers")


def _real_cgroup_cpu_limit() -> float | None:
    """SkyPilot's _get_cgroup_cpu_limit on this machine's real files."""
    try:
        if _cgroup_v2():
            quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
            return None if quota == "max" or float(quota) <= 0 else float(quota) / float(period)
        quota = float(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = float(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _real_cgroup_memory_limit() -> int | None:
    """SkyPilot's _get_cgroup_memory_limit on this machine's real files."""
    path = "/sys/fs/cgroup/memory.max" if _cgroup_v2() else "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    try:
        limit = int(Path(path).read_text().strip())
    except (OSError, ValueError):  # missing, "max" or empty
        return None
    return limit if limit > 0 else None


def _skypilot_mem_size_gb(total: int, limit: int | None) -> float:
    return (total if limit is None else min(total, limit)) / GiB


def _skypilot_cpu_count(host: int, affinity: int | None, cgroup: float | None) -> int:
    """SkyPilot's _cpu_count: the host count, narrowed by the affinity mask (when
    os.sched_getaffinity exists) and the truncated cgroup quota."""
    cpus = host if affinity is None else min(host, affinity)
    return cpus if cgroup is None else min(cpus, int(cgroup))


@contextlib.contextmanager
def _cgroup_v2_files(files: dict[str, str]) -> Iterator[None]:
    """A cgroup v2 root holding *files*, seen through patched os.path.isfile and open as a
    test of SkyPilot's own does; every other path opens for real."""
    real_open, real_isfile = builtins.open, os.path.isfile
    paths = {f"/sys/fs/cgroup/{name}": text for name, text in files.items()}

    def fake_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        if path in paths:
            return io.StringIO(paths[path])
        if isinstance(path, str) and path.startswith("/sys/fs/cgroup/"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return real_open(path, *args, **kwargs)

    def fake_isfile(path: Any) -> bool:
        return path == "/sys/fs/cgroup/cgroup.controllers" or real_isfile(path)

    with mock.patch("builtins.open", fake_open), mock.patch("os.path.isfile", fake_isfile):
        yield


# --- get_parallel_threads: os.cpu_count ------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "cloud", "expected"), [(64, None, 63), (64, "kubernetes", 252), (None, None, 4)]
)
def test_get_parallel_threads_reads_a_patched_os_cpu_count(
    impl: dict[str, Any], count: int | None, cloud: str | None, expected: int
) -> None:
    # SkyPilot: max(4, (os.cpu_count() or 1 when None) - 1), times 4 on Kubernetes.
    with mock.patch("os.cpu_count", return_value=count):
        assert impl["get_parallel_threads"](cloud) == expected
        assert compat.get_parallel_threads(cloud) == expected


def test_get_max_workers_for_file_mounts_reads_patched_rlimit_and_cpu_count(
    impl: dict[str, Any], tmp_path: Path
) -> None:
    for index in range(3):
        (tmp_path / f"f{index}").write_text("")
    mounts = {"/remote": os.fspath(tmp_path)}
    # SkyPilot: (soft RLIMIT_NOFILE - 100) // max(5, 5 per entry), between 1 and
    # get_parallel_threads().
    for soft, expected in ((100_000, 63), (250, 10), (50, 1)):
        with (
            mock.patch("os.cpu_count", return_value=64),
            mock.patch("resource.getrlimit", return_value=(soft, soft)),
        ):
            assert impl["get_max_workers_for_file_mounts"](mounts) == expected, soft


# --- get_cpu_count: psutil.cpu_count, os.sched_getaffinity, the cgroup files ---------------


def test_get_cpu_count_reads_a_patched_sched_getaffinity(impl: dict[str, Any]) -> None:
    expected = _skypilot_cpu_count(_host_cpus(), 1, _real_cgroup_cpu_limit())
    with mock.patch("os.sched_getaffinity", return_value={0}):
        assert impl["get_cpu_count"]() == expected
        assert compat.get_cpu_count() == expected


def test_get_cpu_count_without_sched_getaffinity_reads_the_host_count_as_psutil_does(
    impl: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # psutil.cpu_count() is sysconf(SC_NPROCESSORS_ONLN) on Linux: patching os.sysconf
    # moves SkyPilot's count, with or without psutil installed.
    real_sysconf = os.sysconf
    monkeypatch.setattr(
        os, "sysconf", lambda name: 48 if name == "SC_NPROCESSORS_ONLN" else real_sysconf(name)
    )
    monkeypatch.delattr(os, "sched_getaffinity")  # as on a platform without it
    assert impl["get_cpu_count"]() == _skypilot_cpu_count(48, None, _real_cgroup_cpu_limit())


def test_get_cpu_count_does_not_read_os_cpu_count(impl: dict[str, Any]) -> None:
    # SkyPilot's get_cpu_count starts from psutil.cpu_count(), never os.cpu_count().
    expected = _skypilot_cpu_count(_host_cpus(), len(os.sched_getaffinity(0)), _real_cgroup_cpu_limit())
    with mock.patch("os.cpu_count", return_value=1):
        assert impl["get_cpu_count"]() == expected


@needs_psutil
@pytest.mark.parametrize("count", [1, 512])
def test_get_cpu_count_reads_a_patched_psutil_cpu_count(impl: dict[str, Any], count: int) -> None:
    expected = _skypilot_cpu_count(count, len(os.sched_getaffinity(0)), _real_cgroup_cpu_limit())
    with mock.patch("psutil.cpu_count", return_value=count):
        assert impl["get_cpu_count"]() == expected
        assert compat.get_cpu_count() == expected


@needs_psutil
def test_get_cpu_count_of_a_psutil_count_of_none_fails_as_skypilots(impl: dict[str, Any]) -> None:
    with mock.patch("psutil.cpu_count", return_value=None), pytest.raises(TypeError):
        impl["get_cpu_count"]()  # SkyPilot: min(None, len(affinity))


@pytest.mark.parametrize(
    ("cpu_max", "cores"), [("150000 100000", 1.5), ("800000 100000", 8.0), ("max 100000", None)]
)
def test_get_cpu_count_reads_cgroup_files_through_a_patched_open(
    impl: dict[str, Any], cpu_max: str, cores: float | None
) -> None:
    expected = _skypilot_cpu_count(_host_cpus(), len(os.sched_getaffinity(0)), cores)
    with _cgroup_v2_files({"cpu.max": cpu_max}):
        assert impl["get_cpu_count"]() == expected


# --- get_mem_size_gb: psutil.virtual_memory, the cgroup files ------------------------------


@needs_psutil
def test_get_mem_size_gb_reads_a_patched_psutil_virtual_memory(impl: dict[str, Any]) -> None:
    with mock.patch("psutil.virtual_memory") as virtual_memory:
        virtual_memory.return_value.total = 8 * GiB
        expected = _skypilot_mem_size_gb(8 * GiB, _real_cgroup_memory_limit())
        assert impl["get_mem_size_gb"]() == expected
        assert compat.get_mem_size_gb() == expected


@pytest.mark.parametrize(("memory_max", "limit"), [(str(2 * GiB), 2 * GiB), ("max", None), ("", None)])
def test_get_mem_size_gb_reads_cgroup_files_through_a_patched_open(
    impl: dict[str, Any], memory_max: str, limit: int | None
) -> None:
    expected = _skypilot_mem_size_gb(_total_memory(), limit)
    with _cgroup_v2_files({"memory.max": memory_max}):
        assert impl["get_mem_size_gb"]() == expected


# --- find_free_port: socket.socket and its bind ----------------------------------------------


def test_find_free_port_goes_through_a_patched_bind(impl: dict[str, Any]) -> None:
    real_bind = socket.socket.bind
    tried: list[int] = []

    def bind_refusing_the_first_three(self: socket.socket, address: tuple[str, int]) -> None:
        tried.append(address[1])
        if len(tried) <= 3:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        real_bind(self, ("127.0.0.1", 0))  # a real bind that cannot collide

    with mock.patch.object(socket.socket, "bind", bind_refusing_the_first_three):
        assert impl["find_free_port"](20000) == 20003
    assert tried == [20000, 20001, 20002, 20003]


def test_find_free_port_raises_a_socket_creation_error_at_once(impl: dict[str, Any]) -> None:
    # SkyPilot creates the socket outside its try: EMFILE is raised, not skipped over.
    emfile = OSError(errno.EMFILE, "Too many open files")
    with mock.patch("socket.socket", side_effect=emfile) as factory, pytest.raises(OSError) as info:
        impl["find_free_port"](20000)
    assert info.value.errno == errno.EMFILE
    assert factory.call_count == 1


# --- compat's own definitions: the sources they read ---------------------------------------


def test_is_process_alive_reads_a_patched_os_kill(impl: dict[str, Any]) -> None:
    with mock.patch("os.kill", side_effect=ProcessLookupError(errno.ESRCH, "No such process")):
        assert impl["is_process_alive"](os.getpid()) is False


def test_estimate_fd_for_directory_reads_a_patched_listdir(impl: dict[str, Any], tmp_path: Path) -> None:
    with mock.patch("os.listdir", return_value=[f"e{index}" for index in range(40)]):
        assert impl["estimate_fd_for_directory"](os.fspath(tmp_path)) == 200


def test_read_last_n_lines_reads_a_patched_os_path_exists(impl: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("a\nb\n")
    with (
        mock.patch("os.path.exists", return_value=False),
        pytest.raises(AssertionError, match="File not found"),
    ):
        impl["read_last_n_lines"](os.fspath(path), 1)


# --- the native path is kept, and reported truthfully -----------------------------------------


def _require_native_compat() -> None:
    require_native()
    if os.environ.get("SKY_ASYNC_BACKEND", "auto").strip().lower() == "python":
        pytest.skip("SKY_ASYNC_BACKEND=python: compat runs its Python definitions only")


def test_without_patches_the_native_path_runs_and_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    _require_native_compat()
    from sky_async import _native

    for variable in _CPU_VARIABLES + _MEMORY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert compat.get_backend_info()["functions"] == compat.MEASURED_CHOICE
    calls = {
        name: mock.patch.object(_native, name, wraps=getattr(_native, name))
        for name in ("get_parallel_threads", "get_cpu_count", "get_mem_size_gb", "find_free_port_blocking")
    }
    spies = {name: patcher.start() for name, patcher in calls.items()}
    try:
        compat.get_parallel_threads()
        compat.get_cpu_count()
        compat.get_mem_size_gb()
        compat.find_free_port(20000)
    finally:
        for patcher in calls.values():
            patcher.stop()
    assert {name: spy.call_count for name, spy in spies.items()} == dict.fromkeys(calls, 1)


def test_get_backend_info_reports_python_while_a_source_is_patched() -> None:
    _require_native_compat()
    with mock.patch("os.cpu_count", return_value=64):
        functions = compat.get_backend_info()["functions"]
        assert functions["get_parallel_threads"] == "python"
        assert functions["get_cpu_count"] == "native"  # SkyPilot's get_cpu_count does not read it
    with mock.patch.object(socket.socket, "bind"):
        assert compat.get_backend_info()["functions"]["find_free_port"] == "python"
    assert compat.get_backend_info()["functions"] == compat.MEASURED_CHOICE


@needs_psutil
def test_psutil_itself_is_not_a_patch_but_a_wrapper_of_it_is() -> None:
    require_native()
    import functools

    from sky_async._system import native_exact as _native_exact

    sources = _native_exact.SOURCES["get_mem_size_gb"]
    assert sources.intact()
    wrapper = functools.wraps(psutil.virtual_memory)(lambda: psutil.virtual_memory())
    with mock.patch("psutil.virtual_memory", wrapper):
        assert sources.replaced() == ["psutil.virtual_memory"]
    assert sources.intact()


def test_the_native_path_does_not_import_psutil() -> None:
    require_native()
    result = run_python(
        """
        import json, sys
        from sky_async import compat
        compat.get_cpu_count(), compat.get_mem_size_gb(), compat.get_parallel_threads()
        print(json.dumps(["psutil" in sys.modules, compat.get_backend_info()["functions"]]))
        """
    )
    assert result.returncode == 0, result.stderr
    imported, functions = json.loads(result.stdout)
    assert imported is False
    assert functions["get_cpu_count"] == "native"


def test_without_psutil_the_python_definitions_compute_the_same_numbers() -> None:
    # psutil unimportable (None in sys.modules): the Python definitions use psutil's own
    # Linux sources, so both paths agree, patches are still followed, and nothing fails.
    result = run_python(
        """
        import json, os, sys
        sys.modules["psutil"] = None
        from unittest import mock
        from sky_async import compat
        python = compat.implementations("python")
        real = os.sysconf
        with mock.patch("os.sysconf", lambda name: 7 if name == "SC_NPROCESSORS_ONLN" else real(name)):
            with mock.patch("os.sched_getaffinity", return_value=set(range(100))):
                patched = python["get_cpu_count"]()
        print(json.dumps([python["get_cpu_count"](), python["get_mem_size_gb"](), patched]))
        """,
        env=clean_env(SKY_ASYNC_BACKEND="python"),
    )
    assert result.returncode == 0, result.stderr
    cpus, memory, patched = json.loads(result.stdout)
    affinity = len(os.sched_getaffinity(0))
    cgroup = _real_cgroup_cpu_limit()
    assert cpus == _skypilot_cpu_count(os.sysconf("SC_NPROCESSORS_ONLN"), affinity, cgroup)
    assert patched == _skypilot_cpu_count(7, 100, cgroup)
    assert memory == _skypilot_mem_size_gb(_meminfo_total(), _real_cgroup_memory_limit())


def test_every_native_version_declares_its_sources() -> None:
    require_native()
    from sky_async._system import native_exact as _native_exact

    natives = {
        name for name, fn in compat.implementations("native").items() if fn is not compat._PYTHON[name]
    }
    assert set(_native_exact.SOURCES) == natives
    for name in natives:
        assert _native_exact.SOURCES[name].intact(), name
        assert _native_exact.SOURCES[name].replaced() == [], name
