#!/usr/bin/env python3
"""How long hash_files and tail_files of 1,000 files take when no descriptor is free.

    python3 bench/emfile_bench.py             # this tree; writes bench/results/emfile_bench.{md,json}
    python3 bench/emfile_bench.py --files 100 --sky-async-path DIR --no-write
                                              # another build of the package (DIR holds sky_async/)

Each case runs in a fresh child process: RLIMIT_NOFILE 256, the runtime and the event loop
started by a first small call, then every remaining descriptor taken (opens of /dev/null),
then one call of --files files timed. Every item must come back as OSError(EMFILE); the
child fails otherwise. The time is that of the call alone: before fd_budget each file's
open was retried for about 2 s, after it a shortage waits once (fd_shortage_grace, 2 s).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = textwrap.dedent(
    """
    import asyncio, errno, json, os, resource, sys, time, warnings
    warnings.simplefilter("ignore", RuntimeWarning)
    from sky_async._api import Api
    backend, operation, mode, root = sys.argv[1:5]
    if backend == "native":
        from sky_async._native_backend import NativeBackend as Backend
    else:
        from sky_async._python_backend import PythonBackend as Backend
    api = Api(Backend())
    paths = [os.path.join(root, name) for name in sorted(os.listdir(root))]
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(api.hash_files(paths[:1]))
    api.sync.tail_files(paths[:1], 1)
    if operation == "hash":
        call = lambda: api.hash_files(paths, return_exceptions=True)
        sync_call = lambda: api.sync.hash_files(paths, return_exceptions=True)
    else:
        call = lambda: api.tail_files(paths, 2, return_exceptions=True)
        sync_call = lambda: api.sync.tail_files(paths, 2, return_exceptions=True)
    taken = []
    while True:
        try:
            taken.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            break
    started = time.perf_counter()
    results = loop.run_until_complete(call()) if mode == "async" else sync_call()
    elapsed = time.perf_counter() - started
    for fd in taken:
        os.close(fd)
    bad = [r for r in results if not (isinstance(r, OSError) and r.errno == errno.EMFILE)]
    assert not bad, bad[:3]
    print(json.dumps({"seconds": elapsed}))
    """
)

CASES = [
    ("native-io_uring", "native", {"SKY_ASYNC_IO_BACKEND": "io_uring"}),
    ("native-threads", "native", {"SKY_ASYNC_IO_BACKEND": "threads"}),
    ("python", "python", {}),
]


def shown(seconds: float | None) -> str:
    return "timeout" if seconds is None else f"{seconds:.2f}"


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--sky-async-path", default=str(HERE.parent / "python"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as root:
        for index in range(args.files):
            Path(root, f"{index:05d}.log").write_bytes(f"first {index}\nlast {index}\n".encode())
        for name, backend, overrides in CASES:
            env = {key: value for key, value in os.environ.items() if not key.startswith("SKY_ASYNC_")}
            env.update(overrides, PYTHONPATH=args.sky_async_path)
            for operation in ("hash", "tail"):
                for mode in ("async", "sync"):
                    try:
                        done = subprocess.run(
                            [sys.executable, "-c", CHILD, backend, operation, mode, root],
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=args.timeout,
                            check=True,
                        )
                        seconds: float | None = json.loads(done.stdout)["seconds"]
                    except subprocess.TimeoutExpired:
                        seconds = None
                    except subprocess.CalledProcessError as exc:
                        print(exc.stderr, file=sys.stderr)
                        raise
                    rows.append({"backend": name, "call": f"{operation}_files ({mode})", "seconds": seconds})
                    print(f"{name:16} {operation}_files ({mode}): {shown(seconds)} s", flush=True)

    meta = {
        "command": " ".join(["python3", "bench/emfile_bench.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
        "files": args.files,
    }
    if not args.no_write:
        results = HERE / "results"
        (results / "emfile_bench.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
        lines = [
            "# emfile_bench",
            "",
            f"`{meta['command']}` — {meta['date']}, {meta['machine']}",
            "",
            f"One call of {args.files} files with no descriptor free (RLIMIT_NOFILE 256, all taken);",
            "every item is OSError(EMFILE). Fresh child process per row.",
            "",
            "| backend | call | seconds |",
            "|---|---|---:|",
            *(f"| {r['backend']} | {r['call']} | {shown(r['seconds'])} |" for r in rows),
        ]
        (results / "emfile_bench.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
