"""git's ignore rules (sky_async._upload.gitignore) against the real git, and compat against SkyPilot.

The specification is what git itself prints: ``git ls-files -z --others --ignored
--exclude-standard --directory`` for the listing and ``git check-ignore --no-index`` for
single paths, on random repositories from hypothesis (nested directories, nested
.gitignore files with patterns from a grammar of git's syntax, info/exclude,
core.excludesFile, some files tracked, every index version). compat's drop-ins are compared
with SkyPilot 0.14.1's functions on the same repositories. Each rule also has a
hand-written case named for it. Every test that lists runs on both engines (the ``engine``
fixture): the native one (``src/ignore/``, through ``sky_async._native``) and the pure-Python
walk, which must give the same listings and the same errors.

git's environment is pinned: HOME, GIT_CONFIG_GLOBAL and XDG_CONFIG_HOME point into a
temporary directory and the system config is off, so the user's settings cannot leak in.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import clean_env, import_skypilot, require_native, run_python
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sky_async import compat
from sky_async._upload import gitignore as _gitignore
from sky_async._upload.gitignore import GitIgnore, NotAGitRepository, ignored_paths, parse

sky, sky_storage = import_skypilot("data.storage_utils")

if shutil.which("git") is None:  # pragma: no cover - git is in scripts/setup's packages
    pytest.skip("git is not installed", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def pinned_git_environment() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as home, pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("GIT_"):
                patch.delenv(name)
        patch.setenv("HOME", home)
        patch.setenv("XDG_CONFIG_HOME", os.path.join(home, "xdg"))
        patch.setenv("GIT_CONFIG_GLOBAL", os.path.join(home, "gitconfig"))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        Path(home, "gitconfig").write_text("[user]\n\tname = Test\n\temail = test@example.com\n")
        yield Path(home)


ENGINES = ("native", "python")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The listing's engine for the test: the native one (sky_async._native) or the
    pure-Python walk. Every test that lists runs on both."""
    if request.param == "native":
        require_native()
        from sky_async._upload import native

        monkeypatch.setattr(_gitignore, "_native_engine", native)
    else:
        monkeypatch.setattr(_gitignore, "_native_engine", None)
    return str(request.param)


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(repo), *args],
        input=stdin,
        capture_output=True,
        check=True,
    ).stdout


