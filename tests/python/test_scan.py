"""scan_tree on both backends, through the coroutine and its blocking twin.

Built trees with known contents are the oracle for counts and problems; os.walk with
os.lstat is the oracle on large trees; the two backends are also compared with each
other on random trees (hypothesis).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sky_async
from conftest import API_PRELUDE, Caller, fd_count, fds_open_on, make_backend, run_python, wait_until_open
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sky_async import scan as scan_module
from sky_async._api import Api
from sky_async.scan import ExcludedPath, LargeFile, ScanProblem, TreeScan
from vanishing import vanishing

CANCEL_BOUND = 2.0


def rows(result: TreeScan) -> list[tuple[str, Any, int | None]]:
    return [(p.kind, p.path, p.errno) for p in result.problems]


# --- the zoo: one of everything ------------------------------------------------------------------


def make_socket_file(path: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)  # the file stays after the socket is closed


def build_zoo(base: Path) -> tuple[str, str]:
    """The tree of tests/cpp/scan_test.cpp (see its comment); returns (root, outside)."""
    root = os.fsencode(base / "root")
    outside = os.fsencode(base / "outside")
    os.mkdir(root)
    os.mkdir(outside)

    def write(relative: bytes, size: int, where: bytes = root) -> None:
        with open(os.path.join(where, relative), "wb") as file:
            file.write(b"x" * size)

    write(b"a.txt", 10)
    write(b".hidden", 5)
    os.mkdir(root + b"/empty")
    os.mkdir(root + b"/d1")
    write(b"d1/big.bin", 5000)
    os.makedirs(root + b"/d1/d2/d3")
    write(b"d1/d2/d3/f", 100)
    os.symlink(b"../..", root + b"/d1/d2/up")
    write(b"new\nline", 7)
    write(b"bad\xffname", 3)
    os.mkdir(root + b"/bad\xfe")
    write(b"bad\xfe/x", 1)
    os.mkfifo(root + b"/fifo")
    make_socket_file(root + b"/sock")
    os.symlink(b"a.txt", root + b"/link_file")
    os.symlink(b"d1", root + b"/link_dir")
    os.symlink(b"missing", root + b"/nowhere")
    os.symlink(b"loop_b", root + b"/loop_a")
    os.symlink(b"loop_a", root + b"/loop_b")
    os.symlink(b"/dev/null", root + b"/devnull")
    os.symlink(b"../outside", root + b"/ext")
    os.symlink(b"../outside", root + b"/ext2")
    write(b"o", 20, outside)
    os.symlink(b"../root/d1", outside + b"/back")
    return os.fsdecode(root), os.fsdecode(outside)


@pytest.fixture
def zoo(tmp_path: Path) -> str:
    return build_zoo(tmp_path)[0]


ZOO_BYTES = 10 + 5 + 5000 + 100 + 7 + 3 + 1


def zoo_problems(root: str, follow: bool) -> list[tuple[str, str, int | None]]:
    expected = [
        ("invalid_utf8_name", os.fsdecode(os.fsencode(root) + b"/bad\xfe"), None),
        ("invalid_utf8_name", os.fsdecode(os.fsencode(root) + b"/bad\xffname"), None),
        ("symlink_loop", f"{root}/d1/d2/up", None),
        ("special_file", f"{root}/devnull", None),
        ("special_file", f"{root}/fifo", None),
        ("symlink_loop", f"{root}/loop_a", errno.ELOOP),
        ("symlink_loop", f"{root}/loop_b", errno.ELOOP),
        ("broken_symlink", f"{root}/nowhere", errno.ENOENT),
        ("special_file", f"{root}/sock", None),
    ]
    if not follow:
        expected.remove(("special_file", f"{root}/devnull", None))
        # A link to a directory that contains it loops only when followed.
        expected.remove(("symlink_loop", f"{root}/d1/d2/up", None))
    # Sorted by the bytes of the path, as the backends sort.
    return sorted(expected, key=lambda row: (os.fsencode(row[1]), scan_module.PROBLEM_KINDS.index(row[0])))


async def test_counts_every_kind_of_entry_without_following_symlinks(call: Caller, zoo: str) -> None:
    result = await call.scan_tree(zoo)
    assert (result.files, result.directories, result.symlinks, result.special_files) == (7, 5, 9, 2)
    assert result.bytes == ZOO_BYTES
    assert rows(result) == zoo_problems(zoo, follow=False)
    assert result.problem_counts == {
        "unreadable_directory": 0,
        "unreadable_file": 0,
        "broken_symlink": 1,
        "symlink_loop": 2,
        "special_file": 2,
        "invalid_utf8_name": 2,
        "too_large": 0,
        "stat_error": 0,
    }
    assert result.total_problems == 7
    assert not result.problems_truncated
    assert result.file_paths is None


async def test_following_symlinks_counts_targets_once_and_stops_at_loops(call: Caller, zoo: str) -> None:
    result = await call.scan_tree(zoo, follow_symlinks=True, collect_files=True)
    # + link_file and ext/o; ext2, link_dir and outside/back lead to directories already
    # scanned; d1/d2/up is a loop; devnull is a device.
    assert (result.files, result.directories, result.symlinks, result.special_files) == (9, 6, 10, 3)
    assert result.bytes == ZOO_BYTES + 10 + 20
    assert rows(result) == zoo_problems(zoo, follow=True)
    assert result.file_paths is not None
    assert f"{zoo}/ext/o" in result.file_paths  # ext sorts before ext2
    assert f"{zoo}/link_file" in result.file_paths


async def test_problems_carry_errno_and_a_message(call: Caller, zoo: str) -> None:
    result = await call.scan_tree(zoo, max_file_size=4999, follow_symlinks=True)
    by_path = {(p.path, p.kind): p for p in result.problems}
    broken = by_path[(f"{zoo}/nowhere", "broken_symlink")]
    assert broken == ScanProblem("broken_symlink", f"{zoo}/nowhere", errno.ENOENT, broken.message)
    assert os.strerror(errno.ENOENT) in broken.message
    too_large = by_path[(f"{zoo}/d1/big.bin", "too_large")]
    assert too_large.errno is None
    assert "5000 bytes" in too_large.message and "4999" in too_large.message
    assert (
        by_path[(f"{zoo}/d1/d2/up", "symlink_loop")].message
        == "symbolic link to a directory that contains it"
    )
    assert all(isinstance(p.message, str) and p.message for p in result.problems)


async def test_bytes_root_gives_bytes_paths(call: Caller, zoo: str) -> None:
    root = os.fsencode(zoo)
    result = await call.scan_tree(root, collect_files=True, largest=2)
    assert result.file_paths is not None
    assert root + b"/bad\xffname" in result.file_paths
    assert root + b"/new\nline" in result.file_paths
    assert all(isinstance(path, bytes) for path in result.file_paths)
    assert all(isinstance(p.path, bytes) for p in result.problems)
    assert result.largest == (LargeFile(root + b"/d1/big.bin", 5000), LargeFile(root + b"/d1/d2/d3/f", 100))


async def test_str_root_gives_str_paths_with_surrogate_escapes(call: Caller, zoo: str) -> None:
    result = await call.scan_tree(Path(zoo), collect_files=True)
    assert result.file_paths is not None
    assert os.fsdecode(os.fsencode(zoo) + b"/bad\xffname") in result.file_paths
    assert f"{zoo}/new\nline" in result.file_paths
    assert all(isinstance(path, str) for path in result.file_paths)


async def test_collect_files_matches_os_walk(call: Caller, zoo: str) -> None:
    expected = []
    for directory, dirnames, filenames in os.walk(zoo):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                expected.append(path)
    result = await call.scan_tree(zoo, collect_files=True)
    assert result.file_paths == tuple(sorted(expected, key=os.fsencode))


async def test_largest_are_biggest_first_then_by_path(call: Caller, tmp_path: Path) -> None:
    for name, size in {"a": 30, "b": 50, "c": 30, "d": 0, "e": 70, "f": 30, "g": 10}.items():
        (tmp_path / name).write_bytes(b"x" * size)
    root = str(tmp_path)
    result = await call.scan_tree(root, largest=4)
    assert result.largest == tuple(
        LargeFile(f"{root}/{name}", size) for name, size in [("e", 70), ("b", 50), ("a", 30), ("c", 30)]
    )
    assert (await call.scan_tree(root, largest=0)).largest == ()
    assert len((await call.scan_tree(root, largest=100)).largest) == 7


async def test_max_problems_keeps_the_first_by_path_and_counts_all(call: Caller, tmp_path: Path) -> None:
    for index in range(300):
        os.symlink("missing", tmp_path / f"l{1000 + index}")
    result = await call.scan_tree(tmp_path, max_problems=5)
    assert [p.path for p in result.problems] == [f"{tmp_path}/l{1000 + index}" for index in range(5)]
    assert result.problem_counts["broken_symlink"] == 300
    assert result.problems_truncated
    assert (await call.scan_tree(tmp_path, max_problems=0)).problems == ()


async def test_too_large_is_over_the_limit_not_at_it(call: Caller, zoo: str) -> None:
    assert (await call.scan_tree(zoo, max_file_size=100)).problem_counts["too_large"] == 1
    assert (await call.scan_tree(zoo, max_file_size=99)).problem_counts["too_large"] == 2
    assert (await call.scan_tree(zoo)).problem_counts["too_large"] == 0


@pytest.mark.parametrize(
    "name", [b"\xff", b"\xc0\x80", b"\xc3", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\x80"]
)
async def test_invalid_utf8_names_are_reported(call: Caller, tmp_path: Path, name: bytes) -> None:
    root = os.fsencode(tmp_path)
    for valid in ("plain", "café", "€", "😀", "\ud7ff", "\U0010ffff"):
        (tmp_path / valid).write_bytes(b"")
    with open(root + b"/" + name, "wb"):
        pass
    result = await call.scan_tree(root)
    assert rows(result) == [("invalid_utf8_name", root + b"/" + name, None)]
    assert result.files == 7


# --- the root ------------------------------------------------------------------------------------


async def test_missing_root_raises_file_not_found_with_the_path_as_passed(
    call: Caller, tmp_path: Path
) -> None:
    for missing in (tmp_path / "missing", str(tmp_path / "missing"), os.fsencode(tmp_path / "missing")):
        with pytest.raises(FileNotFoundError) as info:
            await call.scan_tree(missing)
        assert info.value.errno == errno.ENOENT
        assert info.value.filename == missing


async def test_root_that_is_a_file_or_a_special_file(call: Caller, tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_bytes(b"x" * 42)
    result = await call.scan_tree(str(file), max_file_size=10, collect_files=True)
    assert (result.files, result.directories, result.bytes) == (1, 0, 42)
    assert result.file_paths == (str(file),)
    assert result.largest == (LargeFile(str(file), 42),)
    assert rows(result) == [("too_large", str(file), None)]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    special = await call.scan_tree(fifo)
    assert special.special_files == 1
    assert rows(special) == [("special_file", str(fifo), None)]


async def test_symlink_as_the_root_is_followed_and_keeps_its_name(call: Caller, zoo: str) -> None:
    link = os.path.join(os.path.dirname(zoo), "via")
    os.symlink("root", link)
    through_link = await call.scan_tree(link, collect_files=True)
    direct = await call.scan_tree(zoo, collect_files=True)
    assert (through_link.files, through_link.directories) == (direct.files, direct.directories)
    assert through_link.file_paths is not None
    assert all(path.startswith(link + "/") for path in through_link.file_paths)
    assert (await call.scan_tree(zoo + "/", collect_files=True)).file_paths == direct.file_paths


async def test_empty_directory(call: Caller, tmp_path: Path) -> None:
    result = await call.scan_tree(tmp_path, collect_files=True)
    assert result == TreeScan(0, 0, 0, 0, 0, (), dict.fromkeys(scan_module.PROBLEM_KINDS, 0), (), ())


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"follow_symlinks": 1}, TypeError, "follow_symlinks must be a bool"),
        ({"collect_files": "yes"}, TypeError, "collect_files must be a bool"),
        ({"largest": 2.0}, TypeError, "largest must be an int"),
        ({"largest": True}, TypeError, "largest must be an int"),
        ({"largest": -1}, ValueError, "largest must be between 0"),
        ({"max_problems": -5}, ValueError, "max_problems must be between 0"),
        ({"max_problems": None}, TypeError, "max_problems must be an int"),
        ({"max_file_size": 0}, ValueError, "max_file_size must be between 1"),
        ({"max_file_size": 2**64}, ValueError, "max_file_size must be between 1"),
        ({"max_file_size": "1G"}, TypeError, "max_file_size must be an int"),
    ],
)
async def test_bad_options_raise_typed_errors_naming_the_option(
    call: Caller, tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        await call.scan_tree(tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("path", "error"), [(3, TypeError), (None, TypeError), ("a\0b", ValueError), (b"\0", ValueError)]
)
async def test_bad_root_raises_type_or_value_error(call: Caller, path: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        await call.scan_tree(path)


def test_public_names() -> None:
    assert sky_async.scan_tree is not None and sky_async.sync.scan_tree is not None
    assert {"scan_tree", "TreeScan", "ScanProblem", "scan"} <= set(sky_async.__all__)
    assert "scan_tree" in sky_async.sync.__all__
    assert scan_module.PROBLEM_KINDS == (
        scan_module.UNREADABLE_DIRECTORY,
        scan_module.UNREADABLE_FILE,
        scan_module.BROKEN_SYMLINK,
        scan_module.SYMLINK_LOOP,
        scan_module.SPECIAL_FILE,
        scan_module.INVALID_UTF8_NAME,
        scan_module.TOO_LARGE,
        scan_module.STAT_ERROR,
    )


# --- ignore: the rule sets' exclusions, pruned ---------------------------------------------------

# (relative, source, line, pattern) per tree, sorted by path: what each rule set excludes.
EXCLUDED_BY_SKYIGNORE = [
    ("build/", ".skyignore", 4, "/build/"),
    ("node_modules/", ".skyignore", 2, "node_modules"),
    ("src/debug.log", ".skyignore", 3, "*.log"),
    ("sub/node_modules/", ".skyignore", 2, "node_modules"),
]
EXCLUDED_BY_GIT = [
    ("build", ".gitignore", 6, "build"),
    ("cache/", None, None, None),  # every entry ignored: git lists the directory, no line does
    ("node_modules/", ".gitignore", 2, "node_modules/"),
    ("secret.txt", ".git/info/exclude", 1, "secret.txt"),
    ("src/debug.log", ".gitignore", 3, "*.log"),
    ("src/generated/", "src/.gitignore", 1, "generated/"),
]
EXCLUDED_BY_RSYNC = [
    ("node_modules/", ".skyignore", 1, "node_modules/"),
    ("src/debug.log", ".skyignore", 2, "*.log"),
    ("sub/local/", "sub/.skyignore", 1, "local/"),
    ("sub/only_here.txt", "sub/.skyignore", 2, "/only_here.txt"),
]


@pytest.fixture
def pinned_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git's configuration from the test's own HOME only (no user's core.excludesFile)."""
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    (home / "gitconfig").write_text("[user]\n\tname = Test\n\temail = test@example.com\n")


