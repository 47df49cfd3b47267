#!/usr/bin/env python3
"""Soak test: a bounded mixed workload for N minutes, watching memory and descriptors.

    python3 bench/soak.py --minutes 3                  # writes bench/results/soak.{md,json}
    python3 bench/soak.py --minutes 0.5 --no-write     # a smoke run, printed only
    SKY_ASYNC_IO_BACKEND=threads python3 bench/soak.py --minutes 3 --name soak_threads

Several threads each run their own event loop (asyncio's and uvloop's, alternately) and one
thread uses the blocking API, all at once, in a loop of randomly chosen operations:
hash_files batches with missing files and directories mixed in (return_exceptions=True),
hash_file, hash_files tasks cancelled at a random moment, asyncio.wait_for timeouts, and the
blocking twins. Functions that other features add (tail_files, probe_processes, scan_tree)
join the mix when the package has them. Every digest is checked against hashlib.

Every few seconds the sampler records operations done, resident memory (VmRSS), open
descriptors and threads. Every --rest-every seconds it also parks all workers between two
operations and counts the descriptors open *at rest*: with nothing in flight, that count is
what a leak raises, while the in-flight count wanders with the machine's load. After a
warm-up (the first 20% of the run), RSS and the descriptors at rest must stay flat: each
series gets a Theil-Sen slope (the median of pairwise slopes, robust to outliers such as a
garbage collection) and a Mann-Kendall trend test; it is "growing" only if the trend is
significant (p < 0.01) *and* the slope projects more than a tolerance over the analysed
window (RSS: 4 MiB or 5% of its median, whichever is larger; descriptors at rest: 1). A
worker that does not reach its rest point within 60 s counts as an error (a hang).

Not part of CI (it runs for minutes by design). Exit status: 0 if both judged series are flat
and no operation went wrong, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import inspect
import json
import math
import os
import platform
import random
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
KiB = 1024
MiB = 1024 * KiB

import sky_async  # noqa: E402  (after the constants, so that --help needs no native module)

try:
    import uvloop
except ImportError:  # optional: the asyncio loop is used for every thread then
    uvloop = None


# --- process probes ------------------------------------------------------------------------------


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM in bytes, and the thread count, from /proc/self/status."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * KiB
            elif key == "Threads":
                values[key] = int(rest)
    return values


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # less the listing's own


# --- trend statistics ----------------------------------------------------------------------------


def theil_sen_slope(xs: list[float], ys: list[float]) -> float:
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    slopes.sort()
    if not slopes:
        return 0.0
    middle = len(slopes) // 2
    return slopes[middle] if len(slopes) % 2 else (slopes[middle - 1] + slopes[middle]) / 2


def mann_kendall_p(ys: list[float]) -> float:
    """One-sided p-value for an increasing trend (normal approximation, with the tie correction)."""
    n = len(ys)
    if n < 4:
        return 1.0
    s = sum((ys[j] > ys[i]) - (ys[j] < ys[i]) for i in range(n) for j in range(i + 1, n))
    ties = Counter(ys).values()
    variance = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    if variance <= 0:
        return 1.0
    z = (s - 1) / math.sqrt(variance) if s > 0 else (s + 1) / math.sqrt(variance) if s < 0 else 0.0
    return 0.5 * math.erfc(z / math.sqrt(2))


def trend(xs: list[float], ys: list[float], tolerance: float) -> dict[str, Any]:
    slope = theil_sen_slope(xs, ys)
    p = mann_kendall_p(ys)
    window = xs[-1] - xs[0] if xs else 0.0
    projected = slope * window
    growing = p < 0.01 and projected > tolerance
    return {
        "slope_per_min": slope * 60,
        "projected_over_window": projected,
        "window_s": window,
        "tolerance": tolerance,
        "mann_kendall_p": p,
        "verdict": "growing" if growing else "flat",
    }


# --- rest points ---------------------------------------------------------------------------------


class Rest:
    """A barrier the sampler raises: every worker parks at its next rest point until released.

    Descriptors counted while operations run measure how many happen to be in flight at that
    instant, which wanders with the machine's load; a leak is what stays open when none is.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._requested = False
        self._parked = 0

    def point(self) -> None:
        """Called by a worker between two operations (it blocks its event loop, on purpose:
        nothing else runs there)."""
        with self._cond:
            if not self._requested:
                return
            self._parked += 1
            self._cond.notify_all()
            while self._requested:
                self._cond.wait()
            self._parked -= 1

    def hold(self, workers: int, timeout: float) -> bool:
        """Parks every worker; False if they did not all arrive within timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._requested = True
            while self._parked < workers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def release(self) -> None:
        with self._cond:
            self._requested = False
            self._cond.notify_all()


# --- the workload --------------------------------------------------------------------------------


class Workload:
    """Files to hash, their expected digests, and the counters every thread updates."""

    def __init__(self, root: Path, seed: int) -> None:
        rng = random.Random(seed)
        self.root = root
        self.small: list[str] = []
        for i in range(300):
            size = rng.choice((0, 1, 100, 4 * KiB, 16 * KiB, 128 * KiB - 1, 128 * KiB + 1, 300 * KiB))
            path = root / f"small-{i}.bin"
            path.write_bytes(rng.randbytes(size))
            self.small.append(str(path))
        self.large: list[str] = []
        for i in range(4):
            path = root / f"large-{i}.bin"
            path.write_bytes(rng.randbytes(16 * MiB))
            self.large.append(str(path))
        self.missing = str(root / "missing.bin")
        self.directory = str(root)
        self.expected = {
            path: hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in self.small + self.large
        }
        self.expected_md5 = {path: hashlib.md5(Path(path).read_bytes()).hexdigest() for path in self.small}
        self.lock = threading.Lock()
        self.ops: Counter[str] = Counter()
        self.errors: list[str] = []
        self.expected_error_items = 0
        self.stop = threading.Event()
        # Rest points: the sampler asks every thread to park between two operations, so that
        # it can count what stays open when nothing is in flight (see Rest).
        self.rest = Rest()

    def count(self, kind: str, expected_errors: int = 0) -> None:
        with self.lock:
            self.ops[kind] += 1
            self.expected_error_items += expected_errors

    def error(self, message: str) -> None:
        with self.lock:
            if len(self.errors) < 50:  # enough to diagnose, bounded like everything else here
                self.errors.append(message)
            self.ops["errors"] += 1

    def batch(self, rng: random.Random) -> tuple[list[str], int]:
        """A random batch of small files, sometimes with a missing file and a directory."""
        paths = rng.sample(self.small, rng.randint(1, 64))
        bad = 0
        if rng.random() < 0.3:
            paths.insert(rng.randrange(len(paths) + 1), self.missing)
            paths.insert(rng.randrange(len(paths) + 1), self.directory)
            bad = 2
        return paths, bad

    def check(self, kind: str, paths: list[str], results: list[Any], algorithm: str = "sha256") -> int:
        """Compare with the oracle; returns how many items were the expected errors."""
        table = self.expected_md5 if algorithm == "md5" else self.expected
        expected_errors = 0
        for path, result in zip(paths, results):
            if path == self.missing:
                if not isinstance(result, FileNotFoundError) or result.filename != path:
                    self.error(f"{kind}: {path}: want FileNotFoundError, got {result!r}")
                expected_errors += 1
            elif path == self.directory:
                if not isinstance(result, IsADirectoryError):
                    self.error(f"{kind}: {path}: want IsADirectoryError, got {result!r}")
                expected_errors += 1
            elif result != table[path]:
                self.error(f"{kind}: {path}: wrong digest {result!r}")
        if len(results) != len(paths):
            self.error(f"{kind}: {len(results)} results for {len(paths)} paths")
        return expected_errors


def optional_operations(workload: Workload) -> dict[str, Callable[[random.Random], Any]]:
    """Coroutine factories for the functions that other features add, when present."""
    ops: dict[str, Callable[[random.Random], Any]] = {}
    if hasattr(sky_async, "tail_files"):
        ops["tail_files"] = lambda rng: sky_async.tail_files(rng.sample(workload.small, 4), 10)
    if hasattr(sky_async, "probe_processes"):
        ops["probe_processes"] = lambda rng: sky_async.probe_processes([os.getpid(), 1, 2**22 - 1])
    if hasattr(sky_async, "scan_tree"):
        ops["scan_tree"] = lambda rng: sky_async.scan_tree(workload.root)
    return ops


async def async_worker(workload: Workload, seed: int) -> None:
    rng = random.Random(seed)
    optional = optional_operations(workload)
    broken: set[str] = set()
    while not workload.stop.is_set():
        workload.rest.point()
        choice = rng.random()
        try:
            if choice < 0.35:
                paths, _ = workload.batch(rng)
                results = await sky_async.hash_files(paths, return_exceptions=True)
                workload.count("hash_files", workload.check("hash_files", paths, results))
            elif choice < 0.45:
                paths, _ = workload.batch(rng)
                paths = [p for p in paths if p in workload.expected_md5]
                results = await sky_async.hash_files(paths, "md5", concurrency=rng.randint(1, 8))
                workload.check("hash_files md5", paths, results, "md5")
                workload.count("hash_files md5")
            elif choice < 0.60:
                path = rng.choice(workload.small)
                if await sky_async.hash_file(path) != workload.expected[path]:
                    workload.error(f"hash_file: {path}: wrong digest")
                workload.count("hash_file")
            elif choice < 0.80:
                # Cancelled at a random point: before the call starts, while the large files
                # are read, or (rarely) after it finished.
                paths = workload.large + rng.sample(workload.small, 8)
                task = asyncio.ensure_future(sky_async.hash_files(paths, return_exceptions=True))
                await asyncio.sleep(rng.choice((0, 0, rng.uniform(0, 0.02), rng.uniform(0, 0.1))))
                task.cancel()
                try:
                    results = await task
                except asyncio.CancelledError:
                    workload.count("cancelled")
                else:
                    workload.check("hash_files (cancel too late)", paths, results)
                    workload.count("cancel too late")
            elif choice < 0.90:
                try:
                    results = await asyncio.wait_for(
                        sky_async.hash_files(workload.large, return_exceptions=True),
                        timeout=rng.uniform(0, 0.01),
                    )
                except asyncio.TimeoutError:
                    workload.count("timed out")
                else:
                    workload.check("hash_files (wait_for)", workload.large, results)
                    workload.count("wait_for finished")
            elif optional:
                name = rng.choice(sorted(set(optional) - broken) or ["-"])
                if name == "-":
                    continue
                call = optional[name](rng)
                if inspect.isawaitable(call):
                    await call
                workload.count(name)
            else:
                await asyncio.sleep(0)
        except TypeError as exc:
            # An optional function with another signature than guessed: left out, said once.
            name = next((n for n in optional if n in str(exc)), None)
            if name and name not in broken:
                broken.add(name)
                workload.count(f"{name} (skipped: {exc})")
            else:
                workload.error(f"unexpected {exc!r}")
        except Exception as exc:  # counted, and the soak goes on
            workload.error(f"unexpected {exc!r}")


def loop_thread(workload: Workload, seed: int, use_uvloop: bool) -> None:
    loop = uvloop.new_event_loop() if use_uvloop else asyncio.new_event_loop()
    try:
        loop.run_until_complete(async_worker(workload, seed))
    finally:
        loop.close()


def sync_thread(workload: Workload, seed: int) -> None:
    rng = random.Random(seed)
    while not workload.stop.is_set():
        workload.rest.point()
        try:
            paths, _ = workload.batch(rng)
            results = sky_async.sync.hash_files(paths, return_exceptions=True)
            workload.count("sync.hash_files", workload.check("sync.hash_files", paths, results))
            path = rng.choice(workload.small)
            if sky_async.sync.hash_file(path) != workload.expected[path]:
                workload.error(f"sync.hash_file: {path}: wrong digest")
            workload.count("sync.hash_file")
        except Exception as exc:
            workload.error(f"unexpected {exc!r}")


# --- run and report ------------------------------------------------------------------------------


def command_line() -> str:
    """This run's command, with the environment that chose what it tested."""
    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items()) if k.startswith("SKY_ASYNC_")]
    if "PYTHONPATH" in os.environ:
        env.insert(0, f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])}")
    return " ".join([*env, "python3 bench/soak.py", shlex.join(sys.argv[1:])]).strip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    duration = args.minutes * 60
    work_root = Path(tempfile.mkdtemp(prefix="sky-async-soak-", dir=args.workdir))
    try:
        workload = Workload(work_root, args.seed)
        info = sky_async.get_backend_info()
        threads = []
        for i in range(args.loops):
            use_uv = uvloop is not None and i % 2 == 1
            threads.append(threading.Thread(target=loop_thread, args=(workload, args.seed + i, use_uv)))
        threads.append(threading.Thread(target=sync_thread, args=(workload, args.seed + 1000)))
        samples = []
        baseline_fds = open_fds()
        start = time.monotonic()
        for thread in threads:
            thread.start()
        next_sample = start
        rests: list[dict[str, Any]] = []
        next_rest = start + args.rest_every
        while True:
            now = time.monotonic()
            if now >= next_sample:
                status = proc_status()
                with workload.lock:
                    ops = sum(v for k, v in workload.ops.items() if k != "errors")
                    errors = workload.ops["errors"]
                samples.append(
                    {
                        "t": round(now - start, 2),
                        "ops": ops,
                        "errors": errors,
                        "rss": status["VmRSS"],
                        "fds": open_fds(),
                        "threads": status["Threads"],
                    }
                )
                if args.verbose:
                    s = samples[-1]
                    print(
                        f"{s['t']:7.1f} s  {s['ops']:8d} ops  rss {s['rss'] / MiB:7.1f} MiB  fds {s['fds']}"
                    )
                next_sample += args.sample_every
            if now >= next_rest:
                held = workload.rest.hold(len(threads), timeout=60.0)
                try:
                    if held:
                        rests.append({"t": round(time.monotonic() - start, 2), "fds": open_fds()})
                        if args.verbose:
                            print(f"{rests[-1]['t']:7.1f} s  at rest: fds {rests[-1]['fds']}")
                    else:
                        workload.error("the workers did not all reach a rest point within 60 s")
                finally:
                    workload.rest.release()
                next_rest += args.rest_every
            if now - start >= duration:
                break
            time.sleep(min(0.2, max(0.0, min(next_sample, next_rest) - time.monotonic())))
        workload.stop.set()
        for thread in threads:
            thread.join(timeout=120)
            if thread.is_alive():
                workload.error(f"{thread.name} did not stop within 120 s")
        elapsed = time.monotonic() - start
        final_fds = open_fds()
    finally:
        shutil.rmtree(work_root, ignore_errors=True)

    analysed = [s for s in samples if s["t"] >= 0.2 * duration]
    xs = [s["t"] for s in analysed]
    rss = [s["rss"] for s in analysed]
    fds = [s["fds"] for s in analysed]
    median_rss = sorted(rss)[len(rss) // 2] if rss else 0
    rss_trend = trend(xs, rss, max(4 * MiB, 0.05 * median_rss))
    fd_trend = trend(xs, [float(f) for f in fds], 2.0)
    rest_analysed = [r for r in rests if r["t"] >= 0.2 * duration]
    rest_fds = [r["fds"] for r in rest_analysed]
    rest_fd_trend = trend([r["t"] for r in rest_analysed], [float(f) for f in rest_fds], 1.0)
    rest_fd_trend["range"] = [min(rest_fds), max(rest_fds)] if rest_fds else None
    ops = dict(sorted(workload.ops.items()))
    total_ops = sum(v for k, v in ops.items() if k != "errors")
    verdict = (
        "PASS"
        if rss_trend["verdict"] == "flat"
        and rest_fd_trend["verdict"] == "flat"
        and len(rest_fds) >= 4
        and not ops.get("errors")
        else "FAIL"
    )
    return {
        "command": command_line(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, kernel {platform.release()}, Python {platform.python_version()}",
        "backend_info": info,
        "uvloop": uvloop is not None,
        "threads": {"event_loops": args.loops, "blocking": 1},
        "duration_s": round(elapsed, 1),
        "ops": ops,
        "total_ops": total_ops,
        "expected_error_items": workload.expected_error_items,
        "errors": ops.get("errors", 0),
        "error_messages": workload.errors,
        "peak_rss": proc_status()["VmHWM"],
        "baseline_fds": baseline_fds,
        "final_fds": final_fds,
        "rss_trend": rss_trend,
        "fd_trend": fd_trend,
        "rest_fd_trend": rest_fd_trend,
        "rests": rests,
        "rest_every_s": args.rest_every,
        "verdict": verdict,
        "samples": samples,
    }


def row(*cells: Any) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def markdown(result: dict[str, Any]) -> str:
    r, f, q = result["rss_trend"], result["fd_trend"], result["rest_fd_trend"]
    loops = result["threads"]["event_loops"]
    uv = "asyncio and uvloop alternately" if result["uvloop"] else "asyncio; no uvloop"
    per_second = result["total_ops"] / result["duration_s"]
    kinds = ", ".join(f"{k} {v:,}" for k, v in result["ops"].items() if k != "errors")
    lines = [
        "# sky_async soak result",
        "",
        f"Command (from the repository root): `{result['command']}`",
        "",
        f"- date: {result['date']}; machine: {result['machine']}",
        f"- `get_backend_info()`: `{json.dumps(result['backend_info'])}`",
        f"- threads: {loops} event loops ({uv}) and 1 using the blocking API, for {result['duration_s']} s",
        f"- operations: {result['total_ops']:,} ({per_second:.0f}/s); unexpected errors: {result['errors']}; "
        f"expected error items checked (missing file, directory): {result['expected_error_items']:,}",
        f"- by kind: {kinds}",
        f"- peak RSS (VmHWM): {result['peak_rss'] / MiB:.1f} MiB; open descriptors before the threads "
        f"started: {result['baseline_fds']}, after they stopped: {result['final_fds']} (a bounded few more: "
        "the native backend keeps the completion queue of the last closed loop until another loop needs "
        "one, and uvloop keeps its own pipes; what must not grow is the series below)",
        "",
        "Trend after the warm-up (first 20% of the run left out); Theil-Sen slope, one-sided "
        "Mann-Kendall p; growing = p < 0.01 and projected growth above the tolerance. The verdict "
        "judges RSS and the descriptors open *at rest*: every "
        f"{result['rest_every_s']:.0f} s all workers park between two operations and the open "
        "descriptors are counted, so a leak shows as a rising count while descriptors that happen "
        "to be in flight (bounded by the operations' concurrency, and wandering with the machine's "
        "load) do not. The in-flight series is shown for information:",
        "",
        row("series", "slope", "projected over the window", "tolerance", "p", "verdict"),
        row(*["---"] * 6),
        row(
            "RSS",
            f"{r['slope_per_min'] / MiB:+.3f} MiB/min",
            f"{r['projected_over_window'] / MiB:+.2f} MiB over {r['window_s']:.0f} s",
            f"{r['tolerance'] / MiB:.1f} MiB",
            f"{r['mann_kendall_p']:.3g}",
            r["verdict"],
        ),
        row(
            f"open fds at rest ({len(result['rests'])} rest points, range {q['range']})",
            f"{q['slope_per_min']:+.3f}/min",
            f"{q['projected_over_window']:+.2f} over {q['window_s']:.0f} s",
            f"{q['tolerance']:.0f}",
            f"{q['mann_kendall_p']:.3g}",
            q["verdict"],
        ),
        row(
            "open fds in flight (information)",
            f"{f['slope_per_min']:+.3f}/min",
            f"{f['projected_over_window']:+.2f} over {f['window_s']:.0f} s",
            f"{f['tolerance']:.0f}",
            f"{f['mann_kendall_p']:.3g}",
            f["verdict"],
        ),
        "",
        f"**Verdict: {result['verdict']}**",
        "",
        "## Samples",
        "",
        row("t (s)", "operations", "errors", "RSS (MiB)", "open fds", "threads"),
        row(*["---"] * 6),
    ]
    for x in result["samples"]:
        lines.append(
            row(
                f"{x['t']:.0f}", f"{x['ops']:,}", x["errors"], f"{x['rss'] / MiB:.1f}", x["fds"], x["threads"]
            )
        )
    lines += [
        "",
        "## Descriptors at rest",
        "",
        ", ".join(f"{x['t']:.0f} s: {x['fds']}" for x in result["rests"]) or "(none)",
    ]
    if result["error_messages"]:
        lines += ["", "## Errors (first 50)", ""] + [f"- {m}" for m in result["error_messages"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long to run (default 3)")
    parser.add_argument("--loops", type=int, default=3, help="threads with an event loop each (default 3)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument(
        "--rest-every", type=float, default=30.0, help="seconds between rest points (default 30)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", default=None, help="where the files go (default $TMPDIR)")
    parser.add_argument("--name", default="soak", help="results file name (default soak)")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--no-write", action="store_true", help="print the report, write no file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each sample as it is taken")
    args = parser.parse_args()

    result = run(args)
    report = markdown(result)
    print(report)
    if not args.no_write:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / f"{args.name}.md").write_text(report)
        (args.results / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
