#!/usr/bin/env python3
"""The upload archive: SkyPilot 0.14.1's zip + blob id against sky_async's pack_mounts.

    python3 bench/pack_bench.py           # ~10,000 files, best of 3
    python3 bench/pack_bench.py --quick   # ~1,000 files, best of 2 (smoke test, writes nothing)

The tree, a git repository: 7,000 files with a copy-like mix of sizes (most under 4 KiB,
some tens of KiB, a few MiB; half text, half incompressible bytes), 2,800 files under an
ignored ``node_modules/``, 200 ignored ``*.gz`` files; ``.gitignore`` = ``node_modules/`` and
``*.gz``. Variants, in one process, rounds interleaved:

  (a) SkyPilot: ``storage_utils.zip_files_and_folders([root], zip)`` then
      ``client.common._compute_zip_blob_id(zip)`` (what ``upload_mounts_to_api_server`` does)
  (b) sky_async: ``sync.pack_mounts([root], zip)`` (the same zip, the blob id in the same read)
  (c) the floor: read, CRC-32, SHA-256 and DEFLATE of every file the zip keeps, on one core

The two zips must be the same bytes and the blob ids equal, or the run fails.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

from sky_async import sync  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from sky.client import common as sky_common
    from sky.data import storage_utils


def size_of(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.70:
        return rng.randrange(0, 4096)
    if roll < 0.97:
        return rng.randrange(4096, 64 * 1024)
    return rng.randrange(256 * 1024, 3 * 1024 * 1024)


def make_tree(root: Path, files: int) -> int:
    rng = random.Random(11)
    text = b"".join(b"line %d of a document that compresses the way docs do\n" % i for i in range(80_000))
    noise = rng.randbytes(4 * 1024 * 1024)
    total = 0

    def write(path: Path, size: int) -> None:
        nonlocal total
        path.parent.mkdir(parents=True, exist_ok=True)
        source = text if rng.random() < 0.5 else noise
        start = rng.randrange(0, len(source) - size) if size < len(source) else 0
        path.write_bytes(source[start : start + size])
        total += size

    kept = files * 70 // 100
    for i in range(kept):
        write(root / f"pkg{i % 40}" / f"sub{i % 7}" / f"file{i}.txt", size_of(rng))
    for i in range(files * 28 // 100):
        write(root / "node_modules" / f"mod{i % 100}" / f"index{i}.js", rng.randrange(0, 8192))
    for i in range(files * 2 // 100):
        write(root / f"pkg{i % 40}" / f"archive{i}.gz", rng.randrange(0, 32768))
    (root / ".gitignore").write_text("node_modules/\n*.gz\n")
    subprocess.run(["git", "-C", str(root), "init", "-q"], check=True)
    return total


def best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    files, rounds = (1000, 2) if args.quick else (10_000, 3)
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp, "tree"), Path(tmp, "out")
        root.mkdir()
        out.mkdir()
        data = make_tree(root, files)
        theirs, ours = out / "sky.zip", out / "ours.zip"

        def skypilot() -> str:
            storage_utils.zip_files_and_folders([str(root)], str(theirs))
            return str(sky_common._compute_zip_blob_id(str(theirs)))

        def sky_async() -> str:
            return sync.pack_mounts([root], ours).blob_id

        def floor() -> str:
            # What one core must do for the same files, with nothing else: read, CRC-32,
            # SHA-256 and DEFLATE each file the zip keeps.
            total = 0
            for path in kept:
                with open(path, "rb") as f:
                    data = f.read()
                compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
                total += len(compressor.compress(data)) + len(compressor.flush())
                zlib.crc32(data)
                hashlib.sha256(data).digest()
            return str(total)

        sync.pack_mounts([root], ours)
        with zipfile.ZipFile(ours) as archive:
            infos = archive.infolist()
        kept = ["/" + i.filename for i in infos if not i.is_dir() and i.external_attr >> 28 != 0xA]
        times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
        for _ in range(rounds):  # interleaved, so machine load hits them alike
            times["a"].append(best(skypilot, 1))
            times["b"].append(best(sky_async, 1))
            times["c"].append(best(floor, 1))
        a, b, c = min(times["a"]), min(times["b"]), min(times["c"])
        cores = len(os.sched_getaffinity(0))
        if theirs.read_bytes() != ours.read_bytes() or skypilot() != sky_async():
            sys.exit("the archives or blob ids differ")
        result = sync.pack_mounts([root], ours)
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        lines = [
            "# Upload archive benchmark results",
            "",
            "Command (from the repository root): `python3 bench/pack_bench.py`",
            "",
            f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, SkyPilot 0.14.1; "
            f"load average {os.getloadavg()[0]:.2f} at end",
            f"- git: {head}",
            f"- tree: {files:,} files, {data / 2**20:.1f} MiB, git repository with .gitignore "
            f"`node_modules/` and `*.gz`; the zip holds {result.files:,} files "
            f"({result.bytes / 2**20:.1f} MiB) and {result.directories} directories, "
            f"{result.archive_bytes / 2**20:.1f} MiB; {len(result.excluded)} paths excluded",
            "",
            f"Best of {rounds} interleaved rounds in one process. "
            "Both zips are the same bytes; the blob ids are equal.",
            "",
            "| variant | time | vs SkyPilot |",
            "|---|---|---|",
            f"| (a) SkyPilot zip_files_and_folders + _compute_zip_blob_id | {a * 1e3:.1f} ms | 1.00x |",
            f"| (b) sky_async sync.pack_mounts (zip + blob id, one read) | {b * 1e3:.1f} ms | {a / b:.2f}x |",
            f"| (c) floor: read + CRC-32 + SHA-256 + DEFLATE of the kept files, one core | {c * 1e3:.1f} ms "
            f"| {a / c:.2f}x |",
            "",
            f"(b) against the floor on {cores} cores ({c / cores * 1e3:.1f} ms): {b / (c / cores):.2f}x.",
            "",
            "Both zips hold the same DEFLATE streams from the same zlib, and compressing is most of",
            "the time, so one archive cannot be much faster than (c) divided by the cores: (b) reads,",
            "hashes and compresses files up to 8 MiB on a pool of threads (zlib, hashlib and reads",
            "release the GIL) and writes them in order, and computes the blob id in the same read.",
            "In SkyPilot 0.14.1 the zip's exclusion check is a set lookup, so the walk is cheap on both",
            "sides.",
        ]
        text = "\n".join(lines) + "\n"
        print(text)
        if not args.quick:
            (HERE / "results" / "pack_bench.md").write_text(text)


if __name__ == "__main__":
    main()
