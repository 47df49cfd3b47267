#!/usr/bin/env python3
"""sky_async hashing benchmarks: every comparison side by side, in one run.

    python3 bench/hash_bench.py            # full run (~3-5 min on 2 cores), writes bench/results/
    python3 bench/hash_bench.py --quick    # smoke test with small sizes (< 30 s)
    python3 bench/hash_bench.py --only small_files --only cancel

Cases (see bench/README.md):
  small_files  5,000 x 16 KiB, SHA-256: sky_async.hash_files (native io_uring, native threads,
               python backend) vs a sequential hashlib.file_digest loop vs ThreadPoolExecutors
  large_files  8 x 64 MiB, SHA-256: throughput vs `openssl speed` single-core x min(cores, files)
  memory       50,000 x 4 KiB: peak RSS growth of one hash_files call, in a fresh process
  per_call     20,000 hash_file calls on empty files under asyncio.gather vs asyncio.to_thread
  cancel       cancel a hash_file of a 1 GiB file after 100 ms: latency, CPU after, fds

Every timed variant runs in its own long-lived worker process (the native runtime picks its I/O
backend once per process), all workers are warmed up first, and repetitions are interleaved
(variant order rotated each round) so that machine noise hits every variant alike. Reported
times are medians. The exit status is 0 whether or not goals are met (this measures, it does not
test); it is 1 only if a case could not be run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import hashlib
import json
import os
import platform
import re
import resource
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _machine import cpu_flags, cpu_model, git_commit, git_dirty

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_RESULTS = HERE / "results"
CASES = ("small_files", "large_files", "memory", "per_call", "cancel")
KiB = 1024
MiB = 1024 * 1024
CORES = os.cpu_count() or 1

# Sizes: full run, and --quick (a smoke test).
SIZES = {
    "full": {
        "reps": 5,
        "small_files": (5000, 16 * KiB),
        "large_files": (8, 64 * MiB),
        "openssl_seconds": 2,
        "memory": (50000, 4 * KiB),
        "per_call": 20000,
        "cancel_size": 1024 * MiB,
        "cancel_reps": 3,
    },
    "quick": {
        "reps": 3,
        "small_files": (500, 16 * KiB),
        "large_files": (8, 4 * MiB),
        "openssl_seconds": 1,
        "memory": (5000, 4 * KiB),
        "per_call": 2000,
        "cancel_size": 256 * MiB,
        "cancel_reps": 1,
    },
}

CANCEL_AFTER_S = 0.100
CANCEL_LATENCY_GOAL_S = 0.200
CANCEL_CPU_GOAL_MS = 10.0  # "~0": a leftover hash of the rest of the file would cost hundreds of ms
MEMORY_GOAL_MIB = 64.0
WORKER_TIMEOUT_S = 600.0

# Environments of the worker processes. None removes the variable.
ENV_NATIVE_URING = {"SKY_ASYNC_BACKEND": "native", "SKY_ASYNC_IO_BACKEND": "io_uring"}
ENV_NATIVE_THREADS = {"SKY_ASYNC_BACKEND": "native", "SKY_ASYNC_IO_BACKEND": "threads"}
ENV_PYTHON = {"SKY_ASYNC_BACKEND": "python", "SKY_ASYNC_IO_BACKEND": None}
ENV_HASHLIB = {"HASH_BENCH_NO_SKY": "1"}  # plain Python: does not import sky_async at all

SKY_ENVS = (
    ("native, io_uring", ENV_NATIVE_URING),
    ("native, threads", ENV_NATIVE_THREADS),
    ("python backend", ENV_PYTHON),
)


# --------------------------------------------------------------------------------------------
# Code that runs inside worker / probe processes
# --------------------------------------------------------------------------------------------


def file_digest_hex(path: str, algorithm: str = "sha256") -> str:
    """The hashlib way: what a user would write without sky_async."""
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # Python >= 3.11
            return hashlib.file_digest(f, algorithm).hexdigest()
        digest = hashlib.new(algorithm)
        for chunk in iter(lambda: f.read(256 * KiB), b""):
            digest.update(chunk)
        return digest.hexdigest()


def list_files(directory: str) -> list[str]:
    return [os.path.join(directory, name) for name in sorted(os.listdir(directory))]


def results_check(results: list[Any]) -> str:
    """A short fingerprint of a result list, to compare variants (all must agree)."""
    return hashlib.sha256("\n".join(map(str, results)).encode()).hexdigest()[:16]


def proc_status_kib(field: str) -> int | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of the process
    return usage.ru_utime + usage.ru_stime


def worker_main() -> None:
    """A long-lived process serving timed runs, one JSON request per line on stdin."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed on stdout goes to stderr, not into the protocol
    sky = None
    if os.environ.get("HASH_BENCH_NO_SKY") != "1":
        import sky_async as sky
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    path_sets: dict[str, list[str]] = {}
    pools: dict[Any, ThreadPoolExecutor] = {}

    def pool(workers: int | None) -> ThreadPoolExecutor:
        if workers not in pools:
            pools[workers] = ThreadPoolExecutor(workers)
        return pools[workers]

    def run(kind: str, paths: list[str], algorithm: str, workers: int | None) -> list[Any]:
        # The awaitable is made inside the timed coroutine: asyncio.gather() starts tasks at once.
        if kind == "sky_hash_files":
            return loop.run_until_complete(timed(lambda: sky.hash_files(paths, algorithm)))
        if kind == "sky_sync_hash_files":
            start = time.perf_counter()
            results = sky.sync.hash_files(paths, algorithm)
            return [time.perf_counter() - start, results]
        if kind == "sky_hash_file_gather":
            return loop.run_until_complete(
                timed(lambda: asyncio.gather(*(sky.hash_file(p, algorithm) for p in paths)))
            )
        if kind == "to_thread_gather":
            return loop.run_until_complete(
                timed(
                    lambda: asyncio.gather(*(asyncio.to_thread(file_digest_hex, p, algorithm) for p in paths))
                )
            )
        if kind == "hashlib_seq":
            start = time.perf_counter()
            results = [file_digest_hex(p, algorithm) for p in paths]
            return [time.perf_counter() - start, results]
        if kind == "hashlib_pool":
            executor = pool(workers)
            start = time.perf_counter()
            results = list(executor.map(file_digest_hex, paths, [algorithm] * len(paths)))
            return [time.perf_counter() - start, results]
        raise ValueError(f"unknown kind {kind!r}")

    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "exit":
                out.write(json.dumps({"ok": True}) + "\n")
                break
            if op == "info":
                response: dict[str, Any] = {"pid": os.getpid()}
                if sky is not None:
                    response["backend_info"] = sky.get_backend_info()
                    response["module"] = sky.__file__
                else:
                    response["backend_info"] = {"backend": "none (plain hashlib)"}
            elif op == "load":
                path_sets[request["key"]] = list_files(request["dir"])
                response = {"n": len(path_sets[request["key"]])}
            elif op == "drop":
                path_sets.pop(request["key"], None)
                response = {}
            elif op == "run":
                paths = path_sets[request["key"]]
                gc.collect()
                cpu0 = cpu_seconds()
                seconds, results = run(
                    request["kind"], paths, request.get("algorithm", "sha256"), request.get("workers")
                )
                cpu = cpu_seconds() - cpu0
                response = {
                    "seconds": seconds,
                    "cpu_seconds": cpu,
                    "n": len(results),
                    "check": results_check(results),
                }
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # report, keep serving
            response = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        out.write(json.dumps(response) + "\n")
    for executor in pools.values():
        executor.shutdown()
    loop.close()


