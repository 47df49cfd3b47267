"""The ``sky-async`` command line: hash, hash -r, hash -c against coreutils, sysinfo, --version, errors.

Most cases run the real program (``python -m sky_async``, PYTHONPATH inherited) on
each backend; some call ``cli.main`` in-process. ``hash -c`` is compared with the real
``sha256sum -c`` / ``md5sum -c`` on the same manifests: stdout, exit status, and stderr
with the program name replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sky_async
from conftest import BACKENDS, require_native
from sky_async import cli
from sky_async._system import python as system

# The package under test, whatever the working directory of the child (PYTHONPATH may be relative).
PACKAGE_ROOT = str(Path(sky_async.__file__).resolve().parent.parent)
needs_coreutils = pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum missing")


@pytest.fixture(params=BACKENDS)
def cli_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "native":
        require_native()
    env = dict(os.environ)
    env["SKY_ASYNC_BACKEND"] = request.param
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, "-m", "sky_async", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def run_tool(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, timeout=60, check=False)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "a").write_bytes(b"alpha\n")
    (tmp_path / "b").write_bytes(b"beta" * 50000)
    (tmp_path / "we\\ird").write_bytes(b"backslash")
    (tmp_path / "new\nline").write_bytes(b"newline")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "dir/sub").mkdir(parents=True)
    (tmp_path / "dir/x").write_bytes(b"x")
    (tmp_path / "dir/sub/y").write_bytes(b"y")
    return tmp_path


# --- hash ------------------------------------------------------------------------------------------


@needs_coreutils
def test_hash_prints_what_sha256sum_prints(cli_env: dict[str, str], files: Path) -> None:
    names = ["a", "b", "we\\ird", "new\nline", "empty"]
    ours = run_cli("hash", *names, env=cli_env, cwd=files)
    theirs = run_tool("sha256sum", *names, cwd=files)
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, theirs.stdout, b"")


@needs_coreutils
def test_hash_with_algorithm_prints_what_md5sum_prints(cli_env: dict[str, str], files: Path) -> None:
    ours = run_cli("hash", "-a", "md5", "a", "b", env=cli_env, cwd=files)
    assert ours.stdout == run_tool("md5sum", "a", "b", cwd=files).stdout


@needs_coreutils
def test_hash_recursive_lists_in_byte_order_as_find_and_sort(cli_env: dict[str, str], files: Path) -> None:
    # Names that sort differently per directory, by code point and by byte (non-UTF-8, é).
    for name in (b"dir/sub-x", b"dir/sub/\xff", b"dir/\xc3\xa9", b"dir/\x80", b"dir/B", b"dir/a"):
        with open(os.path.join(os.fsencode(files), name), "wb") as file:
            file.write(name)
    (files / "dir/link").symlink_to("x")
    listed = run_tool("find", "dir", "!", "-type", "d", cwd=files).stdout.splitlines()
    expected = run_tool("sha256sum", "--", *map(os.fsdecode, sorted(listed)), cwd=files).stdout
    result = run_cli("hash", "-r", "dir", env=cli_env, cwd=files)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, b"")


def test_hash_recursive_reports_a_fifo_in_the_tree_without_reading_it(
    cli_env: dict[str, str], files: Path
) -> None:
    os.mkfifo(files / "dir/fifo")
    result = run_cli("hash", "-r", "dir", env=cli_env, cwd=files)
    assert result.returncode == 1
    assert result.stdout.decode() == f"{sha256(b'y')}  dir/sub/y\n{sha256(b'x')}  dir/x\n"
    assert result.stderr == b"sky-async: dir/fifo: Not a regular file\n"


def _git(*args: str, cwd: Path) -> bytes:
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd), XDG_CONFIG_HOME=str(cwd / ".no-config"))
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, timeout=60, check=True)
    return done.stdout


@needs_coreutils
@pytest.mark.skipif(shutil.which("git") is None, reason="git is the specification of --ignore git")
def test_hash_recursive_ignore_git_hashes_what_git_does_not_ignore(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    for name in (
        "src/main.py",
        "src/build/out.o",
        "build/cache",
        "notes.log",
        "keep.log",
        "docs/a.md",
        "docs/x.tmp",
    ):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(name.encode())
    (repo / ".gitignore").write_bytes(b"*.log\nbuild/\n!keep.log\n")
    (repo / "docs/.gitignore").write_bytes(b"*.tmp\n")
    _git("init", "-q", cwd=repo)
    _git("add", "-f", "notes.log", cwd=repo)  # tracked: git never ignores it, nor does --ignore git
    # What git calls not ignored: the tracked files and the untracked ones its rules keep.
    kept = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=repo).split(b"\0")
    # .git itself is no path git's rules exclude: scan_tree and preflight --ignore git keep it too.
    inside_git = [
        os.fsencode(path.relative_to(tmp_path)) for path in (repo / ".git").rglob("*") if path.is_file()
    ]
    names = sorted([b"repo/" + name for name in kept if name] + inside_git)
    assert b"repo/notes.log" in names and b"repo/keep.log" in names and b"repo/docs/x.tmp" not in names
    expected = run_tool("sha256sum", "--", *map(os.fsdecode, names), cwd=tmp_path).stdout
    result = run_cli("hash", "-r", "--ignore", "git", "repo", env=cli_env, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, b"")


def test_hash_recursive_ignore_skyignore_prunes_and_keeps_a_file_named_directly(
    cli_env: dict[str, str], files: Path
) -> None:
    (files / "dir/.skyignore").write_bytes(b"sub\nx\n")
    result = run_cli("hash", "-r", "--ignore", "skyignore", "dir", "a", env=cli_env, cwd=files)
    skyignore = (files / "dir/.skyignore").read_bytes()
    assert (
        result.stdout.decode()
        == f"{sha256(skyignore)}  dir/.skyignore\n{sha256(b'alpha' + bytes([10]))}  a\n"
    )
    assert (result.returncode, result.stderr) == (0, b"")
    # Without --ignore the same walk hashes everything below dir.
    everything = run_cli("hash", "-r", "dir", env=cli_env, cwd=files)
    assert everything.stdout.count(b"\n") == 3


def test_hash_recursive_ignore_that_cannot_be_applied_is_a_usage_error(
    cli_env: dict[str, str], files: Path
) -> None:
    (files / "dir/.skyignore").write_bytes(b"\xff\n")
    result = run_cli("hash", "-r", "--ignore", "skyignore", "dir", env=cli_env, cwd=files)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr == b"sky-async: dir/.skyignore: not UTF-8 (byte 0xff at offset 0)\n"


def test_hash_in_process(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["hash", str(files / "a")]) == 0
    assert capsys.readouterr().out == f"{sha256(b'alpha' + bytes([10]))}  {files / 'a'}\n"


# --- hash -c -------------------------------------------------------------------------------------


def _manifests(root: Path) -> dict[str, bytes]:
    good = run_tool("sha256sum", "a", "b", "we\\ird", "new\nline", "empty", cwd=root).stdout
    zeros = "0" * 64
    mixed = good + f"{zeros}  b\n{zeros}  missing\ngarbage\n\n# comment\n".encode()
    mixed += f"SHA256 (a) = {sha256(b'alpha' + bytes([10]))}\n".encode()
    mixed += f"{sha256(b'alpha' + bytes([10])).upper()} *a\r\n".encode()
    mixed += f"  {sha256(b'beta' * 50000)}  b\n".encode()
    return {
        "good": good,
        "mixed": mixed,
        "only_missing": f"{zeros}  missing\n{zeros}  gone\n".encode(),
        "all_wrong": f"{zeros}  a\n{zeros}  b\nx  y\nz\n".encode(),
        "no_lines": b"\n\n",
        "garbage": b"garbage\nmore garbage\n",
        "directory_listed": f"{zeros}  dir\n".encode(),
        "bad_escape": b"\\" + sha256(b"x").encode() + b"  dir\\x\n",
    }


CHECK_OPTIONS = ([], ["--quiet"], ["--status"], ["--strict"], ["--ignore-missing"], ["--quiet", "--strict"])


@needs_coreutils
@pytest.mark.parametrize("options", CHECK_OPTIONS, ids=lambda o: " ".join(o) or "plain")
def test_check_matches_sha256sum(cli_env: dict[str, str], files: Path, options: list[str]) -> None:
    for name, content in _manifests(files).items():
        (files / f"{name}.sha256").write_bytes(content)
        ours = run_cli("hash", "-c", *options, f"{name}.sha256", env=cli_env, cwd=files)
        theirs = run_tool("sha256sum", "-c", *options, f"{name}.sha256", cwd=files)
        assert ours.stdout == theirs.stdout, name
        assert ours.returncode == theirs.returncode, name
        assert ours.stderr.replace(b"sky-async:", b"P:") == theirs.stderr.replace(b"sha256sum:", b"P:"), name


@needs_coreutils
def test_check_matches_sha256sum_over_several_manifests_and_a_missing_one(
    cli_env: dict[str, str], files: Path
) -> None:
    manifests = _manifests(files)
    for name in ("good", "mixed"):
        (files / name).write_bytes(manifests[name])
    ours = run_cli("hash", "--check", "good", "nonexistent", "mixed", env=cli_env, cwd=files)
    theirs = run_tool("sha256sum", "--check", "good", "nonexistent", "mixed", cwd=files)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert ours.stderr.replace(b"sky-async:", b"P:") == theirs.stderr.replace(b"sha256sum:", b"P:")


@needs_coreutils
def test_check_matches_md5sum_with_algorithm_inferred_or_given(cli_env: dict[str, str], files: Path) -> None:
    (files / "m.md5").write_bytes(run_tool("md5sum", "a", "b", cwd=files).stdout + b"0" * 32 + b"  a\n")
    theirs = run_tool("md5sum", "-c", "m.md5", cwd=files)
    for options in ([], ["-a", "md5"]):
        ours = run_cli("hash", "-c", *options, "m.md5", env=cli_env, cwd=files)
        assert (
            (ours.returncode, ours.stdout)
            == (theirs.returncode, theirs.stdout)
            == (1, b"a: OK\nb: OK\na: FAILED\n")
        )
        assert ours.stderr.replace(b"sky-async:", b"P:") == theirs.stderr.replace(b"md5sum:", b"P:")
    # told sha256, md5 lines are improperly formatted
    told = run_cli("hash", "-c", "-a", "sha256", "m.md5", env=cli_env, cwd=files)
    assert told.returncode == 1
    assert told.stderr == b"sky-async: m.md5: no properly formatted checksum lines found\n"


def test_check_reads_standard_input(cli_env: dict[str, str], files: Path) -> None:
    manifest = f"{sha256(b'x')}  dir/x\n".encode()
    result = run_cli("hash", "-c", "-", env=cli_env, cwd=files, stdin=manifest)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"dir/x: OK\n", b"")


def test_check_fifo_listed_fails_without_blocking(cli_env: dict[str, str], files: Path) -> None:
    os.mkfifo(files / "fifo")
    (files / "m").write_bytes(f"{sha256(b'')}  fifo\n{sha256(b'x')}  dir/x\n".encode())
    result = run_cli("hash", "-c", "m", env=cli_env, cwd=files)
    assert result.returncode == 1
    assert result.stdout == b"fifo: FAILED open or read\ndir/x: OK\n"
    assert result.stderr == (
        b"sky-async: fifo: Not a regular file\nsky-async: WARNING: 1 listed file could not be read\n"
    )


def test_check_in_process(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (files / "m").write_bytes(f"{sha256(b'x')}  {files}/dir/x\n{'0' * 64}  {files}/a\n".encode())
    assert cli.main(["hash", "-c", str(files / "m")]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"{files}/dir/x: OK\n{files}/a: FAILED\n"
    assert captured.err == "sky-async: WARNING: 1 computed checksum did NOT match\n"


# --- errors and usage ----------------------------------------------------------------------------


def test_errors_are_one_line_per_path_without_traceback(cli_env: dict[str, str], files: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(files / "sock"))
        result = run_cli("hash", "missing", "dir", "sock", "a", env=cli_env, cwd=files)
    assert result.returncode == 1
    assert result.stdout.decode() == f"{sha256(b'alpha' + bytes([10]))}  a\n"
    assert result.stderr.decode().splitlines() == [
        "sky-async: missing: No such file or directory",
        "sky-async: dir: Is a directory",
        "sky-async: sock: No such device or address",  # what sha256sum says: open gives ENXIO
    ]


def test_bad_manifest_line_is_a_warning_not_a_traceback(cli_env: dict[str, str], files: Path) -> None:
    (files / "m").write_bytes(b"this is not a checksum line\n" + f"{sha256(b'x')}  dir/x\n".encode())
    result = run_cli("hash", "-c", "--strict", "m", env=cli_env, cwd=files)
    assert (result.returncode, result.stdout) == (1, b"dir/x: OK\n")
    assert result.stderr == b"sky-async: WARNING: 1 line is improperly formatted\n"


@needs_coreutils
def test_manifest_that_is_a_directory_is_a_read_error_as_in_sha256sum(
    cli_env: dict[str, str], files: Path
) -> None:
    result = run_cli("hash", "-c", "dir", env=cli_env, cwd=files)
    assert (result.returncode, result.stdout, result.stderr) == (1, b"", b"sky-async: dir: read error\n")
    assert run_tool("sha256sum", "-c", "dir", cwd=files).stderr == b"sha256sum: dir: read error\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], b"the following arguments are required: COMMAND"),
        (["hash", "--bogus", "a"], b"unrecognized arguments: --bogus"),
        (["hash", "-a", "crc32", "a"], b"invalid choice: 'crc32'"),
        (["hash", "--quiet", "a"], b"--quiet is meaningful only with --check"),
        (["hash", "--status", "a"], b"--status is meaningful only with --check"),
        (["hash", "-c", "-r", "a"], b"--recursive cannot be used with --check"),
        (["hash", "--ignore", "git", "a"], b"--ignore is meaningful only with --recursive"),
        (["hash", "-r", "--ignore", "svn", "a"], b"invalid choice: 'svn'"),
        (["nope"], b"invalid choice: 'nope'"),
    ],
)
def test_usage_errors_exit_2(files: Path, args: list[str], message: bytes) -> None:
    result = run_cli(*args, env=dict(os.environ), cwd=files)
    assert result.returncode == 2
    assert message in result.stderr
    assert b"Traceback" not in result.stderr and result.stdout == b""


# --- sysinfo, --version --------------------------------------------------------------------------


def test_sysinfo_json_reports_the_system_helpers(cli_env: dict[str, str]) -> None:
    result = run_cli("sysinfo", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["cpu"]["count"] == system.get_cpu_count()
    assert info["cpu"]["host"] == os.cpu_count()
    assert info["cpu"]["affinity"] == len(os.sched_getaffinity(0))
    assert info["memory"]["gib"] == pytest.approx(system.get_mem_size_gb())
    assert info["parallel_threads"] == {
        "default": system.get_parallel_threads(),
        "kubernetes": system.get_parallel_threads("kubernetes"),
    }
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert info["rlimit_nofile"]["soft"] == (None if soft == resource.RLIM_INFINITY else soft)
    assert info["rlimit_nofile"]["hard"] == (None if hard == resource.RLIM_INFINITY else hard)
    assert info["cgroup"]["version"] in ("v1", "v2", None)
    assert info["backend"]["backend"] == cli_env["SKY_ASYNC_BACKEND"]
    assert info["version"] == sky_async.__version__


def test_sysinfo_json_shows_environment_overrides(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, SKYPILOT_POD_CPU_CORE_LIMIT="3", SKYPILOT_POD_MEMORY_GB_LIMIT="1.5")
    info = json.loads(run_cli("sysinfo", "--json", env=env).stdout)
    assert (info["cpu"]["count"], info["cpu"]["env_override"]) == (3, "3")
    assert info["memory"]["gib"] == 1.5
    assert info["memory"]["env_override"] == {"SKYPILOT_POD_MEMORY_GB_LIMIT": "1.5"}


def test_sysinfo_text(cli_env: dict[str, str]) -> None:
    result = run_cli("sysinfo", env=cli_env)
    text = result.stdout.decode()
    assert result.returncode == 0 and result.stderr == b""
    for label in (
        "CPUs:",
        "affinity:",
        "Memory:",
        "cgroup:",
        "RLIMIT_NOFILE:",
        "Parallel threads:",
        "Backend:",
    ):
        assert label in text
    assert f"CPUs:              {system.get_cpu_count()}  (get_cpu_count)" in text
    assert f"Backend:           {cli_env['SKY_ASYNC_BACKEND']}" in text


def test_sysinfo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sysinfo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cpu"]["count"] == system.get_cpu_count()


def test_version() -> None:
    result = run_cli("--version", env=dict(os.environ))
    assert (result.returncode, result.stdout) == (0, f"sky-async {sky_async.__version__}\n".encode())


def test_version_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"sky-async {sky_async.__version__}\n"


def test_subcommands_are_listed_in_help() -> None:
    result = run_cli("--help", env=dict(os.environ))
    assert b"hash" in result.stdout and b"sysinfo" in result.stdout
