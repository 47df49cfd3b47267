"""``.. cli-reference::``: the ``sky-async`` command line, generated from its argument parser.

The same walk of the parser (``sky_async.cli._walk``) that makes the man page and the completion
scripts makes this page, so a new option shows up here without an edit: one section per
subcommand with its usage, description and arguments, grouped as ``--help`` groups them.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from sky_async.cli import _parser
from sky_async.cli._walk import Argument, Command, walk
from sphinx.application import Sphinx

_LITERAL = re.compile(r"`([^`]+)`")


def _prose(text: str) -> nodes.paragraph:
    """*text* as a paragraph, with its `quoted` words as literals (as --help writes them)."""
    paragraph = nodes.paragraph()
    text = re.sub(r"\s+", " ", text).strip()
    position = 0
    for match in _LITERAL.finditer(text):
        paragraph += nodes.Text(text[position : match.start()])
        paragraph += nodes.literal(match.group(1), match.group(1))
        position = match.end()
    paragraph += nodes.Text(text[position:])
    return paragraph


def _term(argument: Argument) -> nodes.term:
    term = nodes.term()
    words = [
        " ".join(filter(None, (flag, argument.metavar if argument.takes_value else "")))
        for flag in argument.flags
    ] or [argument.metavar]
    for index, word in enumerate(words):
        if index:
            term += nodes.Text(", ")
        term += nodes.literal(word, word)
    return term


def _arguments(command: Command) -> list[nodes.Node]:
    result: list[nodes.Node] = []
    for group in dict.fromkeys(argument.group for argument in command.arguments):
        result.append(nodes.rubric(text=group[:1].upper() + group[1:]))
        items = nodes.definition_list()
        for argument in command.arguments:
            if argument.group != group:
                continue
            definition = nodes.definition()
            if argument.help:
                definition += _prose(argument.help)
            if argument.choices:
                choices = ", ".join(f"`{choice}`" for choice in argument.choices)
                definition += _prose(f"One of {choices}.")
            items += nodes.definition_list_item("", _term(argument), definition)
        result.append(items)
    return result


def _section(command: Command, document: Any) -> nodes.section:
    section = nodes.section()
    section += nodes.title(text=command.prog)
    section["names"].append(f"cli {command.prog}")
    document.note_implicit_target(section)
    if command.summary:
        section += _prose(command.summary)
    section += nodes.literal_block(command.usage, command.usage)
    for text in (command.description, command.epilog):
        if text:
            section += _prose(text)
    section.extend(_arguments(command))
    for subcommand in command.subcommands:
        section += _section(subcommand, document)
    return section


class CliReference(Directive):
    has_content = False

    def run(self) -> list[nodes.Node]:
        root = walk(_parser())
        section = _section(root, self.state.document)
        # The program's own section is the page's: its children follow the directive.
        return list(section.children[1:])


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-reference", CliReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
