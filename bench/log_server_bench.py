#!/usr/bin/env python3
"""Log endpoint benchmark through a real HTTP server: 200 clients following logs.

    python3 bench/log_server_bench.py            # full run (~1 min), writes bench/results/log_server_bench.md
    python3 bench/log_server_bench.py --quick    # smoke test: shorter windows
    python3 bench/log_server_bench.py --no-write # print the table, write nothing

Each variant is a FastAPI app served by uvicorn in a child process, ``GET /logs/{name}?tail=0&follow=1``
answered with a ``StreamingResponse``:
  ours       examples/log_server.py as it is (sky_async.stream_log)
  skypilot   the same route over the reimplementation of SkyPilot 0.14.1's ``_tail_log_file`` in
             bench/stream_log_bench.py (aiofiles, ``asyncio.sleep(0.1)`` when idle)
A writer process (stream_log_bench.py's) appends 20 lines/s to each of CLIENTS logs, each line
carrying its write time; one client process (httpx, asyncio) keeps CLIENTS streaming requests open,
one per log, and records for every line received its delay from the write (the client's
``time.time()`` when the chunk holding it arrives). Over a measuring window after a warm-up:
lines/s delivered, p50/p99/max delay, and the server process's CPU (user + system from
/proc/PID/stat) per second and per delivered line. The variants run one after the other on
the same logs, server, writer and client on the same 2 cores: the delays include the client's
own scheduling, alike for both.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
STREAM_LOG_BENCH = HERE / "stream_log_bench.py"
CLIENTS = 200


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the server child ---------------------------------------------------------------------------


def serve(variant: str, directory: str) -> None:
    import uvicorn

    log_server = load(EXAMPLES / "log_server.py")
    if variant == "ours":
        app = log_server.make_app(directory)
    else:
        import fastapi
        from fastapi.responses import StreamingResponse

        skypilot_stream = load(STREAM_LOG_BENCH).skypilot_stream
        app = fastapi.FastAPI()

        @app.get("/logs/{name}")
        async def logs(name: str, tail: int | None = None, follow: bool = False) -> StreamingResponse:
            path = os.path.join(directory, os.path.basename(name))
            return StreamingResponse(skypilot_stream(path, tail=tail, follow=follow), media_type="text/plain")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


# --- the client child ---------------------------------------------------------------------------


async def follow_all(port: int, clients: int, warmup: float, seconds: float) -> dict[str, Any]:
    import httpx

    delays: list[float] = []
    measuring = False

    async def one(client: httpx.AsyncClient, index: int) -> None:
        async with client.stream("GET", f"/logs/{index}.log", params={"tail": 0, "follow": 1}) as response:
            response.raise_for_status()
            partial = b""
            async for chunk in response.aiter_raw():
                now = time.time()
                data = partial + chunk
                lines = data.split(b"\n")
                partial = lines.pop()
                if measuring:
                    delays.extend(now - float(line.split(b" ", 1)[0]) for line in lines)

    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout
    ) as client:
        tasks = [asyncio.create_task(one(client, i)) for i in range(clients)]
        await asyncio.sleep(warmup)
        measuring = True
        started = time.monotonic()
        await asyncio.sleep(seconds)
        measuring = False
        elapsed = time.monotonic() - started
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if failed:
        raise RuntimeError(f"{len(failed)} clients failed: {failed[0].exception()!r}")
    return {"delays": delays, "elapsed": elapsed}


# --- the parent ---------------------------------------------------------------------------------


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(variant: str, directory: str, clients: int, warmup: float, seconds: float) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--server", variant, "--dir", directory], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", str(port), "--clients", str(clients),
             "--warmup", str(warmup), "--seconds", str(seconds)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(warmup)
            cpu_before, wall_before = cpu_of(server.pid), time.monotonic()
            time.sleep(seconds)
            cpu = cpu_of(server.pid) - cpu_before
            wall = time.monotonic() - wall_before
            out, _ = client.communicate(timeout=120)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        if client.returncode != 0:
            raise RuntimeError(f"the client of {variant} failed")
    finally:
        server.send_signal(signal.SIGTERM)  # uvicorn shuts down quietly on it
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    result = json.loads(out.splitlines()[-1])
    delays = result["delays"]
    lines = len(delays)
    return {
        "variant": variant,
        "lines_per_s": lines / result["elapsed"],
        "expected_per_s": clients * 20,
        "p50_ms": 1000 * statistics.median(delays) if delays else None,
        "p99_ms": 1000 * percentile(delays, 0.99) if delays else None,
        "max_ms": 1000 * max(delays) if delays else None,
        "server_cpu_per_s": cpu / wall,
        "server_cpu_us_per_line": 1e6 * cpu / (lines * wall / result["elapsed"]) if lines else None,
    }


def render(rows: list[dict[str, Any]], info: dict[str, str], clients: int, seconds: float) -> str:
    def fmt(value: float | None, digits: int = 1) -> str:
        return "n/a" if value is None else f"{value:,.{digits}f}"

    out = [
        "# log_server_bench",
        "",
        f"{clients} HTTP clients (httpx) each following its own log through a FastAPI app served by",
        "uvicorn, `GET /logs/{name}?tail=0&follow=1`; a writer process appends 20 lines/s to each log.",
        "See the docstring of `bench/log_server_bench.py` for the method.",
        "",
        f"`{info['command']}` — {info['date']}, {info['machine']}, load {info['load']},"
        f" commit {info['commit']}",
        "",
        f"Measured over {seconds:g} s after a warm-up.",
        "",
        "| server | lines/s delivered (written) | p50 ms | p99 ms | max ms | server CPU s/s"
        " | server CPU µs/line |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        out.append(
            f"| {row['variant']} | {fmt(row['lines_per_s'], 0)} ({row['expected_per_s']:,})"
            f" | {fmt(row['p50_ms'])} | {fmt(row['p99_ms'])} | {fmt(row['max_ms'])}"
            f" | {fmt(row['server_cpu_per_s'], 3)} | {fmt(row['server_cpu_us_per_line'])} |"
        )
    ours, theirs = rows[0], rows[-1]
    if ours["p99_ms"] and theirs["p99_ms"] and ours["server_cpu_us_per_line"]:
        out += [
            "",
            f"p99 delay: {theirs['p99_ms'] / ours['p99_ms']:.1f}x lower with sky_async.stream_log; server CPU"
            f" per line: {theirs['server_cpu_us_per_line'] / ours['server_cpu_us_per_line']:.1f}x lower.",
        ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short windows")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--server", choices=("ours", "skypilot"), help=argparse.SUPPRESS)
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=3.0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server:
        serve(args.server, args.dir)
        return
    if args.client:
        print(json.dumps(asyncio.run(follow_all(args.client, args.clients, args.warmup, args.seconds))))
        return
    if args.quick:
        args.warmup, args.seconds = 1.0, 4.0
    directory = tempfile.mkdtemp(prefix="log-server-bench-")
    writer = None
    try:
        for i in range(args.clients):
            open(os.path.join(directory, f"{i}.log"), "wb").close()
        writer = subprocess.Popen(
            [sys.executable, str(STREAM_LOG_BENCH), "--writer", directory, "--readers", str(args.clients)]
        )
        rows = [measure(v, directory, args.clients, args.warmup, args.seconds) for v in ("ours", "skypilot")]
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
        shutil.rmtree(directory, ignore_errors=True)
    info = load(STREAM_LOG_BENCH).run_info("python3 bench/log_server_bench.py")
    text = render(rows, info, args.clients, args.seconds)
    print(text)
    if not args.no_write and not args.quick:
        (HERE / "results" / "log_server_bench.md").write_text(text)


if __name__ == "__main__":
    main()