def git_listing(directory: Path) -> list[str]:
    out = git(directory, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory")
    return [os.fsdecode(item) for item in out.split(b"\0")[:-1]]


def git_check_ignore(repo: Path, paths: list[str]) -> set[str]:
    """The paths git's rules ignore, tracked or not."""
    if not paths:
        return set()
    stdin = b"".join(os.fsencode(p) + b"\0" for p in paths)
    result = subprocess.run(
        ["git", "-C", str(repo), "check-ignore", "--no-index", "--stdin", "-z"],
        input=stdin,
        capture_output=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return {os.fsdecode(item) for item in result.stdout.split(b"\0")[:-1]}


def init(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", ".")
    return repo


def write(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def all_paths(root: Path) -> list[tuple[str, bool]]:
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        rel = os.path.relpath(directory, root)
        for name in dirs:
            path = os.path.normpath(os.path.join(rel, name))
            found.append((path, not os.path.islink(os.path.join(root, path))))
        for name in files:
            if name != ".git":
                found.append((os.path.normpath(os.path.join(rel, name)), False))
    return found


def skypilot_gitignore(root: Path) -> list[str]:
    return list(sky_storage.get_excluded_files_from_gitignore(str(root)))


def outcome(fn: Callable[..., object], *args: object) -> object:
    """The result, or where git fails (exit status 128), that it failed."""
    try:
        return fn(*args)
    except _gitignore.GitListingError:
        return "git fails"
    except subprocess.CalledProcessError as exc:
        assert exc.returncode == 128
        return "git fails"


def check_repo(repo: Path, subdirs: list[str] = ()) -> None:  # type: ignore[assignment]
    """Every comparison with git and SkyPilot on *repo* (and its *subdirs* as roots)."""
    assert ignored_paths(repo) == git_listing(repo)
    for sub in subdirs:
        if (repo / sub).is_dir():
            assert outcome(ignored_paths, repo / sub) == outcome(git_listing, repo / sub), sub
            ours = outcome(compat.get_excluded_files_from_gitignore, str(repo / sub))
            assert ours == outcome(skypilot_gitignore, repo / sub)
    paths = all_paths(repo)
    ignore = GitIgnore(repo)
    ours = {path for path, is_dir in paths if ignore.is_ignored(path, is_dir)}
    assert ours == git_check_ignore(repo, [path for path, _ in paths])
    assert compat.get_excluded_files_from_gitignore(str(repo)) == skypilot_gitignore(repo)
    assert compat.get_excluded_files(str(repo)) == list(sky_storage.get_excluded_files(str(repo)))


# --- random repositories -------------------------------------------------------------------

NAMES = ["a", "b", "build", "f.log", "g.py", "x.gz", "!k", "#h", "[x]", "b c", "é.log", ".env", "ab"]
DIRS = ["a", "b", "build", "node_modules", "sub", "d.log"]
COMPONENTS = [
    *NAMES,
    *DIRS,
    "*",
    "?",
    "**",
    "*.log",
    "a*",
    "*b",
    "[ab]",
    "[!a]*",
    "[^b]",
    "[a-c]*",
    "[[:alpha:]]*",
    "[[:digit:]]",
    "\\!k",
    "\\#h",
    "\\[x]",
    "?.gz",
    "[",
    "[[:nope:]]",
    "***",
    "é*",
]


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=3))
    text = "/".join(parts)
    if draw(st.booleans()) and len(parts) == 1:
        text = "/" + text
    if draw(st.integers(0, 3)) == 0:
        text += "/"
    if draw(st.integers(0, 3)) == 0:
        text = "!" + text
    text += draw(st.sampled_from(["", "", "", " ", "\\ ", "\r"]))
    return text


ignore_files = st.lists(patterns(), min_size=0, max_size=6).map(lambda lines: "\n".join(lines) + "\n")
relative_dirs = st.lists(st.sampled_from(DIRS), min_size=0, max_size=3).map("/".join)


@st.composite
def repositories(draw: st.DrawFn) -> dict[str, object]:
    files = draw(
        st.lists(
            st.tuples(relative_dirs, st.sampled_from(NAMES)).map(
                lambda t: f"{t[0]}/{t[1]}" if t[0] else t[1]
            ),
            min_size=1,
            max_size=14,
        )
    )
    dirs = sorted({os.path.dirname(f) for f in files} | {""})
    gitignores = draw(st.dictionaries(st.sampled_from(dirs), ignore_files, max_size=3))
    return {
        "files": files,
        "empty_dirs": draw(st.lists(relative_dirs.filter(bool), max_size=2)),
        "gitignores": gitignores,
        "exclude": draw(ignore_files),
        "excludes_file": draw(st.one_of(st.none(), ignore_files)),
        "tracked": draw(st.lists(st.sampled_from(files), max_size=4)),
        "index_version": draw(st.sampled_from([2, 3, 4])),
        "subdirs": draw(st.lists(relative_dirs.filter(bool), max_size=2)),
    }


def build_repo(root: Path, spec: dict[str, object], home: Path) -> None:
    init(root)
    made: set[str] = set()
    for name in spec["files"]:  # type: ignore[attr-defined]
        path = root / name
        if any(str(p) in made for p in [path, *path.parents]) or path.is_dir():
            continue  # a name already used as a directory (or the other way round)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
            made.add(str(path))
        except (FileExistsError, NotADirectoryError):
            continue
    for name in spec["empty_dirs"]:  # type: ignore[attr-defined]
        with contextlib.suppress(FileExistsError, NotADirectoryError):
            (root / name).mkdir(parents=True, exist_ok=True)
    for directory, content in spec["gitignores"].items():  # type: ignore[attr-defined]
        target = root / directory
        if target.is_dir():
            (target / ".gitignore").write_text(content)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text(str(spec["exclude"]))
    config = home / "gitconfig"
    base = "[user]\n\tname = Test\n\temail = test@example.com\n"
    if spec["excludes_file"] is None:
        config.write_text(base)
    else:
        (home / "global-ignore").write_text(str(spec["excludes_file"]))
        config.write_text(base + f"[core]\n\texcludesFile = {home / 'global-ignore'}\n")
    tracked = [t for t in spec["tracked"] if (root / t).is_file()]  # type: ignore[attr-defined]
    if tracked:
        git(root, "add", "-f", "--", *tracked)
    git(root, "update-index", "--index-version", str(spec["index_version"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=repositories())
def test_random_repositories_match_git_and_skypilot(
    engine: str, spec: dict[str, object], pinned_git_environment: Path
) -> None:
    config = pinned_git_environment / "gitconfig"
    saved = config.read_bytes()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp) / "repo"
            build_repo(repo, spec, pinned_git_environment)
            check_repo(repo, spec["subdirs"])  # type: ignore[arg-type]
    finally:
        config.write_bytes(saved)  # the global config is shared with the other tests


@settings(max_examples=150, deadline=None)
@given(pattern=patterns(), name=st.sampled_from([*NAMES, *DIRS]), parent=relative_dirs)
def test_random_patterns_match_check_ignore(pattern: str, name: str, parent: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = init(Path(tmp) / "repo")
        (repo / ".gitignore").write_text(pattern + "\n")
        path = f"{parent}/{name}" if parent else name
        write(repo, {path: "x"})
        paths = all_paths(repo)
        ignore = GitIgnore(repo)
        assert {p for p, d in paths if ignore.is_ignored(p, d)} == git_check_ignore(
            repo, [p for p, _ in paths]
        )


# --- one rule each -------------------------------------------------------------------------


def listing(tmp_path: Path, files: dict[str, str], tracked: tuple[str, ...] = ()) -> list[str]:
    """Build a repository, check it against git and SkyPilot, return our listing."""
    repo = init(tmp_path / "repo")
    write(repo, files)
    if tracked:
        git(repo, "add", "-f", "--", *tracked)
        git(repo, "commit", "-q", "-m", "tracked")
    check_repo(repo, sorted({os.path.dirname(f.rstrip("/")) for f in files} - {""}))
    return ignored_paths(repo)


def test_nested_gitignore_applies_to_its_own_directory_and_below(engine: str, tmp_path: Path) -> None:
    files = {"a/.gitignore": "*.log\n", "a/x.log": "", "a/b/y.log": "", "z.log": "", "keep": ""}
    assert listing(tmp_path, files) == ["a/b/", "a/b/y.log", "a/x.log"]


def test_negation_reincludes_a_file(engine: str, tmp_path: Path) -> None:
    files = {".gitignore": "*.log\n!keep.log\n", "keep.log": "", "drop.log": ""}
    assert listing(tmp_path, files) == ["drop.log"]


def test_a_file_inside_an_excluded_directory_cannot_be_reincluded(engine: str, tmp_path: Path) -> None:
    files = {".gitignore": "build/\n!build/keep\n", "build/keep": "", "build/.gitignore": "!*\n", "t": ""}
    assert listing(tmp_path, files, tracked=("t",)) == ["build/"]
    assert GitIgnore(tmp_path / "repo").is_ignored("build/keep", False)


def test_directory_only_pattern_skips_files_and_symlinks(engine: str, tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {".gitignore": "out/\nlnk/\n", "out": "", "d/out/x": "", "d/keep": ""})
    os.symlink("d", repo / "lnk")
    check_repo(repo, ["d"])
    assert ignored_paths(repo) == ["d/out/"]


def test_slash_anchors_a_pattern_to_its_directory(engine: str, tmp_path: Path) -> None:
    files = {".gitignore": "/top.txt\nsub/mid.txt\n", "top.txt": "", "x/top.txt": "", "sub/mid.txt": ""}
    files["x/sub/mid.txt"] = ""
    assert listing(tmp_path, files) == ["sub/", "sub/mid.txt", "top.txt"]


def test_double_star_leading_trailing_and_middle(engine: str, tmp_path: Path) -> None:
    files = {".gitignore": "**/logs\na/**/z\nc/**\n", "p/logs/f": "", "a/z": "", "a/q/r/z": "", "c/d/e": ""}
    files["keep"] = ""
    assert listing(tmp_path, files, tracked=("keep",)) == [
        "a/",
        "a/q/",
        "a/q/r/",
        "a/q/r/z",
        "a/z",
        "c/",
        "c/d/",
        "p/",
        "p/logs/",
    ]


def test_escapes_for_bang_hash_and_trailing_space(engine: str, tmp_path: Path) -> None:
    files = {
        ".gitignore": "\\!bang\n\\#hash\nsp\\ \ntrail   \n",
        "!bang": "",
        "#hash": "",
        "sp ": "",
        "trail": "",
    }
    files["keep"] = ""
    assert listing(tmp_path, files, tracked=("keep",)) == ["!bang", "#hash", "sp ", "trail"]


def test_character_classes_and_ranges(engine: str, tmp_path: Path) -> None:
    files = {".gitignore": "[a-c]1\n[[:digit:]]x\n[!q]z\n", "b1": "", "d1": "", "7x": "", "qz": "", "rz": ""}
    assert listing(tmp_path, files) == ["7x", "b1", "rz"]


def test_unclosed_bracket_matches_nothing(engine: str, tmp_path: Path) -> None:
    assert listing(tmp_path, {".gitignore": "[ab\n", "[ab": "", "a": ""}) == []


def test_info_exclude_and_core_excludes_file(
    engine: str, tmp_path: Path, pinned_git_environment: Path
) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {"a.tmp": "", "b.bak": "", "c.bak": "", ".gitignore": "!c.bak\n"})
    (repo / ".git" / "info" / "exclude").write_text("*.tmp\n")
    (tmp_path / "global").write_text("*.bak\n")
    git(repo, "config", "core.excludesFile", str(tmp_path / "global"))
    check_repo(repo)
    assert ignored_paths(repo) == ["a.tmp", "b.bak"]


def test_default_excludes_file_is_xdg_git_ignore(
    engine: str, tmp_path: Path, pinned_git_environment: Path
) -> None:
    xdg = pinned_git_environment / "xdg" / "git"
    xdg.mkdir(parents=True, exist_ok=True)
    (xdg / "ignore").write_text("*.xdg\n")
    try:
        assert listing(tmp_path, {"a.xdg": "", "b": ""}) == ["a.xdg"]
    finally:
        (xdg / "ignore").unlink()


def test_tracked_files_are_never_listed(engine: str, tmp_path: Path) -> None:
    files = {".gitignore": "*.log\n", "tracked.log": "", "new.log": ""}
    assert listing(tmp_path, files, tracked=("tracked.log",)) == ["new.log"]
    assert GitIgnore(tmp_path / "repo").is_tracked("tracked.log")


@pytest.mark.parametrize("version", [2, 3, 4])
def test_every_index_version_is_read(engine: str, tmp_path: Path, version: int) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {".gitignore": "*.o\n", "dir/deep/a.o": "", "dir/deep/b.o": "", "dir/x.o": ""})
    git(repo, "add", "-f", "dir/deep/a.o", "dir/x.o")
    git(repo, "update-index", "--index-version", str(version))
    check_repo(repo, ["dir", "dir/deep"])
    assert GitIgnore(repo).index.files == {b"dir/deep/a.o", b"dir/x.o"}
    assert ignored_paths(repo) == ["dir/deep/b.o"]


@pytest.mark.parametrize("version", [2, 3, 4])
def test_gitlinks_are_the_indexs_mode_160000_entries(engine: str, tmp_path: Path, version: int) -> None:
    # Gitlinks made without any submodule checked out (git does not need one to record them).
    repo = init(tmp_path / "repo")
    write(repo, {"dir/file": "", "top": ""})
    git(repo, "add", "dir/file", "top")
    for path in ("dir/sub", "lib", "z/deeper/mod"):
        git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},{path}")
    git(repo, "update-index", "--index-version", str(version))
    by_git = {
        line.split(b"\t", 1)[1]
        for line in git(repo, "ls-files", "-s", "-z").split(b"\0")
        if line.startswith(b"160000 ")
    }
    assert by_git == {b"dir/sub", b"lib", b"z/deeper/mod"}
    assert GitIgnore(repo).gitlinks == by_git
    assert GitIgnore(repo / "dir").gitlinks == by_git  # the whole index, wherever the root is


def test_a_directory_whose_every_file_is_ignored_is_listed_with_its_files(
    engine: str, tmp_path: Path
) -> None:
    files = {".gitignore": "*.log\n", "logs/a.log": "", "logs/b.log": "", "mixed/a.log": "", "mixed/t": ""}
    assert listing(tmp_path, files) == ["logs/", "logs/a.log", "logs/b.log", "mixed/a.log"]


def test_an_empty_directory_is_not_ignored_content(engine: str, tmp_path: Path) -> None:
    files = {".gitignore": "*.log\n", "d/a.log": "", "d/empty/": ""}
    assert listing(tmp_path, files) == ["d/a.log"]


def test_root_that_git_ignores_entirely_lists_dot_slash(
    engine: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {".gitignore": "*.log\nskipped/\n", "sub/a.log": "", "skipped/x": ""})
    assert ignored_paths(repo / "sub") == git_listing(repo / "sub") == ["./", "a.log"]
    assert ignored_paths(repo / "skipped") == git_listing(repo / "skipped") == ["./"]
    with caplog.at_level(logging.WARNING, logger="sky_async.compat"):
        assert compat.get_excluded_files_from_gitignore(str(repo / "sub")) == []
    assert "ignores all of" in caplog.text
    assert skypilot_gitignore(repo / "sub") == []


def test_submodules_are_listed_with_their_path(engine: str, tmp_path: Path) -> None:
    inner = init(tmp_path / "inner")
    write(inner, {".gitignore": "*.o\n", "src": ""})
    git(inner, "add", ".")
    git(inner, "commit", "-q", "-m", "inner")
    repo = init(tmp_path / "repo")
    write(repo, {".gitignore": "*.tmp\n", "x.tmp": ""})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "mod")
    write(repo, {"mod/y.o": "", "mod/z.tmp": ""})
    got = compat.get_excluded_files_from_gitignore(str(repo))
    assert got == skypilot_gitignore(repo) == ["x.tmp", "mod/y.o"]


