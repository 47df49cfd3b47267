"""``sky-async preflight``: counts, problems, verdicts, manifests, mounts, JSON and the progress bar."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sky_async
from conftest import clean_env
from sky_async import scan, sync
from sky_async.cli import main
from sky_async.cli._common import explain
from sky_async.cli.preflight import EXCLUDED_SHOWN, HASH_ERROR, PROBLEM_LABELS, parse_size

# The package under test, whatever the working directory of the child (PYTHONPATH may be relative).
PACKAGE_ROOT = str(Path(sky_async.__file__).resolve().parent.parent)


def child_env(**overrides: str) -> dict[str, str]:
    return clean_env(PYTHONPATH=PACKAGE_ROOT, **overrides)


def run_cli(*args: str, cwd: Path | None = None, backend: str = "native") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sky_async", "preflight", *args],
        env=child_env(SKY_ASYNC_BACKEND=backend),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(params=["native", "python"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clean_tree(tmp_path: Path) -> Path:
    root = tmp_path / "clean"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    (root / "sub" / "deeper" / "c").write_bytes(b"")
    (root / "link").symlink_to("a.txt")
    return root


@pytest.fixture
def messy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "messy"
    (root / "sub").mkdir(parents=True)
    (root / "ok").write_bytes(b"fine")
    (root / "big").write_bytes(b"\0" * 3_000_000)
    (root / "broken").symlink_to("nowhere")
    (root / "sub" / "up").symlink_to("..")
    os.mkfifo(root / "fifo")
    with open(os.path.join(os.fsencode(root), b"bad\xffname"), "wb") as file:
        file.write(b"x")
    return root


def test_every_problem_kind_has_a_label_and_the_kinds_come_from_the_scan() -> None:
    # scan.PROBLEM_KINDS is the one list of kinds in Python; preflight only adds its own.
    assert set(PROBLEM_LABELS) == {*scan.PROBLEM_KINDS, HASH_ERROR}
    assert HASH_ERROR not in scan.PROBLEM_KINDS


def test_clean_tree_reports_counts_and_exits_zero(clean_tree: Path, backend: str) -> None:
    done = run_cli("--json", str(clean_tree), backend=backend)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["schema"] == "sky-async.preflight/1"
    (tree,) = report["trees"]
    assert (tree["files"], tree["directories"], tree["symlinks"], tree["special_files"]) == (3, 2, 1, 0)
    assert tree["bytes"] == 6 + 70_000
    assert tree["largest"][0] == {"path": str(clean_tree / "sub" / "b.bin"), "size": 70_000}
    assert tree["problems"] == []
    assert report["problems_found"] is False
    assert report["exit_status"] == 0
    assert report["resources"]["verdict"] in ("ok", "low")
    # SkyPilot's estimate: 5 per top-level entry (a.txt, sub, link).
    assert tree["fd_estimate"] == 15


def test_every_kind_of_problem_is_reported_and_exits_one(messy_tree: Path, backend: str) -> None:
    done = run_cli("--json", "--max-file-size", "1M", str(messy_tree), backend=backend)
    assert done.returncode == 1, done.stderr
    (tree,) = json.loads(done.stdout)["trees"]
    kinds = {(p["kind"], os.path.basename(p["path"])) for p in tree["problems"]}
    # sub/up -> .. is copied as a link (rsync -a): no problem unless links are followed.
    assert kinds == {
        ("too_large", "big"),
        ("broken_symlink", "broken"),
        ("special_file", "fifo"),
        ("invalid_utf8_name", os.fsdecode(b"bad\xffname")),
    }
    text = run_cli("--max-file-size", "1M", "-q", str(messy_tree), backend=backend)
    assert text.returncode == 1
    assert "bad\\xffname" in text.stdout  # escaped, not mojibake
    assert "verdict: 4 problem(s) found" in text.stdout


def test_a_link_to_an_ancestor_is_a_problem_only_when_links_are_followed(
    tmp_path: Path, backend: str
) -> None:
    root = tmp_path / "usr"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    (root / "bin" / "X11").symlink_to(".")  # as Debian's /usr/bin/X11
    plain = run_cli("--json", str(root), backend=backend)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert json.loads(plain.stdout)["trees"][0]["problems"] == []
    followed = run_cli("--json", "--follow-symlinks", str(root), backend=backend)
    assert followed.returncode == 1, followed.stderr
    (problem,) = json.loads(followed.stdout)["trees"][0]["problems"]
    assert (problem["kind"], problem["path"]) == ("symlink_loop", str(root / "bin" / "X11"))


def test_manifest_verifies_with_sha256sum(clean_tree: Path, tmp_path: Path, backend: str) -> None:
    with open(os.path.join(os.fsencode(clean_tree), b"odd\xff name\nwith newline"), "wb") as file:
        file.write(b"odd")
    manifest = tmp_path / "tree.sha256"
    done = run_cli("--manifest", str(manifest), "clean", cwd=tmp_path, backend=backend)
    assert done.returncode == 1  # the odd name is a problem for a mount, yet it is hashed
    lines = manifest.read_bytes().splitlines()
    assert len(lines) == 4
    check = subprocess.run(["sha256sum", "-c", "--strict", str(manifest)], cwd=tmp_path, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(b": OK") == 4


def test_hash_with_md5_verifies_with_md5sum(clean_tree: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "tree.md5"
    done = run_cli("--hash", "md5", "--manifest", str(manifest), str(clean_tree))
    assert done.returncode == 0, done.stderr
    assert "hashed: 3 files with md5" in done.stdout
    assert subprocess.run(["md5sum", "-c", "--quiet", str(manifest)], capture_output=True).returncode == 0


@pytest.mark.parametrize("output", [[], ["--json"]], ids=["text", "json"])
def test_a_path_that_does_not_exist_exits_two_naming_it_as_coreutils_do(
    clean_tree: Path, tmp_path: Path, backend: str, output: list[str]
) -> None:
    missing = [str(tmp_path / "nope"), str(tmp_path / "a:b"), str(clean_tree / "a.txt" / "under-a-file")]
    manifest = tmp_path / "m"
    done = run_cli(
        *output, "--manifest", str(manifest), missing[0], str(clean_tree), *missing[1:], backend=backend
    )
    sha256sum = subprocess.run(["sha256sum", *missing], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.replace("sky-async:", "P:") == sha256sum.stderr.replace("sha256sum:", "P:")
    assert not manifest.exists()  # nothing written: no empty manifest to verify as "ok"


def test_a_mounts_source_that_does_not_exist_exits_two(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "mounts.json"
    path.write_text(json.dumps({"/remote": str(tmp_path / "gone")}))
    done = run_cli("--mounts", str(path), backend=backend)
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"sky-async: {tmp_path}/gone: No such file or directory\n",
    )


# preflight with entries of its tree vanishing on cue (tests/python/vanishing.py).
VANISHING_PREFLIGHT = """
import sys
sys.path.insert(0, sys.argv[1])
from vanishing import vanishing
from sky_async.cli import main
from sky_async.cli._common import explain
backend, root, *args = sys.argv[2:]
with vanishing(backend, {root + "/sub/b.bin": "remove", root + "/sub/deeper": "remove"}):
    status = main(["preflight", *args, root])
