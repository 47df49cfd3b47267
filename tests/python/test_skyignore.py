""".skyignore against the real SkyPilot 0.14.1: the excluded set and what its zip leaves out.

SkyPilot's ``sky.data.storage_utils.get_excluded_files_from_skyignore`` is the
specification. SkyPilot 0.14.1 has no ``is_path_excluded``; what decides whether a path
is uploaded is ``zip_files_and_folders``, which drops the listed files and does not
enter the listed directories, so ``SkyIgnore.is_excluded`` is compared with the names in
the archive SkyPilot's zip writes. Random trees and random ``.skyignore`` files come
from hypothesis; each quirk also has a hand-written case named for what it shows.

Without SkyPilot installed the module is skipped, except under scripts/test, which sets
SKY_ASYNC_REQUIRE_SKYPILOT=1 so that CI cannot pass without comparing.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SKYPILOT_VERSION, import_skypilot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sky_async import compat
from sky_async._upload import skyignore as _skyignore
from sky_async._upload.skyignore import Rule, SkyIgnore, excluded_paths, parse

sky, sky_storage, sky_constants = import_skypilot("data.storage_utils", "skylet.constants")


def test_the_specification_is_the_pinned_release() -> None:
    assert sky.__version__ == SKYPILOT_VERSION
    assert sky_constants.SKY_IGNORE_FILE == _skyignore.SKY_IGNORE_FILE


def test_the_module_is_a_leaf_importing_only_the_shared_checks_and_listing() -> None:
    from test_import_graph import LEAVES, import_graph

    assert import_graph()["sky_async._upload.skyignore"] == {"sky_async._checks", "sky_async._dirs"}
    # Leaves may import leaves (as _batch does).
    assert {"sky_async._checks", "sky_async._dirs"} <= LEAVES


# --- helpers -------------------------------------------------------------------------------


def build(root: Path, files: list[str], dirs: list[str] = (), links: dict[str, str] | None = None) -> None:  # type: ignore[assignment]
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")
    for link, target in (links or {}).items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / link)


def skypilot(root: Path) -> set[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return set(sky_storage.get_excluded_files_from_skyignore(str(root)))


def ours(root: Path) -> set[str]:
    return set(SkyIgnore(root).matches())


def same(root: Path, skyignore: str) -> set[str]:
    """Write *skyignore*, check all three forms agree with SkyPilot, return the set."""
    (root / ".skyignore").write_text(skyignore, encoding="utf-8")
    expected = skypilot(root)
    assert ours(root) == expected
    assert set(excluded_paths(root)) == expected
    assert excluded_paths(root) == sorted(expected)
    got = compat.get_excluded_files_from_skyignore(str(root))
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    return expected


def zipped(root: Path) -> set[str]:
    """The paths (relative to root) SkyPilot's zip_files_and_folders archives."""
    with tempfile.TemporaryDirectory() as out:
        archive = os.path.join(out, "a.zip")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sky_storage.zip_files_and_folders([str(root)], archive, relative_to_items=True)
        with zipfile.ZipFile(archive) as z:
            names = {name.rstrip("/") for name in z.namelist()}
    prefix = root.name
    return {"." if n == prefix else n[len(prefix) + 1 :] for n in names}


def walked(root: Path) -> Iterator[str]:
    """Every path os.walk (no symlinks followed) meets under root, and the root as '.'."""
    yield "."
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        for name in dirs + files:
            yield name if rel == "." else f"{rel}/{name}"


def kept(root: Path) -> set[str]:
    ignore = SkyIgnore(root)
    return {path for path in walked(root) if not ignore.is_excluded(path)}


# --- hand-written quirks ---------------------------------------------------------------------


def test_a_pattern_without_a_slash_matches_at_any_depth_and_star_stays_in_one_name(tmp_path: Path) -> None:
    build(tmp_path, ["a.py", "x/b.py", "x/y/c.py", "x/d.txt"])
    assert same(tmp_path, "*.py\n") == {"a.py", "x/b.py", "x/y/c.py"}
    assert same(tmp_path, "x/*.py\n") == {"x/b.py"}  # '*' does not cross '/'
    assert same(tmp_path, "x/**/*.py\n") == {"x/b.py", "x/y/c.py"}