async def timed(make_awaitable: Any) -> list[Any]:
    start = time.perf_counter()
    results = await make_awaitable()
    return [time.perf_counter() - start, results]


def memory_probe_main(directory: str) -> None:
    """Fresh process: RSS growth of one hash_files call over every file in *directory*."""
    import sky_async as sky

    paths = list_files(directory)  # the input list is the caller's, built before the baseline
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(sky.hash_files(paths[:64]))  # warm-up: runtime, threads, rings
    loop.run_until_complete(sky.hash_file(paths[0]))
    gc.collect()
    hwm_reset = False
    try:  # "5" resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        hwm_reset = True
    except OSError:
        pass
    rss_before = proc_status_kib("VmRSS")
    hwm_before = proc_status_kib("VmHWM")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    results = loop.run_until_complete(sky.hash_files(paths))
    seconds = time.perf_counter() - start
    hwm_after = proc_status_kib("VmHWM")
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_after = proc_status_kib("VmRSS")
    result_bytes = sys.getsizeof(results) + sum(sys.getsizeof(r) for r in results)
    paths_bytes = sys.getsizeof(paths) + sum(sys.getsizeof(p) for p in paths)
    # Bytes copies the API makes of the paths (os.fsencode) live during the call too.
    encoded_bytes = sys.getsizeof(paths) + sum(sys.getsizeof(os.fsencode(p)) for p in paths)
    peak = hwm_after if hwm_reset else maxrss_after
    print(
        json.dumps(
            {
                "files": len(paths),
                "seconds": seconds,
                "backend_info": sky.get_backend_info(),
                "hwm_reset": hwm_reset,
                "rss_before_kib": rss_before,
                "hwm_before_kib": hwm_before,
                "hwm_after_kib": hwm_after,
                "maxrss_before_kib": maxrss_before,
                "maxrss_after_kib": maxrss_after,
                "rss_after_kib": rss_after,
                "growth_kib": peak - rss_before,
                "result_list_bytes": result_bytes,
                "path_list_bytes": paths_bytes,
                "encoded_path_list_bytes": encoded_bytes,
                "check": results_check(results),
            }
        )
    )


