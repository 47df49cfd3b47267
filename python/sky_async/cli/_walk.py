"""The argument parser as data, for the generators of shell completion and the man page.

Everything here is read from the ``argparse`` parser that ``sky-async`` parses its command line
with, so an option added to a subcommand shows up in ``--help``, the completion scripts and the
man page at once. What argparse does not record is inferred from what it does: an argument
completes as a file name when its metavar names a file (``FILE``, ``PATH``, ``DIR``, ``MANIFEST``).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

# Metavars whose values are file names: such arguments complete as files in every shell.
FILE_METAVARS = frozenset({"FILE", "PATH", "DIR", "MANIFEST"})


@dataclass(frozen=True)
class Argument:
    """One option (``flags`` non-empty) or positional argument (``flags`` empty)."""

    flags: tuple[str, ...]
    metavar: str  # how its value is shown ("" for an option that takes none)
    takes_value: bool
    repeats: bool  # a positional taking several words (nargs * or +)
    choices: tuple[str, ...]
    files: bool  # its value is a file name
    help: str
    group: str  # the help section it is listed in ("options", "verifying ...")


@dataclass(frozen=True)
class Command:
    """The program (``name`` is its prog) or one of its subcommands."""

    name: str
    prog: str  # how it is invoked: "sky-async" or "sky-async preflight"
    summary: str  # the one line `sky-async --help` gives it
    description: str
    epilog: str
    usage: str  # argparse's, without the "usage: " prefix
    arguments: tuple[Argument, ...]
    subcommands: tuple[Command, ...]

    @property
    def options(self) -> tuple[Argument, ...]:
        return tuple(argument for argument in self.arguments if argument.flags)

    @property
    def positionals(self) -> tuple[Argument, ...]:
        return tuple(argument for argument in self.arguments if not argument.flags)


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return " ".join(action.metavar) if isinstance(action.metavar, tuple) else str(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(str(choice) for choice in action.choices) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help:
        return ""
    # Expands %(default)s and the like exactly as --help does.
    return parser._get_formatter()._expand_help(action)


def _argument(parser: argparse.ArgumentParser, action: argparse.Action, group: str) -> Argument:
    takes_value = action.nargs != 0
    metavar = _metavar(action) if takes_value else ""
    choices = tuple(str(choice) for choice in action.choices) if action.choices is not None else ()
    return Argument(
        flags=tuple(action.option_strings),
        metavar=metavar,
        takes_value=takes_value,
        repeats=action.nargs in ("*", "+", argparse.REMAINDER),
        choices=choices,
        files=not choices and metavar in FILE_METAVARS,
        help=_help(parser, action),
        group=group,
    )


def _usage(parser: argparse.ArgumentParser) -> str:
    usage = re.sub(r"^usage:\s*", "", parser.format_usage().strip())
    return re.sub(r"\s+", " ", usage)


def walk(parser: argparse.ArgumentParser, summary: str = "") -> Command:
    """*parser* and its subcommands as :class:`Command` trees, in the order --help lists them."""
    arguments: list[Argument] = []
    subcommands: list[Command] = []
    for group in parser._action_groups:
        for action in group._group_actions:
            if action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._SubParsersAction):
                summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
                for name, subparser in action.choices.items():
                    if name in summaries:  # not an alias
                        subcommands.append(walk(subparser, summaries[name]))
                continue
            arguments.append(_argument(parser, action, group.title or ""))
    return Command(
        name=parser.prog.rsplit(" ", 1)[-1],
        prog=parser.prog,
        summary=summary,
        description=parser.description or "",
        epilog=parser.epilog or "",
        usage=_usage(parser),
        arguments=tuple(arguments),
        subcommands=tuple(subcommands),
    )