def test_a_leading_slash_anchors_the_pattern_at_the_root(tmp_path: Path) -> None:
    build(tmp_path, ["a.py", "x/a.py", "x/x/a.py"])
    assert same(tmp_path, "/a.py\n") == {"a.py"}
    assert same(tmp_path, "/x/a.py\n") == {"x/a.py"}
    assert same(tmp_path, "x/a.py\n") == {"x/a.py", "x/x/a.py"}
    assert same(tmp_path, "/*\n") == {"a.py", "x"}


def test_a_trailing_slash_matches_directories_only(tmp_path: Path) -> None:
    build(tmp_path, ["build", "sub/build/out.o"], links={"linked": "sub/build"})
    assert same(tmp_path, "build/\n") == {"sub/build"}
    assert same(tmp_path, "build\n") == {"build", "sub/build"}
    assert same(tmp_path, "linked/\n") == {"linked"}  # a symlink to a directory is one


def test_a_bang_line_is_not_a_negation_but_a_name_starting_with_bang(tmp_path: Path) -> None:
    build(tmp_path, ["a.log", "keep.log", "!keep.log", "d/!keep.log"])
    assert same(tmp_path, "*.log\n!keep.log\n") == {"a.log", "keep.log", "!keep.log", "d/!keep.log"}
    assert same(tmp_path, "!*.log\n") == {"!keep.log", "d/!keep.log"}


def test_comments_blank_lines_and_surrounding_whitespace_are_dropped(tmp_path: Path) -> None:
    build(tmp_path, ["a", "b", "#c", " d "])
    assert same(tmp_path, "# a\n\n   \n\t b \t\r\n  # c\n#c\n") == {"b"}
    assert same(tmp_path, " d \n") == set()  # stripped to 'd', which does not exist
    assert parse("a\r\nb\rc\n\n#x\n") == [Rule(1, "a"), Rule(2, "b"), Rule(3, "c")]


def test_star_and_starstar_skip_hidden_names_unless_the_pattern_starts_with_a_dot(tmp_path: Path) -> None:
    build(tmp_path, [".env", "x/.env", ".git/config", ".git/sub/a.py", "a.py"])
    assert same(tmp_path, "*\n") == {"a.py", "x"}
    assert same(tmp_path, "*.py\n") == {"a.py"}  # not inside .git: '**' does not enter it
    assert same(tmp_path, ".*\n") == {".env", ".git", ".skyignore", "x/.env"}  # itself too
    assert same(tmp_path, ".git/**\n") == {".git", ".git/config", ".git/sub", ".git/sub/a.py"}
    assert same(tmp_path, "[.]env\n") == set()  # a wildcard not starting with '.' hides .env


def test_starstar_after_a_name_also_matches_a_file_of_that_name(tmp_path: Path) -> None:
    build(tmp_path, ["foo", "d/foo/x"])
    assert same(tmp_path, "foo/**\n") == {"foo", "d/foo", "d/foo/x"}
    assert same(tmp_path, "fo[o]/**\n") == {"d/foo", "d/foo/x"}  # a wildcard needs a directory


def test_an_anchored_name_before_starstar_is_listed_even_if_it_does_not_exist(tmp_path: Path) -> None:
    build(tmp_path, ["x"])
    assert same(tmp_path, "/a/**\n") == {"a"}
    assert same(tmp_path, "/a/b/**/**\n") == {"a/b"}
    assert same(tmp_path, "a/**\n") == set()  # not anchored: '**/a' must find an a
    assert same(tmp_path, "/a/**/\n") == set()  # the trailing '/' checks it is a directory


