"""The ``sky-async`` command line (also ``python -m sky_async``).

Each subcommand lives in its own module with an ``add_parser(commands)`` function
that registers it and sets ``handler``; a handler returns the exit status.
Errors are one line on stderr (``sky-async: PATH: reason``), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__

# In the order `sky-async --help` lists them.
SUBCOMMANDS = ("preflight", "hash", "tail", "probe", "sysinfo")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sky-async", description="System utilities for cloud orchestration."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as coreutils do on SIGPIPE, and keep
        # the interpreter from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (OSError, ValueError, TypeError) as exc:
        print(f"sky-async: {exc}", file=sys.stderr)
        return 2