def git(where: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(where), *args], capture_output=True, check=True, text=True
    ).stdout


def build_ignore_tree(base: Path, rules: str) -> Path:
    """A tree for the rule set *rules* ("skyignore", "git" or "rsync"); returns its root. Each
    has kept files, excluded files, and an excluded directory with files, a FIFO and a broken
    symlink in it (which a scan that entered it would report as problems). git's tree is the
    directory proj/ of a repository (its .git outside the scanned root), with a negation, a
    tracked file the rules match, and rules from info/exclude and from a nested .gitignore."""
    root = base / "proj" if rules == "git" else base
    root.mkdir(parents=True)

    def write(relative: str, size: int) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)

    write("keep.txt", 10)
    write("src/main.py", 30)
    write("src/debug.log", 500)
    write("node_modules/pkg/index.js", 7000)
    os.mkfifo(root / "node_modules/pkg/fifo")
    os.symlink("missing", root / "node_modules/nowhere")
    if rules == "skyignore":
        (root / ".skyignore").write_text("# dependencies\nnode_modules\n*.log\n/build/\n")
        write("build/out.bin", 900)
        write("src/build/kept.c", 5)  # /build/ is anchored at the root
        write("sub/node_modules/y.js", 3)
    elif rules == "git":
        git(base, "init", "-q")
        (base / ".git/info").mkdir(exist_ok=True)
        (base / ".git/info/exclude").write_text("secret.txt\n")
        (root / ".gitignore").write_text("# dependencies\nnode_modules/\n*.log\n!keep.log\n\nbuild\n")
        write("src/.gitignore", 0)
        (root / "src/.gitignore").write_text("generated/\n")
        write("keep.log", 4)  # re-included by !keep.log
        write("tracked.log", 6)  # matched by *.log, but tracked: git never lists it
        git(base, "add", "-f", "proj/tracked.log")
        write("secret.txt", 7)
        write("build", 8)  # "build" names files too
        write("src/generated/a.c", 9)
        write("cache/a.log", 11)
        write("cache/b.log", 12)
    else:
        (root / ".skyignore").write_text("node_modules/\n*.log\n")
        write("sub/.skyignore", 0)
        (root / "sub/.skyignore").write_text("local/\n/only_here.txt\n")
        write("sub/local/z", 13)
        write("sub/only_here.txt", 14)
        write("only_here.txt", 15)  # anchored at sub/: kept here
        write("sub/kept.txt", 16)
    return root


