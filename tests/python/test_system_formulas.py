"""SkyPilot's resource-sizing helpers: formulas, environment overrides, and cgroup v1/v2
parsing on fixture trees (so every layout is tested, not only this machine's)."""

from __future__ import annotations

import logging
import os
import resource
from pathlib import Path

import pytest
from sky_async._system import python as system

ENV_VARS = ("SKYPILOT_POD_CPU_CORE_LIMIT", "SKYPILOT_POD_MEMORY_GB_LIMIT", "SKYPILOT_POD_MEMORY_BYTES_LIMIT")
GiB = 1024**3


@pytest.fixture(autouse=True)
def _no_skypilot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def cgroup_v2(root: Path, **files: str) -> str:
    (root / "cgroup.controllers").write_text("cpu memory\n")
    for name, text in files.items():
        (root / name.replace("_", ".")).write_text(text)
    return os.fspath(root)


def cgroup_v1(root: Path, cpu: tuple[str, str] | None = None, memory: str | None = None) -> str:
    if cpu is not None:
        (root / "cpu").mkdir()
        (root / "cpu" / "cpu.cfs_quota_us").write_text(cpu[0])
        (root / "cpu" / "cpu.cfs_period_us").write_text(cpu[1])
    if memory is not None:
        (root / "memory").mkdir()
        (root / "memory" / "memory.limit_in_bytes").write_text(memory)
    return os.fspath(root)


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("100000 100000\n", 1.0),
        ("max 100000", None),
        ("50000 100000", 0.5),
        ("150000", None),
        ("-1 100000", None),
    ],
)
def test_cgroup_v2_cpu_limit(tmp_path: Path, cpu_max: str, expected: float | None) -> None:
    assert system._cgroup_cpu_limit(cgroup_v2(tmp_path, cpu_max=cpu_max)) == expected


def test_cgroup_v2_missing_cpu_max_is_no_limit(tmp_path: Path) -> None:
    assert system._cgroup_cpu_limit(cgroup_v2(tmp_path)) is None


def test_cgroup_v2_zero_period_is_no_limit_but_raises_under_skypilot_rules(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, cpu_max="100 0")
    assert system._cgroup_cpu_limit(root) is None
    with pytest.raises(ZeroDivisionError):
        system._cgroup_cpu_limit(root, skypilot=True)


def test_cgroup_v2_negative_period_is_no_limit_but_negative_under_skypilot_rules(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, cpu_max="50000 -100000")
    assert system._cgroup_cpu_limit(root) is None
    assert system._cgroup_cpu_limit(root, skypilot=True) == -0.5


@pytest.mark.parametrize("cpu_max", ["inf 100000", "100000 inf", "nan 100000", "100000 nan", "1e308 1e-308"])
def test_cgroup_v2_non_finite_values_are_no_limit(tmp_path: Path, cpu_max: str) -> None:
    assert system._cgroup_cpu_limit(cgroup_v2(tmp_path, cpu_max=cpu_max)) is None


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [("100000", "100000", 1.0), ("50000", "100000", 0.5), ("-1", "100000", None), ("x", "100000", None)],
)
def test_cgroup_v1_cpu_limit(tmp_path: Path, quota: str, period: str, expected: float | None) -> None:
    assert system._cgroup_cpu_limit(cgroup_v1(tmp_path, cpu=(quota, period))) == expected


def test_no_cgroup_files_is_no_limit(tmp_path: Path) -> None:
    assert system._cgroup_cpu_limit(os.fspath(tmp_path)) is None
    assert system._cgroup_memory_limit(os.fspath(tmp_path)) is None


@pytest.mark.parametrize(
    ("text", "expected"), [(str(8 * GiB), 8 * GiB), ("max", None), ("", None), ("12.5", None), ("0", None)]
)
def test_cgroup_v2_memory_limit(tmp_path: Path, text: str, expected: int | None) -> None:
    assert system._cgroup_memory_limit(cgroup_v2(tmp_path, memory_max=text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [(str(GiB), GiB), ("", None), ("9223372036854771712", 9223372036854771712)]
)
def test_cgroup_v1_memory_limit(tmp_path: Path, text: str, expected: int | None) -> None:
    assert system._cgroup_memory_limit(cgroup_v1(tmp_path, memory=text)) == expected


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))


@pytest.mark.usefixtures("eight_cpus")
def test_cpu_count_narrows_by_affinity_and_truncated_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert system.get_cpu_count(_root=os.fspath(tmp_path)) == 8
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert system.get_cpu_count(_root=os.fspath(tmp_path)) == 4
    (tmp_path / "a").mkdir()
    assert system.get_cpu_count(_root=cgroup_v2(tmp_path / "a", cpu_max="1600000 100000")) == 4
    (tmp_path / "b").mkdir()
    assert system.get_cpu_count(_root=cgroup_v2(tmp_path / "b", cpu_max="190000 100000")) == 1
    (tmp_path / "c").mkdir()
    assert system.get_cpu_count(_root=cgroup_v2(tmp_path / "c", cpu_max="50000 100000")) == 0


@pytest.mark.usefixtures("eight_cpus")
@pytest.mark.parametrize(
    ("value", "expected"), [("2", 2), ("2.9", 2), ("0.5", 0), ("1e1", 10), ("-3", -3), ("64", 64)]
)
def test_cpu_count_environment_override(monkeypatch: pytest.MonkeyPatch, value: str, expected: int) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", value)
    assert system.get_cpu_count() == expected