def test_an_untracked_nested_repository_is_not_entered(engine: str, tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {".gitignore": "*.log\nignored-nest/\n", "a.log": ""})
    init(repo / "nest")
    init(repo / "ignored-nest")
    write(repo, {"nest/b.log": "", "ignored-nest/c": ""})
    check_repo(repo)
    assert ignored_paths(repo) == ["a.log", "ignored-nest/"]


def test_fifos_are_never_listed(engine: str, tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {".gitignore": "*\n"})
    os.mkfifo(repo / "pipe")
    assert ignored_paths(repo) == git_listing(repo) == [".gitignore"]


def test_outside_a_repository(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, {"plain/.gitignore": "*\n", "plain/a": ""})
    with pytest.raises(NotAGitRepository):
        GitIgnore(tmp_path / "plain")
    with caplog.at_level(logging.WARNING, logger="sky_async.compat"):
        assert compat.get_excluded_files_from_gitignore(str(tmp_path / "plain")) == []
    assert "not in a git repository" in caplog.text
    assert skypilot_gitignore(tmp_path / "plain") == []


def test_missing_directory_raises_as_skypilot_does(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as ours:
        compat.get_excluded_files_from_gitignore(str(tmp_path / "missing"))
    with pytest.raises(subprocess.CalledProcessError) as theirs:
        skypilot_gitignore(tmp_path / "missing")
    assert ours.value.returncode == theirs.value.returncode == 128
    for fn in (compat.get_excluded_files, sky_storage.get_excluded_files):
        with pytest.raises(ValueError, match="does not exist"):
            fn(str(tmp_path / "missing"))


def test_get_excluded_files_prefers_skyignore(tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {".gitignore": "*.log\n", ".skyignore": "*.tmp\n", "a.log": "", "b.tmp": ""})
    assert compat.get_excluded_files(str(repo)) == sky_storage.get_excluded_files(str(repo)) == ["b.tmp"]


def test_parse_trims_as_git_does() -> None:
    lines = [p.text for p in parse(b"\xef\xbb\xbfa \n# c\n\nb\\ \\ \nc\\\n d\r\n")]
    assert lines == ["a", "b\\ \\ ", "c\\", " d"]


def test_the_module_is_a_leaf_importing_only_the_shared_argument_checks() -> None:
    from test_import_graph import LEAVES, import_graph

    assert import_graph()["sky_async._upload.gitignore"] == {"sky_async._checks"}
    assert "sky_async._checks" in LEAVES  # leaves may import leaves (as _batch does)
    assert _gitignore.GIT_IGNORE_FILE == ".gitignore"


def test_below_an_excluded_directory_git_itself_fails(engine: str, tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {".gitignore": "b/\n", "b/c/a": ""})
    with pytest.raises(subprocess.CalledProcessError):
        git_listing(repo / "b" / "c")
    with pytest.raises(_gitignore.GitListingError):
        ignored_paths(repo / "b" / "c")
    for fn in (compat.get_excluded_files_from_gitignore, sky_storage.get_excluded_files_from_gitignore):
        with pytest.raises(subprocess.CalledProcessError) as raised:
            fn(str(repo / "b" / "c"))
        assert raised.value.returncode == 128


# --- depth ---------------------------------------------------------------------------------

CHAIN_DEPTH = 3_000


def make_chain(top: Path, depth: int, beside: dict[int, str]) -> None:
    """top/d/d/.../d, *depth* levels (deeper than a path can name: ``mkdir -p`` goes down
    step by step); *beside* maps a level to a file to create in it (``name`` or ``dir/name``),
    reached through descriptors, a thousand levels at a time."""
    subprocess.run(["mkdir", "-p", "/".join(["d"] * depth)], cwd=top, check=True)
    for level, name in beside.items():
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for start in range(0, level, 1000):
                steps = "/".join(["d"] * min(1000, level - start))
                child = os.open(steps, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = child
            if "/" in name:
                os.mkdir(name.split("/")[0], dir_fd=fd)
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT, dir_fd=fd))
        finally:
            os.close(fd)


