#!/usr/bin/env python3
"""sky_async's git ignore listing against git itself and SkyPilot 0.14.1, side by side.

    python3 bench/gitignore_bench.py           # about 10,000 files, best of 10
    python3 bench/gitignore_bench.py --quick   # about 1,000 files, best of 3 (smoke test)

The full run writes bench/results/gitignore_bench.md; --quick writes nothing.

The repository: 40 directories of 10 subdirectories of 15 source files (6,000 files, half
of them committed) plus a ``node_modules/`` of 4,000 files and a ``*.gz`` beside every
tenth file; ``.gitignore`` = ``node_modules/`` and ``*.gz``. Variants:

  (a) git: ``git ls-files -z --others --ignored --exclude-standard --directory``
  (b) SkyPilot: ``storage_utils.get_excluded_files_from_gitignore(root)`` (runs git twice)
  (c) sky_async: ``_gitignore.ignored_paths(root)`` on the native engine (no git process)
  (d) sky_async: ``_gitignore.ignored_paths(root)`` on the pure-Python engine
  (e) sky_async: ``compat.get_excluded_files_from_gitignore(root)`` (native engine)

All in one process, rounds interleaved, best of N. The listings of (a), (c) and (d), and
of (b) and (e), must be equal, or the run fails. Without the compiled module, (c) and (e)
are left out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

from sky_async import compat  # noqa: E402
from sky_async._upload import gitignore as _gitignore  # noqa: E402

try:
    from sky_async._upload import native as native_engine
except ImportError:
    native_engine = None

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sky
    from sky.data import storage_utils


def git(root: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True).stdout


def make_repo(root: Path, scale: int) -> int:
    git(root, "init", "-q", ".")
    (root / ".gitignore").write_text("node_modules/\n*.gz\n")
    files = 0
    tracked = []
    for top in range(4 * scale):
        for sub in range(10):
            directory = root / f"pkg{top}" / f"mod{sub}"
            directory.mkdir(parents=True)
            for index in range(15):
                (directory / f"f{index}.py").write_text("x")
                files += 1
                if index % 2 == 0:
                    tracked.append(f"pkg{top}/mod{sub}/f{index}.py")
                if index % 10 == 0:
                    (directory / f"f{index}.gz").write_text("x")
                    files += 1
    for top in range(4 * scale):
        for sub in range(10):
            directory = root / "node_modules" / f"dep{top}" / f"lib{sub}"
            directory.mkdir(parents=True)
            for index in range(10):
                (directory / f"m{index}.js").write_text("x")
                files += 1
    for start in range(0, len(tracked), 1000):
        git(root, "add", "--", *tracked[start : start + 1000])
    return files


def best(fn: Callable[[], object], rounds: int) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def on_engine(engine: _gitignore.NativeEngine | None, fn: Callable[[], object]) -> Callable[[], object]:
    """*fn* run with *engine* as git's engine (None: the pure-Python walk and reader)."""

    def run() -> object:
        _gitignore.use_native_engine(engine)
        return fn()

    return run


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale, rounds = (1, 3) if args.quick else (10, 10)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        files = make_repo(root, scale)
        variants: dict[str, Callable[[], object]] = {
            "(a) git ls-files --others --ignored --exclude-standard --directory": lambda: [
                os.fsdecode(x)
                for x in git(
                    root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"
                ).split(b"\0")[:-1]
            ],
            "(b) SkyPilot get_excluded_files_from_gitignore": lambda: (
                storage_utils.get_excluded_files_from_gitignore(str(root))
            ),
            "(c) sky_async ignored_paths, native engine": on_engine(
                native_engine, lambda: _gitignore.ignored_paths(root)
            ),
            "(d) sky_async ignored_paths, pure-Python engine": on_engine(
                None, lambda: _gitignore.ignored_paths(root)
            ),
            "(e) sky_async compat.get_excluded_files_from_gitignore (native engine)": on_engine(
                native_engine, lambda: compat.get_excluded_files_from_gitignore(str(root))
            ),
        }
        if native_engine is None:
            print("no compiled module: the native engine's rows are left out", file=sys.stderr)
            variants = {name: fn for name, fn in variants.items() if "native" not in name}
        times: dict[str, float] = {name: float("inf") for name in variants}
        results: dict[str, object] = {}
        for _ in range(rounds):  # interleaved: one of each per round
            for name, fn in variants.items():
                elapsed, results[name] = best(fn, 1)
                times[name] = min(times[name], elapsed)
        names = list(variants)
        git_listing, skypilot = results[names[0]], results[names[1]]
        for name in names[2:]:
            expected = skypilot if "compat" in name else git_listing
            assert results[name] == expected, f"{name} differs"
        listed = len(git_listing)  # type: ignore[arg-type]
    base = times[names[0]]
    lines = [
        "# gitignore benchmark results",
        "",
        "Command (from the repository root): `python3 bench/gitignore_bench.py`",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SkyPilot {sky.__version__}, {_git_version()}; "
        f"load average {os.getloadavg()[0]:.2f} at end",
        f"- repository: {files:,} files, `.gitignore` = `node_modules/` and `*.gz`; {listed:,} paths listed",
        "",
        f"Best of {rounds} interleaved rounds in one process."
        " (a), (c) and (d) list the same paths, (b) and (e) too.",
        "",
        "| variant | time | vs git |",
        "|---|---|---|",
    ]
    for name in names:
        lines.append(f"| {name} | {times[name] * 1000:.1f} ms | {base / times[name]:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        (HERE / "results" / "gitignore_bench.md").write_text(text)
    return 0


def _git_version() -> str:
    return subprocess.run(["git", "--version"], check=True, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
