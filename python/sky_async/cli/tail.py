"""``sky-async tail``: the last lines of files, like GNU tail, optionally following them.

Output is byte for byte what ``tail -n N FILE...`` prints for regular files: the lines as
they are in the file (no decoding, CRs kept), ending with a newline only where the file
has one, with ``==> FILE <==`` headers (a blank line before every header but the first)
when there are several files. Differences from GNU tail:

- a file that cannot be read gets one line on stderr (``sky-async: FILE: reason``) and no
  header on stdout (GNU tail prints a header for a directory before its error);
- FIFOs, sockets and devices are refused at once instead of read;
- with ``-f`` every file is followed like ``tail -F`` (rotation and truncation survived),
  and a line is printed once its newline arrives (GNU tail prints partial lines as they come).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any, BinaryIO

from .. import _default_api
from .._follow import Follow
from ._common import describe as _describe
from ._names import for_terminal, quotef


class _Printer:
    """Writes chunks of output, with a header whenever the file being shown changes."""

    def __init__(self, out: BinaryIO, headers: bool, terminal: bool) -> None:
        self._out = out
        self._headers = headers
        self._terminal = terminal
        self._current: object = None
        self._first = True

    def show(self, key: object, name: str, data: bytes) -> None:
        """*data* of the file *name*; a header when *key* differs from the last one shown."""
        if self._headers and key != self._current:
            label = os.fsencode(name)
            if self._terminal:  # as GNU tail, byte-exact unless a name could drive the terminal
                label = for_terminal(label)
            self._out.write(b"%s==> %s <==\n" % (b"" if self._first else b"\n", label))
            self._first = False
        self._current = key
        self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


def _error(path: str, error: BaseException) -> None:
    print(f"sky-async: {quotef(path)}: {_describe(error)}", file=sys.stderr)


def _tail_command(args: argparse.Namespace) -> int:
    headers = args.verbose or (len(args.files) > 1 and not args.quiet)
    printer = _Printer(sys.stdout.buffer, headers, sys.stdout.isatty())
    if args.follow:
        return asyncio.run(_follow_all(args, printer))
    results = _default_api.sync._tail_files(
        args.files, args.lines, 8192, "utf-8", "replace", None, True, raw=True
    )
    failed = 0
    for index, (path, result) in enumerate(zip(args.files, results)):
        if isinstance(result, BaseException):
            failed += 1
            printer.flush()
            _error(path, result)
            continue
        pieces, final_newline = result
        printer.show(index, path, b"\n".join(pieces) + (b"\n" if final_newline else b""))
    printer.flush()
    return 1 if failed else 0


async def _follow_all(args: argparse.Namespace, printer: _Printer) -> int:
    followers: list[tuple[str, Follow]] = []
    failed = 0
    for path in args.files:
        try:
            follower = Follow(path, args.lines, "utf-8", "replace", args.sleep_interval, raw=True)
        except (OSError, ValueError) as exc:
            failed += 1
            _error(path, exc)
            continue
        followers.append((path, follower))
        backlog = follower.take_ready()
        if backlog:
            printer.show(path, path, b"".join(backlog))
    printer.flush()
    if not followers:
        return 1

    lines: asyncio.Queue[tuple[str, bytes | BaseException]] = asyncio.Queue()

    async def pump(path: str, follower: Follow) -> None:
        try:
            async for line in follower:
                lines.put_nowait((path, line))
        except Exception as exc:  # reported; the other files go on
            lines.put_nowait((path, exc))

    tasks = [asyncio.create_task(pump(path, follower)) for path, follower in followers]
    try:
        alive = len(tasks)
        while alive:
            path, item = await lines.get()
            if isinstance(item, BaseException):
                alive -= 1
                failed += 1
                printer.flush()
                _error(path, item)
                continue
            printer.show(path, path, item)
            if lines.empty():
                printer.flush()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, follower in followers:
            follower.close()
    return 1


def _line_count(text: str) -> int:
    if text.strip().startswith("+"):
        raise argparse.ArgumentTypeError(
            f"invalid number of lines: {text!r} (+N, from line N on, is not supported)"
        )
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of lines: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid number of lines: {text!r} (must be non-negative)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r} (must be positive)")
    return value


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "tail",
        help="print the last lines of files, like tail",
        description="Print the last lines of files (SkyPilot's read_last_n_lines selection), like GNU tail.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument(
        "-n", "--lines", type=_line_count, default=10, metavar="N", help="lines per file (10)"
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="print lines as they are appended (survives rotation)"
    )
    parser.add_argument(
        "-s",
        "--sleep-interval",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="with -f, how often to check even without inotify events (1.0)",
    )
    header = parser.add_mutually_exclusive_group()
    header.add_argument("-q", "--quiet", action="store_true", help="never print headers")
    header.add_argument("-v", "--verbose", action="store_true", help="always print headers")
    parser.set_defaults(handler=_tail_command)