def cancel_probe_main(big: str, small: str, reps: int) -> None:
    """Fresh process: cancel hash_file(big) after 100 ms; latency, CPU afterwards, open fds."""
    import sky_async as sky

    async def main() -> dict[str, Any]:
        await sky.hash_file(small)  # warm-up: runtime, threads, completion queue
        start = time.perf_counter()
        await sky.hash_file(big)  # context: how long the whole file takes (and warms the cache)
        full_seconds = time.perf_counter() - start
        await asyncio.sleep(0.2)
        cpu0 = cpu_seconds()
        await asyncio.sleep(1.0)
        idle_cpu_ms = (cpu_seconds() - cpu0) * 1000
        runs = []
        for _ in range(reps):
            gc.collect()
            fds_before = fd_count()
            task = asyncio.ensure_future(sky.hash_file(big))
            await asyncio.sleep(CANCEL_AFTER_S)
            done_before_cancel = task.done()
            start = time.perf_counter()
            task.cancel()
            try:
                await task
                outcome = "completed"
            except asyncio.CancelledError:
                outcome = "cancelled"
            latency = time.perf_counter() - start
            cpu0 = cpu_seconds()
            await asyncio.sleep(1.0)
            cpu_after_ms = (cpu_seconds() - cpu0) * 1000
            runs.append(
                {
                    "latency_s": latency,
                    "outcome": outcome,
                    "done_before_cancel": done_before_cancel,
                    "cpu_after_ms": cpu_after_ms,
                    "fds_before": fds_before,
                    "fds_after": fd_count(),
                }
            )
        return {
            "backend_info": sky.get_backend_info(),
            "full_hash_seconds": full_seconds,
            "idle_cpu_ms": idle_cpu_ms,
            "runs": runs,
        }

    print(json.dumps(asyncio.run(main())))


# --------------------------------------------------------------------------------------------
# Orchestration (the parent process)
# --------------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    pass


