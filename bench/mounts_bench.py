#!/usr/bin/env python3
"""file_mounts_digest vs SkyPilot's serial procedure, side by side in one run.

    python3 bench/mounts_bench.py            # 20,000-file tree, 5 rounds; writes bench/results/
    python3 bench/mounts_bench.py --quick    # 2,000 files, 3 rounds (smoke test; writes *-quick.*)
    python3 bench/mounts_bench.py --no-write

The tree: file sizes log-uniform between 1 KiB and 256 KiB plus a few MiB-sized files,
spread over directories three levels deep, mounted as two mounts. Variants:

  skypilot_serial   the oracle: SkyPilot's procedure (os.walk + hashlib, one file after another)
  native            sky_async.file_mounts_digest, native backend (I/O backend auto)
  native_threads    the same with SKY_ASYNC_IO_BACKEND=threads
  python            sky_async.file_mounts_digest, pure-Python backend

plus the time of the pure-Python walk alone (the python variant's; the native variants walk
in C++, inside the one native call) and of hash_files alone on the walked paths, to show
where the time goes. Each variant runs in a fresh worker process that does one untimed
warm-up (page cache and runtime warm), then one timed call; rounds rotate the variant order
and the median is reported. Every variant's digest must equal the oracle's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOAL = 4.0
KiB = 1024
MiB = 1024 * KiB
VARIANTS = {
    "skypilot_serial": {},
    "native": {"SKY_ASYNC_BACKEND": "native"},
    "native_threads": {"SKY_ASYNC_BACKEND": "native", "SKY_ASYNC_IO_BACKEND": "threads"},
    "python": {"SKY_ASYNC_BACKEND": "python"},
}


def build_tree(root: Path, files: int, seed: int = 1) -> tuple[dict[str, str], int]:
    rng = random.Random(seed)
    payload = rng.randbytes(4 * MiB)
    total = 0
    dirs = [root / f"m{m}" / f"a{a}" / f"b{b}" for m in range(2) for a in range(10) for b in range(10)]
    for index in range(files):
        if index % 1000 == 999:
            size = rng.randrange(1 * MiB, 4 * MiB)
        else:
            size = int(math.exp(rng.uniform(math.log(1 * KiB), math.log(256 * KiB))))
        directory = dirs[index % len(dirs)]
        directory.mkdir(parents=True, exist_ok=True)
        start = rng.randrange(len(payload) - size + 1)
        (directory / f"file{index:05d}.bin").write_bytes(payload[start : start + size])
        total += size
    return {"/remote/m0": str(root / "m0"), "/remote/m1": str(root / "m1")}, total


def worker(variant: str, mounts: dict[str, str]) -> dict[str, Any]:
    """Runs in the child: one warm-up call, then one timed call."""
    if variant == "skypilot_serial":
        sys.path.insert(0, str(REPO / "tests" / "python"))
        from skypilot_mounts_oracle import skypilot_file_mounts_digest as digest_fn

        digest_fn(mounts)
        started = time.perf_counter()
        digest = digest_fn(mounts)
        return {"seconds": time.perf_counter() - started, "digest": digest}

    import sky_async
    from sky_async import mounts as mounts_module
    from sky_async._mounts import python as _mounts_py

    sky_async.sync.file_mounts_digest(mounts)
    started = time.perf_counter()
    digest = sky_async.sync.file_mounts_digest(mounts)
    result: dict[str, Any] = {"seconds": time.perf_counter() - started, "digest": digest}
    # Where the time goes: the pure-Python walk alone, and hash_files alone on its paths.
    started = time.perf_counter()
    plan = _mounts_py.plan(mounts_module.check_file_mounts(mounts))
    result["walk_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    sky_async.sync.hash_files(plan.files, return_exceptions=True)
    result["hash_files_seconds"] = time.perf_counter() - started
    result["backend"] = sky_async.get_backend_info()
    return result


def run_variant(variant: str, mounts: dict[str, str]) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(VARIANTS[variant])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", variant, json.dumps(mounts)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "MOUNTS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], json.loads(args.worker[1]))))
        return 0

    files, rounds = (2000, 3) if args.quick else (20000, 5)
    root = Path(tempfile.mkdtemp(prefix="sky-async-mounts-bench-"))
    try:
        print(f"building a {files}-file tree in {root} ...", file=sys.stderr)
        mounts, total = build_tree(root, files)
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
        names = list(VARIANTS)
        for round_index in range(rounds):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            for name in order:
                samples[name].append(run_variant(name, mounts))
                print(
                    f"round {round_index + 1}/{rounds} {name}: {samples[name][-1]['seconds']:.3f} s",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    oracle_digest = samples["skypilot_serial"][0]["digest"]
    digests_agree = all(s["digest"] == oracle_digest for runs in samples.values() for s in runs)
    median = {name: statistics.median(s["seconds"] for s in runs) for name, runs in samples.items()}
    baseline = median["skypilot_serial"]
    rows = []
    for name in VARIANTS:
        row: dict[str, Any] = {
            "variant": name,
            "median_seconds": median[name],
            "speedup": baseline / median[name],
        }
        if name != "skypilot_serial":
            row["walk_seconds"] = statistics.median(s["walk_seconds"] for s in samples[name])
            row["hash_files_seconds"] = statistics.median(s["hash_files_seconds"] for s in samples[name])
            row["io_backend"] = samples[name][0]["backend"].get("io_backend")
        rows.append(row)
    best_native = max(baseline / median["native"], baseline / median["native_threads"])
    verdict = "PASS" if best_native >= GOAL and digests_agree else "FAIL"
    command = "python3 bench/mounts_bench.py" + (" --quick" if args.quick else "")
    report = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            # Other jobs on the machine take cores from the parallel variants, not from the serial one.
            "load_average_1_5_15": os.getloadavg(),
        },
        "tree": {"files": files, "bytes": total, "mounts": len(mounts)},
        "rounds": rounds,
        "digests_agree_with_oracle": digests_agree,
        "goal_speedup": GOAL,
        "best_native_speedup": best_native,
        "verdict": verdict,
        "rows": rows,
    }
    lines = [
        "# file_mounts_digest vs SkyPilot's serial procedure",
        "",
        f"`{command}` — {report['date']}, {os.cpu_count()} CPUs, {files} files, {total / MiB:.0f} MiB,"
        f" median of {rounds} interleaved rounds, page cache warm;"
        f" load average at the end {os.getloadavg()[0]:.2f} (shared machine).",
        "",
        "| variant | median | speed-up vs serial | walk alone | hash_files alone |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        walk = f"{row['walk_seconds'] * 1000:.0f} ms" if "walk_seconds" in row else ""
        hashing = f"{row['hash_files_seconds'] * 1000:.0f} ms" if "hash_files_seconds" in row else ""
        label = row["variant"] + (f" ({row['io_backend']})" if row.get("io_backend") else "")
        lines.append(
            f"| {label} | {row['median_seconds'] * 1000:.0f} ms | {row['speedup']:.2f}x"
            f" | {walk} | {hashing} |"
        )
    lines += [
        "",
        f"Digests equal to the oracle's in every run: {digests_agree}.",
        f"Goal: >= {GOAL:.0f}x for native. Best native: {best_native:.2f}x -> **{verdict}**.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        # A smoke test must not overwrite the committed full-run results.
        stem = "mounts_bench-quick" if args.quick else "mounts_bench"
        (results / f"{stem}.md").write_text(text)
        (results / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{verdict}: best native speed-up {best_native:.2f}x (goal {GOAL:.0f}x);"
        f" command: {shlex.quote(command)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