def remove_from_disk(root: Path, relatives: list[str]) -> None:
    for relative in relatives:
        path = root / relative.rstrip("/")
        if relative.endswith("/"):
            shutil.rmtree(path)
        else:
            path.unlink()


def relative_paths(root: Path, paths: Any) -> list[str]:
    return [os.path.relpath(path, root) for path in paths]


IGNORE_CASES = [
    ("skyignore", "skyignore", EXCLUDED_BY_SKYIGNORE),
    ("skypilot", "skyignore", EXCLUDED_BY_SKYIGNORE),  # a .skyignore at the root: it is used
    ("git", "git", EXCLUDED_BY_GIT),
    ("skypilot", "git", EXCLUDED_BY_GIT),  # none: git's rules
    ("rsync", "rsync", EXCLUDED_BY_RSYNC),
]


@pytest.mark.parametrize(("ignore", "tree", "expected"), IGNORE_CASES)
@pytest.mark.parametrize("follow", [False, True])
@pytest.mark.usefixtures("pinned_git")
async def test_ignore_prunes_what_the_rules_exclude_as_if_it_were_not_on_disk(
    call: Caller, tmp_path: Path, ignore: str, tree: str, expected: list[Any], follow: bool
) -> None:
    root = build_ignore_tree(tmp_path / "pruned", tree)
    result = await call.scan_tree(
        root, ignore=ignore, follow_symlinks=follow, collect_files=True, largest=100
    )
    assert result.excluded is not None
    assert [(e.relative, e.source, e.line, e.pattern) for e in result.excluded] == expected
    assert [e.path for e in result.excluded] == [str(root / rel.rstrip("/")) for rel, *_ in expected]

    # The oracle: the same tree with the excluded paths removed from disk, scanned as it is.
    oracle = build_ignore_tree(tmp_path / "oracle", tree)
    remove_from_disk(oracle, [relative for relative, *_ in expected])
    plain = await call.scan_tree(oracle, follow_symlinks=follow, collect_files=True, largest=100)
    assert plain.excluded is None
    counts = ("files", "directories", "symlinks", "special_files", "bytes", "vanished", "problem_counts")
    assert {name: getattr(result, name) for name in counts} == {name: getattr(plain, name) for name in counts}
    assert relative_paths(root, result.file_paths) == relative_paths(oracle, plain.file_paths)
    assert [(os.path.relpath(f.path, root), f.size) for f in result.largest] == [
        (os.path.relpath(f.path, oracle), f.size) for f in plain.largest
    ]
    # Pruned: the FIFO and the broken symlink in the excluded directory were never met.
    assert result.total_problems == 0 and result.problems == ()
    whole = await call.scan_tree(root, follow_symlinks=follow)
    assert whole.problem_counts["special_file"] == 1 and whole.problem_counts["broken_symlink"] == 1
    assert whole.files > result.files and whole.excluded is None


