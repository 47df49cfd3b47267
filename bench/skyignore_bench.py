#!/usr/bin/env python3
"""sky_async's .skyignore matcher against SkyPilot 0.14.1's, side by side in one run.

    python3 bench/skyignore_bench.py           # 10,000 files, 50 patterns, 7 rounds
    python3 bench/skyignore_bench.py --quick   # 1,000 files, 3 rounds (smoke test)

The full run writes bench/results/skyignore_bench.md; --quick writes nothing.

The tree: 20 top-level directories of 10 subdirectories of 50 files (10,000 files, with
names a Python/JS project has: .py, .pyc, .log, .tmp, __pycache__, node_modules, build,
dist, ...) plus a hidden .git directory. The .skyignore has 50 lines: extensions at any
depth, anchored paths, directories (trailing /), ``dir/**`` and literal names. Variants:

  (a) SkyPilot: ``storage_utils.get_excluded_files_from_skyignore(root)``, one recursive
      glob per line
  (b) (a), then for every path of the tree whether it or a directory above it is listed
      (what ``zip_files_and_folders`` decides per path)
  (c) sky_async: ``SkyIgnore(root).matches()``, every line in one walk
  (d) (c), then ``is_excluded(path)`` for every path of the tree

All in one process, rounds interleaved with the order rotated, medians. The excluded sets
of (a) and (c) and the per-path answers of (b) and (d) must be equal, or the run fails.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "python"))

from sky_async._upload.skyignore import SkyIgnore  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sky
    from sky.data import storage_utils

PATTERNS = """\
# build outputs
*.pyc
*.pyo
*.o
*.so
*.tmp
*.log
*.swp
*~
.DS_Store
__pycache__/
node_modules/
build/
dist/
/out
/coverage
*.egg-info/
.pytest_cache/
.mypy_cache/
.git
.venv/
venv/
data/**
checkpoints/**
logs/*.log
wandb/
*.ckpt
*.pt
*.safetensors
*.bin
*.tar.gz
*.zip
/tmp
/scratch/
**/cache/
*.cache
secret*.json
*.key
*.pem
.env
.env.*
docs/_build/
site/
*.ipynb_checkpoints
/notebooks/*.html
[Tt]humbs.db
*.bak
*.orig
*.rej
core.[0-9]*
*.class
"""

FILE_KINDS = [
    "main.py",
    "util.py",
    "model.py",
    "util.pyc",
    "run.log",
    "notes.txt",
    "x.tmp",
    "README.md",
    "w.pt",
    "conf.yaml",
]
SUB_KINDS = ["src", "lib", "tests", "__pycache__", "build", "data", "logs", "node_modules", "docs", "cache"]


def make_tree(root: Path, top: int, sub: int, files: int) -> int:
    count = 0
    for t in range(top):
        for s in range(sub):
            d = root / f"pkg{t}" / f"{SUB_KINDS[s % len(SUB_KINDS)]}{'' if s < len(SUB_KINDS) else s}"
            d.mkdir(parents=True)
            for f in range(files):
                kind = FILE_KINDS[f % len(FILE_KINDS)]
                (d / f"{f}_{kind}").write_bytes(b"")
                count += 1
    git = root / ".git" / "objects"
    git.mkdir(parents=True)
    for i in range(200):
        (git / f"{i:04x}").write_bytes(b"")
    (root / ".skyignore").write_text(PATTERNS)
    return count


def all_paths(root: Path) -> list[str]:
    found = []
    for top, dirs, names in os.walk(root):
        rel = os.path.relpath(top, root)
        found.extend(n if rel == "." else f"{rel}/{n}" for n in dirs + names)
    return found


def skypilot_listed(root: str) -> set[str]:
    return set(storage_utils.get_excluded_files_from_skyignore(root))


def skypilot_per_path(root: str, paths: list[str]) -> list[bool]:
    listed = skypilot_listed(root)
    answers = []
    for path in paths:
        parts = path.split("/")
        answers.append(any("/".join(parts[: i + 1]) in listed for i in range(len(parts))))
    return answers


def ours_listed(root: str) -> set[str]:
    return set(SkyIgnore(root).matches())


def ours_per_path(root: str, paths: list[str]) -> list[bool]:
    ignore = SkyIgnore(root)
    return [ignore.is_excluded(path) for path in paths]


def git_head() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO)
    return done.stdout.strip()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    top, sub, files, rounds = (2, 10, 50, 3) if args.quick else (20, 10, 50, 7)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        nfiles = make_tree(root, top, sub, files)
        paths = all_paths(root)
        patterns = sum(1 for line in PATTERNS.splitlines() if line.strip() and not line.startswith("#"))
        r = str(root)
        variants: dict[str, tuple[str, Callable[[], object]]] = {
            "a": ("SkyPilot get_excluded_files_from_skyignore", lambda: skypilot_listed(r)),
            "b": ("SkyPilot list + per-path check of every path", lambda: skypilot_per_path(r, paths)),
            "c": ("sky_async SkyIgnore(root).matches()", lambda: ours_listed(r)),
            "d": ("sky_async SkyIgnore(root) + is_excluded for every path", lambda: ours_per_path(r, paths)),
        }
        keys = list(variants)
        times: dict[str, list[float]] = {k: [] for k in keys}
        results: dict[str, object] = {}
        for k in keys:  # warm-up: page cache, imports, regex caches
            results[k] = variants[k][1]()
        if results["a"] != results["c"] or results["b"] != results["d"]:
            print("MISMATCH between SkyPilot and sky_async", file=sys.stderr)
            return 1
        for i in range(rounds):
            order = keys[i % len(keys) :] + keys[: i % len(keys)]
            for k in order:
                times[k].append(timed(variants[k][1])[0])
        med = {k: statistics.median(v) for k, v in times.items()}
        listed = len(results["a"])  # type: ignore[arg-type]
        excluded = sum(results["b"])  # type: ignore[arg-type]
    lines = [
        "# .skyignore benchmark results",
        "",
        "Command (from the repository root): `python3 bench/skyignore_bench.py"
        + (" --quick" if args.quick else "")
        + "`",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SkyPilot {sky.__version__}; load average {os.getloadavg()[0]:.2f} at end",
        f"- git: {git_head()}",
        f"- tree: {nfiles:,} files + 200 in .git, {len(paths):,} paths; .skyignore of {patterns} patterns; "
        f"{listed:,} paths listed, {excluded:,} of the {len(paths):,} left out of the zip",
        "",
        f"Medians of {rounds} interleaved rounds in one process. Both sides agree on every path.",
        "",
        "| variant | time | vs SkyPilot |",
        "|---|---|---|",
    ]
    for k in keys:
        base = med["a"] if k in ("a", "c") else med["b"]
        lines.append(f"| ({k}) {variants[k][0]} | {med[k] * 1000:.1f} ms | {base / med[k]:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        out = HERE / "results" / "skyignore_bench.md"
        out.write_text(text)
        print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