sys.exit(status)
"""


def test_entries_vanishing_during_the_scan_are_counted_and_exit_zero(tmp_path: Path, backend: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        root = tmp_path / "changing"
        (root / "sub" / "deeper").mkdir(parents=True)
        (root / "a.txt").write_bytes(b"alpha\n")
        (root / "sub" / "b.bin").write_bytes(b"b" * 1000)
        (root / "sub" / "deeper" / "c").write_bytes(b"")
        (root / "link").symlink_to("a.txt")
        try:
            return subprocess.run(
                [
                    sys.executable,
                    "-c",
                    VANISHING_PREFLIGHT,
                    str(Path(__file__).parent),
                    backend,
                    str(root),
                    *args,
                ],
                env=clean_env(SKY_ASYNC_BACKEND=backend),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            shutil.rmtree(root)

    done = run("--json", "--hash", "sha256")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    (tree,) = report["trees"]
    assert (tree["files"], tree["directories"], tree["symlinks"], tree["vanished"]) == (1, 1, 1, 2)
    assert tree["problems"] == []
    assert report["totals"]["vanished"] == 2
    assert report["totals"]["problems"] == 0
    assert (report["hash"]["files"], report["hash"]["failed"]) == (1, 0)
    assert report["exit_status"] == 0
    text = run("-q")
    assert text.returncode == 0, text.stdout + text.stderr
    assert "  vanished       2 (removed or replaced during the scan: not problems)\n" in text.stdout
    assert "  problems       none\n" in text.stdout
    assert "verdict: ready (no problems found)" in text.stdout


def test_default_path_is_the_current_directory(clean_tree: Path) -> None:
    done = run_cli("--json", cwd=clean_tree)
    assert done.returncode == 0
    assert json.loads(done.stdout)["trees"][0]["path"] == "."


def test_follow_symlinks_descends_into_linked_directories(tmp_path: Path, clean_tree: Path) -> None:
    root = tmp_path / "outer"
    root.mkdir()
    (root / "in").symlink_to(clean_tree)
    plain = json.loads(run_cli("--json", str(root)).stdout)["trees"][0]
    followed = json.loads(run_cli("--json", "--follow-symlinks", str(root)).stdout)["trees"][0]
    assert plain["files"] == 0
    assert followed["files"] >= 3


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_mounts_file_prints_the_digest_skypilot_would_compute(
    clean_tree: Path, tmp_path: Path, suffix: str
) -> None:
    mounts = {
        "/remote/data": str(clean_tree),
        "/remote/one": str(clean_tree / "a.txt"),
        "/remote/s3": "s3://bucket",
    }
    path = tmp_path / f"mounts.{suffix}"
    if suffix == "json":
        path.write_text(json.dumps(mounts))
    else:
        path.write_text("file_mounts:\n" + "".join(f"  {k}: {v}\n" for k, v in mounts.items()))
    done = run_cli("--json", "--mounts", str(path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mounts"]["digest"] == sync.file_mounts_digest(mounts)
    assert report["mounts"]["skipped_sources"] == ["s3://bucket"]
    assert [tree["path"] for tree in report["trees"]] == [str(clean_tree), str(clean_tree / "a.txt")]
    text = run_cli("--mounts", str(path))
    assert f"mounts digest: {sync.file_mounts_digest(mounts)}" in text.stdout


def test_mounts_with_a_broken_symlink_give_a_clear_error_not_a_traceback(
    messy_tree: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mounts.json"
    path.write_text(json.dumps({"/remote": str(messy_tree)}))
    done = run_cli("--mounts", str(path))
    assert done.returncode == 1
    broken = messy_tree / "broken"
    assert f"mounts digest: cannot compute: {broken}: 2 file mount paths cannot be hashed" in done.stdout
    assert "Errno" not in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--max-file-size", "12Q"],
        ["--max-file-size", "0"],
        ["--hash", "crc32"],
        ["--largest", "-1"],
        ["--bogus"],
    ],
)
def test_usage_errors_exit_two_with_one_clear_line(clean_tree: Path, args: list[str]) -> None:
    done = run_cli(*args, str(clean_tree))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("sky-async")


def test_bad_mounts_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "mounts.json"
    path.write_text('["not", "a", "mapping"]')
    done = run_cli("--mounts", str(path))
    assert done.returncode == 2
    assert "expected a mapping" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("text", "size"),
    [("1000", 1000), ("512K", 512 * 1024), ("100M", 100 * 1024**2), ("2G", 2 * 1024**3), ("1.5KiB", 1536)],
)
def test_sizes_parse_with_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_in_process_call_returns_the_exit_status(
    clean_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preflight", "-q", str(clean_tree)]) == 0
    assert "verdict: ready (no problems found)" in capsys.readouterr().out


def test_progress_bar_is_drawn_on_a_terminal_and_not_otherwise(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for index in range(3000):
        (root / f"f{index}").write_bytes(b"x" * 100)
    piped = run_cli("--hash", "sha256", str(root))
    assert "hashing [" not in piped.stderr and "scanning" not in piped.stderr

    # A pseudo-terminal as stderr (stdout stays a pipe): the bar is drawn with carriage returns
    # and erased before the summary.
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "sky_async", "preflight", "--hash", "sha256", str(root)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out, _ = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 0
    assert b"\r" in seen
    assert b"scanning" in seen or b"hashing [" in seen
    assert b"verdict: ready" in out


def test_socket_in_a_tree_is_a_special_file(tmp_path: Path) -> None:
    root = tmp_path / "sock"
    root.mkdir()
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(root / "s"))
        report: dict[str, Any] = json.loads(run_cli("--json", str(root)).stdout)
    finally:
        server.close()
    assert report["trees"][0]["problem_counts"]["special_file"] == 1
    assert report["exit_status"] == 1


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("deep.yaml", b"a: " + b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        ("latin1.json", b'{"/remote": "caf\xe9"}', "not UTF-8 (byte 0xe9 at offset 16)"),
        ("bad.yaml", b"a: [1, 2\nb: c\n", "not valid JSON or YAML: while parsing a flow sequence"),
        ("missing.json", None, "No such file or directory"),
    ],
    ids=["deep-json", "deep-yaml", "not-utf8", "bad-yaml", "missing"],
)
def test_a_bad_mounts_file_is_one_line_naming_it_and_exits_two(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    done = run_cli("--mounts", str(path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"sky-async: {path}: {reason}"), done.stderr
    assert done.stderr.count("\n") == 1


def test_a_yaml_mounts_file_without_pyyaml_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mounts.yaml"
    path.write_text("/remote: ~/data\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    assert main(["preflight", "--mounts", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err
        == f"sky-async: {path}: not JSON, and reading YAML needs PyYAML: pip install 'sky-async[yaml]'\n"
    )
    # The repository's, beside these tests: the package may be installed elsewhere (CI's venv).
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '\nyaml = ["pyyaml' in pyproject  # the extra named is the one the package declares


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (FileNotFoundError(2, "No such file or directory", "/x"), "/x: No such file or directory"),
        (OSError(18, "Invalid cross-device link", "a b", None, "c"), "'a b' -> c: Invalid cross-device link"),
        (OSError(5, "Input/output error"), "Input/output error"),
        (ValueError("m: bad"), "m: bad"),
    ],
)
def test_errors_are_worded_as_coreutils_word_them(error: BaseException, line: str) -> None:
    assert explain(error) == line


def test_a_manifest_that_cannot_be_written_is_one_line_naming_it(clean_tree: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "missing dir" / "m"
    done = run_cli("-q", "--manifest", str(manifest), str(clean_tree))
    assert (done.returncode, done.stderr) == (2, f"sky-async: '{manifest}': No such file or directory\n")


def test_the_report_names_each_special_file_kind(tmp_path: Path, backend: str) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(root / "sock"))
        done = run_cli("-q", str(root), "/dev/null", backend=backend)
    assert done.returncode == 1, done.stderr
    assert f"    special file          {root}/fifo (FIFO)\n" in done.stdout
    assert f"    special file          {root}/sock (socket)\n" in done.stdout
    assert "    special file          /dev/null (character device)\n" in done.stdout


@pytest.mark.parametrize(
    ("size", "limit", "shown"),
    [
        (20 * 1024**3, "1G", "20 GiB over the 1 GiB limit"),
        (1536, "1K", "1.5 KiB over the 1 KiB limit"),
        (1025, "1K", "1,025 B over the 1,024 B limit"),  # both would read "1 KiB"
        (3000, "2000", "2.9 KiB over the 2 KiB limit"),  # 2000 B rounds to 2.0 KiB, as ls -h
    ],
)
def test_the_report_says_how_far_over_the_limit_a_file_is(
    tmp_path: Path, backend: str, size: int, limit: str, shown: str
) -> None:
    with open(tmp_path / "big", "wb") as file:
        file.truncate(size)  # sparse: nothing written
    done = run_cli("-q", "--max-file-size", limit, str(tmp_path), backend=backend)
    assert done.returncode == 1, done.stderr
    assert f"    file too large        {tmp_path}/big ({shown})\n" in done.stdout


# --ignore MODE: a tree with an excluded directory (files and a FIFO below it), excluded files
# and kept ones, and the ignore files each mode reads. Each mode's expected exclusions, as
# (relative path, rule source, line, pattern): what the rules say, not counts.
IGNORE_TREES: dict[str, dict[str, bytes]] = {
    "skyignore": {".skyignore": b"build\n*.log\n"},
    # SkyPilot's choice: the .skyignore when there is one, so the .gitignore is not applied.
    "skypilot": {".skyignore": b"build\n*.log\n", ".gitignore": b"keep.txt\n"},
    "git": {".gitignore": b"build/\n*.log\n"},
    "rsync": {".skyignore": b"build\n*.log\n", "sub/.skyignore": b"tmp/\n"},
}
IGNORE_EXCLUDED: dict[str, list[tuple[str, str, int, str]]] = {
    "skyignore": [
        ("build/", ".skyignore", 1, "build"),
        ("debug.log", ".skyignore", 2, "*.log"),
        ("sub/other.log", ".skyignore", 2, "*.log"),
    ],
    "skypilot": [
        ("build/", ".skyignore", 1, "build"),
        ("debug.log", ".skyignore", 2, "*.log"),
        ("sub/other.log", ".skyignore", 2, "*.log"),
    ],
    "git": [
        ("build/", ".gitignore", 1, "build/"),
        ("debug.log", ".gitignore", 2, "*.log"),
        ("sub/other.log", ".gitignore", 2, "*.log"),
    ],
    "rsync": [
        ("build/", ".skyignore", 1, "build"),
        ("debug.log", ".skyignore", 2, "*.log"),
        ("sub/other.log", ".skyignore", 2, "*.log"),
        ("sub/tmp/", "sub/.skyignore", 1, "tmp/"),
    ],
}


def ignore_tree(parent: Path, mode: str) -> Path:
    root = parent / mode
    (root / "build" / "obj").mkdir(parents=True)
    (root / "build" / "obj" / "a.o").write_bytes(b"o" * 5000)
    (root / "build" / "out.bin").write_bytes(b"b" * 300)
    os.mkfifo(root / "build" / "obj" / "pipe")
    (root / "sub" / "tmp").mkdir(parents=True)
    (root / "sub" / "tmp" / "t").write_bytes(b"t" * 40)
    (root / "sub" / "keep2.txt").write_bytes(b"kept too\n")
    (root / "sub" / "other.log").write_bytes(b"log" * 100)
    (root / "debug.log").write_bytes(b"log" * 10)
    (root / "keep.txt").write_bytes(b"kept\n")
    (root / "link").symlink_to("keep.txt")
    for name, content in IGNORE_TREES[mode].items():
        (root / name).write_bytes(content)
    if mode in ("git", "skypilot"):
        subprocess.run(["git", "init", "-q", str(root)], check=True, capture_output=True, timeout=60)
    return root


def without(root: Path, excluded: list[str], destination: Path) -> Path:
    """The oracle: a copy of *root* without the *excluded* paths (relative, "/" for a directory)."""
    skip = {str(root / relative.rstrip("/")) for relative in excluded}
    shutil.copytree(
        root,
        destination,
        symlinks=True,
        ignore=lambda directory, names: [name for name in names if os.path.join(directory, name) in skip],
    )
    return destination


@pytest.mark.parametrize("mode", list(IGNORE_TREES))
def test_ignore_leaves_out_what_the_rules_exclude(tmp_path: Path, backend: str, mode: str) -> None:
    root = ignore_tree(tmp_path, mode)
    expected = IGNORE_EXCLUDED[mode]
    relative = [path for path, *_ in expected]
    copy = without(root, relative, tmp_path / "oracle")
    manifest = tmp_path / "kept.sha256"

    done = run_cli("--json", "--manifest", str(manifest), "--ignore", mode, str(root), backend=backend)
    assert done.returncode == 0, done.stdout + done.stderr  # the FIFO is below an excluded directory
    (tree,) = json.loads(done.stdout)["trees"]
    oracle = run_cli("--json", str(copy), backend=backend)
    assert oracle.returncode == 0, oracle.stdout + oracle.stderr
    (want,) = json.loads(oracle.stdout)["trees"]
    for key in ("files", "directories", "symlinks", "special_files", "bytes"):
        assert tree[key] == want[key], key
    assert tree["problems"] == []
    assert tree["excluded"] == [
        {"path": str(root / path.rstrip("/")), "source": source, "line": line, "pattern": pattern}
        for path, source, line, pattern in expected
    ]
    assert "excluded" not in want  # only with --ignore

    # The manifest covers exactly the kept files, the oracle's regular files.
    kept = sorted(
        os.path.join(directory, name)
        for directory, _, names in os.walk(copy)
        for name in names
        if (Path(directory) / name).is_file() and not (Path(directory) / name).is_symlink()
    )
    digests = {
        str(root / os.path.relpath(path, copy)): hashlib.sha256(Path(path).read_bytes()).hexdigest()
        for path in kept
    }
    listed = {
        name: digest for digest, name in (line.split("  ", 1) for line in manifest.read_text().splitlines())
    }
    assert listed == digests

    text = run_cli("-q", "--ignore", mode, str(root), backend=backend)
    assert text.returncode == 0, text.stdout + text.stderr
    lines = "".join(f"    {path} excluded by {source}:{line}\n" for path, source, line, _ in expected)
    assert (
        f"  excluded       {len(expected)} path(s), not counted\n{lines}  problems       none\n"
        in text.stdout
    )

    # Without --ignore, the excluded directory is walked: its FIFO is a problem.
    plain = run_cli("-q", str(root), backend=backend)
    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert f"    special file          {root}/build/obj/pipe (FIFO)\n" in plain.stdout
    assert "excluded" not in plain.stdout


def test_the_report_lists_the_first_excluded_paths_and_counts_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    (root / ".skyignore").write_bytes(b"*.tmp\n")
    names = [f"f{index:02}.tmp" for index in range(EXCLUDED_SHOWN + 3)]
    for name in names:
        (root / name).write_bytes(b"x")
    done = run_cli("-q", "--ignore", "skyignore", str(root))
    assert done.returncode == 0, done.stderr
    shown = "".join(f"    {name} excluded by .skyignore:1\n" for name in names[:EXCLUDED_SHOWN])
    assert (
        f"  excluded       {len(names)} path(s), not counted\n{shown}    ... and 3 more (see --json)\n"
        in (done.stdout)
    )
    report = json.loads(run_cli("--json", "--ignore", "skyignore", str(root)).stdout)
    assert [item["path"] for item in report["trees"][0]["excluded"]] == [str(root / n) for n in names]


def test_ignore_with_nothing_to_exclude_says_so(clean_tree: Path) -> None:
    done = run_cli("-q", "--ignore", "skyignore", str(clean_tree))
    assert done.returncode == 0, done.stderr
    assert "  excluded       nothing\n" in done.stdout
    assert (
        json.loads(run_cli("--json", "--ignore", "git", str(clean_tree)).stdout)["trees"][0]["excluded"] == []
    )


@pytest.mark.parametrize("mode", ["skyignore", "skypilot"])
def test_a_skyignore_that_is_not_utf8_is_one_line_and_exits_two(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / ".skyignore").write_bytes(b"ok\ncaf\xe9\n")
    manifest = tmp_path / "m"
    done = run_cli("--manifest", str(manifest), "--ignore", mode, str(root))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"sky-async: {root}/.skyignore: not UTF-8 (byte 0xe9 at offset 6)\n"
    assert not manifest.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ignore", "svn"],
            "sky-async preflight: error: argument --ignore: invalid choice: 'svn'"
            " (choose from 'skypilot', 'git', 'skyignore', 'rsync')",
        ),
        (
            ["--ignore", "git", "--skypilot"],
            "sky-async preflight: --ignore is for the plain report: --skypilot applies SkyPilot's own rules",
        ),
    ],
    ids=["bad-value", "with-skypilot"],
)
def test_ignore_usage_errors_exit_two(clean_tree: Path, args: list[str], message: str) -> None:
    done = run_cli(*args, str(clean_tree))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == message


def test_git_unable_to_list_the_exclusions_is_one_line_and_exits_two(tmp_path: Path) -> None:
    # A root inside a directory the repository ignores: git ls-files stops with an internal error.
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, capture_output=True, timeout=60)
    (repo / ".gitignore").write_bytes(b"ignored/\n")
    root = repo / "ignored" / "tree"
    root.mkdir(parents=True)
    (root / "f").write_bytes(b"x")
    manifest = tmp_path / "m"
    done = run_cli("--manifest", str(manifest), "--ignore", "git", str(root))
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.startswith(f"sky-async: {root}: --ignore git: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not manifest.exists()