@pytest.mark.parametrize("value", ["", "abc", "nan"])
def test_cpu_count_unparseable_environment_is_a_value_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", value)
    with pytest.raises(ValueError, match="Failed to parse the number of CPUs from"):
        system.get_cpu_count()


@pytest.mark.parametrize("value", ["inf", "-Infinity", "1e30", "2147483648"])
def test_cpu_count_infinite_or_huge_environment_is_an_overflow_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", value)
    with pytest.raises(OverflowError, match="out of range"):
        system.get_cpu_count()


def test_cpu_count_under_skypilot_rules_returns_huge_values_and_lets_int_raise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", "1e30")
    assert system._cpu_count(skypilot=True) == int(1e30)
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", "inf")
    with pytest.raises(OverflowError, match="cannot convert float infinity to integer"):
        system._cpu_count(skypilot=True)


def test_cpu_count_on_this_machine_is_at_least_one() -> None:
    assert system.get_cpu_count() >= 1


def test_mem_size_is_total_memory_capped_by_the_cgroup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(system, "_total_memory_bytes", lambda: 8 * GiB)
    assert system.get_mem_size_gb(_root=os.fspath(tmp_path)) == 8.0
    (tmp_path / "a").mkdir()
    assert system.get_mem_size_gb(_root=cgroup_v2(tmp_path / "a", memory_max=str(4 * GiB))) == 4.0
    (tmp_path / "b").mkdir()
    assert system.get_mem_size_gb(_root=cgroup_v2(tmp_path / "b", memory_max=str(16 * GiB))) == 8.0


def test_mem_size_environment_overrides_gb_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_BYTES_LIMIT", str(3 * GiB))
    assert system.get_mem_size_gb() == 3.0
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_GB_LIMIT", "2")
    assert system.get_mem_size_gb() == 2.0


@pytest.mark.parametrize(
    ("name", "unit"), [("SKYPILOT_POD_MEMORY_GB_LIMIT", "GB"), ("SKYPILOT_POD_MEMORY_BYTES_LIMIT", "bytes")]
)
def test_mem_size_unparseable_environment_is_a_value_error(
    monkeypatch: pytest.MonkeyPatch, name: str, unit: str
) -> None:
    monkeypatch.setenv(name, "lots")
    with pytest.raises(ValueError, match=rf"Failed to parse the memory size from lots \({unit}\)"):
        system.get_mem_size_gb()


def test_mem_size_on_this_machine_matches_meminfo() -> None:
    assert 0 < system.get_mem_size_gb() <= system._total_memory_bytes() / GiB


@pytest.mark.parametrize(
    ("cpus", "cloud", "expected"),
    [
        (8, None, 7),
        (8, "kubernetes", 28),
        (8, "Kubernetes", 28),
        (1, None, 4),
        (2, None, 4),
        (5, None, 4),
        (64, "kubernetes", 252),
        (8, "k8s", 7),
        (8, "kubernetes ", 7),
        (8, "", 7),
        (None, None, 4),
    ],
)
def test_parallel_threads_formula(
    monkeypatch: pytest.MonkeyPatch, cpus: int | None, cloud: str | None, expected: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert system.get_parallel_threads(cloud) == expected


def test_parallel_threads_rejects_a_truthy_non_string() -> None:
    with pytest.raises(AttributeError):
        system.get_parallel_threads(42)  # type: ignore[arg-type]


def test_fd_estimate_counts_top_level_entries_with_a_floor(tmp_path: Path) -> None:
    assert system.estimate_fd_for_directory(tmp_path) == 5  # empty: the floor
    (tmp_path / "a").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep").write_text("not counted")
    assert system.estimate_fd_for_directory(tmp_path) == 15
    assert system.estimate_fd_for_directory(tmp_path / "a") == 5
    assert system.estimate_fd_for_directory(tmp_path / "missing") == 5
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    assert system.estimate_fd_for_directory(tmp_path / "link") == 5
    assert system.estimate_fd_for_directory(tmp_path) == 20


@pytest.mark.usefixtures("eight_cpus")
@pytest.mark.parametrize(
    ("soft", "entries", "cloud", "expected"),
    [
        (1024, 0, None, 7),
        (1024, 100, None, 1),
        (256, 0, "kubernetes", 31),
        (-1, 0, None, 1),
        (100, 0, None, 1),
    ],
)
def test_max_workers_for_file_mounts_formula(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, soft: int, entries: int, cloud: str | None, expected: int
) -> None:
    if cloud == "kubernetes":
        monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, resource.RLIM_INFINITY))
    source = tmp_path / "src"
    source.mkdir()
    for index in range(entries):
        (source / f"f{index}").write_text("")
    mounts = {
        "/remote/src": os.fspath(source),
        "/remote/file": os.fspath(tmp_path / "missing"),
        "s3": "s3://b",
    }
    assert system.get_max_workers_for_file_mounts(mounts, cloud) == expected


def test_max_workers_warns_once_about_a_low_fd_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(system, "_low_fd_limit_warned", False)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (256, 256))
    with caplog.at_level(logging.WARNING, logger="sky_async.system"):
        system.get_max_workers_for_file_mounts({})
        system.get_max_workers_for_file_mounts({})
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "Open file descriptor limit (256) is low. File sync to remote clusters may be slow. "
        "Consider increasing the limit using `ulimit -n <number>` or modifying system limits."
    ]


def test_max_workers_errors_are_those_of_skypilot(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        system.get_max_workers_for_file_mounts({"/r": None})  # type: ignore[dict-item]
    with pytest.raises(AttributeError):
        system.get_max_workers_for_file_mounts(["/r"])  # type: ignore[arg-type]