@contextlib.contextmanager
def chain_parent(tmp_path: Path) -> Iterator[Path]:
    """A directory for a deep chain: in /dev/shm when it is there (on a disk, making and
    removing 3,000 directories takes seconds), *tmp_path* otherwise. Removed with ``rm -rf``
    (shutil.rmtree recurses once a level)."""
    shm = Path("/dev/shm")
    parent = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    try:
        yield parent
    finally:
        subprocess.run(["rm", "-rf", "--", str(parent / "repo")], check=True)
        if parent != tmp_path:
            parent.rmdir()


def test_a_chain_deeper_than_the_recursion_limit(engine: str, tmp_path: Path) -> None:
    """3,000 levels: an ignored directory in the middle, an ignored file below the recursion
    limit and one at the bottom. Past PATH_MAX neither git nor the walk can open a directory
    (git warns "could not open directory" and counts it as empty, as the walk does), so the
    bottom file is in neither listing; that it is ignored is checked on the rules."""
    assert sys.getrecursionlimit() < CHAIN_DEPTH
    with chain_parent(tmp_path) as parent:
        repo = init(parent / "repo")
        (repo / ".gitignore").write_text("mid/\n*.log\n")
        make_chain(repo, CHAIN_DEPTH, {1500: "mid/x", 1800: "deep.log", CHAIN_DEPTH: "bottom.log"})
        expected = ["d/" * 1800 + "deep.log", "d/" * 1500 + "mid/"]  # by bytes: "d" < "m"
        assert ignored_paths(repo) == expected
        assert git_listing(repo) == expected
        ignore = GitIgnore(repo)
        assert ignore.is_ignored("d/" * CHAIN_DEPTH + "bottom.log", False)
        assert ignore.is_ignored("d/" * 1500 + "mid/x", False)
        assert not ignore.is_ignored("d/" * CHAIN_DEPTH + "keep", False)


