"""``sky-async completion {bash,zsh,fish}``: a completion script generated from the parser.

The scripts are written from the same ``argparse`` parser that reads the command line (see
``_walk``), so they know every subcommand, option and choice without a second list: subcommand
names, options (with their help in zsh and fish), the choices of ``--hash``/``--algorithm``, and
file names where an argument's metavar names a file. Each is printed on standard output, to be
sourced or saved where the shell looks for completions.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable

from ._walk import Argument, Command, walk

SHELLS = ("bash", "zsh", "fish")


def _function_name(program: str) -> str:
    return "_" + "".join(ch if ch.isalnum() else "_" for ch in program)


def _words(words: Iterable[str]) -> str:
    return shlex.quote(" ".join(words))


def _pattern(flags: Iterable[str]) -> str:
    return "|".join(shlex.quote(flag) for flag in flags)


# bash ---------------------------------------------------------------------------------------------


def _bash_files(indent: str) -> list[str]:
    return [
        f"{indent}compopt -o filenames 2>/dev/null",
        f"{indent}local IFS=$'\\n'",
        f'{indent}COMPREPLY=($(compgen -f -- "$cur"))',
    ]


def _bash_values(argument: Argument, indent: str) -> list[str]:
    """What completes the value of *argument*: its choices, file names, or nothing."""
    if argument.choices:
        return [f'{indent}COMPREPLY=($(compgen -W {_words(argument.choices)} -- "$cur"))']
    if argument.files:
        return _bash_files(indent)
    return []


def _bash_command(command: Command, indent: str) -> list[str]:
    """The body completing the word under the cursor for *command* (its subcommand is known)."""
    lines: list[str] = []
    valued = [option for option in command.options if option.takes_value]
    if valued:
        lines.append(f"{indent}case $prev in")
        for option in valued:
            lines.append(f"{indent}    {_pattern(option.flags)})")
            lines.extend(_bash_values(option, indent + "        "))
            lines.append(f"{indent}        return ;;")
        lines.append(f"{indent}esac")
    flags = [flag for option in command.options for flag in option.flags]
    lines.append(f"{indent}if [[ $cur == -* ]]; then")
    lines.append(f'{indent}    COMPREPLY=($(compgen -W {_words(flags)} -- "$cur"))')
    if command.subcommands:
        names = [sub.name for sub in command.subcommands]
        lines.append(f"{indent}else")
        lines.append(f'{indent}    COMPREPLY=($(compgen -W {_words(names)} -- "$cur"))')
    elif command.positionals and _bash_values(command.positionals[0], ""):
        # One kind of positional per subcommand in this CLI: the first says what they are.
        lines.append(f"{indent}else")
        lines.extend(_bash_values(command.positionals[0], indent + "    "))
    lines.append(f"{indent}fi")
    return lines


def bash(root: Command) -> str:
    function = _function_name(root.name)
    valued = [flag for option in root.options if option.takes_value for flag in option.flags]
    lines = [
        f"# bash completion for {root.name}, generated from its argument parser by",
        f"# `{root.name} completion bash`: source it, or save it as",
        f"# ~/.local/share/bash-completion/completions/{root.name}",
        f"{function}() {{",
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}",
        '    local command="" i',
        "    COMPREPLY=()",
        "    # The subcommand is the first word that is neither an option nor an option's value.",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        "        case ${COMP_WORDS[i]} in",
    ]
    if valued:
        lines.append(f"            {_pattern(valued)}) ((i++)) ;;")
    lines += [
        "            -*) ;;",
        "            *) command=${COMP_WORDS[i]}; break ;;",
        "        esac",
        "    done",
        "    case $command in",
        "        '')",
    ]
    lines.extend(_bash_command(root, " " * 12))
    lines.append("            ;;")
    for sub in root.subcommands:
        lines.append(f"        {shlex.quote(sub.name)})")
        lines.extend(_bash_command(sub, " " * 12))
        lines.append("            ;;")
    lines += [
        "    esac",
        "}",
        f"complete -F {function} {shlex.quote(root.name)}",
    ]
    return "\n".join(lines) + "\n"


# zsh ----------------------------------------------------------------------------------------------


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_help(text: str) -> str:
    """*text* inside an _arguments description's brackets."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_action(argument: Argument) -> str:
    if argument.choices:
        return "(" + " ".join(argument.choices) + ")"
    if argument.files:
        return "_files"
    return " "


def _zsh_specs(command: Command) -> list[str]:
    specs = []
    for option in command.options:
        for flag in option.flags:
            spec = flag
            if option.takes_value:
                spec += "=" if flag.startswith("--") else "+"
            spec += f"[{_zsh_help(option.help)}]"
            if option.takes_value:
                spec += f":{_zsh_help(option.metavar)}:{_zsh_action(option)}"
            specs.append(_zsh_quote(spec))
    for positional in command.positionals:
        prefix = "*" if positional.repeats else ""
        spec = f"{prefix}:{_zsh_help(positional.metavar)}:{_zsh_action(positional)}"
        specs.append(_zsh_quote(spec))
    return specs


