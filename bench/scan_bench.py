#!/usr/bin/env python3
"""sky_async.scan_tree against what you would write otherwise, side by side in one run.

    python3 bench/scan_bench.py            # 100,000 entries, 5 rounds; writes bench/results/scan_bench.*
    python3 bench/scan_bench.py --quick    # 10,000 entries, 3 rounds (smoke test, writes nothing)
    python3 bench/scan_bench.py --big      # also 1,000,000 entries: peak RSS and most fds open

The tree: 10,000 directories (100 of 99 each) holding 90,000 files of 0-8 KiB (sparse:
the sizes are real, the blocks are not written) and 20 symlinks. Variants:

  (a) os.walk counting entries (no stat: symlinks to directories count as directories)
  (b) os.walk + os.lstat per entry: the counts and bytes scan_tree gives
  (c) recursive os.scandir with entry.stat(follow_symlinks=False) for the files
  (d) `find ROOT | wc -l` and `du -sb ROOT` (shell; the process start is included)
  (e) sky_async.sync.scan_tree and await sky_async.scan_tree, native (io_uring and threads)
  (f) sky_async.sync.scan_tree, python backend

Each timed run is its own process, which walks the tree once untimed first (warm page cache and
imports); rounds run every variant once, rotating the order, and the reported time is the median.
A probe (bench/cpp/statx_probe.cpp, built with g++ when liburing is there) also measures, in the
same run, fstatat against io_uring statx for the per-file stat.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _machine import fmt_seconds, machine

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "scan_bench"

SIZES = {
    "full": {"top": 100, "sub": 99, "files_per_dir": 9, "links": 20, "rounds": 5},
    "quick": {"top": 10, "sub": 99, "files_per_dir": 9, "links": 20, "rounds": 3},
    "big": {"top": 100, "sub": 999, "files_per_dir": 9, "links": 20},
}

VARIANTS = [
    ("a", "os.walk, counting names (no stat)", {}),
    ("b", "os.walk + os.lstat per entry", {}),
    ("c", "recursive os.scandir + entry.stat() for files", {}),
    ("d1", "find ROOT | wc -l", {}),
    ("d2", "du -sb ROOT", {}),
    ("e1", "sky_async.sync.scan_tree, native io_uring", {"SKY_ASYNC_IO_BACKEND": "io_uring"}),
    ("e2", "await sky_async.scan_tree, native io_uring", {"SKY_ASYNC_IO_BACKEND": "io_uring"}),
    ("e3", "sky_async.sync.scan_tree, native threads", {"SKY_ASYNC_IO_BACKEND": "threads"}),
    ("f", "sky_async.sync.scan_tree, python backend", {"SKY_ASYNC_BACKEND": "python"}),
]


# --- the tree ------------------------------------------------------------------------------------


def build_tree(root: str, top: int, sub: int, files_per_dir: int, links: int) -> dict[str, int]:
    rng = random.Random(100_000)
    os.mkdir(root)
    count = {"directories": 0, "files": 0, "symlinks": 0, "bytes": 0}
    for t in range(top):
        top_dir = os.path.join(root, f"t{t:03d}")
        os.mkdir(top_dir)
        count["directories"] += 1
        for directory in [top_dir] + [os.path.join(top_dir, f"s{s:03d}") for s in range(sub)]:
            if directory != top_dir:
                os.mkdir(directory)
                count["directories"] += 1
            for f in range(files_per_dir):
                size = rng.randrange(0, 8 * 1024 + 1)
                fd = os.open(os.path.join(directory, f"f{f}.dat"), os.O_WRONLY | os.O_CREAT, 0o644)
                os.ftruncate(fd, size)
                os.close(fd)
                count["files"] += 1
                count["bytes"] += size
    for index in range(links):
        target = f"t{index:03d}/f0.dat" if index % 2 else f"t{index:03d}"
        os.symlink(target, os.path.join(root, f"link{index}"))
        count["symlinks"] += 1
    return count


# --- the variants, run in a worker process -------------------------------------------------------


def walk_names(root: str) -> dict[str, int]:
    files = directories = 0
    for _, dirnames, filenames in os.walk(root):
        files += len(filenames)
        directories += len(dirnames)
    return {"files": files, "directories": directories}


def walk_lstat(root: str) -> dict[str, int]:
    import stat

    out = {"files": 0, "directories": 0, "symlinks": 0, "bytes": 0}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(directory, name))
            if stat.S_ISREG(st.st_mode):
                out["files"] += 1
                out["bytes"] += st.st_size
            elif stat.S_ISDIR(st.st_mode):
                out["directories"] += 1
            elif stat.S_ISLNK(st.st_mode):
                out["symlinks"] += 1
    return out


def scandir_stat(root: str) -> dict[str, int]:
    out = {"files": 0, "directories": 0, "symlinks": 0, "bytes": 0}
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    out["symlinks"] += 1
                elif entry.is_dir(follow_symlinks=False):
                    out["directories"] += 1
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    out["files"] += 1
                    out["bytes"] += entry.stat(follow_symlinks=False).st_size
    return out


def shell(command: str) -> dict[str, Any]:
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=True)
    return {"output": done.stdout.split()[0]}


def sky(root: str, mode: str) -> dict[str, int]:
    import asyncio

    import sky_async

    result = sky_async.sync.scan_tree(root) if mode == "sync" else asyncio.run(sky_async.scan_tree(root))
    return {
        "files": result.files,
        "directories": result.directories,
        "symlinks": result.symlinks,
        "bytes": result.bytes,
        "problems": result.total_problems,
    }


def run_variant(key: str, root: str) -> dict[str, Any]:
    quoted = shlex.quote(root)
    table = {
        "a": lambda: walk_names(root),
        "b": lambda: walk_lstat(root),
        "c": lambda: scandir_stat(root),
        "d1": lambda: shell(f"find {quoted} | wc -l"),
        "d2": lambda: shell(f"du -sb {quoted}"),
        "e1": lambda: sky(root, "sync"),
        "e2": lambda: sky(root, "async"),
        "e3": lambda: sky(root, "sync"),
        "f": lambda: sky(root, "sync"),
    }
    work = table[key]
    work()  # untimed: imports, the native runtime's threads, the page cache
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    outcome = work()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return {"seconds": elapsed, "cpu_seconds": cpu_s, "outcome": outcome}


def worker_main(key: str, root: str) -> None:
    print(json.dumps(run_variant(key, root)))


def big_probe_main(root: str) -> None:
    """One native scan in this fresh process: peak RSS and the most descriptors open at once."""
    import sky_async

    sky_async.sync.scan_tree(os.path.dirname(os.path.abspath(__file__)))  # start the runtime
    rss_before = _vm_kib("VmHWM")
    most = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal most
        while not stop.is_set():
            most = max(most, len(os.listdir("/proc/self/fd")) - 1)
            time.sleep(0.0005)

    fds_before = len(os.listdir("/proc/self/fd")) - 1
    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    result = sky_async.sync.scan_tree(root)
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    info = sky_async.get_backend_info()
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "entries": result.files + result.directories + result.symlinks + result.special_files,
                "files": result.files,
                "directories": result.directories,
                "peak_rss_kib": _vm_kib("VmHWM"),
                "rss_before_kib": rss_before,
                "fds_before": fds_before,
                "most_fds": most,
                "threads": info["threads"],
                "io_backend": info["io_backend"],
            }
        )
    )


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# --- the driver ----------------------------------------------------------------------------------


def child_env(overrides: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKY_ASYNC_")}
    # A development tree (scripts/dev-build links the module into python/) is used as it is.
    if list((REPO / "python" / "sky_async").glob("_native*.so")):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


def run_child(args: list[str], overrides: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args],
        env=child_env(overrides),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def statx_probe(directory: str) -> dict[str, Any] | None:
    compiler = shutil.which("g++")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as build:
        binary = os.path.join(build, "statx_probe")
        built = subprocess.run(
            [compiler, "-O2", "-std=c++20", str(HERE / "cpp" / "statx_probe.cpp"), "-o", binary, "-luring"],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            return {"error": built.stderr.strip()[-300:]}
        done = subprocess.run([binary, directory, "5"], capture_output=True, text=True)
        return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 entries, 3 rounds, writes nothing")
    parser.add_argument("--big", action="store_true", help="also scan 1,000,000 entries: peak RSS, fds")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "ROOT"), help=argparse.SUPPRESS)
    parser.add_argument("--big-probe", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--render", metavar="JSON", help="rewrite the .md of a results .json")
    args = parser.parse_args(argv)
    if args.render:
        source = Path(args.render)
        source.with_suffix(".md").write_text(markdown(json.loads(source.read_text())))
        return 0
    if args.worker:
        worker_main(*args.worker)
        return 0
    if args.big_probe:
        big_probe_main(args.big_probe)
        return 0

    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    started = time.monotonic()
    info = machine()
    payload: dict[str, Any] = {
        "command": "python3 bench/scan_bench.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "machine": info,
    }
    with tempfile.TemporaryDirectory(prefix="sky_async-scan-bench-") as base:
        root = os.path.join(base, "tree")
        expected = build_tree(root, cfg["top"], cfg["sub"], cfg["files_per_dir"], cfg["links"])
        entries = expected["files"] + expected["directories"] + expected["symlinks"]
        payload["tree"] = {**expected, "entries": entries}
        print(f"tree: {entries:,} entries ({expected})", flush=True)

        times: dict[str, list[float]] = {key: [] for key, _, _ in VARIANTS}
        cpu: dict[str, list[float]] = {key: [] for key, _, _ in VARIANTS}
        outcomes: dict[str, Any] = {}
        for round_index in range(cfg["rounds"]):
            order = VARIANTS[round_index % len(VARIANTS) :] + VARIANTS[: round_index % len(VARIANTS)]
            for key, _, env in order:
                run = run_child(["--worker", key, root], env)
                times[key].append(run["seconds"])
                cpu[key].append(run["cpu_seconds"])
                outcomes[key] = run["outcome"]
            print(f"round {round_index + 1}/{cfg['rounds']} done", flush=True)

        medians = {key: statistics.median(values) for key, values in times.items()}
        cpu_medians = {key: statistics.median(values) for key, values in cpu.items()}
        rows = []
        for key, label, _ in VARIANTS:
            rows.append(
                {
                    "variant": f"({key}) {label}",
                    "time": fmt_seconds(medians[key]),
                    "per_entry_us": medians[key] / entries * 1e6,
                    "cpu": "(shell)" if key.startswith("d") else fmt_seconds(statistics.median(cpu[key])),
                    "vs_a": medians["a"] / medians[key],
                    "vs_b": medians["b"] / medians[key],
                    "cpu_vs_b": "" if key.startswith("d") else f"{cpu_medians['b'] / cpu_medians[key]:.2f}x",
                    "outcome": outcomes[key],
                }
            )
        payload["variants"] = {key: {"times_s": times[key], "cpu_s": cpu[key]} for key in times}
        payload["rows"] = rows
        for key in ("b", "c", "e1", "e2", "e3", "f"):
            got = {k: outcomes[key][k] for k in ("files", "directories", "symlinks", "bytes")}
            if got != {k: expected[k] for k in got}:
                payload.setdefault("disagreements", {})[key] = got
        payload["statx_probe"] = statx_probe(os.path.join(root, "t000"))

        if args.big:
            shutil.rmtree(root)
            big_root = os.path.join(base, "big")
            print("building the 1,000,000-entry tree...", flush=True)
            big = build_tree(big_root, **{k: v for k, v in SIZES["big"].items()})
            payload["big"] = {"tree": big, **run_child(["--big-probe", big_root], {})}
            walk_started = time.perf_counter()
            walk_lstat(big_root)
            payload["big"]["os_walk_lstat_seconds"] = time.perf_counter() - walk_started

    info["loadavg_end"] = os.getloadavg()[0]
    payload["elapsed_s"] = time.monotonic() - started
    report = markdown(payload)
    print(report)
    if not args.no_write and not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
        RESULTS.with_suffix(".md").write_text(report)
        print(f"wrote {RESULTS}.md and .json")
    return 0


def markdown(payload: dict[str, Any]) -> str:
    m = payload["machine"]
    tree = payload["tree"]
    lines = [
        "# scan_tree benchmark results",
        "",
        f"Command (from the repository root): `{payload['command']}`",
        "",
        f"- date: {payload['date']} ({payload['mode']} run, {payload['elapsed_s']:.0f} s)",
        f"- machine: {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, Python {m['python']}; "
        f"load average {m['loadavg_start']:.2f} at start, {m.get('loadavg_end', 0):.2f} at end",
        f"- git: {m['git']}",
        f"- tree: {tree['entries']:,} entries: {tree['directories']:,} directories, {tree['files']:,} files "
        f"of 0-8 KiB ({tree['bytes']:,} bytes), {tree['symlinks']} symlinks; page cache warm",
        "",
        "Medians of interleaved rounds, each run in a fresh process after an untimed warm-up walk. "
        "Ratios compare runs of this invocation only. CPU is the process's user + system time (all "
        "threads): on a machine shared with other jobs it is the steadier measure of the work done, "
        "and wall time can only fall below it with cores to spare.",
        "",
        "| variant | time | µs/entry | CPU | vs (a) os.walk | vs (b) os.walk+lstat | CPU vs (b) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in payload["rows"]:
        lines.append(
            f"| {row['variant']} | {row['time']} | {row['per_entry_us']:.2f} | {row['cpu']} | "
            f"{row['vs_a']:.2f}x | {row['vs_b']:.2f}x | {row['cpu_vs_b']} |"
        )
    by_key = {row["variant"].split(")")[0].lstrip("("): row for row in payload["rows"]}
    native = max((by_key[key] for key in ("e1", "e2", "e3")), key=lambda row: row["vs_b"])
    met = native["vs_a"] >= 3 and native["vs_b"] >= 3
    native_cpu = payload["variants"][native["variant"].split(")")[0].lstrip("(")]["cpu_s"]
    native_wall = payload["variants"][native["variant"].split(")")[0].lstrip("(")]["times_s"]
    lines += [
        "",
        f"Goal: native at least 3x faster than os.walk. Best native variant {native['variant']}: "
        f"{native['vs_a']:.2f}x vs (a), {native['vs_b']:.2f}x vs (b): **{'met' if met else 'not met'}**. "
        f"Its CPU / wall time is {statistics.median(native_cpu) / statistics.median(native_wall):.2f} "
        f"cores on average, of the {m['cores']} the machine has (the load average says how much of it "
        "other jobs held).",
    ]
    if payload.get("disagreements"):
        lines += ["", f"**Counts that disagree with the tree as built:** `{payload['disagreements']}`"]
    else:
        lines += ["", "Every variant reporting counts and bytes (b, c, e, f) agrees with the tree as built."]
    probe = payload.get("statx_probe")
    if probe and "error" not in probe:
        lines += [
            "",
            f"Per-file stat of {probe['files']} cached files (`bench/cpp/statx_probe.cpp`, best of 5): "
            f"fstatat {probe['fstatat_us_per_file']:.2f} µs, io_uring statx in batches of 128 "
            f"{probe['uring_statx_us_per_file']:.2f} µs. The kernel runs IORING_OP_STATX on its io-wq "
            "threads, so each one costs a hand-off; the engine uses fstatat on its workers.",
        ]
    big = payload.get("big")
    if big:
        lines += [
            "",
            f"1,000,000-entry run (`--big`): {big['entries']:,} entries scanned in {big['seconds']:.2f} s "
            f"({big['io_backend']}, {big['threads']} threads); os.walk + os.lstat took "
            f"{big['os_walk_lstat_seconds']:.2f} s. Peak RSS {big['peak_rss_kib'] / 1024:.1f} MiB "
            f"({big['rss_before_kib'] / 1024:.1f} MiB before the scan); at most {big['most_fds']} "
            f"descriptors open ({big['fds_before']} before; the scan's own are at most 2 per worker thread).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
