"""``sky-async completion`` and ``sky-async man``: generated from the parser, and they work.

The bash script is sourced in a real bash and its function called as bash calls it (COMP_WORDS,
COMP_CWORD), fish's through its own ``complete -C``; zsh and fish scripts are parsed by those
shells when installed (scripts/setup installs both); the man page is
formatted by groff with every warning on and must name every subcommand and option, both
listed here by walking the same parser, not by a list of our own.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sky_async
from sky_async import cli
from sky_async.cli import completion, man
from sky_async.cli._walk import walk

PACKAGE_ROOT = str(Path(sky_async.__file__).resolve().parent.parent)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "sky_async", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "sky-async.bash"
    path.write_text(completion.script(cli._parser(), "bash"))
    return path


def complete(script: Path, *words: str, cwd: Path | None = None) -> list[str]:
    """What bash offers for the last of *words* (the word under the cursor, maybe empty)."""
    words_array = " ".join(f"'{word}'" for word in ("sky-async", *words))
    program = (
        f'source "$1"; COMP_WORDS=({words_array}); COMP_CWORD={len(words)}; '
        'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; _sky_async; '
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program, "bash", str(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=30,
        check=True,
    )
    assert result.stderr == ""
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_subcommand_names(bash_script: Path) -> None:
    assert complete(bash_script, "") == list(cli.SUBCOMMANDS)
    assert complete(bash_script, "p") == ["preflight", "probe"]
    assert complete(bash_script, "--v") == ["--version"]


def test_bash_completes_options_of_the_subcommand(bash_script: Path) -> None:
    assert complete(bash_script, "preflight", "--ma") == ["--manifest", "--max-file-size", "--max-problems"]
    assert complete(bash_script, "hash", "--quiet", "--st") == ["--status", "--strict"]
    assert complete(bash_script, "tail", "-f", "--") == [
        "--help",
        "--lines",
        "--bytes",
        "--follow",
        "--sleep-interval",
        "--quiet",
        "--verbose",
    ]


def test_bash_completes_choices(bash_script: Path) -> None:
    assert complete(bash_script, "hash", "-a", "sha2") == ["sha224", "sha256"]
    assert complete(bash_script, "preflight", "--hash", "md") == ["md5"]
    assert complete(bash_script, "preflight", "--ignore", "") == ["skypilot", "git", "skyignore", "rsync"]
    assert complete(bash_script, "preflight", "--ignore", "sky") == ["skypilot", "skyignore"]
    assert complete(bash_script, "completion", "") == list(completion.SHELLS)


def test_bash_completes_files_where_a_file_is_expected(bash_script: Path, tmp_path: Path) -> None:
    (tmp_path / "mounts.yaml").write_text("")
    (tmp_path / "my manifest.sha256").write_text("")
    (tmp_path / "data").mkdir()
    assert complete(bash_script, "preflight", "--mounts", "mo", cwd=tmp_path) == ["mounts.yaml"]
    assert complete(bash_script, "preflight", "--json", "d", cwd=tmp_path) == ["data"]
    assert complete(bash_script, "hash", "-c", "my", cwd=tmp_path) == ["my manifest.sha256"]
    # A value that is not a file name gets no file names, nor does a process id.
    assert complete(bash_script, "preflight", "--largest", "", cwd=tmp_path) == []
    assert complete(bash_script, "probe", "", cwd=tmp_path) == []


def test_completion_subcommand_prints_each_script() -> None:
    for shell in completion.SHELLS:
        result = run_cli("completion", shell)
        assert result.returncode == 0, result.stderr
        assert result.stdout == completion.script(cli._parser(), shell)
    assert run_cli("completion", "tcsh").returncode == 2


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_parse_their_script(shell: str, tmp_path: Path) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed here (apt-cache policy {shell}: not installed)")
    path = tmp_path / f"sky-async.{shell}"
    path.write_text(completion.script(cli._parser(), shell))
    result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def fish_complete(line: str, tmp_path: Path) -> list[str]:
    """The candidates fish offers for *line* (``complete -C``), without their descriptions."""
    path = tmp_path / "sky-async.fish"
    path.write_text(completion.script(cli._parser(), "fish"))
    result = subprocess.run(
        ["fish", "--no-config", "-c", f"source {path}; complete -C {line!r}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stderr == ""
    return [entry.split("\t")[0] for entry in result.stdout.splitlines() if entry]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed here")
def test_fish_completes_subcommands_options_and_choices(tmp_path: Path) -> None:
    assert fish_complete("sky-async pre", tmp_path) == ["preflight"]
    assert fish_complete("sky-async preflight --ma", tmp_path) == [
        "--manifest",
        "--max-file-size",
        "--max-problems",
    ]
    assert fish_complete("sky-async hash -a sha2", tmp_path) == ["sha224", "sha256"]
    assert fish_complete("sky-async preflight --ignore sky", tmp_path) == ["skyignore", "skypilot"]  # sorted


def test_zsh_and_fish_scripts_name_every_option_and_subcommand() -> None:
    parser = cli._parser()
    zsh = completion.script(parser, "zsh")
    fish = completion.script(parser, "fish")
    for name, subparser in subparsers(parser).items():
        assert f"'{name}:" in zsh and f"__fish_seen_subcommand_from {name}'" in fish
        for action in subparser._actions:
            for flag in action.option_strings:
                assert f"'{flag}" in zsh
                letter = f"-s '{flag[1:]}'" if len(flag) == 2 else f"-l '{flag[2:]}'"
                assert letter in fish


def test_man_page_names_every_subcommand_and_option() -> None:
    result = run_cli("man")
    assert result.returncode == 0, result.stderr
    roff = result.stdout
    assert roff == man.page(walk(cli._parser()))
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", '"EXIT STATUS"'):
        assert f"\n.SH {section}\n" in roff
    parser = cli._parser()
    for name, subparser in subparsers(parser).items():
        assert f'\n.SH "SKY\\-ASYNC {name.upper()}"\n' in roff
        for action in subparser._actions:
            for flag in action.option_strings:
                roff_flag = flag.replace("-", "\\-")
                assert f"\\fB{roff_flag}\\fR" in roff, (name, flag)
    # An option's choices are shown as --help shows them.
    assert "\n\\fB\\-\\-ignore\\fR \\fI{skypilot,git,skyignore,rsync}\\fR\n" in roff
    # Exit statuses the descriptions document are in their own section.
    exit_status = roff.split('.SH "EXIT STATUS"', 1)[1]
    assert "0 no problems, 1 problems found" in exit_status and "130 when interrupted" in exit_status


def test_man_page_formats_without_warnings(tmp_path: Path) -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed here")
    page = tmp_path / "sky-async.1"
    page.write_text(man.page(walk(cli._parser())))
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", str(page)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    text = re.sub(".\b", "", result.stdout)  # without the overstrikes that make bold
    for name in subparsers(cli._parser()):
        assert f"SKY-ASYNC {name.upper()}" in text
    if shutil.which("man") is not None:
        result = subprocess.run(
            ["man", "--warnings=w", "-l", str(page)],
            capture_output=True,
            text=True,
            env=dict(os.environ, MANPAGER="cat", PAGER="cat"),
            check=False,
        )
        assert result.returncode == 0 and result.stderr == "", result.stderr
