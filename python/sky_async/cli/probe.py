"""``sky-async probe``: whether processes are alive, or wait for them to exit."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from .. import sync, wait_for_exit


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit status 2."""


def _parse_pids(words: Sequence[str]) -> list[int]:
    pids = []
    for word in words:
        try:
            pids.append(int(word, 10))
        except ValueError:
            raise UsageError(f"{word!r} is not a process id (an integer)") from None
    return pids


def _parse_timeout(word: str | None) -> float | None:
    if word is None:
        return None
    try:
        timeout = float(word)
    except ValueError:
        timeout = -1.0
    if not timeout >= 0:  # NaN too
        raise UsageError(f"--timeout must be a number of seconds >= 0, not {word!r}")
    return timeout


async def _wait_all(pids: list[int], timeout: float | None) -> list[bool]:
    return list(await asyncio.gather(*(wait_for_exit(pid, timeout) for pid in pids)))


def _report(pids: list[int], states: list[bool], as_json: bool, key: str, words: tuple[str, str]) -> None:
    if as_json:
        json.dump([{"pid": pid, key: state} for pid, state in zip(pids, states)], sys.stdout)
        sys.stdout.write("\n")
        return
    for pid, state in zip(pids, states):
        sys.stdout.write(f"{pid} {words[0] if state else words[1]}\n")


def _probe_command(args: argparse.Namespace) -> int:
    try:
        pids = _parse_pids(args.pids)
        timeout = _parse_timeout(args.timeout)
        if timeout is not None and not args.wait:
            raise UsageError("--timeout needs --wait")
    except UsageError as exc:
        print(f"sky-async: probe: {exc}", file=sys.stderr)
        return 2
    if args.wait:
        exited = asyncio.run(_wait_all(pids, timeout))
        _report(pids, exited, args.json, "exited", ("exited", "still running"))
        return 0 if all(exited) else 1
    alive = sync.probe_processes(pids)
    _report(pids, alive, args.json, "alive", ("alive", "not alive"))
    return 0 if all(alive) else 1


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "probe",
        help="tell whether processes are alive, or wait for them to exit",
        description=(
            "Print 'PID alive' or 'PID not alive' for each pid (a zombie is not alive). Exit status: "
            "0 if all are alive, 1 if any is not, 2 on a usage error. With --wait, wait until every "
            "pid has exited and print 'PID exited' or 'PID still running' (at the timeout); the exit "
            "status is then 0 if all exited."
        ),
    )
    parser.add_argument("pids", nargs="+", metavar="PID")
    parser.add_argument("--json", action="store_true", help="print a JSON list of {pid, alive|exited}")
    parser.add_argument("--wait", action="store_true", help="wait for every pid to exit")
    parser.add_argument("--timeout", default=None, metavar="S", help="with --wait: give up after S s")
    parser.set_defaults(handler=_probe_command)
