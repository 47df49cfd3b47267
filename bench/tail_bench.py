#!/usr/bin/env python3
"""sky_async tail benchmark: the last 10 lines of 1,000 log files, every variant side by side.

    python3 bench/tail_bench.py            # full run: 1,000 files x ~1,000 lines, writes bench/results/
    python3 bench/tail_bench.py --quick    # smoke test: 200 files x 200 lines
    python3 bench/tail_bench.py --no-write # print the table, write nothing

Variants (one process, page cache warm, rounds interleaved with the order rotated, medians):
  skypilot_loop      a Python loop over SkyPilot's read_last_n_lines (sky_async._tail.api, its exact code)
  native_sync        sky_async.sync.tail_files (native backend, this process's I/O backend)
  native_async       await sky_async.tail_files (native backend), in one event loop kept
                     across rounds (as an application calls it; asyncio.run per call
                     would add a loop's creation and shutdown to every round)
  python_backend     await tail_files on the pure-Python backend, in that same loop
  coreutils_tail     `tail -q -n 10 FILE...` in one process (bytes out, no decoding; includes its spawn)
  native_undecoded   diagnostic: the native call below the Python API, lines as bytes (no decoding)
  native_open_only   diagnostic: the same with n=0: per file only open, fstat and close, plus the
                     call's dispatch to the workers; the part no reading or decoding change removes
  file_read_backwards  a Python loop of file_read_backwards.FileReadBackwards, 10 lines each (if installed)

Goal: native tail_files >= 5x faster than skypilot_loop. The Python variants' results must agree
exactly (checked every round); coreutils and file_read_backwards are there for context and differ
in form (bytes; lines without their newline).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))  # this tree, when not installed

import sky_async  # noqa: E402
from sky_async._api import Api  # noqa: E402
from sky_async._python_backend import PythonBackend  # noqa: E402
from sky_async._tail import api as _tail_api  # noqa: E402

try:
    from file_read_backwards import FileReadBackwards
except ImportError:  # optional
    FileReadBackwards = None

N = 10
GOAL = 5.0
LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARNING", "ERROR"]
WORDS = [
    "job",
    "cluster",
    "node",
    "launch",
    "sync",
    "mount",
    "upload",
    "status",
    "ready",
    "retry",
    "failed",
    "provisioning",
    "ray",
    "task",
]


def make_logs(root: Path, files: int, lines: int) -> list[str]:
    """Log files with realistic lines: timestamp, level, module, a message of 5-30 words."""
    rng = random.Random(3)
    paths = []
    for index in range(files):
        out = []
        for line in range(lines):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 30)))
            out.append(
                f"I 2024-05-0{index % 9 + 1} 12:{line % 60:02d}:{index % 60:02d}.{line:06d} "
                f"{rng.choice(LEVELS)} sky.module{index % 7}:{line} {words}\n"
            )
        path = root / f"job-{index:04d}.log"
        path.write_text("".join(out))
        paths.append(str(path))
    return paths


def variants(paths: list[str], loop: asyncio.AbstractEventLoop) -> dict[str, Callable[[], Any]]:
    from sky_async import _native

    python_api = Api(PythonBackend())
    encoded = [os.fsencode(p) for p in paths]
    found: dict[str, Callable[[], Any]] = {
        "skypilot_loop": lambda: [_tail_api.read_last_n_lines(p, N) for p in paths],
        "native_sync": lambda: sky_async.sync.tail_files(paths, N),
        "native_async": lambda: loop.run_until_complete(sky_async.tail_files(paths, N)),
        "python_backend": lambda: loop.run_until_complete(python_api.tail_files(paths, N)),
        "coreutils_tail": lambda: (
            subprocess.run(["tail", "-q", "-n", str(N), *paths], capture_output=True, check=True).stdout
        ),
        "native_undecoded": lambda: _native.tail_files_blocking(encoded, N, 8192, 0, None, "replace"),
        "native_open_only": lambda: _native.tail_files_blocking(encoded, 0, 8192, 0, None, "replace"),
    }
    if FileReadBackwards is not None:

        def frb() -> list[list[str]]:
            out = []
            for p in paths:
                with FileReadBackwards(p, encoding="utf-8") as file:
                    got = []
                    for line in file:
                        got.append(line)
                        if len(got) == N:
                            break
                    out.append(got[::-1])
            return out

        found["file_read_backwards"] = frb
    return found


def measure(paths: list[str], reps: int) -> dict[str, Any]:
    loop = asyncio.new_event_loop()
    try:
        return measure_in(paths, reps, loop)
    finally:
        loop.close()


def measure_in(paths: list[str], reps: int, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    runs = variants(paths, loop)
    names = list(runs)
    reference = runs["skypilot_loop"]()
    for name in names:  # warm-up: the runtime, the pool, the page cache
        runs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    mismatches: list[str] = []
    for rnd in range(reps):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for name in order:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            result = runs[name]()
            elapsed = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            times[name].append(elapsed)
            cpu[name].append((after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime))
            if name in ("native_sync", "native_async", "python_backend") and result != reference:
                mismatches.append(f"{name} round {rnd}")
    base = statistics.median(times["skypilot_loop"])
    table = {}
    for name in names:
        median = statistics.median(times[name])
        table[name] = {
            "median_ms": round(median * 1e3, 3),
            "min_ms": round(min(times[name]) * 1e3, 3),
            "cpu_ms": round(statistics.median(cpu[name]) * 1e3, 3),
            "speedup_vs_skypilot_loop": round(base / median, 2),
            # Per round, this variant against the SkyPilot loop of the same round: the
            # pairs share the machine's load of the moment.
            "paired_speedup": round(
                statistics.median(b / t for b, t in zip(times["skypilot_loop"], times[name])), 2
            ),
        }
    return {"variants": table, "mismatches": mismatches}


def render(info: dict[str, Any]) -> str:
    rows = [
        f"# tail_bench ({info['mode']})",
        "",
        f"`{info['command']}` — {info['date']}, {info['machine']}, backend {info['backend']}",
        "",
        f"Workload: {info['files']} log files x {info['lines']} lines ({info['total_mib']:.1f} MiB), "
        f"last {N} lines each, page cache warm; median of {info['reps']} interleaved rounds.",
        "",
        "| variant | median ms | min ms | CPU ms (all threads) | speed-up vs SkyPilot loop | "
        "paired speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in info["variants"].items():
        rows.append(
            f"| {name} | {row['median_ms']:.2f} | {row['min_ms']:.2f} | {row['cpu_ms']:.2f} | "
            f"{row['speedup_vs_skypilot_loop']:.2f}x | {row['paired_speedup']:.2f}x |"
        )
    rows += ["", f"Goal: native tail_files >= {GOAL:.0f}x faster than the SkyPilot loop."]
    base_cpu = info["variants"]["skypilot_loop"]["cpu_ms"]
    base_min = info["variants"]["skypilot_loop"]["min_ms"]
    open_cpu = info["variants"]["native_open_only"]["cpu_ms"]
    raw_cpu = info["variants"]["native_undecoded"]["cpu_ms"]
    sync_cpu = info["variants"]["native_sync"]["cpu_ms"]
    for name in ("native_sync", "native_async"):
        row = info["variants"][name]
        ratio = row["speedup_vs_skypilot_loop"]
        rows.append(
            f"- {name}: {ratio:.2f}x (median wall) — {'PASS' if ratio >= GOAL else 'FAIL'}; "
            f"{row['paired_speedup']:.2f}x paired per round, {base_cpu / row['cpu_ms']:.2f}x less CPU, "
            f"{base_min / row['min_ms']:.2f}x by the best rounds"
        )
    agree = "yes" if not info["mismatches"] else info["mismatches"]
    rows.append(f"- results identical across the Python variants: {agree}")
    rows += [
        "",
        "The machine is shared (see the load above): wall-clock medians carry the other jobs' noise;",
        "CPU time (all threads of the process) does not, and wall time is CPU time whenever the",
        "other jobs leave no second core for the two workers.",
        "",
        "Where native_sync's CPU goes, from this run's diagnostic variants:",
        f"- open + fstat + close per file and the dispatch (native_open_only): {open_cpu:.2f} ms",
        f"- the reads of the tails and one bytes object per line (native_undecoded - that): "
        f"{raw_cpu - open_cpu:.2f} ms",
        f"- decoding to str and the Python API (native_sync - native_undecoded): {sync_cpu - raw_cpu:.2f} ms",
        f"- SkyPilot's loop: {base_cpu:.2f} ms, so 5x needs the whole call under {base_cpu / GOAL:.2f} ms of "
        f"CPU, {base_cpu / GOAL - open_cpu:.2f} ms beside the open/fstat/close floor.",
        "The kernel's part is almost all of the first two lines (perf: path walk, file setup and",
        "teardown, page-cache lookup, syscall entry; bench/results/cpp_tail_io.txt has it per",
        "syscall); user space is a few percent of it.",
    ]
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args()
    files, lines, reps = (200, 200, 3) if args.quick else (1000, 1000, 7)
    with tempfile.TemporaryDirectory(prefix="sky-async-tail-bench-") as root:
        paths = make_logs(Path(root), files, lines)
        total = sum(os.path.getsize(p) for p in paths)
        result = measure(paths, reps)
    info = {
        "mode": "quick" if args.quick else "full",
        "command": "python3 bench/tail_bench.py" + (" --quick" if args.quick else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
        "backend": sky_async.get_backend_info().get("io_backend"),
        "files": files,
        "lines": lines,
        "total_mib": total / 2**20,
        "reps": reps,
        **result,
    }
    text = render(info)
    print(text)
    if not args.no_write and not args.quick:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "tail_bench.md").write_text(text)
        (args.results / "tail_bench.json").write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
