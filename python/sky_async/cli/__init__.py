"""The ``sky-async`` command line (also ``python -m sky_async``).

Each subcommand lives in its own module with an ``add_parser(commands)`` function
that registers it and sets ``handler``; a handler returns the exit status.
Errors are one line on stderr (``sky-async: PATH: reason``), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__

# Imported up front, not when a command line names them, for the same reason as the
# package's own modules (see sky_async/__init__.py).
from . import completion, man, preflight, probe, sysinfo, tail
from . import hash as hash_command
from ._common import explain

# In the order `sky-async --help` lists them.
_COMMAND_MODULES = (preflight, hash_command, tail, probe, sysinfo, completion, man)
SUBCOMMANDS = tuple(module.__name__.rsplit(".", 1)[1] for module in _COMMAND_MODULES)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sky-async",
        description="System utilities for cloud orchestration.",
        # `sky-async man` makes its EXIT STATUS section of this and the commands' descriptions.
        epilog=(
            "Run `sky-async COMMAND --help` for a command's options. Exit status: 0 on success;"
            " 1 or 2 on failure, as each command says (2 for most usage errors); 130 when"
            " interrupted; 141 when the reader of the output goes away."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.add_parser(commands)
    # For the commands that describe the whole program (completion, man).
    parser.set_defaults(program=parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["tail"]:  # tail's obsolete -5, +5 forms, which argparse cannot read
        words[1:] = tail.obsolete_usage(words[1:])
    args = parser.parse_args(words)
    try:
        status: int = args.handler(args)
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as coreutils do on SIGPIPE, and keep
        # the interpreter from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (OSError, ValueError, TypeError) as exc:
        print(f"sky-async: {explain(exc)}", file=sys.stderr)
        return 2