def test_a_nul_in_an_anchored_name_before_a_wildcard_raises_valueerror_as_in_skypilot(tmp_path: Path) -> None:
    (tmp_path / ".skyignore").write_text("/a\0b/*\n")
    with pytest.raises(ValueError, match="embedded null byte"):
        skypilot(tmp_path)
    with pytest.raises(ValueError, match="embedded null byte"):
        SkyIgnore(tmp_path)
    assert same(tmp_path, "a\0b\n/a\0b\n") == set()  # elsewhere a NUL just matches nothing


def test_a_dot_line_lists_every_directory_and_the_root(tmp_path: Path) -> None:
    build(tmp_path, ["f", "a/b/f", ".h/f"])
    assert same(tmp_path, ".\n") == {".", "a", "a/b"}
    assert same(tmp_path, "/\n") == {"."}
    assert same(tmp_path, "**\n") == {".", "f", "a", "a/b", "a/b/f"}


def test_dotdot_can_name_paths_outside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build(tmp_path, ["root/a/x", "sibling"])
    assert same(root, "/../sibling\n") == {"../sibling"}
    assert same(root, "a/..\n") == {"."}


def test_only_the_roots_skyignore_counts(tmp_path: Path) -> None:
    build(tmp_path, ["a.py", "sub/b.py", "sub/c.txt"])
    (tmp_path / "sub" / ".skyignore").write_text("*.txt\n")
    assert same(tmp_path, "*.py\n") == {"a.py", "sub/b.py"}


def test_wildcard_characters_in_names_and_brackets_follow_fnmatch(tmp_path: Path) -> None:
    build(tmp_path, ["a[1].txt", "a1.txt", "*.md", "x.md", "q?", "é ü.txt", "[a"])
    assert same(tmp_path, "a[1].txt\n") == {"a1.txt"}
    assert same(tmp_path, "a[[]1].txt\n") == {"a[1].txt"}
    assert same(tmp_path, "[*].md\n") == {"*.md"}
    assert same(tmp_path, "*.md\n") == {"*.md", "x.md"}
    assert same(tmp_path, "é*\n") == {"é ü.txt"}
    assert same(tmp_path, "[a\n") == {"[a"}  # an unclosed '[' is literal
    assert same(tmp_path, "[!a]?\n") == {"q?", "[a"}  # two names, the first not 'a'


def test_symlinked_directories_are_followed_as_glob_follows_them(tmp_path: Path) -> None:
    build(tmp_path, ["real/a.py"], links={"link": "real", "broken": "nowhere"})
    assert same(tmp_path, "*.py\n") == {"real/a.py", "link/a.py"}
    assert same(tmp_path, "broken\n") == {"broken"}
    assert same(tmp_path, "brok*/\n") == set()


def test_a_symlink_loop_is_followed_until_the_kernel_refuses_as_glob_does(tmp_path: Path) -> None:
    build(tmp_path, ["a.py"], links={"loop": "."})
    listed = same(tmp_path, "*.py\n")
    assert "a.py" in listed and "loop/loop/a.py" in listed and len(listed) > 10


def test_match_names_the_first_line_that_lists_a_path(tmp_path: Path) -> None:
    build(tmp_path, ["a.py", "b/c.py"])
    (tmp_path / ".skyignore").write_text("# header\n*.txt\nb/\n*.py\n/a.py\n")
    ignore = SkyIgnore(tmp_path)
    assert ignore.match("a.py") == Rule(4, "*.py")
    assert ignore.match("b/c.py") == Rule(4, "*.py")
    assert ignore.match("b") == Rule(3, "b/")
    assert ignore.match("./b/") == Rule(3, "b/")
    assert ignore.match("missing.py") is None
    assert Rule(4, "*.py").glob == "**/*.py" and Rule(5, "/a.py").glob == "./a.py"


def test_is_excluded_follows_the_zip_a_listed_directory_hides_its_contents(tmp_path: Path) -> None:
    build(tmp_path, ["b/c.txt", "b/d/e.txt", "f.txt", "g.py"])
    (tmp_path / ".skyignore").write_text("b/\n*.py\n.\n")
    ignore = SkyIgnore(tmp_path)
    assert ignore.match("b/d/e.txt") is None
    assert ignore.is_excluded("b/d/e.txt") and ignore.is_excluded("g.py")
    assert not ignore.is_excluded("f.txt") and not ignore.is_excluded(".")
    assert kept(tmp_path) == zipped(tmp_path)


