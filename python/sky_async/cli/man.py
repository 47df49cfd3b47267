"""``sky-async man``: the manual page, in roff, generated from the parser.

NAME and DESCRIPTION come from the program's description, SYNOPSIS from each parser's usage, one
section per subcommand from its description and arguments (grouped as ``--help`` groups them), and
EXIT STATUS from the sentences of the descriptions and epilog that begin ``Exit status:``. Read it
with ``sky-async man | man -l -``, or install it as ``man1/sky-async.1``.
"""

from __future__ import annotations

import argparse
import re
import sys

from .. import __version__
from ._walk import Argument, Command, walk

_EXIT_STATUS = re.compile(r"\bExit status:\s*(.*)$", re.DOTALL)


def _text(text: str) -> str:
    """*text* as roff prose: backslashes escaped, no line taken for a request."""
    text = re.sub(r"\s+", " ", text.replace("\\", "\\e")).strip()
    return "\\&" + text if text[:1] in (".", "'") else text


def _literal(text: str) -> str:
    """A command-line word in roff: also its hyphens are minus signs, as a terminal types them."""
    return _text(text).replace("-", "\\-")


def _quoted(text: str) -> str:
    """An argument of a request (.SH, .TH): in double quotes, which roff writes as \\(dq inside."""
    return '"' + _literal(text).replace('"', "\\(dq") + '"'


def _tag(argument: Argument) -> str:
    if not argument.flags:
        return f"\\fI{_literal(argument.metavar)}\\fR"
    names = ", ".join(f"\\fB{_literal(flag)}\\fR" for flag in argument.flags)
    return f"{names} \\fI{_literal(argument.metavar)}\\fR" if argument.takes_value else names


def _without_exit_status(text: str) -> str:
    return _EXIT_STATUS.sub("", text).strip()


def _exit_status(text: str) -> str:
    match = _EXIT_STATUS.search(text)
    return match.group(1).strip() if match else ""


def _arguments(command: Command) -> list[str]:
    lines: list[str] = []
    groups = list(dict.fromkeys(argument.group for argument in command.arguments))
    for group in groups:
        lines.append(f".SS {_quoted(group[:1].upper() + group[1:])}")
        for argument in command.arguments:
            if argument.group == group:
                lines += [".TP", _tag(argument)]
                if argument.help:
                    lines.append(_text(argument.help))
    return lines


def _synopsis(command: Command) -> list[str]:
    rest = command.usage[len(command.prog) :] if command.usage.startswith(command.prog) else command.usage
    return [f".B {_literal(command.prog)}", _literal(rest.strip())]


def page(root: Command, version: str = __version__) -> str:
    summary = root.description.rstrip(".")
    lines = [
        f'.\\" The manual page of {root.name}, generated from its argument parser by `{root.name} man`.',
        f'.TH {_quoted(root.name.upper())} 1 "" {_quoted(f"{root.name} {version}")} "User Commands"',
        ".nh",  # option names are not to be hyphenated
        ".ad l",
        ".SH NAME",
        f"{_literal(root.name)} \\- {_text(summary[:1].lower() + summary[1:])}",
        ".SH SYNOPSIS",
    ]
    lines += _synopsis(root)
    for sub in root.subcommands:
        lines += [".br", *_synopsis(sub)]
    lines += [".SH DESCRIPTION", _text(_without_exit_status(root.description))]
    if _without_exit_status(root.epilog):
        lines += [".PP", _text(_without_exit_status(root.epilog))]
    lines += [".PP", "Commands:"]
    for sub in root.subcommands:
        lines += [".TP", f"\\fB{_literal(sub.name)}\\fR", _text(sub.summary)]
    lines += _arguments(root)
    for sub in root.subcommands:
        lines += [f".SH {_quoted(sub.prog.upper())}", _text(_without_exit_status(sub.description))]
        lines += _arguments(sub)
    statuses = [
        (sub.name, _exit_status(sub.description) or _exit_status(sub.epilog)) for sub in root.subcommands
    ]
    general = _exit_status(root.epilog) or _exit_status(root.description)
    if general or any(status for _, status in statuses):
        lines.append('.SH "EXIT STATUS"')
        if general:
            lines.append(_text(general))
        for name, status in statuses:
            if status:
                lines += [".TP", f"\\fB{_literal(name)}\\fR", _text(status)]
    return "\n".join(lines) + "\n"


def _man_command(args: argparse.Namespace) -> int:
    # args.program: the whole program's parser (the package's _parser sets it; importing the
    # package from here would be an import cycle).
    sys.stdout.write(page(walk(args.program)))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "man",
        help="print the manual page (roff)",
        description=(
            "Print this program's manual page in roff, generated from its argument parser."
            " Read it with `sky-async man | man -l -`, or save it as man1/sky-async.1 in a directory"
            " of MANPATH (~/.local/share/man/man1/sky-async.1)."
        ),
    )
    parser.set_defaults(handler=_man_command)
