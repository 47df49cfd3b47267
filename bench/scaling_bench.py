#!/usr/bin/env python3
"""Does the upload path's ignore-aware work grow linearly? Per-file time from 1,000 to 1,000,000 files.

    python3 bench/scaling_bench.py            # N = 1,000 .. 1,000,000; writes bench/results/scaling_bench.*
    python3 bench/scaling_bench.py --quick    # N = 1,000 .. 100,000, 1 round (smoke test, writes nothing)
    python3 bench/scaling_bench.py --max-n 100000   # a smaller full run (writes, says so)

The goal (issue 11): "cost grows linearly: per-file time flat from 1,000 to 1,000,000 files".

One tree per N, all built once under one temporary directory (deleted on every way out): a
``git init`` repository (no commits, so every file is untracked and git's rules decide) with
``.gitignore`` = ``build/`` and ``*.gz``; N empty files in directories of 100, grouped ten
directories to a group ``gNNNN/``: nine ``d0``..``d8`` and one ``build/`` (ignored), and in every
directory one of the hundred files is ``f99.gz`` (ignored). So 10 % of the files are under an
ignored directory and 0.9 % are ignored by name; the exclusion list has N/100 paths.

Series, in one process, rounds interleaved per N (median of 3 for N <= 100,000, 1 run at 1M):

  walk     ``sky_async._upload.skypilot_ignore.get_excluded_files(root)``: the ignore-aware walk
           ``sky_async.pack_mounts(ignore="skypilot")`` and ``sky-async preflight --skypilot`` use
           (``_pack.exclusions_for("skypilot")``; git's rules read in Python, no git process)
  git      SkyPilot 0.14.1's ``storage_utils.get_excluded_files`` (runs ``git ls-files``), for contrast
  pack     ``sky_async.sync.pack_mounts([root], zip)`` and its ``.blob_id``: the whole upload archive
  skypilot SkyPilot 0.14.1's ``zip_files_and_folders([root], zip)`` + ``_compute_zip_blob_id(zip)``,
           only while a run is predicted to stay under ~60 s
  scan     ``sky_async.sync.scan_tree(root)``: the plain walk (no ignore rules), the baseline

Checks: the walk's exclusion list equals SkyPilot's (as sets) at every N, and where both ran the
two zips are the same bytes and the blob ids are equal.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import resource
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _machine import fmt_seconds, machine

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "python"))

from sky_async import sync  # noqa: E402
from sky_async._upload import skypilot_ignore as _skypilot_ignore  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from sky.client import common as sky_common
    from sky.data import storage_utils

RESULTS = HERE / "results" / "scaling_bench"
SIZES_FULL = [1_000, 10_000, 100_000, 1_000_000]
SIZES_QUICK = [1_000, 10_000, 100_000]
FILES_PER_DIR = 100
DIRS_PER_GROUP = 10
SKYPILOT_BUDGET_S = 60.0

SERIES = [
    ("walk", "sky_async ignore-aware walk (_skypilot_ignore.get_excluded_files, what pack_mounts uses)"),
    ("git", "SkyPilot 0.14.1 get_excluded_files (git ls-files)"),
    ("pack", "sky_async.sync.pack_mounts + blob_id (whole upload archive)"),
    ("skypilot", "SkyPilot 0.14.1 zip_files_and_folders + _compute_zip_blob_id"),
    ("scan", "sky_async.sync.scan_tree (plain walk, no ignore)"),
]
COLORS = {"walk": "#1f77b4", "git": "#9467bd", "pack": "#2ca02c", "skypilot": "#d62728", "scan": "#7f7f7f"}


# --- the trees ----------------------------------------------------------------------------------


def build_tree(root: str, files: int) -> dict[str, int]:
    """*files* empty files (plus ``.gitignore``) in directories of 100; returns what is ignored."""
    os.mkdir(root)
    mode = 0o644 | stat.S_IFREG
    dirs = files // FILES_PER_DIR
    ignored_dirs = ignored_files = 0
    for index in range(dirs):
        group, slot = divmod(index, DIRS_PER_GROUP)
        group_dir = os.path.join(root, f"g{group:04d}")
        if slot == 0:
            os.mkdir(group_dir)
        name = "build" if slot == DIRS_PER_GROUP - 1 else f"d{slot}"
        directory = os.path.join(group_dir, name)
        os.mkdir(directory)
        for k in range(FILES_PER_DIR - 1):
            os.mknod(os.path.join(directory, f"f{k:02d}.txt"), mode)
        os.mknod(os.path.join(directory, f"f{FILES_PER_DIR - 1}.gz"), mode)
        if name == "build":
            ignored_dirs += 1
        else:
            ignored_files += 1
    with open(os.path.join(root, ".gitignore"), "w") as f:
        f.write("build/\n*.gz\n")
    subprocess.run(["git", "-C", root, "init", "-q"], check=True)
    return {
        "files": dirs * FILES_PER_DIR,
        "directories": dirs + math.ceil(dirs / DIRS_PER_GROUP),
        "excluded_paths": ignored_dirs + ignored_files,
        "files_in_ignored_dirs": ignored_dirs * FILES_PER_DIR,
        "files_ignored_by_name": ignored_files,
    }


# --- timing -------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds (this process, all threads) of one call, and its result."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, result


# --- the run ------------------------------------------------------------------------------------


def run(sizes: list[int], rounds_small: int, base: str, log: Callable[[str], None]) -> dict[str, Any]:
    trees: dict[int, dict[str, Any]] = {}
    for n in sizes:
        root = os.path.join(base, f"n{n}")
        started = time.perf_counter()
        info = build_tree(root, n)
        info["build_s"] = time.perf_counter() - started
        trees[n] = {"root": root, **info}
        log(f"built N={n:,} in {info['build_s']:.1f} s ({info})")
    out = os.path.join(base, "out")
    os.mkdir(out)
    ours_zip, theirs_zip = os.path.join(out, "ours.zip"), os.path.join(out, "sky.zip")

    results: dict[str, dict[str, Any]] = {key: {} for key, _ in SERIES}
    checks: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for n in sizes:
        root = trees[n]["root"]
        rounds = rounds_small if n <= 100_000 else 1
        # Warm the page cache (dentries, inodes) and the code paths: one untimed pass.
        sync.scan_tree(root)
        warm_walk = _skypilot_ignore.get_excluded_files(root)

        def walk(root: str = root) -> list[str]:
            return _skypilot_ignore.get_excluded_files(root)

        def git(root: str = root) -> list[str]:
            return storage_utils.get_excluded_files(root)

        def pack(root: str = root) -> str:
            return sync.pack_mounts([root], ours_zip).blob_id

        def skypilot(root: str = root) -> str:
            storage_utils.zip_files_and_folders([root], theirs_zip)
            return str(sky_common._compute_zip_blob_id(theirs_zip))

        def scan(root: str = root) -> int:
            return sync.scan_tree(root).files

        fns = {"walk": walk, "git": git, "pack": pack, "skypilot": skypilot, "scan": scan}
        active = [key for key, _ in SERIES]
        # SkyPilot's zip: predict this N's run from the last one (its per-file time, and the
        # growth of per-file time from the step before, if any); skip when over the budget.
        last = sorted(results["skypilot"].items())
        if "skypilot" in skipped:
            active.remove("skypilot")
        elif last:
            (n1, r1) = last[-1]
            growth = 1.0
            if len(last) >= 2:
                (_, r0) = last[-2]
                growth = max(1.0, r1["us_per_file"] / r0["us_per_file"])
            predicted = r1["median_s"] * (n / n1) * growth
            if predicted > SKYPILOT_BUDGET_S:
                skipped["skypilot"] = (
                    f"stopped before N={n:,}: one run predicted to take {predicted:.0f} s "
                    f"(N={n1:,} took {fmt_seconds(r1['median_s'])}, x{n // n1} files, "
                    f"per-file growth x{growth:.2f}), "
                    f"over the ~{SKYPILOT_BUDGET_S:.0f} s budget"
                )
                active.remove("skypilot")
                log(skipped["skypilot"])
        samples: dict[str, list[tuple[float, float]]] = {key: [] for key in active}
        outcome: dict[str, Any] = {}
        for r in range(rounds):
            order = active[r % len(active) :] + active[: r % len(active)]
            for key in order:
                wall, cpu, outcome[key] = timed(fns[key])
                samples[key].append((wall, cpu))
                per_file = f"{wall / n * 1e6:.2f} µs/file"
                log(f"N={n:,} round {r + 1}/{rounds} {key}: {fmt_seconds(wall)} ({per_file})")
        for key in active:
            wall = statistics.median(s[0] for s in samples[key])
            cpu = statistics.median(s[1] for s in samples[key])
            results[key][n] = {
                "median_s": wall,
                "cpu_s": cpu,
                "us_per_file": wall / n * 1e6,
                "cpu_us_per_file": cpu / n * 1e6,
                "runs_s": [s[0] for s in samples[key]],
                "runs_cpu_s": [s[1] for s in samples[key]],
            }
        check: dict[str, Any] = {
            "walk_excluded": len(outcome["walk"]),
            "expected_excluded": trees[n]["excluded_paths"],
            "walk_equals_git": sorted(outcome["walk"]) == sorted(outcome["git"]) == sorted(warm_walk),
            "scan_files": outcome["scan"],
        }
        if "skypilot" in active:
            with open(ours_zip, "rb") as a, open(theirs_zip, "rb") as b:
                check["zips_identical"] = a.read() == b.read()
            check["blob_ids_equal"] = outcome["pack"] == outcome["skypilot"]
        checks[str(n)] = check
        log(f"N={n:,} checks: {check}")
        # Drop this tree before the next (larger) one is timed: less for the page cache to hold.
        shutil.rmtree(root)
    return {
        "trees": {str(n): {k: v for k, v in t.items() if k != "root"} for n, t in trees.items()},
        "results": {key: {str(n): r for n, r in per.items()} for key, per in results.items()},
        "checks": checks,
        "skipped": skipped,
    }


def ratio(per: dict[str, dict[str, Any]], field: str = "us_per_file") -> tuple[int, int, float] | None:
    """Per-file time (or CPU) at the largest N over the smallest: 1 is flat."""
    ns = sorted(int(n) for n in per)
    if len(ns) < 2:
        return None
    return ns[0], ns[-1], per[str(ns[-1])][field] / per[str(ns[0])][field]


def marginal(per: dict[str, dict[str, Any]]) -> tuple[int, int, float] | None:
    """(t(N2) - t(N1)) / (N2 - N1) in µs for the two largest N: the cost of one more file,
    without the fixed cost of a call (a process start, reading the ignore files)."""
    ns = sorted(int(n) for n in per)
    if len(ns) < 2:
        return None
    n1, n2 = ns[-2], ns[-1]
    return n1, n2, (per[str(n2)]["median_s"] - per[str(n1)]["median_s"]) / (n2 - n1) * 1e6


# --- the plot, by hand --------------------------------------------------------------------------


def svg(payload: dict[str, Any]) -> str:
    width, height = 760, 460
    left, right, top, bottom = 70, 250, 40, 60
    pw, ph = width - left - right, height - top - bottom
    results = payload["results"]
    sizes = payload["sizes"]
    values = [r["us_per_file"] for per in results.values() for r in per.values()]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    xlo, xhi = math.log10(min(sizes)), math.log10(max(sizes))
    if xhi == xlo:
        xhi = xlo + 1

    def x(n: float) -> float:
        return left + (math.log10(n) - xlo) / (xhi - xlo) * pw

    def y(v: float) -> float:
        return top + ph - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left + pw / 2}" y="22" text-anchor="middle" font-size="14">'
        "Per-file time against tree size (flat = linear cost)</text>",
    ]
    decade = lo
    while decade <= hi * 1.0001:
        for mult in (1, 2, 5):
            v = decade * mult
            if v > hi * 1.0001:
                break
            yy = y(v)
            out.append(
                f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" '
                f'stroke="{"#ccc" if mult == 1 else "#eee"}"/>'
            )
            out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:g}</text>')
        decade *= 10
    for n in sizes:
        xx = x(n)
        out.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{xx:.1f}" y="{top + ph + 18}" text-anchor="middle">{n:,}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 18}" text-anchor="middle">'
        "files in the tree (N, log scale)</text>"
    )
    out.append(
        f'<text x="18" y="{top + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {top + ph / 2})">µs per file (log scale)</text>'
    )
    legend_y = top + 10
    for key, _label in SERIES:
        per = results.get(key, {})
        if not per:
            continue
        points = sorted((int(n), r["us_per_file"]) for n, r in per.items())
        color = COLORS[key]
        path = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for n, v in points:
            out.append(f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3.5" fill="{color}"/>')
        r = ratio(per)
        short = {
            "walk": "sky_async ignore walk",
            "git": "SkyPilot git ls-files",
            "pack": "sky_async pack_mounts",
            "skypilot": "SkyPilot zip + blob id",
            "scan": "scan_tree (no ignore)",
        }[key]
        text = short + (f" (x{r[2]:.2f})" if r else "")
        if key in payload.get("skipped", {}) and points:
            n, v = points[-1]
            out.append(
                f'<text x="{x(n) + 8:.1f}" y="{y(v) + 4:.1f}" font-size="10" fill="{color}">'
                "stopped: over the time budget</text>"
            )
        out.append(
            f'<line x1="{left + pw + 12}" y1="{legend_y}" x2="{left + pw + 36}" y2="{legend_y}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<text x="{left + pw + 42}" y="{legend_y + 4}">{text}</text>')
        legend_y += 20
    out.append(
        f'<text x="{left + pw + 12}" y="{legend_y + 10}" font-size="10" fill="#555">'
        "(xR: per-file time at the largest N</text>"
    )
    out.append(
        f'<text x="{left + pw + 12}" y="{legend_y + 23}" font-size="10" fill="#555">'
        "over the smallest; 1 = flat)</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- the report ---------------------------------------------------------------------------------


def markdown(payload: dict[str, Any]) -> str:
    m = payload["machine"]
    sizes = payload["sizes"]
    results = payload["results"]
    lines = [
        "# Scaling benchmark results: per-file time from 1,000 to 1,000,000 files",
        "",
        f"Command (from the repository root): `{payload['command']}`",
        "",
        f"- date: {payload['date']} ({payload['mode']} run, {payload['elapsed_s']:.0f} s)",
        f"- machine: {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, Python {m['python']}, "
        f"SkyPilot 0.14.1; load average {m['loadavg_start']:.2f} at start, "
        f"{m.get('loadavg_end', 0):.2f} at end",
        f"- git: {m['git']}",
        f"- trees (temporary directory `{payload['tmpdir']}`, deleted at the end): a `git init` repository "
        "with `.gitignore` = `build/` and `*.gz`, N empty files in directories of 100, ten directories a "
        "group (one of them `build/`), one `*.gz` per directory: 10 % of the files under an ignored "
        "directory, 0.9 % ignored by name, N/100 excluded paths",
        f"- timing: one process; per N an untimed warm pass (scan_tree + the ignore walk), then rounds "
        f"interleaved with the order rotated; median of {payload['rounds']} for N <= 100,000, 1 run at "
        "1,000,000. CPU is this process's user + system time (all threads).",
    ]
    if payload.get("scaled_down"):
        lines.append(f"- scaled down: {payload['scaled_down']}")
    lines += ["", "## µs per file (wall time; CPU in brackets)", ""]
    header = (
        "| series | "
        + " | ".join(f"N={n:,}" for n in sizes)
        + " | largest/smallest N: wall (CPU) | marginal µs/file, two largest N |"
    )
    lines += [header, "|---|" + "---|" * len(sizes) + "---|---|"]
    for key, label in SERIES:
        per = results[key]
        cells = []
        for n in sizes:
            r = per.get(str(n))
            cells.append(f"{r['us_per_file']:.2f} ({r['cpu_us_per_file']:.2f})" if r else "—")
        rr, rc, mm = ratio(per), ratio(per, "cpu_us_per_file"), marginal(per)
        flat = f"**{rr[2]:.2f}** ({rc[2]:.2f}), {rr[0]:,} → {rr[1]:,}" if rr and rc else "—"
        more = f"{mm[2]:.2f} ({mm[0]:,} → {mm[1]:,})" if mm else "—"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {flat} | {more} |")
    lines += [
        "",
        "The ratio is the per-file time at the largest N over that at the smallest (1 = flat, the",
        "goal; below 1, a fixed cost per call spread over more files). The marginal cost is the",
        "time one more file adds between the two largest N, free of that fixed cost.",
    ]
    lines += ["", "## Time per run (wall)", ""]
    lines += ["| series | " + " | ".join(f"N={n:,}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for key, _label in SERIES:
        per = results[key]
        lines.append(
            f"| {key} | "
            + " | ".join(fmt_seconds(per[str(n)]["median_s"]) if str(n) in per else "—" for n in sizes)
            + " |"
        )
    lines += ["", "## Checks", ""]
    for n in sizes:
        c = payload["checks"][str(n)]
        extra = ""
        if "zips_identical" in c:
            extra = f"; zips identical: {c['zips_identical']}, blob ids equal: {c['blob_ids_equal']}"
        lines.append(
            f"- N={n:,}: {c['walk_excluded']:,} excluded paths (expected {c['expected_excluded']:,}), "
            f"same set as SkyPilot's git listing: {c['walk_equals_git']}; scan_tree files "
            f"{c['scan_files']:,}{extra}"
        )
    for key, why in payload["skipped"].items():
        lines.append(f"- {key}: {why}")
    lines += ["", "Plot: `scaling_bench.svg` (log N, log µs/file, one line per series).", ""]
    lines += payload.get("notes", [])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N up to 100,000, 1 round, writes nothing")
    parser.add_argument("--max-n", type=int, default=None, help="largest N of a full run (default 1,000,000)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--render", metavar="JSON", help="rewrite the .md and .svg of a results .json")
    args = parser.parse_args(argv)
    if args.render:
        source = Path(args.render)
        payload = json.loads(source.read_text())
        source.with_suffix(".md").write_text(markdown(payload))
        source.with_suffix(".svg").write_text(svg(payload))
        return 0
    mode = "quick" if args.quick else "full"
    sizes = SIZES_QUICK if args.quick else SIZES_FULL
    rounds = 1 if args.quick else 3
    scaled_down = None
    if args.max_n is not None:
        sizes = [n for n in sizes if n <= args.max_n]
        if not args.quick and sizes[-1] < SIZES_FULL[-1]:
            scaled_down = f"--max-n {args.max_n:,}: the largest N is {sizes[-1]:,}"
    started = time.monotonic()
    info = machine("python", "src", "include")
    payload: dict[str, Any] = {
        "command": "python3 bench/scaling_bench.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "machine": info,
        "sizes": sizes,
        "rounds": rounds,
        "scaled_down": scaled_down,
        "tmpdir": tempfile.gettempdir(),
    }
    total = sum(sizes) + sum(n // FILES_PER_DIR for n in sizes) * 11 // 10
    usage = os.statvfs(tempfile.gettempdir())
    if usage.f_favail < total * 2:
        sys.exit(f"{tempfile.gettempdir()} has {usage.f_favail:,} free inodes, the trees need {total:,}")

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # so the finally below removes the trees

    signal.signal(signal.SIGTERM, on_term)
    base = tempfile.mkdtemp(prefix="sky_async-scaling-bench-")
    try:
        payload.update(run(sizes, rounds, base, lambda s: print(s, flush=True)))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    info["loadavg_end"] = os.getloadavg()[0]
    payload["elapsed_s"] = time.monotonic() - started
    report = markdown(payload)
    print(report)
    if not args.no_write and not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
        RESULTS.with_suffix(".md").write_text(report)
        RESULTS.with_suffix(".svg").write_text(svg(payload))
        print(f"wrote {RESULTS}.md, .json and .svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