# --- the engines ---------------------------------------------------------------------------


def test_a_bad_index_is_the_same_error_on_both_engines(engine: str, tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {"a.log": ""})
    index = repo / ".git" / "index"
    index.write_bytes(b"NOPE" + bytes(8))
    with pytest.raises(ValueError, match="not a git index"):
        ignored_paths(repo)
    index.write_bytes(b"DIRC" + (9).to_bytes(4, "big") + bytes(4))
    with pytest.raises(ValueError, match="index version 9 is not supported"):
        ignored_paths(repo)


@pytest.mark.parametrize("version", [2, 4])
def test_a_truncated_index_is_not_a_git_index_on_both_engines(
    engine: str, tmp_path: Path, version: int
) -> None:
    repo = init(tmp_path / "repo")
    write(repo, {"dir/tracked.txt": "", "dir/other.txt": "", "top.txt": "", "b.log": ""})
    (repo / ".gitignore").write_text("*.log\n")
    subprocess.run(["git", "-C", str(repo), "add", "dir", "top.txt"], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(repo), "update-index", f"--index-version={version}"], check=True)
    index = repo / ".git" / "index"
    whole = index.read_bytes()
    for cut in range(12, len(whole) - 20):  # every cut after the header, before the checksum
        index.write_bytes(whole[:cut])
        try:
            listed = ignored_paths(repo)
        except ValueError as exc:
            assert "not a git index" in str(exc), (cut, exc)
        else:  # a cut after the last entry: the entries are whole
            assert listed == ["b.log"], cut


def test_an_index_that_cannot_be_read_is_an_oserror_with_its_path(engine: str, tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    index = repo / ".git" / "index"
    index.mkdir()
    with pytest.raises(IsADirectoryError) as raised:
        ignored_paths(repo)
    assert raised.value.errno == errno.EISDIR
    assert raised.value.filename == str(index)


def test_a_name_that_is_not_utf8_is_listed_as_os_fsdecode_gives_it(engine: str, tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    (repo / ".gitignore").write_bytes(b"*.log\n")
    name = os.fsdecode(b"caf\xe9.log")
    (repo / name).write_text("")
    assert ignored_paths(repo) == git_listing(repo) == [name]


@pytest.mark.parametrize("backend", ["native", "python"])
def test_the_native_engine_lists_when_the_native_backend_is_in_use(backend: str) -> None:
    if backend == "native":
        require_native()
    code = (
        "import sky_async\n"
        "from sky_async._upload import gitignore\n"
        "print(sky_async.get_backend_info()['backend'], gitignore.native_engine() is not None)\n"
    )
    result = run_python(code, env=clean_env(SKY_ASYNC_BACKEND=backend, PYTHONPATH=os.pathsep.join(sys.path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [backend, str(backend == "native")]
