"""rsync's ``--filter='dir-merge,- .skyignore'`` (sky_async._upload.rsync_filter) against the real rsync.

The specification is what rsync itself transfers: ``rsync -rlD -n -8 --out-format=%n
--filter='dir-merge,- .skyignore' ROOT/ DEST/`` prints every path of its file list, the root
as ``./`` and directories with a trailing ``/`` (``-l`` and ``-D`` so that symbolic links
and FIFOs are printed instead of skipped as non-regular files; ``-8`` so that bytes above
127 are printed as they are). Random trees with ``.skyignore`` files at several depths and
lines from a vocabulary of rsync's syntax come from hypothesis; each rule also has a
hand-written case, compared with rsync too.

Without rsync the module is skipped; scripts/setup installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sky_async._upload import rsync_filter as _rsync_filter
from sky_async._upload.rsync_filter import RsyncFilter, Rule, excluded_paths, parse, transferred_paths, walk

RSYNC = shutil.which("rsync")
pytestmark = pytest.mark.skipif(RSYNC is None, reason="rsync is not installed (scripts/setup installs it)")


# --- helpers -------------------------------------------------------------------------------


def rsync(root: Path) -> set[str]:
    """The paths the real rsync transfers from *root* ('.' for the root)."""
    assert RSYNC is not None
    result = subprocess.run(
        [
            RSYNC,
            "-rlD",
            "-n",
            "-8",
            "--out-format=%n",
            f"--filter={_rsync_filter.RSYNC_FILTER}",
            f"{root}/",
            "/nonexistent-dest/",
        ],
        capture_output=True,
        check=True,
    )
    lines = os.fsdecode(result.stdout).splitlines()
    return {"." if line == "./" else line.rstrip("/") for line in lines}


def every_path(root: Path) -> Iterator[str]:
    """Every path below *root*, symbolic links not followed (os.walk recurses once a level
    in Python 3.11, which a deep tree exceeds)."""
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(root / rel if rel else root) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                yield path
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)


def same(root: Path) -> dict[str, tuple[str, int]]:
    """Check that ours transfers exactly what rsync does, that is_excluded agrees for every
    path in the tree, and return the excluded paths with (source, line) of their rule."""
    expected = rsync(root)
    assert set(transferred_paths(root)) == expected
    ignore = RsyncFilter(root)
    for path in every_path(root):
        assert ignore.is_excluded(path) == (path not in expected), path
    assert not ignore.is_excluded(".")
    return {path: (rule.source, rule.line) for path, rule in ignore.matches().items()}


def write(root: Path, files: dict[str, str | bytes], dirs: tuple[str, ...] = ()) -> None:
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        (root / name).write_bytes(data)


# --- the pinned specification --------------------------------------------------------------


def test_the_filter_is_skypilots() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = pytest.importorskip("sky.utils.command_runner")
    assert f"--filter='{_rsync_filter.RSYNC_FILTER}'" == runner.RSYNC_FILTER_SKYIGNORE


# --- hand-written: one per rule --------------------------------------------------------------


def test_a_name_pattern_matches_at_any_depth_and_star_stays_in_one_name(tmp_path: Path) -> None:
    write(tmp_path, {".skyignore": "*.log\n", "a.log": "", "x/b.log": "", "x/y/c.log": "", "x/d.txt": ""})
    assert set(same(tmp_path)) == {"a.log", "x/b.log", "x/y/c.log"}
    write(tmp_path, {".skyignore": "x/*.log\n"})
    assert set(same(tmp_path)) == {"x/b.log"}  # '*' does not cross '/'


def test_each_skyignore_applies_to_its_own_directory_and_below(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".skyignore": "top\n",
            "sub/.skyignore": "low\n",
            "low": "",
            "top": "",
            "sub/low": "",
            "sub/d/low": "",
            "sub/top": "",
        },
    )
    assert same(tmp_path) == {
        "top": (".skyignore", 1),
        "sub/low": ("sub/.skyignore", 1),
        "sub/d/low": ("sub/.skyignore", 1),
        "sub/top": (".skyignore", 1),
    }


def test_the_deepest_file_decides_first_then_the_first_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        {".skyignore": "*.o\n", "sub/.skyignore": "x*\n*.o\n", "sub/x.o": "", "sub/y.o": "", "z.o": ""},
    )
    assert same(tmp_path) == {
        "sub/x.o": ("sub/.skyignore", 1),
        "sub/y.o": ("sub/.skyignore", 2),
        "z.o": (".skyignore", 1),
    }
    match = RsyncFilter(tmp_path).match("sub/x.o")
    assert match == Rule("sub/.skyignore", 1, "x*")


def test_a_leading_slash_anchors_at_the_skyignores_directory(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".skyignore": "/a\n",
            "sub/.skyignore": "/b\n",
            "a": "",
            "b": "",
            "sub/a": "",
            "sub/b": "",
            "sub/d/b": "",
        },
    )
    assert set(same(tmp_path)) == {"a", "sub/b"}


def test_a_slash_inside_matches_the_last_components_of_the_path_from_the_transfer_root(
    tmp_path: Path,
) -> None:
    # Not from the .skyignore's directory (git's reading): "sub/x" in sub/.skyignore matches sub/x.
    write(
        tmp_path,
        {".skyignore": "d/x\n", "sub/.skyignore": "sub/x\n", "sub/x": "", "d/x": "", "e/d/x": "", "x": ""},
    )
    assert set(same(tmp_path)) == {"sub/x", "d/x", "e/d/x"}


def test_a_trailing_slash_matches_directories_only_not_links_to_them(tmp_path: Path) -> None:
    write(tmp_path, {".skyignore": "build/\n", "build/x": "", "sub/build": "", "real/y": ""})
    os.symlink("real", tmp_path / "link")
    write(tmp_path, {".skyignore": "build/\nlink/\n"})
    assert set(same(tmp_path)) == {"build"}
    write(tmp_path, {".skyignore": "link\n"})
    assert set(same(tmp_path)) == {"link"}


def test_double_star_crosses_slashes_anywhere_and_triple_star_takes_the_directory(tmp_path: Path) -> None:
    write(tmp_path, {"a/b/c.py": "", "a/c.py": "", "c.py": "", "ab/c.py": "", "d/e": ""})
    write(tmp_path, {".skyignore": "a/**/c.py\n"})
    assert set(same(tmp_path)) == {"a/b/c.py"}
    write(tmp_path, {".skyignore": "**/c.py\n"})
    assert set(same(tmp_path)) == {"a/b/c.py", "a/c.py", "c.py", "ab/c.py"}
    write(tmp_path, {".skyignore": "a**\n"})  # '**' inside a name: any path starting with 'a'
    assert set(same(tmp_path)) == {"a", "ab"}
    write(tmp_path, {".skyignore": "d/***\n"})
    assert set(same(tmp_path)) == {"d"}


def test_question_mark_and_bracket_classes(tmp_path: Path) -> None:
    write(tmp_path, {"a1": "", "b2": "", "c3": "", "[x]": "", "dd": ""})
    write(tmp_path, {".skyignore": "a?\n[!ab]3\n[[:alpha:]][[:alpha:]]\n"})
    assert set(same(tmp_path)) == {"a1", "c3", "dd"}
    write(tmp_path, {".skyignore": "[x\n[[:nope:]]*\n"})  # malformed: they match nothing
    assert set(same(tmp_path)) == set()


def test_a_backslash_is_literal_without_wildcards_and_escapes_with_them(tmp_path: Path) -> None:
    write(tmp_path, {"a\\b": "", "ab": "", "x*": "", "xy": ""})
    write(tmp_path, {".skyignore": "a\\b\nx\\*\n"})
    assert set(same(tmp_path)) == {"a\\b", "x*"}


def test_bang_is_a_pattern_not_the_list_clearing_rule(tmp_path: Path) -> None:
    # The root's *.log still applies in sub: nothing was cleared.
    write(
        tmp_path,
        {
            ".skyignore": "*.log\n",
            "sub/.skyignore": "!\n!keep.log\n",
            "sub/a.log": "",
            "sub/!": "",
            "sub/!keep.log": "",
        },
    )
    assert same(tmp_path) == {
        "sub/a.log": (".skyignore", 1),
        "sub/!": ("sub/.skyignore", 1),
        "sub/!keep.log": ("sub/.skyignore", 2),
    }


def test_comments_blank_lines_spaces_and_line_ends(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".skyignore": b"#a\r;b\r\n\n c\nd \ne\rf\0g\n",
            "#a": "",
            ";b": "",
            " c": "",
            "c": "",
            "d ": "",
            "d": "",
            "e": "",
            "f": "",
        },
    )
    assert set(same(tmp_path)) == {" c", "d ", "e", "f"}
    assert parse(b"#a\r;b\r\n\n c\nd \ne\rf\0g\n") == [(4, b" c"), (5, b"d "), (6, b"e"), (7, b"f")]


def test_an_excluded_directory_is_not_entered(tmp_path: Path) -> None:
    write(tmp_path, {".skyignore": "d\n", "d/.skyignore": "*\n", "d/x/y": "", "e/x": ""})
    assert same(tmp_path) == {"d": (".skyignore", 1)}
    assert RsyncFilter(tmp_path).match("d/x/y") == Rule(".skyignore", 1, "d")
    assert {entry.path for entry in walk(tmp_path)} == {".skyignore", "d", "e", "e/x"}


def test_the_skyignore_files_are_transferred_unless_a_rule_matches_them(tmp_path: Path) -> None:
    write(tmp_path, {".skyignore": "x\n", "a/.skyignore": "y\n", "b/.skyignore": ".skyignore\n"})
    assert set(same(tmp_path)) == {"b/.skyignore"}
    assert {".skyignore", "a/.skyignore"} <= set(transferred_paths(tmp_path))


def test_wildcards_in_the_roots_own_path_act_in_anchored_rules(tmp_path: Path) -> None:
    # rsync puts the directory's absolute path before an anchored pattern: '[1]' is a class.
    root = tmp_path / "r[1]"
    write(root, {".skyignore": "/y\nz\n", "y": "", "z": ""})
    assert set(same(root)) == {"z"}
    root = tmp_path / "r*"
    write(root, {".skyignore": "/y\n", "y": ""})
    assert set(same(root)) == {"y"}


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    if sys.platform == "darwin":
        pytest.skip("the file system wants UTF-8 names")
    root = os.fsencode(tmp_path)
    for name in (b"\xff.log", b"\xfe", b"ok"):
        with open(os.path.join(root, name), "wb"):
            pass
    write(tmp_path, {".skyignore": b"*.log\n\xfe\n"})
    assert set(same(tmp_path)) == {os.fsdecode(b"\xff.log"), os.fsdecode(b"\xfe")}
    assert excluded_paths(tmp_path) == sorted([os.fsdecode(b"\xfe"), os.fsdecode(b"\xff.log")])


def test_a_tree_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    """1,020 levels, more than the recursion limit: an excluded file and an excluded
    directory near the bottom. (rsync 3.5.0 itself cannot open a directory 1,024 levels
    down, "Cannot allocate memory": deeper trees are not compared.)"""
    from test_gitignore import chain_parent, make_chain

    depth = 1_020
    assert sys.getrecursionlimit() < depth
    with chain_parent(tmp_path) as parent:
        root = parent / "repo"
        root.mkdir()
        (root / ".skyignore").write_text("*.log\ncut/\n")
        make_chain(root, depth, {1010: "deep.log", 1015: "cut/x", depth: "bottom"})
        assert same(root) == {
            "d/" * 1010 + "deep.log": (".skyignore", 1),
            "d/" * 1015 + "cut": (".skyignore", 2),
        }
        assert ("d/" * depth + "bottom") in transferred_paths(root)


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        RsyncFilter(tmp_path / "missing")
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        RsyncFilter(tmp_path / "f")
    with pytest.raises(TypeError):
        RsyncFilter(b"/tmp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="relative"):
        RsyncFilter(tmp_path).match("/etc")
    with pytest.raises(TypeError):
        parse("text")  # type: ignore[arg-type]


# --- random trees against rsync ------------------------------------------------------------

NAMES = ["a", "b", "ab", "x.py", "y.log", ".h", "!a", "#c", ";s", "a b", "[a]", "c?", "é.py", "sub"]
ATOMS = [
    *NAMES,
    "*",
    "**",
    "***",
    "?",
    "a*",
    "*.py",
    "*.log",
    "[ab]",
    "[!a]*",
    "[[:alpha:]]*",
    "?b",
    "a**",
    "[a",
]
SPECIAL = ["!", "!a", "#x", ";a", "", " a", "a ", "a\\*", "**/", "/", "//", "/*", "*/", ".skyignore"]


@st.composite
def patterns(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(SPECIAL))
    parts = draw(st.lists(st.sampled_from(ATOMS), min_size=1, max_size=3))
    line = "/".join(parts)
    if draw(st.booleans()):
        line = "/" + line
    if draw(st.integers(0, 3)) == 0:
        line += "/"
    return line


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[str], list[str], dict[str, list[str]]]:
    paths = draw(
        st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map("/".join), max_size=14)
    )
    dirs: set[str] = set()
    files: set[str] = set()
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            dirs.add("/".join(parts[:depth]))
        files.add(path)
    files -= dirs
    places = ["", *sorted(dirs)]
    chosen = draw(st.lists(st.sampled_from(places), max_size=4, unique=True))
    ignores = {place: draw(st.lists(patterns(), min_size=1, max_size=5)) for place in {"", *chosen}}
    return sorted(files), sorted(dirs), ignores


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees())
def test_random_trees_transfer_what_rsync_transfers(
    tmp_path_factory: pytest.TempPathFactory, tree: tuple[list[str], list[str], dict[str, list[str]]]
) -> None:
    files, dirs, ignores = tree
    root = tmp_path_factory.mktemp("tree")
    write(root, dict.fromkeys(files, ""), tuple(dirs))
    for place, lines in ignores.items():
        target = root / place / ".skyignore"
        if target.is_dir():
            continue
        target.write_bytes(("\n".join(lines) + "\n").encode())
    same(root)
