#!/usr/bin/env python3
"""follow() benchmark: how long a long line takes to be delivered, and whether the loop stalls.

    python3 bench/follow_bench.py --label after          # 32 MiB lines, writes bench/results/
    python3 bench/follow_bench.py --label before --rounds 1   # on an older tree (PYTHONPATH)
    python3 bench/follow_bench.py --quick --no-write     # 4 MiB lines, smoke test

Cases (a file followed with inotify, poll_interval=3600, so only inotify wakes the follower):
  one_append     the whole line (N MiB and its LF) written by one write() from another thread
  small_appends  the same line written as 64 KiB appends, then its LF, from another thread
Variants: `async for` on asyncio's loop, on uvloop's (if installed), and sync.follow in a thread.

Measured per round: seconds from the first write to the line's delivery (the writer thread's
own time included), and, for the async variants, the longest gap between the ticks of a
heartbeat task that sleeps 5 ms at a time (what another task on the loop would wait).
Every delivered line is checked to be exactly the line written. Medians over the rounds.
Results are kept per --label in results/follow_bench.json, and results/follow_bench.md shows
every label side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(HERE.parent / "python"))  # this tree, when not installed

import sky_async  # noqa: E402

try:
    import uvloop
except ImportError:  # optional
    uvloop = None

MiB = 1024 * 1024
PIECE = 64 * 1024
HEARTBEAT = 0.005
HANG = 600.0


def write_line(path: Path, line: bytes, piece: int | None) -> None:
    """Append *line* (ending with LF) to *path*, at once or in appends of *piece* bytes."""
    with open(path, "ab", buffering=0) as file:
        if piece is None:
            file.write(line)
            return
        view = memoryview(line)
        for start in range(0, len(line), piece):
            file.write(view[start : start + piece])


async def deliver_async(path: Path, line: bytes, piece: int | None) -> tuple[float, float]:
    """(seconds to deliver, longest heartbeat gap) for one line through ``sky_async.follow``."""
    loop = asyncio.get_running_loop()
    longest = 0.0
    done = False

    async def heartbeat() -> None:
        nonlocal longest
        last = loop.time()
        while not done:
            await asyncio.sleep(HEARTBEAT)
            now = loop.time()
            longest = max(longest, now - last)
            last = now

    expected = line.decode()
    async with sky_async.follow(path, poll_interval=3600) as lines:
        beat = asyncio.ensure_future(heartbeat())
        await asyncio.sleep(0.05)  # the heartbeat is ticking
        start = time.perf_counter()
        writer = threading.Thread(target=write_line, args=(path, line, piece))
        writer.start()
        got = await asyncio.wait_for(lines.__anext__(), HANG)
        seconds = time.perf_counter() - start
        done = True
        await beat
        writer.join()
    assert got == expected, "the delivered line differs from the one written"
    return seconds, longest


def deliver_sync(path: Path, line: bytes, piece: int | None) -> tuple[float, float]:
    """(seconds to deliver, nan) for one line through ``sky_async.sync.follow``."""
    expected = line.decode()
    lines = sky_async.sync.follow(path, poll_interval=3600)
    try:
        ready = threading.Event()
        got: list[str] = []

        def consume() -> None:
            ready.set()
            got.append(next(lines))

        consumer = threading.Thread(target=consume)
        consumer.start()
        ready.wait()
        time.sleep(0.05)  # the consumer is waiting
        start = time.perf_counter()
        write_line(path, line, piece)
        consumer.join(HANG)
        seconds = time.perf_counter() - start
    finally:
        lines.close()  # type: ignore[attr-defined]
    assert got == [expected], "the delivered line differs from the one written"
    return seconds, float("nan")


def variants() -> dict[str, Callable[[Path, bytes, int | None], tuple[float, float]]]:
    found: dict[str, Callable[[Path, bytes, int | None], tuple[float, float]]] = {
        "asyncio": lambda p, line, piece: asyncio.run(deliver_async(p, line, piece)),
    }
    if uvloop is not None:
        found["uvloop"] = lambda p, line, piece: uvloop.run(deliver_async(p, line, piece))
    found["sync"] = deliver_sync
    return found


def run(size: int, rounds: int) -> list[dict[str, Any]]:
    line = b"x" * (size - 1) + b"\n"
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for case, piece in (("one_append", None), ("small_appends", PIECE)):
            for name, deliver in variants().items():
                seconds, gaps = [], []
                for index in range(rounds):
                    path = Path(root) / f"{case}-{name}-{index}.log"
                    path.write_bytes(b"start\n")
                    took, gap = deliver(path, line, piece)
                    path.unlink()
                    seconds.append(took)
                    gaps.append(gap)
                    print(f"  {case:13} {name:8} round {index + 1}: {took:.3f} s, longest gap {gap:.3f} s")
                rows.append(
                    {
                        "case": case,
                        "variant": name,
                        "seconds": statistics.median(seconds),
                        "longest_gap": statistics.median(gaps),
                        "rounds": rounds,
                    }
                )
    return rows


def render(results: dict[str, Any]) -> str:
    out = [
        "# follow_bench",
        "",
        "Time from the first write of a line to its delivery by `follow` (inotify wake-ups only),",
        "and the longest gap of a 5 ms heartbeat task on the same loop; medians over the rounds.",
        "`before` read and joined on the loop's thread, re-copying the held line on every read;",
        "`after` joins it once and reads it in a worker thread. The gap left is the loop waiting",
        "for the GIL while the worker joins and decodes the 32 MiB line (C calls that hold it).",
        "",
    ]
    for label, run_info in results.items():
        out += [
            f"## {label}",
            "",
            f"`{run_info['command']}` — {run_info['date']}, {run_info['machine']}, "
            f"load {run_info['load']}, commit {run_info['commit']}",
            "",
            *([run_info["note"], ""] if run_info.get("note") else []),
            f"Line: {run_info['size'] // MiB} MiB; `small_appends` writes it in {PIECE // 1024} KiB appends.",
            "",
            "| case | variant | median s to deliver | longest heartbeat gap s | rounds |",
            "|---|---|---:|---:|---:|",
        ]
        for row in run_info["rows"]:
            gap = "-" if row["longest_gap"] != row["longest_gap"] else f"{row['longest_gap']:.3f}"
            out.append(
                f"| {row['case']} | {row['variant']} | {row['seconds']:.3f} | {gap} | {row['rounds']} |"
            )
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", default="current", help="name of this run in the results (before, after)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="4 MiB lines, 2 rounds")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--note", default="", help="how this run differs (which tree it ran on)")
    args = parser.parse_args()
    size = 4 * MiB if args.quick else 32 * MiB
    rounds = 2 if args.quick else args.rounds
    rows = run(size, rounds)
    if args.no_write:
        return
    json_path = HERE / "results" / "follow_bench.json"
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    commit = os.popen(f"git -C {HERE} rev-parse --short HEAD 2>/dev/null").read().strip() or "unknown"
    results[args.label] = {
        "command": "python3 bench/follow_bench.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load": f"{os.getloadavg()[0]:.2f}",
        "commit": commit,
        "note": args.note,
        "size": size,
        "rows": rows,
    }
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "results" / "follow_bench.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
