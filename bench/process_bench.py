#!/usr/bin/env python3
"""sky_async process benchmarks: every comparison side by side, in one run.

    python3 bench/process_bench.py            # full run (~15 s): bench/results/process_bench.{md,json}
    python3 bench/process_bench.py --quick    # smoke test (a few seconds), writes nothing

Cases:
  probe    10,000 pids: every live pid of the system (from /proc), a few zombies made here, and
           pids with no process up to 10,000. Variants: (a) a Python loop over the SkyPilot-faithful
           pure-Python is_process_alive (sky_async._process.api); (b) a bare os.kill(pid, 0) loop (wrong
           for zombies: context only); (c) a psutil.pid_exists loop, if psutil is installed (also
           wrong for zombies); (d) sky_async.sync.probe_processes, native; (e) await
           sky_async.probe_processes, native; (f) the same two on the python backend.
           Goal: (d) at least 5x faster than (a). Every sky_async variant must agree with (a).
  wakeup   wait_for_exit wake-up latency: a child blocked on a pipe exits when the parent writes to
           it; the latency is from that write to the waiter's wake-up. Native and python backend
           (both on a pidfd) against a loop that polls is_process_alive every 10 ms.

All variants run in this one process (they share its runtime and loop), in interleaved rounds with
the order rotated each round, so that machine noise hits every variant alike; times are medians.
The exit status is 0 whether or not the goal is met: this measures, it does not test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _machine import cpu_model, git_commit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "python"))  # a dev tree (scripts/dev-build) when not installed

import sky_async  # noqa: E402
from sky_async._api import Api  # noqa: E402
from sky_async._native_backend import NativeBackend  # noqa: E402
from sky_async._process import python as _process_py  # noqa: E402
from sky_async._python_backend import PythonBackend  # noqa: E402

try:
    import psutil  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - optional
    psutil = None

BATCH = 10_000
ZOMBIES = 5
GOAL_RATIO = 5.0
POLL_INTERVAL = 0.010


# --- probe ---------------------------------------------------------------------------------------


def make_pids(zombies: list[int]) -> tuple[list[int], dict[str, int]]:
    live = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
    taken = set(live) | set(zombies)
    pids = live + zombies
    candidate = 1
    pid_max = _process_py.pid_max()
    while len(pids) < BATCH:
        if candidate not in taken:
            pids.append(candidate)
        candidate = candidate % pid_max + 1
    return pids, {"live": len(live), "zombies": len(zombies), "missing": BATCH - len(live) - len(zombies)}


def kill_loop(pids: list[int]) -> list[bool]:
    out = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            out.append(False)
        except PermissionError:
            out.append(True)
        else:
            out.append(True)
    return out


def bench_probe(reps: int, loop: asyncio.AbstractEventLoop, native: Api, python: Api) -> dict[str, Any]:
    true = shutil.which("true") or "/bin/true"
    zombies = [os.posix_spawn(true, ["true"], os.environ) for _ in range(ZOMBIES)]
    for pid in zombies:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    try:
        pids, mix = make_pids(zombies)
        variants: dict[str, Callable[[], list[bool]]] = {
            "(a) Python loop: SkyPilot-faithful is_process_alive": lambda: [
                _process_py.is_process_alive(pid) for pid in pids
            ],
            "(b) Python loop: bare os.kill(pid, 0) (zombies read alive)": lambda: kill_loop(pids),
        }
        if psutil is not None:
            variants["(c) Python loop: psutil.pid_exists (zombies read alive)"] = lambda: [
                psutil.pid_exists(pid) for pid in pids
            ]
        variants["(d) sky_async.sync.probe_processes, native"] = lambda: native.sync.probe_processes(pids)
        variants["(e) await sky_async.probe_processes, native"] = lambda: loop.run_until_complete(
            native.probe_processes(pids)
        )
        variants["(f) sky_async.sync.probe_processes, python backend"] = lambda: python.sync.probe_processes(
            pids
        )
        variants["(f) await sky_async.probe_processes, python backend"] = lambda: loop.run_until_complete(
            python.probe_processes(pids)
        )
        times: dict[str, list[float]] = {name: [] for name in variants}
        answers: dict[str, list[bool]] = {}
        names = list(variants)
        for name in names:  # warm-up (and the answers, checked below)
            answers[name] = variants[name]()
        for round_index in range(reps):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                variants[name]()
                times[name].append(time.perf_counter() - started)
    finally:
        for pid in zombies:
            os.waitpid(pid, 0)

    reference = answers[names[0]]
    rows = []
    baseline = statistics.median(times[names[0]])
    for name in names:
        median = statistics.median(times[name])
        disagree = sum(a != b for a, b in zip(answers[name], reference))
        rows.append(
            {
                "variant": name,
                "median_s": median,
                "per_pid_us": median / len(pids) * 1e6,
                "speedup_vs_a": baseline / median,
                "alive": sum(answers[name]),
                "differs_from_a": disagree,
                "times_s": times[name],
            }
        )
    native_sync = next(row for row in rows if row["variant"].startswith("(d)"))
    return {
        "pids": len(pids),
        "mix": mix,
        "rows": rows,
        "goal": f"(d) >= {GOAL_RATIO:.0f}x faster than (a)",
        "goal_met": native_sync["speedup_vs_a"] >= GOAL_RATIO and native_sync["differs_from_a"] == 0,
    }


# --- wakeup --------------------------------------------------------------------------------------


async def poll_loop(pid: int) -> bool:
    while _process_py.is_process_alive(pid):
        await asyncio.sleep(POLL_INTERVAL)
    return True


async def one_wakeup(wait: Callable[[int], Awaitable[bool]]) -> float:
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            shutil.which("head") or "/usr/bin/head",
            ["head", "-c", "1"],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0), (os.POSIX_SPAWN_CLOSE, write_end)],
        )
    finally:
        os.close(read_end)
    try:
        waiter = asyncio.ensure_future(wait(pid))
        await asyncio.sleep(0.02)  # the waiter is set up and idle
        released = time.perf_counter()
        os.write(write_end, b"x")
        await waiter
        return time.perf_counter() - released
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


def bench_wakeup(trials: int, loop: asyncio.AbstractEventLoop, native: Api, python: Api) -> dict[str, Any]:
    variants: dict[str, Callable[[int], Awaitable[bool]]] = {
        "await wait_for_exit, native (pidfd)": native.wait_for_exit,
        "await wait_for_exit, python backend (pidfd)": python.wait_for_exit,
        "poll is_process_alive every 10 ms": poll_loop,
    }
    latencies: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for trial in range(trials):
        shift = trial % len(names)
        for name in names[shift:] + names[:shift]:
            latencies[name].append(loop.run_until_complete(one_wakeup(variants[name])))
    polling = statistics.median(latencies[names[-1]])
    rows = []
    for name in names:
        values = sorted(latencies[name])
        median = statistics.median(values)
        rows.append(
            {
                "variant": name,
                "median_ms": median * 1e3,
                "p90_ms": values[int(0.9 * (len(values) - 1))] * 1e3,
                "max_ms": values[-1] * 1e3,
                "vs_polling": polling / median,
                "latencies_ms": [v * 1e3 for v in latencies[name]],
            }
        )
    return {"trials": trials, "rows": rows}


# --- report --------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model() or platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "psutil": None if psutil is None else psutil.__version__,
        "loadavg_start": os.getloadavg(),
        "git": git_commit() or "",
        "backend_info": sky_async.get_backend_info(),
    }


def render(payload: dict[str, Any]) -> str:
    m = payload["machine"]
    probe = payload["probe"]
    wakeup = payload["wakeup"]
    lines = [
        "# sky_async process benchmark results",
        "",
        f"Command (from the repository root): `{payload['command']}`",
        "",
        f"- date: {payload['date']} ({payload['mode']} run, {payload['elapsed_s']:.0f} s)",
        f"- machine: {m['cpu_model']}, {m['cores']} cores, kernel {m['kernel']}, Python {m['python']}, "
        f"psutil {m['psutil']}",
        f"- load average at start / end: {m['loadavg_start'][0]:.2f} / {m['loadavg_end'][0]:.2f}",
        f"- git: {m['git']}",
        f"- `get_backend_info()`: `{json.dumps(m['backend_info'])}`",
        "",
        "All variants run in one process, in interleaved rounds (order rotated each round); times are",
        "medians. Ratios compare numbers from this run only. Full data: `process_bench.json`.",
        "",
        f"## probe: {probe['pids']:,} pids ({probe['mix']['live']} live, {probe['mix']['zombies']} zombies, "
        f"{probe['mix']['missing']:,} with no process), {payload['reps']} rounds",
        "",
        "| variant | time (median) | per pid | vs (a) | alive | answers differing from (a) |",
        "|---|---|---|---|---|---|",
    ]
    for row in probe["rows"]:
        lines.append(
            f"| {row['variant']} | {row['median_s'] * 1e3:.2f} ms | {row['per_pid_us']:.3f} µs "
            f"| {row['speedup_vs_a']:.2f}x | {row['alive']} | {row['differs_from_a']} |"
        )
    lines += [
        "",
        f"Goal: {probe['goal']} with the same answers: **{'PASS' if probe['goal_met'] else 'FAIL'}**",
        "",
        f"## wakeup: wait_for_exit latency, {wakeup['trials']} trials each",
        "",
        "From the write that lets the child exit to the waiter's wake-up (includes the child's own exit).",
        "",
        "| variant | median | p90 | max | polling median / this median |",
        "|---|---|---|---|---|",
    ]
    for row in wakeup["rows"]:
        lines.append(
            f"| {row['variant']} | {row['median_ms']:.3f} ms | {row['p90_ms']:.3f} ms "
            f"| {row['max_ms']:.3f} ms | {row['vs_polling']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few rounds; writes nothing")
    parser.add_argument("--no-write", action="store_true", help="print the results, write nothing")
    args = parser.parse_args(argv)
    reps, trials = (3, 5) if args.quick else (31, 60)
    started = time.monotonic()
    machine = machine_info()
    print(
        f"sky_async process benchmark ({'quick' if args.quick else 'full'}): {machine['cpu_model']}, "
        f"{machine['cores']} cores, kernel {machine['kernel']}",
        file=sys.stderr,
    )
    native, python = Api(NativeBackend()), Api(PythonBackend())
    loop = asyncio.new_event_loop()
    try:
        probe = bench_probe(reps, loop, native, python)
        wakeup = bench_wakeup(trials, loop, native, python)
    finally:
        loop.close()
    machine["loadavg_end"] = os.getloadavg()
    payload = {
        "command": "python3 bench/process_bench.py" + (" --quick" if args.quick else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "elapsed_s": time.monotonic() - started,
        "reps": reps,
        "machine": machine,
        "probe": probe,
        "wakeup": wakeup,
    }
    report = render(payload)
    print(report)
    if not args.quick and not args.no_write:
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        (results / "process_bench.md").write_text(report)
        (results / "process_bench.json").write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {results / 'process_bench.md'} and process_bench.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