def test_no_skyignore_or_an_unreadable_one_excludes_nothing(tmp_path: Path) -> None:
    build(tmp_path, ["a"])
    assert SkyIgnore(tmp_path).rules == () and excluded_paths(tmp_path) == []
    assert skypilot(tmp_path) == set()
    assert compat.get_excluded_files_from_skyignore(str(tmp_path)) == []
    (tmp_path / ".skyignore").mkdir()
    assert excluded_paths(tmp_path) == [] and skypilot(tmp_path) == set()
    assert compat.get_excluded_files_from_skyignore(str(tmp_path / "missing")) == []


def test_a_skyignore_that_is_not_utf8_raises_as_in_skypilot(tmp_path: Path) -> None:
    (tmp_path / ".skyignore").write_bytes(b"a\n\xff\n")
    with pytest.raises(UnicodeDecodeError):
        skypilot(tmp_path)
    with pytest.raises(UnicodeDecodeError):
        SkyIgnore(tmp_path)
    with pytest.raises(UnicodeDecodeError):
        compat.get_excluded_files_from_skyignore(str(tmp_path))


def test_bad_arguments_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"root must be a str or an os\.PathLike of str, not int"):
        SkyIgnore(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not bytes"):
        SkyIgnore(b"/tmp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="embedded null byte"):
        SkyIgnore("a\0b")
    with pytest.raises(FileNotFoundError, match="No such file or directory"):
        SkyIgnore(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        excluded_paths(tmp_path / "file")
    ignore = SkyIgnore(tmp_path)
    with pytest.raises(TypeError, match="path must be"):
        ignore.match(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="relative to the root"):
        ignore.is_excluded("/etc")
    with pytest.raises(TypeError, match="text must be a str"):
        parse(b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # as SkyPilot's os.path.expanduser
        compat.get_excluded_files_from_skyignore(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [3, None, b"/tmp", 1.5])
def test_compat_raises_what_skypilot_raises_for_a_non_path(bad: object) -> None:
    def outcome(fn: object) -> tuple[type[BaseException], str]:
        with pytest.raises(Exception) as info:
            fn(bad)  # type: ignore[operator]
        return type(info.value), str(info.value)

    assert outcome(compat.get_excluded_files_from_skyignore) == outcome(
        sky_storage.get_excluded_files_from_skyignore
    )


def test_compat_signature_is_skypilots() -> None:
    import inspect

    theirs = inspect.signature(sky_storage.get_excluded_files_from_skyignore)
    mine = inspect.signature(compat.get_excluded_files_from_skyignore)
    assert list(mine.parameters) == list(theirs.parameters) == ["src_dir_path"]


def test_a_root_with_wildcard_characters_is_a_pattern_in_skypilot_and_in_compat(tmp_path: Path) -> None:
    build(tmp_path, ["r1/x", "r[1]/x"])
    for d in ("r1", "r[1]"):
        (tmp_path / d / ".skyignore").write_text("x\n")
    root = str(tmp_path / "r[1]")
    assert skypilot(Path(root)) == {"../r1/x"}  # SkyPilot globs its own root
    assert sorted(compat.get_excluded_files_from_skyignore(root)) == ["../r1/x"]
    assert excluded_paths(root) == ["x"]  # SkyIgnore takes the root literally


# --- random trees, random .skyignore ---------------------------------------------------------

NAME_CHARS = st.sampled_from([*"ab.-_ *?[]!#é", "ü", "日"])
names = st.text(NAME_CHARS, min_size=1, max_size=4).filter(lambda n: n not in (".", ".."))
rel_paths = st.lists(names, min_size=1, max_size=4).map("/".join)

PIECES = st.sampled_from(
    ["a", "b", ".", "*", "?", "**", "[ab]", "[!a]", "[a-c]", "[", "]", "!", " ", "é", "-", "#", ".."]
)
components = st.lists(PIECES, min_size=1, max_size=3).map("".join)


@st.composite
def skyignore_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["pattern"] * 6 + ["comment", "blank"]))
    if kind == "blank":
        return draw(st.sampled_from(["", " ", "\t"]))
    if kind == "comment":
        return draw(st.sampled_from(["#", " # "])) + draw(components)
    body = "/".join(draw(st.lists(components, min_size=1, max_size=3)))
    prefix = draw(st.sampled_from(["", "", "/", "!", "**/", " ", "\x0c", "\u3000"]))
    suffix = draw(st.sampled_from(["", "", "/", "/**", " ", "\t", "\x85", "\x1c"]))
    return prefix + body + suffix


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[str], list[str], dict[str, str]]:
    paths = draw(st.lists(rel_paths, max_size=12, unique=True))
    files: list[str] = []
    dirs: list[str] = []
    for path in paths:
        # A path that is a prefix of another must be a directory.
        if any(other.startswith(path + "/") for other in paths) or draw(st.booleans()):
            dirs.append(path)
        else:
            files.append(path)
    files = [f for f in files if not any(f.startswith(d + "/") or d.startswith(f + "/") for d in dirs)]
    links: dict[str, str] = {}
    if dirs and draw(st.booleans()):
        links[draw(names) + "~"] = draw(st.sampled_from(dirs))
    return files, dirs, links


def make_tree(root: Path, tree: tuple[list[str], list[str], dict[str, str]]) -> None:
    files, dirs, links = tree
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (root / f).exists():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            (root / f).write_text("x")
    for link, target in links.items():
        if not os.path.lexists(root / link):
            os.symlink(target, root / link)


def private_root(top: str) -> Path:
    """A root deep enough in a private directory that a line's '..' (at most three in a
    row here) cannot reach the shared /tmp, which other processes change meanwhile."""
    root = Path(top, "l1", "l2", "l3", "l4", "root")
    root.mkdir(parents=True)
    return root


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=trees(), lines=st.lists(skyignore_lines(), max_size=6), newline=st.sampled_from(["\n", "\r\n", "\r"])
)
def test_random_trees_and_skyignores_exclude_what_skypilot_excludes(
    tree: tuple[list[str], list[str], dict[str, str]], lines: list[str], newline: str
) -> None:
    with tempfile.TemporaryDirectory() as top:
        root = private_root(top)
        make_tree(root, tree)
        same(root, newline.join(lines))
        ignore = SkyIgnore(root)
        for path in walked(root):
            rule = ignore.match(path)
            assert (rule is not None) == (path in ignore.matches())
            if rule is not None:
                assert rule in ignore.rules


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(), lines=st.lists(skyignore_lines(), max_size=5))
def test_random_trees_is_excluded_is_what_skypilots_zip_leaves_out(
    tree: tuple[list[str], list[str], dict[str, str]], lines: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as top:
        root = private_root(top)
        make_tree(root, tree)
        (root / ".skyignore").write_text("\n".join(lines), encoding="utf-8")
        assert kept(root) == zipped(root)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(), lines=st.lists(skyignore_lines(), min_size=1, max_size=4))
def test_random_trees_match_names_the_first_line_whose_glob_alone_lists_the_path(
    tree: tuple[list[str], list[str], dict[str, str]], lines: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as top:
        root = private_root(top)
        make_tree(root, tree)
        (root / ".skyignore").write_text("\n".join(lines), encoding="utf-8")
        ignore = SkyIgnore(root)
        alone = {}
        for rule in ignore.rules:  # SkyPilot's listing of each line on its own
            (root / ".skyignore").write_text(rule.text, encoding="utf-8")
            alone[rule] = skypilot(root)
        for path, rule in ignore.matches().items():
            assert rule == next(r for r in ignore.rules if path in alone[r])