@pytest.mark.usefixtures("pinned_git")
@pytest.mark.parametrize("at_top", [False, True])
async def test_ignore_git_excludes_what_git_ls_files_lists(
    call: Caller, tmp_path: Path, at_top: bool
) -> None:
    proj = build_ignore_tree(tmp_path / "repo", "git")
    root = tmp_path / "repo" if at_top else proj
    listed = git(root, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory").splitlines()
    top_most = [p for p in listed if not any(p != q and q.endswith("/") and p.startswith(q) for q in listed)]
    result = await call.scan_tree(os.fsencode(root), ignore="git")
    assert result.excluded is not None
    assert sorted(e.relative for e in result.excluded) == sorted(top_most)
    assert all(isinstance(e.path, bytes) for e in result.excluded)
    if at_top:
        assert "proj/node_modules/" in top_most  # the subdirectory's rules, named from the top
    # A tracked file is never excluded, whatever the rules say; a negation re-includes.
    kept = await call.scan_tree(proj, ignore="git", collect_files=True)
    assert {"tracked.log", "keep.log", "keep.txt"} <= set(relative_paths(proj, kept.file_paths))


@pytest.mark.usefixtures("pinned_git")
async def test_ignore_excludes_nothing_where_the_rules_are_missing(call: Caller, tmp_path: Path) -> None:
    root = build_ignore_tree(tmp_path / "t", "skyignore")
    (root / ".skyignore").unlink()
    plain = await call.scan_tree(root)
    for ignore in ("skyignore", "rsync", "git", "skypilot"):  # no .skyignore; not in a git work tree
        result = await call.scan_tree(root, ignore=ignore)
        assert result.excluded == ()
        assert (result.files, result.directories, result.bytes, result.problem_counts) == (
            plain.files,
            plain.directories,
            plain.bytes,
            plain.problem_counts,
        )
    # A root that is a file has nothing below it to exclude.
    single = await call.scan_tree(root / "keep.txt", ignore="skypilot")
    assert (single.files, single.excluded) == (1, ())
    with pytest.raises(FileNotFoundError):
        await call.scan_tree(root / "missing", ignore="git")


@pytest.mark.usefixtures("pinned_git")
async def test_ignore_raises_what_the_rule_sets_cannot_read(call: Caller, tmp_path: Path) -> None:
    (tmp_path / ".skyignore").write_bytes(b"\xff\n")  # not UTF-8: SkyPilot's error
    for ignore in ("skyignore", "skypilot"):
        with pytest.raises(UnicodeDecodeError):
            await call.scan_tree(tmp_path, ignore=ignore)
    repo = tmp_path / "repo"
    (repo / "out/sub").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("out/\n")
    with pytest.raises(subprocess.CalledProcessError):  # git itself cannot list there
        git(repo / "out/sub", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory")
    with pytest.raises(RuntimeError, match="internal error"):
        await call.scan_tree(repo / "out/sub", ignore="git")


async def test_ignore_none_leaves_the_result_as_it_was(call: Caller, zoo: str) -> None:
    assert await call.scan_tree(zoo, ignore=None) == await call.scan_tree(zoo)
    assert (await call.scan_tree(zoo)).excluded is None


def test_excluded_path_reads_as_preflight_names_a_rule() -> None:
    git_rule = ExcludedPath("/r/node_modules", "node_modules/", ".gitignore", 3, "node_modules/")
    assert str(git_rule) == "node_modules/ excluded by .gitignore:3"
    assert git_rule.rule == ".gitignore:3" and git_rule.is_dir
    whole = ExcludedPath(b"/r/cache", "cache/", None, None, None)
    assert whole.rule is None and str(whole).startswith("cache/ excluded by git")


@pytest.mark.parametrize(
    ("ignore", "error", "words"),
    [
        ("gitignore", ValueError, "ignore must be one of 'skypilot', 'git', 'skyignore', 'rsync', None"),
        ("", ValueError, "ignore must be one of"),
        ("GIT", ValueError, "not 'GIT'"),
        (True, TypeError, "ignore must be None or a str, not bool"),
        (b"git", TypeError, "not bytes"),
        (["git"], TypeError, "not list"),
    ],
)
async def test_bad_ignore_raises_typed_errors_naming_the_choices(
    call: Caller, tmp_path: Path, ignore: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        await call.scan_tree(tmp_path, ignore=ignore)


# --- permissions ---------------------------------------------------------------------------------


def test_unreadable_directories_and_files_are_reported(backend_name: str, api: Api) -> None:
    base = tempfile.mkdtemp(prefix="sky_async-scan-perm-")
    try:
        os.chmod(base, 0o755)
        root = os.path.join(base, "perm")
        os.mkdir(root)
        os.mkdir(os.path.join(root, "locked"))
        Path(root, "locked", "inside").write_bytes(b"x")
        Path(root, "secret").write_bytes(b"s")
        Path(root, "open").write_bytes(b"o")
        os.chmod(os.path.join(root, "locked"), 0)
        os.chmod(os.path.join(root, "secret"), 0)
        expected = [
            ["unreadable_directory", f"{root}/locked", errno.EACCES],
            ["unreadable_file", f"{root}/secret", errno.EACCES],
        ]
        if os.getuid() != 0:
            if os.access(os.path.join(root, "secret"), os.R_OK):
                pytest.skip("this user can read a mode-000 file (CAP_DAC_OVERRIDE); cannot test EACCES")
            result = api.sync.scan_tree(root)
            assert [list(row) for row in rows(result)] == expected
            return
        # As root, mode 000 does not stop us: a child drops to nobody (65534) first.
        code = (
            API_PRELUDE
            + """
import asyncio, json, os
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
root = sys.argv[2]
out = {"uid": os.getuid()}
result = api.sync.scan_tree(root)
out["sync"] = [[p.kind, p.path, p.errno] for p in result.problems]
out["counts"] = [result.files, result.directories]
result = asyncio.run(api.scan_tree(root))
out["async"] = [[p.kind, p.path, p.errno] for p in result.problems]
print(json.dumps(out))
"""
        )
        process = run_python(code, backend_name, root)
        assert process.returncode == 0, process.stderr
        out = json.loads(process.stdout)
        assert out["uid"] == 65534
        assert out["sync"] == expected
        assert out["async"] == expected
        assert out["counts"] == [2, 1]
    finally:
        os.chmod(os.path.join(base, "perm", "locked"), 0o755)
        shutil.rmtree(base)


# --- a tree that changes while it is scanned -----------------------------------------------------


def build_changing_tree(root: bytes) -> dict[bytes, str]:
    """The tree of tests/cpp/scan_test.cpp's VanishedEntries case and what vanishes from it,
    each between its listing and its stat or open."""
    os.makedirs(root + b"/keep_dir")
    Path(os.fsdecode(root + b"/keep")).write_bytes(b"abc")
    Path(os.fsdecode(root + b"/keep_dir/f")).write_bytes(b"12345")
    Path(os.fsdecode(root + b"/gone_file")).write_bytes(b"x" * 100)
    Path(os.fsdecode(root + b"/gone\xffname")).write_bytes(b"x")  # no invalid_utf8_name either
    os.makedirs(root + b"/gone_dir/deeper")
    Path(os.fsdecode(root + b"/gone_dir/inner")).write_bytes(b"y")
    os.symlink(b"keep", root + b"/gone_link")
    os.mkdir(root + b"/to_file")
    os.mkdir(root + b"/to_link")
    # child is single's only subdirectory: held back, and opened relative to single.
    os.makedirs(root + b"/single/child")
    Path(os.fsdecode(root + b"/single/child/f")).write_bytes(b"z")
    return {
        root + b"/gone_file": "remove",
        root + b"/gone\xffname": "remove",
        root + b"/gone_dir": "remove",
        root + b"/gone_link": "remove",
        root + b"/to_file": "file",  # ENOTDIR when opened as a directory
        root + b"/to_link": "symlink",  # ENOTDIR too: O_NOFOLLOW | O_DIRECTORY
        root + b"/single/child": "remove",
    }


@pytest.mark.parametrize("follow", [False, True])
async def test_entries_that_vanish_after_their_listing_are_counted_not_reported(
    call: Caller, backend_name: str, tmp_path: Path, follow: bool
) -> None:
    root = os.fsencode(tmp_path / "changing")
    with vanishing(backend_name, build_changing_tree(root)):
        result = await call.scan_tree(root, follow_symlinks=follow, collect_files=True)
    assert rows(result) == []
    assert result.problem_counts == dict.fromkeys(scan_module.PROBLEM_KINDS, 0)
    assert (result.files, result.directories, result.symlinks, result.special_files) == (2, 2, 0, 0)
    assert result.bytes == 3 + 5
    assert result.vanished == 7
    assert result.file_paths == (root + b"/keep", root + b"/keep_dir/f")
    # What replaced two of them was not scanned: the next scan finds it.
    again = await call.scan_tree(root, follow_symlinks=follow)
    assert (again.files, again.directories, again.symlinks, again.vanished) == (3, 2, 1, 0)
    # to_link now points at the root: a loop only when followed.
    assert rows(again) == ([("symlink_loop", root + b"/to_link", None)] if follow else [])


async def test_a_directory_removed_while_it_is_listed_ends_its_listing(
    call: Caller, backend_name: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    big = root / "big"
    big.mkdir(parents=True)
    # Names long enough that the listing takes several getdents64 calls; the first entry
    # listed, whichever it is, removes the whole directory.
    names = [f"{index:05d}-{'n' * 60}" for index in range(3000)]
    for name in names:
        (big / name).write_bytes(b"")
    with vanishing(backend_name, {big / name: ("remove", big) for name in names}):
        result = await call.scan_tree(root)
    assert rows(result) == []
    assert (result.files, result.directories) == (0, 1)
    # The entries listed before the listing ended vanished; the rest were never listed.
    assert 1 <= result.vanished < len(names)


async def test_a_followed_symlink_whose_directory_vanishes_is_not_a_problem(
    call: Caller, backend_name: str, tmp_path: Path
) -> None:
    # Symlinked directories are opened after the rest of the tree is done, so a vanishing
    # entry below the root can remove the target in between.
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "marker").write_bytes(b"m")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o").write_bytes(b"o")
    (root / "link").symlink_to("../outside")
    with vanishing(backend_name, {root / "sub" / "marker": ("remove", outside)}):
        result = await call.scan_tree(root, follow_symlinks=True)
    assert rows(result) == []
    assert (result.files, result.directories, result.symlinks, result.vanished) == (1, 1, 1, 1)


@pytest.mark.slow
async def test_a_tree_changing_during_the_scan_has_no_problems(call: Caller, tmp_path: Path) -> None:
    # The same, by chance: a thread removes and recreates directories while scans run,
    # until some scan has seen entries vanish.
    root = tmp_path / "churn"
    root.mkdir()
    count, per_directory = 200, 3

    def make(index: int) -> None:
        directory = root / f"d{index}"
        directory.mkdir()
        for name in range(per_directory):
            (directory / f"f{name}").write_bytes(b"x")

    for index in range(count):
        make(index)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            for index in range(count):
                shutil.rmtree(root / f"d{index}")
                make(index)

    changer = threading.Thread(target=churn)
    changer.start()
    seen_vanishing = 0
    try:
        for _ in range(300):
            result = await call.scan_tree(root)
            assert rows(result) == []
            assert result.total_problems == 0
            assert result.directories <= count
            assert result.files <= per_directory * result.directories
            assert result.vanished <= count * (1 + per_directory)
            seen_vanishing += result.vanished > 0
            if seen_vanishing == 3:
                break
    finally:
        stop.set()
        changer.join()
    assert seen_vanishing == 3, "no scan saw an entry vanish: the race was not exercised"


async def test_a_missing_root_is_still_an_error_not_a_vanished_entry(call: Caller, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await call.scan_tree(tmp_path / "never")


# --- large trees ---------------------------------------------------------------------------------


def make_chain(root: str, depth: int) -> None:
    """root/d/d/.../d with leaf (5 bytes) at the bottom and, every 1,000 levels, e/x beside d."""
    os.mkdir(root)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, depth + 1):
            os.mkdir("d", dir_fd=fd)
            if level % 1000 == 0:
                os.mkdir("e", dir_fd=fd)
                os.close(os.open("e/x", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(leaf, b"leaf!")
        os.close(leaf)
    finally:
        os.close(fd)


def remove_chain(root: str) -> None:
    """shutil.rmtree recurses once per level: go down with one descriptor, then up through ".."."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    try:
        while True:
            try:
                child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                break
            os.close(fd)
            fd = child
            depth += 1
        for _ in range(depth):
            for name in ("leaf", "e/x"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
            with contextlib.suppress(FileNotFoundError):
                os.rmdir("e", dir_fd=fd)
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir("d", dir_fd=fd)
    finally:
        os.close(fd)
    shutil.rmtree(root)


CHAIN_DEPTH = 10_000


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = str(tmp_path_factory.mktemp("chain") / "c")
    make_chain(root, CHAIN_DEPTH)
    yield root
    remove_chain(root)


class FdSampler:
    """The most descriptors this process had open below *root* at once, sampled in a thread."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, len(fds_open_on([self.root])))
            time.sleep(0.0002)

    def __enter__(self) -> FdSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fd_bound(api: Api) -> int:
    """The documented bound: 2 per worker thread (native); the walk's 2 plus scandir's duplicate (python)."""
    return 2 * api.get_backend_info()["threads"] if api.backend_name == "native" else 3


async def test_ten_thousand_levels_deep_with_bounded_descriptors(call: Caller, chain: str) -> None:
    before = fd_count()
    with FdSampler(chain) as sampler:
        result = await call.scan_tree(chain, collect_files=True)
    assert result.directories == CHAIN_DEPTH + CHAIN_DEPTH // 1000
    assert result.files == 1 + CHAIN_DEPTH // 1000
    assert result.bytes == 5
    assert result.total_problems == 0
    leaf = chain + "/d" * CHAIN_DEPTH + "/leaf"
    assert result.largest[0] == LargeFile(leaf, 5)
    assert result.file_paths is not None and leaf in result.file_paths
    assert sampler.most <= fd_bound(call.api)
    assert fd_count() == before


def test_descriptor_limit_of_64_is_enough(backend_name: str, chain: str) -> None:
    code = (
        API_PRELUDE
        + """
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
result = api.sync.scan_tree(sys.argv[2])
print(result.directories, result.files, result.total_problems)
"""
    )
    process = run_python(code, backend_name, chain)
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == [
        str(CHAIN_DEPTH + CHAIN_DEPTH // 1000),
        str(1 + CHAIN_DEPTH // 1000),
        "0",
    ]


BIG_DIRS = (40, 50)  # 40 directories of 50 subdirectories each
BIG_FILES_PER_DIR = 100


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> str:
    """202,080 entries: 2,040 directories, 200,000 files of 0-299 bytes, 40 symlinks."""
    root = tmp_path_factory.mktemp("big")
    payload = b"x" * 300
    index = 0
    for top in range(BIG_DIRS[0]):
        top_dir = root / f"t{top:02d}"
        top_dir.mkdir()
        os.symlink(f"s00/f{top:03d}", top_dir / "link")
        for sub in range(BIG_DIRS[1]):
            sub_dir = top_dir / f"s{sub:02d}"
            sub_dir.mkdir()
            for name in range(BIG_FILES_PER_DIR):
                fd = os.open(sub_dir / f"f{name:03d}", os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, payload[: index % 300])
                os.close(fd)
                index += 1
    return str(root)


def walk_oracle(root: str) -> dict[str, Any]:
    """os.walk + os.lstat: what scan_tree must report for a tree without problems."""
    counts = {"files": 0, "directories": 0, "symlinks": 0, "special_files": 0, "bytes": 0}
    files: list[tuple[str, int]] = []
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            mode = os.lstat(path)
            if stat.S_ISDIR(mode.st_mode):
                counts["directories"] += 1
            elif stat.S_ISREG(mode.st_mode):
                counts["files"] += 1
                counts["bytes"] += mode.st_size
                files.append((path, mode.st_size))
            elif stat.S_ISLNK(mode.st_mode):
                counts["symlinks"] += 1
            else:
                counts["special_files"] += 1
    files.sort(key=lambda item: (-item[1], os.fsencode(item[0])))
    counts["largest"] = tuple(LargeFile(path, size) for path, size in files[:10])
    counts["file_paths"] = tuple(sorted((path for path, _ in files), key=os.fsencode))
    return counts


@pytest.fixture(scope="module")
def big_oracle(big_tree: str) -> dict[str, Any]:
    return walk_oracle(big_tree)


async def test_two_hundred_thousand_entries_match_os_walk(
    call: Caller, big_tree: str, big_oracle: dict[str, Any]
) -> None:
    before = fd_count()
    with FdSampler(big_tree) as sampler:
        result = await call.scan_tree(big_tree, collect_files=True)
    assert result.files + result.directories + result.symlinks >= 200_000
    for field in ("files", "directories", "symlinks", "special_files", "bytes", "largest", "file_paths"):
        assert getattr(result, field) == big_oracle[field], field
    assert result.total_problems == 0
    assert sampler.most <= fd_bound(call.api)
    assert fd_count() == before


async def test_cancelling_a_scan_ends_promptly_and_closes_its_directories(api: Api, big_tree: str) -> None:
    small = await api.scan_tree(big_tree + "/t00/s00")  # warm up: runtime, this loop's wakeup fd
    before = fd_count()
    task = asyncio.ensure_future(api.scan_tree(big_tree, collect_files=True))
    await wait_until_open(big_tree)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < CANCEL_BOUND
    assert fds_open_on([big_tree]) == []
    assert fd_count() == before
    assert await api.scan_tree(big_tree + "/t00/s00") == small  # still usable


# --- both backends agree -------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "d", ".h", "é", "sp ace"])
ENTRY = st.one_of(
    st.tuples(st.just("file"), st.integers(0, 300)),
    st.tuples(st.just("dir"), st.just(0)),
    st.tuples(
        st.just("link"),
        st.sampled_from(["a", "b", "../a", "..", "../..", ".", "missing", "d/c", "/dev/null"]),
    ),
    st.tuples(st.just("fifo"), st.just(0)),
)
TREE = st.dictionaries(st.lists(NAMES, min_size=1, max_size=3).map(tuple), ENTRY, max_size=25)


def build_random_tree(root: str, spec: dict[tuple[str, ...], tuple[str, Any]]) -> None:
    os.mkdir(root)
    for parts, (kind, arg) in sorted(spec.items(), key=lambda item: len(item[0])):
        parent = os.path.join(root, *parts[:-1])
        if not os.path.isdir(parent) or os.path.islink(parent):
            continue
        path = os.path.join(parent, parts[-1])
        if os.path.lexists(path):
            continue
        if kind == "file":
            Path(path).write_bytes(b"x" * arg)
        elif kind == "dir":
            os.mkdir(path)
        elif kind == "link":
            os.symlink(arg, path)
        else:
            os.mkfifo(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=TREE, follow=st.booleans(), largest=st.integers(0, 4), max_problems=st.integers(0, 4))
def test_both_backends_agree_on_random_trees(
    spec: dict[tuple[str, ...], tuple[str, Any]], follow: bool, largest: int, max_problems: int
) -> None:
    native = Api(make_backend("native"))
    python = Api(make_backend("python"))
    with tempfile.TemporaryDirectory() as base:
        # Two private levels above the root: no "../.." from the tree may reach a live
        # directory (such as /tmp) whose contents change between the two scans.
        os.mkdir(os.path.join(base, "s"))
        root = os.path.join(base, "s", "r")
        build_random_tree(root, spec)
        options = {
            "follow_symlinks": follow,
            "largest": largest,
            "max_problems": max_problems,
            "collect_files": True,
        }
        expected = python.sync.scan_tree(root, **options)
        assert native.sync.scan_tree(root, **options) == expected
        assert asyncio.run(native.scan_tree(root, **options)) == expected