def zsh(root: Command) -> str:
    function = _function_name(root.name)
    lines = [
        f"#compdef {root.name}",
        f"# zsh completion for {root.name}, generated from its argument parser by",
        f"# `{root.name} completion zsh`: save it as _{root.name} in a directory of $fpath.",
        f"{function}() {{",
        '    local curcontext="$curcontext" state line ret=1',
        "    typeset -A opt_args",
        "    _arguments -C \\",
    ]
    lines += [f"        {spec} \\" for spec in _zsh_specs(root)]
    lines += [
        "        ': :->command' \\",
        "        '*:: :->argument' && ret=0",
        "    case $state in",
        "        command)",
        "            local -a commands",
        "            commands=(",
    ]
    for sub in root.subcommands:
        entry = sub.name.replace(":", "\\:") + ":" + sub.summary
        lines.append(f"                {_zsh_quote(entry)}")
    lines += [
        "            )",
        f"            _describe -t commands {_zsh_quote(root.name + ' command')} commands && ret=0",
        "            ;;",
        "        argument)",
        '            curcontext="${curcontext%:*:*}:' + root.name + '-$line[1]:"',
        "            case $line[1] in",
    ]
    for sub in root.subcommands:
        lines.append(f"                {shlex.quote(sub.name)})")
        specs = _zsh_specs(sub)
        if specs:
            lines.append("                    _arguments \\")
            lines += [f"                        {spec} \\" for spec in specs[:-1]]
            lines.append(f"                        {specs[-1]} && ret=0")
        lines.append("                    ;;")
    lines += [
        "            esac",
        "            ;;",
        "    esac",
        "    return ret",
        "}",
        f'if [[ $zsh_eval_context[-1] == loadautofunc ]]; then {function} "$@"; '
        f"else compdef {function} {root.name}; fi",
    ]
    return "\n".join(lines) + "\n"


# fish ---------------------------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_lines(program: str, condition: str, command: Command) -> list[str]:
    lines = []
    head = f"complete -c {program} -n {_fish_quote(condition)}"
    for option in command.options:
        words = [head]
        for flag in option.flags:
            if flag.startswith("--"):
                words.append(f"-l {_fish_quote(flag[2:])}")
            elif len(flag) == 2:
                words.append(f"-s {_fish_quote(flag[1:])}")
            else:
                words.append(f"-o {_fish_quote(flag[1:])}")
        if option.takes_value:
            if option.choices:
                words.append(f"-x -a {_fish_quote(' '.join(option.choices))}")
            elif option.files:
                words.append("-r -F")
            else:
                words.append("-x")
        if option.help:
            words.append(f"-d {_fish_quote(option.help)}")
        lines.append(" ".join(words))
    for positional in command.positionals[:1]:
        if positional.choices:
            lines.append(f"{head} -f -a {_fish_quote(' '.join(positional.choices))}")
        elif positional.files:
            lines.append(f"{head} -F")
    return lines


def fish(root: Command) -> str:
    program = _fish_quote(root.name)
    names = " ".join(sub.name for sub in root.subcommands)
    lines = [
        f"# fish completion for {root.name}, generated from its argument parser by",
        f"# `{root.name} completion fish`: save it as",
        f"# ~/.config/fish/completions/{root.name}.fish",
        f"complete -c {program} -f",
    ]
    lines += _fish_lines(program, f"not __fish_seen_subcommand_from {names}", root)
    for sub in root.subcommands:
        lines.append(
            f"complete -c {program} -n {_fish_quote('not __fish_seen_subcommand_from ' + names)} "
            f"-a {_fish_quote(sub.name)} -d {_fish_quote(sub.summary)}"
        )
    for sub in root.subcommands:
        lines += _fish_lines(program, f"__fish_seen_subcommand_from {sub.name}", sub)
    return "\n".join(lines) + "\n"


GENERATORS = {"bash": bash, "zsh": zsh, "fish": fish}


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for *shell* of the program *parser* parses."""
    return GENERATORS[shell](walk(parser))


def _completion_command(args: argparse.Namespace) -> int:
    # args.program: the whole program's parser (the package's _parser sets it; importing the
    # package from here would be an import cycle).
    sys.stdout.write(script(args.program, args.shell))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description=(
            "Print the completion script for SHELL, generated from this program's argument parser:"
            " subcommands, options, choices, and file names where a file is expected."
            " bash: `source <(sky-async completion bash)`, or save it as"
            " ~/.local/share/bash-completion/completions/sky-async."
            " zsh: save it as _sky-async in a directory of $fpath."
            " fish: save it as ~/.config/fish/completions/sky-async.fish."
        ),
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help="one of: " + ", ".join(SHELLS))
    parser.set_defaults(handler=_completion_command)