def child_env(overrides: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class Worker:
    """A worker process (`hash_bench.py --worker`) with its own environment."""

    def __init__(self, label: str, env: dict[str, str | None]) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(env),
        )
        self._buffer = b""
        self.info = self.call(op="info")

    def call(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise BenchError(f"worker {self.label!r} died (exit {self.proc.poll()})") from None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"worker {self.label!r} did not answer {request} in time")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise BenchError(f"worker {self.label!r} died during {request} (exit {self.proc.wait()})")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        response = json.loads(line)
        if "error" in response:
            sys.stderr.write(response.get("traceback", ""))
            raise BenchError(f"worker {self.label!r}: {response['error']}")
        return response

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call(op="exit")
                self.proc.wait(timeout=30)
            except (BenchError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()


def run_probe(args: list[str], env: dict[str, str | None], timeout: float = 600) -> dict[str, Any]:
    """Run this script in a fresh process with *args*; its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise BenchError(f"probe {args[0]} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_files(directory: str, count: int, size: int) -> None:
    """*count* files of *size* random bytes (each different)."""
    width = len(str(count))
    for i in range(count):
        with open(os.path.join(directory, f"f{i:0{width}d}"), "wb") as f:
            if size:
                f.write(os.urandom(size))


def make_big_files(directory: str, count: int, size: int) -> None:
    """*count* files of *size* bytes: a random 1 MiB block per file, repeated."""
    for i in range(count):
        block = os.urandom(min(size, MiB))
        with open(os.path.join(directory, f"big{i}"), "wb") as f:
            left = size
            while left > 0:
                f.write(block[:left])
                left -= len(block)


def warm_page_cache(directory: str) -> None:
    buffer = bytearray(MiB)
    for path in list_files(directory):
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def settle_disk() -> None:
    """Flush dirty pages so writeback does not run during the timings."""
    os.sync()
    time.sleep(0.2)


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def faster(x: float) -> str:
    """A speedup factor as words: 2.50x faster / 0.80x (slower)."""
    return f"{x:.2f}x faster" if x >= 1 else f"{x:.2f}x (slower)"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("PASS" if ok else "FAIL")


class Report:
    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []
        self.cases: dict[str, Any] = {}

    def row(self, case: str, variant: str, value: str, ratio: str, goal: str, ok: bool | None) -> None:
        self.rows.append(
            {
                "case": case,
                "variant": variant,
                "time": value,
                "ratio": ratio,
                "goal": goal,
                "result": verdict(ok),
            }
        )

    def error(self, case: str, message: str) -> None:
        self.rows.append(
            {
                "case": case,
                "variant": "(case failed to run)",
                "time": "—",
                "ratio": "—",
                "goal": "—",
                "result": "ERROR: " + " ".join(message.split())[:300],
            }
        )


HEADERS = (
    ("case", "case"),
    ("variant", "variant"),
    ("time", "time (median)"),
    ("ratio", "ratio vs baseline"),
    ("goal", "goal"),
    ("result", "pass/fail"),
)


def text_table(rows: list[dict[str, str]]) -> str:
    widths = {k: max([len(h)] + [len(r[k]) for r in rows]) for k, h in HEADERS}
    lines = ["  ".join(h.ljust(widths[k]) for k, h in HEADERS).rstrip()]
    lines.append("  ".join("-" * widths[k] for k, _ in HEADERS))
    previous_case = None
    for r in rows:
        if previous_case is not None and r["case"] != previous_case:
            lines.append("")
        previous_case = r["case"]
        lines.append("  ".join(r[k].ljust(widths[k]) for k, _ in HEADERS).rstrip())
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, str]]) -> str:
    def cell(text: str) -> str:
        text = text.replace("|", "\\|")
        return f"**{text}**" if text.startswith(("FAIL", "ERROR")) else text

    lines = ["| " + " | ".join(h for _, h in HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows:
        lines.append("| " + " | ".join(cell(r[k]) for k, _ in HEADERS) + " |")
    return "\n".join(lines)


def interleaved(reps: int, variants: list[dict[str, Any]], run_one: Any) -> list[float]:
    """Round-robin the variants *reps* times, rotating the order each round.

    Returns the 1-minute load average at the start of each round."""
    loads = []
    for rep in range(reps):
        loads.append(os.getloadavg()[0])
        shift = rep % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            variant.setdefault("samples", []).append(run_one(variant))
    return loads


def check_agreement(variants: list[dict[str, Any]]) -> str | None:
    checks = {v["name"]: v["check"] for v in variants if "check" in v}
    if len(set(checks.values())) > 1:
        return "results differ between variants: " + ", ".join(f"{k}={c}" for k, c in checks.items())
    return None


WORKER_ENVS = {
    "native io_uring": ENV_NATIVE_URING,
    "native threads": ENV_NATIVE_THREADS,
    "python backend": ENV_PYTHON,
    "hashlib": ENV_HASHLIB,
}
WANTED_IO = {"native io_uring": "io_uring", "native threads": "threads"}


def start_workers(
    report: Report, case: str, variants: list[dict[str, Any]]
) -> tuple[list[Worker], list[dict[str, Any]]]:
    """One worker per environment the variants use.

    A variant whose worker cannot start is reported and dropped."""
    workers: dict[str, Worker] = {}
    for label in dict.fromkeys(v["w"] for v in variants):
        try:
            workers[label] = Worker(label, WORKER_ENVS[label])
        except BenchError as exc:
            report.error(case, f"{label}: {exc}")
    kept = []
    for v in variants:
        if v["w"] not in workers:
            if v.get("baseline"):
                for w in workers.values():
                    w.close()
                raise BenchError(f"the baseline's worker ({v['w']}) could not start")
            continue
        v["worker"] = workers[v["w"]]
        v["name"] += io_backend_note(
            v["worker"], WANTED_IO.get(v["w"]) if v["kind"].startswith("sky") else None
        )
        kept.append(v)
    return list(workers.values()), kept


def io_backend_note(worker: Worker, wanted: str | None) -> str:
    info = worker.info.get("backend_info", {})
    got = info.get("io_backend")
    if wanted and got != wanted:
        return f" [asked {wanted}, got {got}: {info.get('io_backend_reason')}]"
    return ""


# ---------------------------------------------------------------- case 1: many small files


def hash_files_variants() -> list[dict[str, Any]]:
    """sky_async.hash_files on each backend: the rows every throughput case measures."""
    return [
        {
            "name": "sky_async.hash_files native, io_uring",
            "w": "native io_uring",
            "kind": "sky_hash_files",
            "goal": True,
        },
        {
            "name": "sky_async.hash_files native, threads",
            "w": "native threads",
            "kind": "sky_hash_files",
            "goal": True,
        },
        {"name": "sky_async.hash_files python backend", "w": "python backend", "kind": "sky_hash_files"},
    ]


def case_small_files(cfg: dict[str, Any], report: Report, tmp_root: str) -> None:
    count, size = cfg["small_files"]
    reps = cfg["reps"]
    case = f"1 small files ({count:,} x {size // KiB} KiB, sha256)"
    default_workers = min(32, CORES + 4)
    with tempfile.TemporaryDirectory(prefix="hash_bench_small_", dir=tmp_root) as directory:
        make_files(directory, count, size)
        settle_disk()
        warm_page_cache(directory)
        variants = [
            {
                "name": "hashlib.file_digest sequential loop",
                "w": "hashlib",
                "kind": "hashlib_seq",
                "baseline": True,
            },
            {
                "name": f"ThreadPoolExecutor default ({default_workers} workers) + file_digest",
                "w": "hashlib",
                "kind": "hashlib_pool",
                "workers": None,
                "pool": True,
            },
            {
                "name": f"ThreadPoolExecutor 2x cores ({2 * CORES} workers) + file_digest",
                "w": "hashlib",
                "kind": "hashlib_pool",
                "workers": 2 * CORES,
                "pool": True,
            },
            *hash_files_variants(),
            {
                "name": "sky_async.sync.hash_files native, io_uring",
                "w": "native io_uring",
                "kind": "sky_sync_hash_files",
            },
        ]
        workers, variants = start_workers(report, case, variants)
        try:
            for w in workers:
                w.call(op="load", key="small", dir=directory)
            for v in variants:  # warm-up, untimed
                v["check"] = v["worker"].call(
                    op="run", key="small", kind=v["kind"], workers=v.get("workers")
                )["check"]

            def run_one(v: dict[str, Any]) -> float:
                r = v["worker"].call(op="run", key="small", kind=v["kind"], workers=v.get("workers"))
                if r["check"] != v["check"]:
                    v["unstable"] = True
                v.setdefault("cpu", []).append(r["cpu_seconds"])
                return r["seconds"]

            loads = interleaved(reps, variants, run_one)
        finally:
            for w in workers:
                w.close()

    mismatch = check_agreement(variants)
    base = median(next(v for v in variants if v.get("baseline"))["samples"])
    best_pool = min(median(v["samples"]) for v in variants if v.get("pool"))
    data = []
    for v in variants:
        t = median(v["samples"])
        speedup = base / t
        cpu = median(v["cpu"])
        value = f"{fmt_time(t)} ({t / count * 1e6:.1f} µs/file; CPU {cpu / count * 1e6:.1f} µs/file)"
        if v.get("baseline"):
            report.row(case, v["name"], value, "1.00x (baseline)", "", None)
        elif v.get("goal"):
            ok = speedup >= 4 and t < best_pool and not mismatch and not v.get("unstable")
            report.row(
                case,
                v["name"],
                value,
                f"{faster(speedup)}; {best_pool / t:.2f}x vs best ThreadPoolExecutor",
                ">= 4x faster than sequential, and faster than ThreadPoolExecutor",
                ok,
            )
        else:
            report.row(case, v["name"], value, faster(speedup), "(context)", None)
        data.append(
            {
                "variant": v["name"],
                "samples_s": v["samples"],
                "median_s": t,
                "speedup_vs_sequential": speedup,
                "cpu_samples_s": v["cpu"],
                "median_cpu_s": cpu,
                "backend_info": v["worker"].info.get("backend_info"),
            }
        )
    if mismatch:
        report.error(case, mismatch)
    report.cases["small_files"] = {
        "files": count,
        "file_size": size,
        "reps": reps,
        "variants": data,
        "loadavg_per_round": loads,
        "mismatch": mismatch,
    }


# ---------------------------------------------------------------- case 2: large files throughput


def openssl_speed(seconds: int, multi: int | None = None, elapsed: bool = False) -> dict[str, Any]:
    """Throughput in bytes/s of `openssl speed -evp sha256 -bytes 1048576` (user CPU time based,
    or wall-clock with *elapsed*); with *multi*, the sum over that many parallel processes."""
    command = ["openssl", "speed"]
    if elapsed:
        command.append("-elapsed")
    if multi:
        command += ["-multi", str(multi)]
    command += ["-evp", "sha256", "-bytes", "1048576", "-seconds", str(seconds)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 10 + 60)
    matches = re.findall(r"^sha256\s+([\d.]+)k\s*$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not matches:
        raise BenchError(
            f"could not parse `{shlex.join(command)}` output: {proc.stdout[-500:]} {proc.stderr[-500:]}"
        )
    return {"command": shlex.join(command), "bytes_per_s": float(matches[-1]) * 1000}


def case_large_files(cfg: dict[str, Any], report: Report, tmp_root: str) -> None:
    count, size = cfg["large_files"]
    reps = cfg["reps"]
    total = count * size
    parallel = min(CORES, count)
    case = f"2 large files ({count} x {size // MiB} MiB, sha256)"
    if shutil.which("openssl") is None:
        report.error(case, "openssl not found on PATH")
        return
    ceilings: list[float] = []
    multis: list[float] = []
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hash_bench_large_", dir=tmp_root) as directory:
        make_big_files(directory, count, size)
        settle_disk()
        warm_page_cache(directory)
        variants = [
            *hash_files_variants(),
            {"name": "hashlib.file_digest sequential loop", "w": "hashlib", "kind": "hashlib_seq"},
            {
                "name": f"ThreadPoolExecutor {parallel} workers + file_digest",
                "w": "hashlib",
                "kind": "hashlib_pool",
                "workers": parallel,
            },
        ]
        workers, variants = start_workers(report, case, variants)
        try:
            for w in workers:
                w.call(op="load", key="large", dir=directory)
            for v in variants:
                v["check"] = v["worker"].call(
                    op="run", key="large", kind=v["kind"], workers=v.get("workers")
                )["check"]
            command = openssl_speed(cfg["openssl_seconds"])["command"]

            def run_one(v: dict[str, Any]) -> float:
                r = v["worker"].call(op="run", key="large", kind=v["kind"], workers=v.get("workers"))
                v.setdefault("cpu", []).append(r["cpu_seconds"])
                return r["seconds"]

            multi_command = None
            for rep in range(reps):  # the ceiling is measured once per round, next to the variants
                ceilings.append(openssl_speed(cfg["openssl_seconds"])["bytes_per_s"])
                if parallel > 1:
                    # What the cores actually deliver right now (others may be using them): context.
                    m = openssl_speed(cfg["openssl_seconds"], multi=parallel, elapsed=True)
                    multi_command = m["command"]
                    multis.append(m["bytes_per_s"])
                loads.append(os.getloadavg()[0])
                shift = rep % len(variants)
                for v in variants[shift:] + variants[:shift]:
                    v.setdefault("samples", []).append(run_one(v))
        finally:
            for w in workers:
                w.close()

    mismatch = check_agreement(variants)
    single = median(ceilings)
    ceiling = single * parallel
    report.row(
        case,
        f"ceiling: openssl speed single-core x min(cores={CORES}, files={count})",
        f"{ceiling / 1e9:.2f} GB/s ({single / 1e9:.2f} GB/s x {parallel})",
        "1.00 (baseline)",
        "",
        None,
    )
    if multis:
        report.row(
            case,
            f"openssl speed -elapsed -multi {parallel} (measured parallel, context)",
            f"{median(multis) / 1e9:.2f} GB/s",
            f"{median(multis) / ceiling:.0%} of ceiling",
            "(context)",
            None,
        )
    data = []
    for v in variants:
        t = median(v["samples"])
        # Paired ratio: each round's throughput against that round's ceiling.
        ratios = [total / s / (c * parallel) for s, c in zip(v["samples"], ceilings)]
        ratio = median(ratios)
        value = f"{fmt_time(t)} ({total / t / 1e9:.2f} GB/s)"
        ratio_text = f"{ratio:.0%} of ceiling"
        if multis:
            of_multi = median([total / s / m for s, m in zip(v["samples"], multis)])
            ratio_text += f" ({of_multi:.0%} of -multi)"
        if v.get("goal"):
            report.row(
                case, v["name"], value, ratio_text, ">= 80% of ceiling", ratio >= 0.80 and not mismatch
            )
        else:
            report.row(case, v["name"], value, ratio_text, "(context)", None)
        data.append(
            {
                "variant": v["name"],
                "samples_s": v["samples"],
                "median_s": t,
                "throughput_gb_s": total / t / 1e9,
                "ratio_of_ceiling": ratio,
                "cpu_samples_s": v["cpu"],
                "cpu_gb_s": total / median(v["cpu"]) / 1e9,
                "backend_info": v["worker"].info.get("backend_info"),
            }
        )
    if mismatch:
        report.error(case, mismatch)
    report.cases["large_files"] = {
        "files": count,
        "file_size": size,
        "reps": reps,
        "openssl_command": command,
        "openssl_single_core_bytes_per_s": ceilings,
        "ceiling_bytes_per_s": ceiling,
        "parallel": parallel,
        "openssl_multi_command": multi_command,
        "openssl_multi_bytes_per_s": multis,
        "loadavg_per_round": loads,
        "variants": data,
        "mismatch": mismatch,
        "note": "openssl speed divides by user CPU time unless -elapsed is given",
    }


# ---------------------------------------------------------------- case 3: memory, many tiny files


def case_memory(cfg: dict[str, Any], report: Report, tmp_root: str) -> None:
    count, size = cfg["memory"]
    case = f"3 memory ({count:,} x {size // KiB} KiB)"
    data = []
    with tempfile.TemporaryDirectory(prefix="hash_bench_mem_", dir=tmp_root) as directory:
        make_files(directory, count, size)
        settle_disk()
        warm_page_cache(directory)
        checks = set()
        for label, env in SKY_ENVS:
            try:
                r = run_probe(["--memory-probe", directory], env)
            except (BenchError, subprocess.TimeoutExpired) as exc:
                report.error(case, f"{label}: {exc}")
                continue
            checks.add(r["check"])
            growth = r["growth_kib"] / KiB
            results_mib = r["result_list_bytes"] / MiB
            how = "VmHWM after reset" if r["hwm_reset"] else "ru_maxrss"
            value = (
                f"+{growth:.1f} MiB peak RSS ({r['rss_before_kib'] / KiB:.0f} -> "
                f"{(r['rss_before_kib'] + r['growth_kib']) / KiB:.0f} MiB, {how}); "
                f"result list {results_mib:.1f} MiB; {fmt_time(r['seconds'])}"
            )
            is_goal = label.startswith("native")
            report.row(
                case,
                f"sky_async.hash_files {label}",
                value,
                f"{growth - results_mib:.1f} MiB beyond the result list",
                f"<= {MEMORY_GOAL_MIB:.0f} MiB growth" if is_goal else "(context)",
                growth <= MEMORY_GOAL_MIB if is_goal else None,
            )
            data.append({"variant": label, **r})
    if len(checks) > 1:
        report.error(case, "results differ between backends")
    report.cases["memory"] = {"files": count, "file_size": size, "variants": data}


# ---------------------------------------------------------------- case 4: per-call overhead


def case_per_call(cfg: dict[str, Any], report: Report, tmp_root: str) -> None:
    count = cfg["per_call"]
    reps = cfg["reps"]
    case = f"4 per-call ({count:,} hash_file on empty files, gather)"
    with tempfile.TemporaryDirectory(prefix="hash_bench_empty_", dir=tmp_root) as directory:
        make_files(directory, count, 0)
        settle_disk()
        variants = [
            {
                "name": "asyncio.to_thread(file_digest) x N",
                "w": "hashlib",
                "kind": "to_thread_gather",
                "baseline": True,
            },
            {
                "name": "sky_async.hash_file native, io_uring",
                "w": "native io_uring",
                "kind": "sky_hash_file_gather",
                "goal": True,
            },
            {
                "name": "sky_async.hash_file native, threads",
                "w": "native threads",
                "kind": "sky_hash_file_gather",
                "goal": True,
            },
            {
                "name": "sky_async.hash_file python backend",
                "w": "python backend",
                "kind": "sky_hash_file_gather",
            },
        ]
        workers, variants = start_workers(report, case, variants)
        try:
            for w in workers:
                w.call(op="load", key="empty", dir=directory)
            for v in variants:
                v["check"] = v["worker"].call(op="run", key="empty", kind=v["kind"])["check"]

            def run_one(v: dict[str, Any]) -> float:
                r = v["worker"].call(op="run", key="empty", kind=v["kind"])
                v.setdefault("cpu", []).append(r["cpu_seconds"])
                return r["seconds"]

            loads = interleaved(reps, variants, run_one)
        finally:
            for w in workers:
                w.close()

    mismatch = check_agreement(variants)
    base = median(next(v for v in variants if v.get("baseline"))["samples"])
    data = []
    for v in variants:
        t = median(v["samples"])
        per_call = t / count
        cpu = median(v["cpu"])
        value = f"{per_call * 1e6:.1f} µs/call ({fmt_time(t)} total; CPU {cpu / count * 1e6:.1f} µs/call)"
        fraction = t / base
        if v.get("baseline"):
            report.row(case, v["name"], value, "1.00x (baseline)", "", None)
        else:
            ratio = f"{fraction:.2f}x the time ({faster(1 / fraction)})"
            if v.get("goal"):
                report.row(
                    case,
                    v["name"],
                    value,
                    ratio,
                    "<= 0.5x of to_thread per call",
                    fraction <= 0.5 and not mismatch,
                )
            else:
                report.row(case, v["name"], value, ratio, "(context)", None)
        data.append(
            {
                "variant": v["name"],
                "samples_s": v["samples"],
                "median_s": t,
                "per_call_us": per_call * 1e6,
                "cpu_samples_s": v["cpu"],
                "cpu_per_call_us": cpu / count * 1e6,
                "fraction_of_to_thread": fraction,
                "backend_info": v["worker"].info.get("backend_info"),
            }
        )
    if mismatch:
        report.error(case, mismatch)
    report.cases["per_call"] = {
        "calls": count,
        "reps": reps,
        "variants": data,
        "mismatch": mismatch,
        "loadavg_per_round": loads,
    }


# ---------------------------------------------------------------- case 5: cancellation


def case_cancel(cfg: dict[str, Any], report: Report, tmp_root: str) -> None:
    size = cfg["cancel_size"]
    reps = cfg["cancel_reps"]
    case = f"5 cancel (hash_file of {size // MiB} MiB, cancel after {CANCEL_AFTER_S * 1e3:.0f} ms)"
    data = []
    with tempfile.TemporaryDirectory(prefix="hash_bench_cancel_", dir=tmp_root) as directory:
        big = os.path.join(directory, "big")
        with open(big, "wb") as f:
            os.ftruncate(f.fileno(), size)  # sparse: still read (as zeros) and hashed
        small = os.path.join(directory, "small")
        with open(small, "wb") as f:
            f.write(b"warm-up")
        warm_page_cache(directory)
        for label, env in SKY_ENVS:
            try:
                r = run_probe(["--cancel-probe", big, small, str(reps)], env)
            except (BenchError, subprocess.TimeoutExpired) as exc:
                report.error(case, f"{label}: {exc}")
                continue
            runs = r["runs"]
            valid = all(run["outcome"] == "cancelled" and not run["done_before_cancel"] for run in runs)
            note = "" if valid else " [task was not cancelled mid-hash: file too small?]"
            latency = median([run["latency_s"] for run in runs])
            worst_latency = max(run["latency_s"] for run in runs)
            cpu = max(run["cpu_after_ms"] for run in runs)
            fds = [(run["fds_before"], run["fds_after"]) for run in runs]
            report.row(
                case,
                f"{label}: cancel -> task ended" + note,
                fmt_time(latency) + (f" (worst {fmt_time(worst_latency)})" if len(runs) > 1 else ""),
                f"full hash takes {fmt_time(r['full_hash_seconds'])}",
                f"<= {CANCEL_LATENCY_GOAL_S * 1e3:.0f} ms",
                latency <= CANCEL_LATENCY_GOAL_S and valid,
            )
            report.row(
                case,
                f"{label}: process CPU in the 1 s after",
                f"{cpu:.1f} ms" + (" (worst)" if len(runs) > 1 else ""),
                f"idle process: {r['idle_cpu_ms']:.1f} ms/s",
                f"~0 (<= {CANCEL_CPU_GOAL_MS:.0f} ms)",
                cpu <= CANCEL_CPU_GOAL_MS and valid,
            )
            report.row(
                case,
                f"{label}: open fds before -> after",
                ", ".join(f"{b} -> {a}" for b, a in fds),
                "",
                "equal",
                all(b == a for b, a in fds) and valid,
            )
            data.append({"variant": label, **r})
    report.cases["cancel"] = {
        "file_size": size,
        "reps": reps,
        "cancel_after_s": CANCEL_AFTER_S,
        "variants": data,
    }


# ---------------------------------------------------------------- main


def machine_info() -> dict[str, Any]:
    mem_total = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_total = int(line.split()[1]) * KiB
    except OSError:
        pass
    return {
        "cpu_model": cpu_model(),
        "sha_ni": "sha_ni" in cpu_flags(),
        "cores": CORES,
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": mem_total,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "openssl_cli": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
        if shutil.which("openssl")
        else None,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "loadavg_start": os.getloadavg(),
    }


def backend_infos() -> dict[str, Any]:
    infos = {}
    for label, env in (("default", {}), *SKY_ENVS):
        try:
            worker = Worker(label, env)
        except BenchError as exc:
            infos[label] = {"error": str(exc)}
            continue
        try:
            infos[label] = {
                "backend_info": worker.info.get("backend_info"),
                "module": worker.info.get("module"),
            }
        finally:
            worker.close()
    return infos


def command_line() -> str:
    env = [
        f"{k}={shlex.quote(v)}"
        for k, v in sorted(os.environ.items())
        if k.startswith("SKY_ASYNC_") or k == "PYTHONPATH"
    ]
    script = Path(__file__).resolve()
    try:
        script_text = str(script.relative_to(Path.cwd()))
    except ValueError:
        script_text = str(script)
    return " ".join(env + ["python3", script_text] + [shlex.quote(a) for a in sys.argv[1:]])


def write_results(out_prefix: Path, payload: dict[str, Any], rows: list[dict[str, str]]) -> None:
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    json_path = out_prefix.with_suffix(".json")
    md_path = out_prefix.with_suffix(".md")
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    m = payload["machine"]
    infos = payload["backends"]
    lines = [
        "# sky_async hash benchmark results",
        "",
        f"Command (from the repository root): `{payload['command']}`",
        "",
        f"- date: {payload['date']} ({payload['mode']} run, {payload['elapsed_s']:.0f} s)",
        f"- machine: {m['cpu_model']} (SHA-NI: {'yes' if m['sha_ni'] else 'no'}), {m['cores']} cores, "
        f"{(m['memory_bytes'] or 0) / 2**30:.0f} GiB, kernel {m['kernel']}, Python {m['python']}, "
        f"{m['openssl_cli']}",
        f"- load average at start / end: {m['loadavg_start'][0]:.2f} / {m['loadavg_end'][0]:.2f}",
        f"- git: {m['git_commit']}{' (with uncommitted changes)' if m['git_dirty'] else ''}",
    ]
    for label, info in infos.items():
        lines.append(f"- `get_backend_info()` ({label}): `{json.dumps(info.get('backend_info', info))}`")
    lines += [
        "",
        "Times are medians of interleaved repetitions, each variant in its own warmed-up process; "
        "ratios compare variants measured in the same run. Full data: `hash_bench.json` next to this file.",
        "",
        markdown_table(rows),
        "",
    ]
    md_path.write_text("\n".join(lines))
    print(f"\nwrote {json_path} and {md_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test (< 30 s)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this case (repeatable, or comma-separated): {', '.join(CASES)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results path prefix (default: bench/results/hash_bench for a full run of every "
        "case, bench/results/hash_bench-partial for --quick or --only)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)

    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = [name for name in only if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    selected = [c for c in CASES if not only or c in only]
    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    partial = args.quick or bool(only)
    out_prefix = args.out or DEFAULT_RESULTS / ("hash_bench-partial" if partial else "hash_bench")

    started = time.monotonic()
    machine = machine_info()
    print(
        f"sky_async hash benchmark ({mode}): {machine['cpu_model']}, {CORES} cores, "
        f"kernel {machine['kernel']}, Python {machine['python']}",
        flush=True,
    )
    infos = backend_infos()
    for label, info in infos.items():
        print(f"  backend ({label}): {info.get('backend_info', info)}", flush=True)

    report = Report()
    runners = {
        "small_files": case_small_files,
        "large_files": case_large_files,
        "memory": case_memory,
        "per_call": case_per_call,
        "cancel": case_cancel,
    }
    failed_to_run = False
    tmp_root = tempfile.gettempdir()
    for name in selected:
        t0 = time.monotonic()
        print(f"running {name} ...", flush=True)
        try:
            runners[name](cfg, report, tmp_root)
        except (BenchError, OSError, subprocess.SubprocessError) as exc:
            traceback.print_exc()
            report.error(name, str(exc))
            failed_to_run = True
        print(f"  {name} done in {time.monotonic() - t0:.1f} s", flush=True)

    machine["loadavg_end"] = os.getloadavg()
    elapsed = time.monotonic() - started
    print()
    print(text_table(report.rows))
    fails = [r for r in report.rows if r["result"].startswith(("FAIL", "ERROR"))]
    print()
    if fails:
        print(
            f"*** {len(fails)} FAIL/ERROR row(s): "
            + "; ".join(f"{r['case']} / {r['variant']}" for r in fails)
        )
    else:
        print("all goals met")
    print(f"total {elapsed:.0f} s")

    if not args.no_write:
        payload = {
            "command": command_line(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mode": mode,
            "cases_run": selected,
            "elapsed_s": elapsed,
            "machine": machine,
            "backends": infos,
            "sizes": cfg,
            "goals": {
                "small_files": "native >= 4x faster than a sequential hashlib.file_digest loop, "
                "and faster than ThreadPoolExecutor",
                "large_files": ">= 80% of openssl speed single-core x min(cores, files)",
                "memory": f"<= {MEMORY_GOAL_MIB:.0f} MiB peak RSS growth",
                "per_call": "sky_async per-call time <= half of asyncio.to_thread's",
                "cancel": f"task ends <= {CANCEL_LATENCY_GOAL_S * 1e3:.0f} ms after cancel(); ~0 CPU "
                f"(<= {CANCEL_CPU_GOAL_MS:.0f} ms) in the next 1 s; fds unchanged",
            },
            "rows": report.rows,
            "cases": report.cases,
        }
        write_results(out_prefix, payload, report.rows)
    return 1 if failed_to_run else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main()
    elif len(sys.argv) > 1 and sys.argv[1] == "--memory-probe":
        memory_probe_main(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--cancel-probe":
        cancel_probe_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main())
