#!/usr/bin/env python3
"""sky_async.compat: which of the twelve SkyPilot functions should run natively, measured.

    python3 bench/compat_bench.py            # full run (~1 min), writes bench/results/compat_bench.{md,json}
    python3 bench/compat_bench.py --quick    # smoke test (~15 s), writes compat_bench-partial.{md,json}
    python3 bench/compat_bench.py --no-write # print the table only

For every input it times, side by side in one process, with the repetitions interleaved
(the order of the variants rotates each round) and the median reported:

  skypilot   SkyPilot's definition in pure Python (compat.implementations("python"))
  binding    the bare native call on pre-converted arguments (a lower bound for any native path)
  native     compat's native version: the binding behind the checks that keep every result
             and error identical to SkyPilot's (compat.implementations("native"))
  compat     what compat actually exports (the choice recorded in compat.MEASURED_CHOICE)

Inputs are those of the earlier Rust port's benchmark (benchmarks/baseline_benchmarks.py:
a 1000-line file, find_free_port(10000), base36 'deadbeef', format_float(1234567.89, 2),
'A' * 1000 truncated to 80, estimate of /tmp, its (10 sources, 100 files) worker case as
10 directories of 100 entries) plus realistic ones: base36 of an md5 hex, the format_float
values of Kubernetes instance names, status-table cells, a 100-entry directory.

Decision rule: a function gets "native" when its native version is at least 10 % faster
than SkyPilot's on every input (functions without a native version, or that must stay
Python, are "python"). A ratio within 5 % of that margin (the run-to-run spread seen on a
shared 2-core machine) makes the function "borderline": either choice is consistent with
the run, and compat records the conservative one, Python.

Goal, per input: compat is never slower than SkyPilot's Python --
PASS when compat exports SkyPilot's own function object, or its median is below
SkyPilot's. The exit status is 0 whether goals are met or not (this measures, it does not
test); 1 only if something could not run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _machine import cpu_model, git_commit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(
    0, str(REPO / "python")
)  # a source tree with the dev build linked in, else the installed package

from sky_async import compat  # noqa: E402

try:
    from sky_async import _native
except ImportError:  # reported in the table: every binding/native column is empty
    _native = None  # type: ignore[assignment]

NATIVE_MARGIN = 0.90  # native only if at most 90 % of SkyPilot's time on every input
NOISE = 0.05  # run-to-run spread of a ratio on a shared 2-core machine
SIZES = {"full": {"rounds": 9, "sample_s": 0.02}, "quick": {"rounds": 3, "sample_s": 0.004}}
VARIANTS = ("skypilot", "binding", "native", "compat")


def make_inputs(root: Path) -> dict[str, Any]:
    log = root / "log.txt"
    log.write_text("".join(f"Line {i}\n" for i in range(1000)))
    hundred = root / "hundred"
    hundred.mkdir()
    for i in range(100):
        (hundred / f"entry{i:03d}").write_text("")
    sources = {}
    for s in range(10):
        source = root / f"source{s}"
        source.mkdir()
        for i in range(100):
            (source / f"file{i:03d}").write_text("")
        sources[f"/remote/source{s}"] = str(source)
    # A replica log as `sky serve logs --tail` reads it: 10,000 lines of about 100 bytes.
    replica = root / "replica.log"
    replica.write_text(
        "".join(
            f"I 12-01 10:{i // 60 % 60:02d}:{i % 60:02d} replica.py:{i % 900}] request {i} served\n"
            for i in range(10000)
        )
    )
    credentials = root / "credentials"
    credentials.write_text("key")
    return {
        "log": str(log),
        "replica": str(replica),
        "dead_pid": _reaped_pid(),
        "hundred": str(hundred),
        "ten_sources": sources,
        "wheel_and_credentials": {"~/.sky/wheels": str(hundred), "~/.aws/credentials": str(credentials)},
    }


def _reaped_pid() -> int:
    """The pid of a process that has exited and been reaped (no process there now)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def cases(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """(function, label, args, bare native call or None)."""
    n = _native
    md5 = "3f2a9c0d8e7b6a5f4e3d2c1b0a998877"
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    hundred, log, replica, dead = inputs["hundred"], inputs["log"], inputs["replica"], inputs["dead_pid"]
    ten = inputs["ten_sources"]
    real = inputs["wheel_and_credentials"]

    def bare(fn_name: str, *args: Any) -> Callable[[], Any] | None:
        if n is None:
            return None
        fn = getattr(n, fn_name)
        return lambda: fn(*args)

    return [
        (
            "read_last_n_lines",
            "1000-line file, n=10 (Rust port)",
            (log, 10),
            bare("tail_files_blocking", [os.fsencode(log)], 10, 8192, 1, "utf-8", "replace"),
        ),
        (
            "read_last_n_lines",
            "10,000-line replica log, n=100 (serve --tail)",
            (replica, 100),
            bare("tail_files_blocking", [os.fsencode(replica)], 100, 8192, 1, "utf-8", "replace"),
        ),
        (
            "read_last_n_lines",
            "10,000-line replica log, n=1000",
            (replica, 1000),
            bare("tail_files_blocking", [os.fsencode(replica)], 1000, 8192, 1, "utf-8", "replace"),
        ),
        ("hash_file", "1000-line file, sha256 (Rust port)", (log, "sha256"), None),
        ("find_free_port", "10000 (Rust port)", (10000,), bare("find_free_port_blocking", 10000)),
        ("base36_encode", "'deadbeef' (Rust port)", ("deadbeef",), bare("base36_encode", "deadbeef")),
        ("base36_encode", "md5 hex (cluster names)", (md5,), bare("base36_encode", md5)),
        ("base36_encode", "sha256 hex", (sha256,), bare("base36_encode", sha256)),
        ("format_float", "1234567.89, 2 (Rust port)", (1234567.89, 2), bare("format_float", 1234567.89, 2)),
        ("format_float", "0.5 (0.5CPU--1.5GB)", (0.5,), bare("format_float", 0.5, 1)),
        ("format_float", "16.0 (integral float)", (16.0,), bare("format_float", 16.0, 1)),
        ("format_float", "4 (int)", (4,), None),
        (
            "truncate_long_string",
            "'A' * 1000 to 80 (Rust port)",
            ("A" * 1000, 80),
            bare("truncate_long_string", "A" * 1000, 80, False),
        ),
        (
            "truncate_long_string",
            "zone, 20, middle",
            ("us-west-2-availability-zone-1", 20, True),
            bare("truncate_long_string", "us-west-2-availability-zone-1", 20, True),
        ),
        (
            "truncate_long_string",
            "command, 25",
            ("python train.py --epochs 10 --lr 0.001", 25),
            bare("truncate_long_string", "python train.py --epochs 10 --lr 0.001", 25, False),
        ),
        ("get_cpu_count", "(Rust port)", (), bare("get_cpu_count", True)),
        ("get_mem_size_gb", "(Rust port)", (), bare("get_mem_size_gb")),
        ("get_parallel_threads", "None (Rust port)", (), bare("get_parallel_threads", None)),
        ("get_parallel_threads", "'kubernetes'", ("kubernetes",), bare("get_parallel_threads", "kubernetes")),
        ("is_process_alive", "own pid (Rust port)", (os.getpid(),), bare("is_process_alive", os.getpid())),
        ("is_process_alive", "a reaped pid", (dead,), bare("is_process_alive", dead)),
        ("is_process_alive", "pid 0 (never probed)", (0,), bare("is_process_alive", 0)),
        (
            "get_max_workers_for_file_mounts",
            "10 dirs of 100 entries (Rust port's 10, 100)",
            (ten,),
            bare("max_workers_for_file_mounts_blocking", [os.fsencode(v) for v in ten.values()], None),
        ),
        (
            "get_max_workers_for_file_mounts",
            "a 100-entry dir and a file, kubernetes",
            (real, "kubernetes"),
            bare(
                "max_workers_for_file_mounts_blocking", [os.fsencode(v) for v in real.values()], "kubernetes"
            ),
        ),
        (
            "estimate_fd_for_directory",
            "/tmp (Rust port)",
            ("/tmp",),
            bare("estimate_fd_for_directory_blocking", b"/tmp"),
        ),
        (
            "estimate_fd_for_directory",
            "100-entry directory",
            (hundred,),
            bare("estimate_fd_for_directory_blocking", os.fsencode(hundred)),
        ),
    ]


def variants_of(
    name: str, args: tuple[Any, ...], bare: Callable[[], Any] | None
) -> dict[str, Callable[[], Any]]:
    python = compat.implementations("python")[name]
    native = compat.implementations("native")[name]
    exported = getattr(compat, name)
    out: dict[str, Callable[[], Any]] = {"skypilot": lambda: python(*args)}
    if bare is not None:
        out["binding"] = bare
    if native is not python:
        out["native"] = lambda: native(*args)
    out["compat"] = lambda: exported(*args)
    return out


def comparable(value: Any) -> Any:
    """A live hashlib object (hash_file) compares by its digest."""
    return value.hexdigest() if hasattr(value, "hexdigest") else value


def calibrate(fn: Callable[[], Any], sample_s: float) -> int:
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= sample_s / 4 or calls >= 1 << 22:
            return max(1, int(calls * sample_s / max(elapsed, 1e-9)))
        calls *= 4


def sample(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure(all_cases: list[Any], rounds: int, sample_s: float) -> list[dict[str, Any]]:
    rows = []
    for name, label, args, bare in all_cases:
        variants = variants_of(name, args, bare)
        results = {key: comparable(fn()) for key, fn in variants.items() if key != "binding"}
        reference = results["skypilot"]
        agree = all(value == reference for value in results.values())
        calls = {key: calibrate(fn, sample_s) for key, fn in variants.items()}
        samples: dict[str, list[float]] = {key: [] for key in variants}
        keys = list(variants)
        for r in range(rounds):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                samples[key].append(sample(variants[key], calls[key]))
        medians = {key: statistics.median(values) for key, values in samples.items()}
        rows.append(
            {
                "function": name,
                "input": label,
                "results_agree": agree,
                "us": {key: medians[key] * 1e6 for key in medians},
                "samples_us": {key: [v * 1e6 for v in values] for key, values in samples.items()},
                "calls_per_sample": calls,
                "compat_is_skypilot": getattr(compat, name) is compat.implementations("python")[name],
            }
        )
    return rows


def decide(rows: list[dict[str, Any]]) -> dict[str, str]:
    """native / python per function, or "borderline" when an input's ratio lies within the
    run-to-run noise (± NOISE) of the 10 % margin and no input clearly rules native out:
    the recorded choice then stands whichever it is."""
    ratios: dict[str, list[float]] = {}
    for row in rows:
        us = row["us"]
        ratios.setdefault(row["function"], [])
        ratios[row["function"]].append(us["native"] / us["skypilot"] if "native" in us else float("inf"))
    recommended = {}
    for name, values in ratios.items():
        if all(value <= NATIVE_MARGIN - NOISE for value in values):
            recommended[name] = "native"
        elif any(value > NATIVE_MARGIN + NOISE for value in values):
            recommended[name] = "python"
        else:
            recommended[name] = "borderline"
    return recommended


def goal(row: dict[str, Any]) -> str:
    if row["compat_is_skypilot"]:
        return "PASS (same function)"
    return "PASS" if row["us"]["compat"] < row["us"]["skypilot"] else "FAIL"


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(rows: list[dict[str, Any]], recommended: dict[str, str]) -> list[str]:
    columns = ("function", "input", "SkyPilot µs", "binding µs", "native µs", "compat µs")
    head = "| " + " | ".join((*columns, "compat/SkyPilot", "choice", "goal")) + " |"
    lines = [head, "|" + "---|" * 9]
    for row in rows:
        us = row["us"]
        name = row["function"]
        ratio = us["compat"] / us["skypilot"]
        status = goal(row) if row["results_agree"] else "ERROR (results differ)"
        choice = compat.MEASURED_CHOICE[name]
        lines.append(
            f"| {name} | {row['input']} | {fmt(us['skypilot'])} | {fmt(us.get('binding'))} | "
            f"{fmt(us.get('native'))} | {fmt(us['compat'])} | {ratio:.2f} | {choice} | {status} |"
        )
    mismatches = [n for n, c in recommended.items() if c not in (compat.MEASURED_CHOICE[n], "borderline")]
    lines.append("")
    lines.append(
        "Measured choice (native iff its native version takes ≤ 90 % of SkyPilot's time on every input; "
        "borderline when a ratio is within 5 % of that): "
        + ", ".join(f"{n}={c}" for n, c in recommended.items())
    )
    lines.append(
        "compat.MEASURED_CHOICE agrees with this run: "
        + ("yes" if not mismatches else "NO, differs for " + ", ".join(mismatches))
    )
    passed = all(goal(r).startswith("PASS") and r["results_agree"] for r in rows)
    verdict = "PASS" if passed else "FAIL"
    lines.append(f"Goal 'compat is never slower than SkyPilot's Python on any function': {verdict}")
    return lines


def machine_info() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "loadavg_1min": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="print the table, write no files")
    parser.add_argument("--out", help="path prefix of the result files (default bench/results/compat_bench)")
    options = parser.parse_args()
    size = SIZES["quick" if options.quick else "full"]
    root = Path(tempfile.mkdtemp(prefix="compat-bench-"))
    try:
        rows = measure(cases(make_inputs(root)), size["rounds"], size["sample_s"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    recommended = decide(rows)
    command = "python3 bench/compat_bench.py" + (" --quick" if options.quick else "")
    lines = table(rows, recommended)
    print("\n".join(lines))
    if options.no_write:
        return 0
    prefix = (
        Path(options.out)
        if options.out
        else HERE / "results" / ("compat_bench-partial" if options.quick else "compat_bench")
    )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    report = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "backend_info": compat.get_backend_info(),
        "rounds": size["rounds"],
        "sample_seconds": size["sample_s"],
        "native_margin": NATIVE_MARGIN,
        "recommended": recommended,
        "measured_choice": compat.MEASURED_CHOICE,
        "rows": rows,
    }
    prefix.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    md = [
        "# sky_async.compat: native or Python, per function",
        "",
        f"Command: `{command}` ({size['rounds']} interleaved rounds, median per call; "
        f"{info['cpu_model']}, {info['cores']} cores, Python {info['python']}, "
        f"commit {str(info['git_commit'])[:12]}, load {info['loadavg_1min']:.2f}).",
        "",
        "Columns: SkyPilot = SkyPilot's definition in Python; binding = the bare native call; "
        "native = compat's native version (the binding behind the checks that keep SkyPilot's exact "
        "results and errors); "
        "compat = what compat exports. See the docstring of bench/compat_bench.py.",
        "",
        *lines,
        "",
    ]
    prefix.with_suffix(".md").write_text("\n".join(md))
    print(f"\nwrote {prefix}.md and {prefix}.json ({shlex.quote(command)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
