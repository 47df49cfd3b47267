"""A log endpoint on sky_async.stream_log: ``GET /logs/{name}?tail=N&follow=1``.

    python examples/log_server.py LOG_DIR [--host 127.0.0.1] [--port 8000]

Serves the files directly in LOG_DIR. ``tail`` (optional) is the number of last lines to
start with (the whole file without it); ``follow=1`` keeps the response open and streams
every line appended afterwards, as SkyPilot's API server does for its logs. The response
is ``StreamingResponse(stream_log(...))``: each chunk is whole lines, an idle follower
costs nothing (inotify), and a client that disconnects has its descriptors closed at once
(Starlette cancels the response's task, which closes the stream).

Prints ``serving on http://HOST:PORT`` once it listens (``--port 0`` picks a free port).
Needs fastapi and uvicorn (``pip install 'sky-async[test]'``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import fastapi
import sky_async
import uvicorn
from fastapi.responses import StreamingResponse


def make_app(log_dir: str) -> fastapi.FastAPI:
    root = os.path.realpath(log_dir)
    app = fastapi.FastAPI(title="sky-async log server")

    @app.get("/logs/{name}")
    async def logs(name: str, tail: int | None = None, follow: bool = False) -> StreamingResponse:
        # Only a file directly in the directory: no separators, no "." or "..".
        if not name or name in (".", "..") or os.sep in name or "\0" in name:
            raise fastapi.HTTPException(status_code=404, detail=f"no log {name!r}")
        try:
            chunks = sky_async.stream_log(os.path.join(root, name), tail=tail, follow=follow)
        except FileNotFoundError:
            raise fastapi.HTTPException(status_code=404, detail=f"no log {name!r}") from None
        except ValueError as exc:  # a negative tail
            raise fastapi.HTTPException(status_code=422, detail=str(exc)) from None
        except OSError as exc:  # a directory, a FIFO, no permission
            raise fastapi.HTTPException(status_code=404, detail=f"{name!r}: {exc.strerror}") from None
        return StreamingResponse(chunks, media_type="text/plain; charset=utf-8")

    return app


def serve(log_dir: str, host: str, port: int) -> None:
    # The socket is bound here, not by uvicorn, so that the port chosen for --port 0 can be
    # printed before serving starts.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    config = uvicorn.Config(
        make_app(log_dir),
        log_level="warning",
        lifespan="off",  # the app has no startup or shutdown work
        # Followers never end by themselves: on Ctrl-C give them this long, then close.
        timeout_graceful_shutdown=1,
    )
    print(f"serving on http://{host}:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="the directory whose files are served")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.log_dir):
        parser.error(f"not a directory: {args.log_dir}")
    try:
        serve(args.log_dir, args.host, args.port)
    except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl-C, then raises it again
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
