"""compat and file_mounts_digest against the real SkyPilot 0.14.1, on random inputs.

SkyPilot's code is the specification of every SkyPilot-exact behaviour, so these tests
call the installed ``skypilot==0.14.1`` (the ``skypilot`` extra, installed by
scripts/setup) side by side with ours: the same inputs (drawn by hypothesis), the same
results, the same exception types and messages. Both compat paths (its Python
definitions and the native ones) are compared.

Without SkyPilot installed the module is skipped, except under scripts/test, which sets
SKY_ASYNC_REQUIRE_SKYPILOT=1 so that CI cannot pass without comparing.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import socket
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SKYPILOT_VERSION, import_skypilot, require_native
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sky_async import compat

sky, sky_backend_utils, sky_common, sky_subprocess, sky_yaml = import_skypilot(
    "backends.backend_utils", "utils.common_utils", "utils.subprocess_utils", "utils.yaml_utils"
)


def test_the_specification_is_the_pinned_release() -> None:
    assert sky.__version__ == SKYPILOT_VERSION


@pytest.fixture(params=("python", "native"))
def ours(request: pytest.FixtureRequest) -> dict[str, Callable[..., Any]]:
    if request.param == "native":
        require_native()
    return compat.implementations(request.param)


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """What a caller can observe: ("ok", result) or ("raised", type, message), and the
    ``sys.tracebacklimit`` the call left behind (SkyPilot's user-facing errors set it to 0
    and leave it so; compat must do the same). The limit is restored afterwards."""
    before = getattr(sys, "tracebacklimit", _UNSET)
    try:
        result: tuple[Any, ...] = ("ok", fn(*args, **kwargs))
    except Exception as exc:  # the comparison is the point
        result = ("raised", type(exc), str(exc))
    after = getattr(sys, "tracebacklimit", _UNSET)
    if before is _UNSET:
        with contextlib.suppress(AttributeError):
            del sys.tracebacklimit
    else:
        sys.tracebacklimit = before
    if result[0] == "ok" and isinstance(result[1], float) and math.isnan(result[1]):
        result = ("ok", "nan")  # nan != nan, but both sides returning nan is agreement
    return (*result, after)


_UNSET = object()


# Hypothesis settings shared by every comparison: enough cases to find the edges, few
# enough to stay a few seconds per test on a loaded 2-core machine. The function-scoped
# fixture (ours) is the same object for every example, which is what we want.
COMPARE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Bytes made of the characters that matter to a line reader: newlines of every kind,
# multi-byte UTF-8 (whole and cut), invalid bytes, NUL.
LINE_PIECES = st.sampled_from(
    [
        b"\n",
        b"\r",
        b"\r\n",
        b"a",
        b"bc",
        b" ",
        b"\x00",
        b"\xc3\xa9",
        b"\xe2\x82",
        b"\xac",
        b"\xff",
        b"\xef\xbb\xbf",
    ]
)
FILE_BYTES = st.lists(LINE_PIECES, max_size=60).map(b"".join)


@COMPARE
@given(data=FILE_BYTES, n=st.integers(-2, 12), chunk_size=st.sampled_from([1, 2, 3, 7, 64, 8192]))
@example(data=b"", n=1, chunk_size=8192)
@example(data=b"a\r\nb\r\n", n=2, chunk_size=1)
def test_read_last_n_lines(
    ours: dict[str, Callable[..., Any]], tmp_path: Path, data: bytes, n: int, chunk_size: int
) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(data)
    want = outcome(sky_common.read_last_n_lines, str(path), n, chunk_size)
    assert outcome(ours["read_last_n_lines"], str(path), n, chunk_size) == want


@COMPARE
@given(data=FILE_BYTES, n=st.integers(0, 6), errors=st.sampled_from(["replace", "strict", "ignore"]))
def test_read_last_n_lines_decoding(
    ours: dict[str, Callable[..., Any]], tmp_path: Path, data: bytes, n: int, errors: str
) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(data)
    want = outcome(sky_common.read_last_n_lines, str(path), n, encoding="utf-8", errors=errors)
    got = outcome(ours["read_last_n_lines"], str(path), n, encoding="utf-8", errors=errors)
    if want[0] == "raised" and want[1] is UnicodeDecodeError:
        # The message names the byte offset within whatever chunk each decoded; the type
        # and the fact of failing are the contract.
        assert got[0] == "raised" and got[1] is UnicodeDecodeError
    else:
        assert got == want


@pytest.mark.parametrize("n", [0, 3])
@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "empty"])
def test_read_last_n_lines_of_what_is_not_a_log(
    ours: dict[str, Callable[..., Any]], tmp_path: Path, kind: str, n: int
) -> None:
    path = tmp_path / kind
    writer = None
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
        # SkyPilot's open() of a FIFO blocks until a writer comes; with one there, its
        # seek to the end fails with ESPIPE (wrapped in RuntimeError).
        writer = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    elif kind == "empty":
        path.write_bytes(b"")
    try:
        want = outcome(sky_common.read_last_n_lines, str(path), n)
        assert outcome(ours["read_last_n_lines"], str(path), n) == want
    finally:
        if writer is not None:
            os.close(writer)


@COMPARE
@given(hex_str=st.text(alphabet="0123456789abcdefABCDEF", max_size=80) | st.text(max_size=8))
@example(hex_str="")
@example(hex_str="0")
@example(hex_str="00ff")
@example(hex_str="-1f")
@example(hex_str=" 1f ")
@example(hex_str="0x1f")
@example(hex_str="1_f")
def test_base36_encode(ours: dict[str, Callable[..., Any]], hex_str: str) -> None:
    try:
        negative = int(hex_str, 16) < 0
    except ValueError:
        negative = False
    if negative:
        # The one documented deviation: SkyPilot's divmod loop never ends on a negative
        # value (it is not called here for that reason); ours says what is wrong.
        with pytest.raises(ValueError, match="non-negative"):
            ours["base36_encode"](hex_str)
        return
    assert outcome(ours["base36_encode"], hex_str) == outcome(sky_common.base36_encode, hex_str)


NUMBERS = (
    st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(
        [0, -0.0, 999, 1000, 999_999, 1_000_000, 999.95, 1e9 - 1, 1e12, 1e15, 1e18, 0.05, -999.5]
    )
)


@COMPARE
@given(num=NUMBERS, precision=st.integers(-1, 6))
def test_format_float(ours: dict[str, Callable[..., Any]], num: float, precision: int) -> None:
    assert outcome(ours["format_float"], num, precision) == outcome(sky_common.format_float, num, precision)


@COMPARE
@given(s=st.text(max_size=80), max_length=st.integers(-3, 90), truncate_middle=st.booleans())
@example(s="x" * 36, max_length=35, truncate_middle=False)
@example(s="x" * 36, max_length=3, truncate_middle=True)
@example(s="héllo wörld" * 4, max_length=10, truncate_middle=True)
def test_truncate_long_string(
    ours: dict[str, Callable[..., Any]], s: str, max_length: int, truncate_middle: bool
) -> None:
    want = outcome(sky_common.truncate_long_string, s, max_length, truncate_middle)
    assert outcome(ours["truncate_long_string"], s, max_length, truncate_middle) == want


@COMPARE
@given(
    data=st.binary(max_size=3000),
    algorithm=st.sampled_from(["md5", "sha1", "sha256", "sha512", "SHA256", "sha3_256", "blake2b", "nope"]),
)
def test_hash_file(ours: dict[str, Callable[..., Any]], tmp_path: Path, data: bytes, algorithm: str) -> None:
    path = tmp_path / "blob"
    path.write_bytes(data)
    want = outcome(lambda: sky_common.hash_file(str(path), algorithm).hexdigest())
    assert outcome(lambda: ours["hash_file"](str(path), algorithm).hexdigest()) == want


def test_hash_file_of_a_missing_file_and_a_directory(
    ours: dict[str, Callable[..., Any]], tmp_path: Path
) -> None:
    for path in (str(tmp_path / "missing"), str(tmp_path)):
        want = outcome(sky_common.hash_file, path, "sha256")
        assert want[0] == "raised"
        assert outcome(ours["hash_file"], path, "sha256") == want


# --- machine sizing: the same machine, the same answers, under SkyPilot's overrides ----------

ENV_VALUES = st.sampled_from([None, "", "0", "1", "2.7", "8", "-3", "1e3", "abc", " 4 ", "inf", "nan"])


@COMPARE
@given(cpu=ENV_VALUES)
def test_get_cpu_count(ours: dict[str, Callable[..., Any]], cpu: str | None) -> None:
    with pytest.MonkeyPatch.context() as env:
        if cpu is None:
            env.delenv("SKYPILOT_POD_CPU_CORE_LIMIT", raising=False)
        else:
            env.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", cpu)
        assert outcome(ours["get_cpu_count"]) == outcome(sky_common.get_cpu_count)


@COMPARE
@given(gb=ENV_VALUES, memory_bytes=ENV_VALUES)
def test_get_mem_size_gb(
    ours: dict[str, Callable[..., Any]], gb: str | None, memory_bytes: str | None
) -> None:
    with pytest.MonkeyPatch.context() as env:
        for name, value in (
            ("SKYPILOT_POD_MEMORY_GB_LIMIT", gb),
            ("SKYPILOT_POD_MEMORY_BYTES_LIMIT", memory_bytes),
        ):
            if value is None:
                env.delenv(name, raising=False)
            else:
                env.setenv(name, value)
        want = outcome(sky_common.get_mem_size_gb)
        got = outcome(ours["get_mem_size_gb"])
        if want[0] == "ok" and got[0] == "ok" and gb is None and memory_bytes is None:
            # Read from the machine twice: the cgroup's usage-free limit and MemTotal do not
            # move, but compare with the tolerance of one page in case a cgroup limit is
            # being changed underneath (it is not, on CI).
            assert got[1] == pytest.approx(want[1], abs=4096 / 1024**3)
        else:
            assert got == want


@pytest.mark.parametrize("cloud", [None, "", "kubernetes", "Kubernetes", "KUBERNETES", "aws", "k8s"])
def test_get_parallel_threads(ours: dict[str, Callable[..., Any]], cloud: str | None) -> None:
    assert ours["get_parallel_threads"](cloud) == sky_subprocess.get_parallel_threads(cloud)


@pytest.mark.parametrize("cpu_count", [None, 1, 2, 5, 64])
def test_get_parallel_threads_reads_os_cpu_count_as_skypilot_does(
    ours: dict[str, Callable[..., Any]], monkeypatch: pytest.MonkeyPatch, cpu_count: int | None
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cpu_count)
    assert ours["get_parallel_threads"]() == sky_subprocess.get_parallel_threads()


TREE_SHAPES = st.lists(st.integers(0, 40), min_size=0, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=TREE_SHAPES,
    extra=st.sampled_from(["none", "file", "missing"]),
    cloud=st.sampled_from([None, "kubernetes", "gcp"]),
)
def test_get_max_workers_for_file_mounts(
    ours: dict[str, Callable[..., Any]],
    tmp_path_factory: pytest.TempPathFactory,
    shape: list[int],
    extra: str,
    cloud: str | None,
) -> None:
    root = tmp_path_factory.mktemp("mounts")
    mounts: dict[str, str] = {}
    for i, entries in enumerate(shape):
        directory = root / f"src{i}"
        directory.mkdir()
        for j in range(entries):
            (directory / f"f{j}").write_bytes(b"x")
        mounts[f"/remote/{i}"] = str(directory)
    if extra == "file":
        (root / "single").write_bytes(b"y")
        mounts["/remote/single"] = str(root / "single")
    elif extra == "missing":
        mounts["/remote/missing"] = str(root / "missing")
    want = outcome(sky_subprocess.get_max_workers_for_file_mounts, mounts, cloud)
    assert outcome(ours["get_max_workers_for_file_mounts"], mounts, cloud) == want


def test_find_free_port(ours: dict[str, Callable[..., Any]]) -> None:
    # Another process may take a port between the two calls; a difference is believed only
    # if it repeats (three tries, each pair back to back).
    for start in (20000, 45000, 65530):
        pairs = []
        for _ in range(3):
            pairs.append((ours["find_free_port"](start), sky_common.find_free_port(start)))
            if pairs[-1][0] == pairs[-1][1]:
                break
        assert pairs[-1][0] == pairs[-1][1], pairs


def test_find_free_port_skips_a_bound_port(ours: dict[str, Callable[..., Any]]) -> None:
    with socket.socket() as held:
        held.bind(("", 0))
        port = held.getsockname()[1]
        if port == 65535:
            pytest.skip("the kernel gave the last port; nothing above it to find")
        assert ours["find_free_port"](port) == sky_common.find_free_port(port) != port


# --- the file-mount digest of _deterministic_cluster_yaml_hash ----------------------------------

NAMES = st.sampled_from(
    ["a", "b", "B", "é", "credentials.db", "access_tokens.db-wal", "x.db", "sub", ".hidden", "10", "9"]
)


def _build(root: Path, tree: dict[str, Any]) -> None:
    for name, value in tree.items():
        if isinstance(value, dict):
            (root / name).mkdir(exist_ok=True)
            _build(root / name, value)
        elif not (root / name).exists():
            (root / name).write_bytes(value)


TREES = st.recursive(
    st.binary(max_size=200),
    lambda children: st.dictionaries(NAMES, children, max_size=4),
    max_leaves=12,
)


def skypilot_cluster_yaml_hash(tmp_path: Path, file_mounts: dict[str, str]) -> str:
    yaml_path = tmp_path / "cluster.yaml"
    sky_yaml.dump_yaml(str(yaml_path), {"cluster_name": "c", "file_mounts": file_mounts})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sky_backend_utils._deterministic_cluster_yaml_hash(str(yaml_path))


def our_cluster_yaml_hash(api: Any, tmp_path: Path, file_mounts: dict[str, str]) -> str:
    # SkyPilot hashes its YAML first, then the mounts; the YAML part is the caller's (our
    # prefix argument), computed here with SkyPilot's own serialisation.
    config = sky_yaml.read_yaml(str(tmp_path / "cluster.yaml"))
    prefix = hashlib.sha256(sky_yaml.dump_yaml_str(config).encode("utf-8")).digest()
    return str(api.sync.file_mounts_digest(file_mounts, prefix=prefix))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trees=st.lists(TREES, min_size=1, max_size=3))
def test_file_mounts_digest(api: Any, tmp_path_factory: pytest.TempPathFactory, trees: list[Any]) -> None:
    tmp_path = tmp_path_factory.mktemp("digest")
    mounts: dict[str, str] = {}
    for i, tree in enumerate(trees):
        if isinstance(tree, dict):
            source = tmp_path / f"mount{i}"
            source.mkdir()
            _build(source, tree)
        else:
            # A single-file mount; the first one under a name whose content SkyPilot skips.
            source = tmp_path / ("credentials.db" if i == 0 else f"file{i}")
            source.write_bytes(tree)
        mounts[f"/remote/{i}"] = str(source)
    want = skypilot_cluster_yaml_hash(tmp_path, mounts)
    assert our_cluster_yaml_hash(api, tmp_path, mounts) == want
