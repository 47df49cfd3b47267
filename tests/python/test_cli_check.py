"""``sky-async hash``, ``hash -c`` and ``preflight --manifest`` byte for byte against ``sha256sum`` 9.1.

Names are generated (every byte but ``/`` and NUL, with backslash, LF, CR and non-UTF-8
favoured); checksum lines are a table of the forms GNU accepts and rejects. stdout, exit
status and stderr (program name replaced) must equal the real ``sha256sum``'s.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sky_async
from conftest import BACKENDS, clean_env, require_native
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sky_async import cli
from sky_async.cli import check

pytestmark = pytest.mark.skipif(
    subprocess.run(["sha256sum", "--version"], capture_output=True).stdout[:29]
    != b"sha256sum (GNU coreutils) 9.1",
    reason="the oracle is GNU coreutils 9.1's sha256sum",
)

# Bytes a name may hold, the ones GNU escapes or quotes favoured.
_NAME_BYTES = st.one_of(
    st.sampled_from([b"\\", b"\n", b"\r", b"\xff", b"\xc3\xa9", b"\x1b", b" ", b"'", b"*", b"(", b")", b"="]),
    st.binary(min_size=1, max_size=3).filter(lambda b: b"/" not in b and b"\0" not in b),
)
NAMES = st.lists(
    st.lists(_NAME_BYTES, min_size=1, max_size=6)
    .map(b"".join)
    .filter(lambda name: name not in (b".", b"..", b"-") and len(name) < 200),
    min_size=1,
    max_size=6,
    unique=True,
)
# The package under test, whatever the working directory of the child (PYTHONPATH may be relative).
PACKAGE_ROOT = str(Path(sky_async.__file__).resolve().parent.parent)
GENERATED = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "native":
        require_native()
    return request.param


def child_env(**overrides: str) -> dict[str, str]:
    return clean_env(PYTHONPATH=PACKAGE_ROOT, **overrides)


def run(
    argv: list[bytes | str], cwd: str | Path, stdin: bytes | None = None, backend: str = "native"
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv, cwd=cwd, input=stdin, capture_output=True, timeout=120, env=child_env(SKY_ASYNC_BACKEND=backend)
    )


def ours(*args: bytes | str, cwd: str | Path, stdin: bytes | None = None, backend: str = "native"):  # type: ignore[no-untyped-def]
    return run([sys.executable, "-m", "sky_async", "hash", *args], cwd, stdin, backend)


def gnu(*args: bytes | str, cwd: str | Path, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    return run(["sha256sum", *args], cwd, stdin)


def assert_same(mine: subprocess.CompletedProcess[bytes], theirs: subprocess.CompletedProcess[bytes]) -> None:
    assert mine.stdout == theirs.stdout
    assert mine.stderr.replace(b"sky-async:", b"P:") == theirs.stderr.replace(b"sha256sum:", b"P:")
    assert mine.returncode == theirs.returncode


def make_files(root: str, names: list[bytes]) -> None:
    for index, name in enumerate(names):
        with open(os.path.join(os.fsencode(root), name), "wb") as file:
            file.write(b"content %d\n" % index)


# --- names -----------------------------------------------------------------------------------


@GENERATED
@given(names=NAMES)
def test_hash_writes_every_name_as_sha256sum_does(backend: str, names: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as root:
        make_files(root, names)
        assert_same(ours("--", *names, cwd=root, backend=backend), gnu("--", *names, cwd=root))


@GENERATED
@given(names=NAMES)
def test_check_reads_what_sha256sum_writes_and_reports_as_it_does(backend: str, names: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as root:
        make_files(root, names)
        Path(root, "m").write_bytes(gnu("--", *names, cwd=root).stdout)
        Path(root, "t").write_bytes(gnu("--tag", "--", *names, cwd=root).stdout)  # BSD lines
        for manifest in ("m", "t"):
            passing = ours("-c", manifest, cwd=root, backend=backend)
            assert passing.stdout.count(b": OK\n") == len(names)
            assert_same(passing, gnu("-c", manifest, cwd=root))
        # Changed and missing files fail, with the names written and quoted as GNU does.
        with open(os.path.join(os.fsencode(root), names[0]), "ab") as file:
            file.write(b"changed")
        for name in names[1:2]:
            os.unlink(os.path.join(os.fsencode(root), name))
        for options in ([], ["--strict"], ["--quiet"]):
            failing = ours("-c", *options, "m", cwd=root, backend=backend)
            assert failing.returncode == 1
            assert_same(failing, gnu("-c", *options, "m", cwd=root))


@GENERATED
@given(names=NAMES)
def test_preflight_manifest_has_the_lines_sha256sum_writes(names: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as root:
        tree = os.path.join(root, "tree")
        os.mkdir(tree)
        make_files(tree, names)
        done = subprocess.run(
            [sys.executable, "-m", "sky_async", "preflight", "-q", "--manifest", "../m", "."],
            cwd=tree,
            capture_output=True,
            timeout=120,
            env=child_env(),
        )
        assert done.returncode in (0, 1), done.stderr  # 1: a name not UTF-8 is a problem for a mount
        written = sorted(Path(root, "m").read_bytes().splitlines(keepends=True))
        expected = sorted(
            gnu("--", *(b"./" + name for name in names), cwd=tree).stdout.splitlines(keepends=True)
        )
        assert written == expected
        verified = gnu("-c", "--strict", "../m", cwd=tree)
        assert verified.returncode == 0, verified.stderr


def test_an_escaped_name_with_a_carriage_return_is_checked_not_skipped(tmp_path: Path, backend: str) -> None:
    (tmp_path / "a\r").write_bytes(b"one")
    manifest = gnu("a\r", cwd=tmp_path).stdout
    assert manifest.startswith(b"\\")  # GNU escapes the CR
    (tmp_path / "m").write_bytes(manifest)
    (tmp_path / "a\r").write_bytes(b"two")
    for options in ([], ["--strict"]):
        failing = ours("-c", *options, "m", cwd=tmp_path, backend=backend)
        assert failing.returncode == 1
        assert failing.stdout == b"a\r: FAILED\n"
        assert_same(failing, gnu("-c", *options, "m", cwd=tmp_path))


# --- line formats ----------------------------------------------------------------------------

A = b"alpha\n"
HEX = hashlib.sha256(A).hexdigest().encode()
ZERO = b"0" * 64
MD5 = hashlib.md5(A).hexdigest().encode()
LINES = {
    "two_spaces": HEX + b"  a",
    "binary_star": HEX + b" *a",
    "one_space": HEX + b" a",
    "tab": HEX + b"\ta",
    "upper_hex": HEX.upper() + b"  a",
    "leading_blanks": b" \t" + HEX + b"  a",
    "bsd": b"SHA256 (a) = " + HEX,
    "bsd_upper_hex": b"SHA256 (a) = " + HEX.upper(),
    "bsd_lower_tag": b"sha256 (a) = " + HEX,
    "bsd_mixed_tag": b"Sha256 (a) = " + HEX,
    "bsd_two_spaces": b"SHA256  (a) = " + HEX,
    "bsd_tabs": b"SHA256 (a)\t=\t" + HEX,
    "bsd_trailing_blank": b"SHA256 (a) = " + HEX + b" ",
    "bsd_paren_in_name": b"SHA256 (a) b) = " + HEX,
    "bsd_empty_name": b"SHA256 () = " + HEX,
    "bsd_escaped": b"\\SHA256 (a\\\\b) = " + HEX,
    "bsd_bad_escape": b"\\SHA256 (a\\x) = " + HEX,
    "bsd_wrong_algorithm": b"MD5 (a) = " + MD5,
    "bsd_short_hex": b"SHA256 (a) = " + HEX[:-1],
    "openssl": b"SHA256(a)= " + HEX,
    "openssl_no_space": b"SHA256(a)=" + HEX,
    "nul_in_name": HEX + b"  a\0b",
    "nul_after_hex": HEX + b"\0 a",
    "nul_after_separator": HEX + b" \0a",
    "nul_in_hex": HEX[:10] + b"\0" + HEX[11:] + b"  a",
    "nul_after_bsd_hex": b"SHA256 (a) = " + HEX + b"\0junk",
    "nul_in_bsd_name": b"SHA256 (a\0b) = " + HEX,
    "escaped_nul": b"\\" + HEX + b"  a\0b",
    "escaped_cr": b"\\" + HEX + b"  a\\r",
    "escaped_bad": b"\\" + HEX + b"  a\\x",
    "escaped_trailing_backslash": b"\\" + HEX + b"  a\\",
    "backslash_unescaped": HEX + b"  \\a",
    "only_separator": HEX + b"  ",
    "star_only": HEX + b" *",
    "short": HEX[:-1] + b"  a",
    "long": HEX + b"0  a",
    "no_name": HEX,
    "crlf_twice": HEX + b"  a\r\r",
    "wrong_digest": ZERO + b"  a",
    "missing": ZERO + b"  missing",
    "spaced_name": ZERO + b"  x y",
    "colon_name": ZERO + b"  x:y",
    "comment_then_garbage": b"# a comment",
    "garbage": b"not a checksum line",
    "blank_looking": b" ",
}
CHECK_OPTIONS = (
    [],
    ["--strict"],
    ["--status"],
    ["--quiet"],
    ["--ignore-missing"],
    ["--status", "--strict"],
    ["--status", "--ignore-missing"],
)


@pytest.fixture
def alpha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "a").write_bytes(A)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", sorted(LINES))
def test_each_line_format_is_accepted_or_rejected_as_sha256sum_does(
    alpha: Path, name: str, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    (alpha / "m").write_bytes(LINES[name] + b"\n")
    # Without -a the algorithm is inferred per line, so an MD5 line is checked with md5.
    algorithms = [["-a", "sha256"]] if name == "bsd_wrong_algorithm" else [["-a", "sha256"], []]
    for options in (algorithm + option for algorithm in algorithms for option in CHECK_OPTIONS):
        status = cli.main(["hash", "-c", *options, "m"])
        captured = capfdbinary.readouterr()
        theirs = gnu("-c", *options[2:] if options[:1] == ["-a"] else options, "m", cwd=alpha)
        assert (captured.out, status) == (theirs.stdout, theirs.returncode), options
        assert captured.err.replace(b"sky-async:", b"P:") == theirs.stderr.replace(b"sha256sum:", b"P:"), (
            options
        )


@pytest.mark.parametrize(
    "order",
    [("two_spaces", "one_space", "binary_star"), ("one_space", "two_spaces", "binary_star", "tab")],
    ids=["two-then-one", "one-then-two"],
)
def test_the_first_line_decides_between_the_one_and_two_space_forms(
    alpha: Path, order: tuple[str, ...], capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    (alpha / "m").write_bytes(b"".join(LINES[name] + b"\n" for name in order))
    (alpha / "n").write_bytes(LINES["two_spaces"] + b"\n")  # the form carries over to the next manifest
    status = cli.main(["hash", "-c", "--strict", "m", "n"])
    captured = capfdbinary.readouterr()
    theirs = gnu("-c", "--strict", "m", "n", cwd=alpha)
    assert (captured.out, status) == (theirs.stdout, theirs.returncode)
    assert captured.err.replace(b"sky-async:", b"P:") == theirs.stderr.replace(b"sha256sum:", b"P:")


def test_every_format_in_one_manifest_on_each_backend(alpha: Path, backend: str) -> None:
    (alpha / "m").write_bytes(b"".join(LINES[name] + b"\n" for name in sorted(LINES)))
    for options in (["--strict"], ["--ignore-missing"]):
        mine = ours("-c", "-a", "sha256", *options, "m", cwd=alpha, backend=backend)
        assert_same(mine, gnu("-c", *options, "m", cwd=alpha))


# --- standard input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [[], ["-"], ["a", "-", "a"], ["-", "-"]], ids=["none", "dash", "between", "twice"]
)
def test_hash_reads_standard_input_for_dash_or_no_file(alpha: Path, backend: str, args: list[str]) -> None:
    assert_same(
        ours(*args, cwd=alpha, stdin=b"piped\n", backend=backend), gnu(*args, cwd=alpha, stdin=b"piped\n")
    )


def _with_fifo_writer(
    fifo: Path, data: bytes, command: list[bytes | str], cwd: Path, backend: str = "native"
):  # type: ignore[no-untyped-def]
    """*command*'s result while another process writes *data* into *fifo* (killed after)."""
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}, 'wb').write({data!r})"])
    try:
        return run(command, cwd, backend=backend)
    finally:
        writer.kill()
        writer.wait()


def test_hash_reads_a_fifo_named_on_the_command_line(alpha: Path, backend: str) -> None:
    os.mkfifo(alpha / "fifo")
    mine = _with_fifo_writer(
        alpha / "fifo",
        b"through a fifo\n",
        [sys.executable, "-m", "sky_async", "hash", "a", "fifo"],
        alpha,
        backend,
    )
    theirs = _with_fifo_writer(alpha / "fifo", b"through a fifo\n", ["sha256sum", "a", "fifo"], alpha)
    assert_same(mine, theirs)
    assert mine.returncode == 0


def _with_pipe(data: bytes, command: list[str], cwd: Path, backend: str = "native"):  # type: ignore[no-untyped-def]
    """*command* run with a pipe holding *data* as /dev/fd/N, as ``<(...)`` gives one."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
        os.close(write_end)
        write_end = -1
        argv: list[bytes | str] = [arg.replace("PIPE", f"/dev/fd/{read_end}") for arg in command]
        done = subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            timeout=120,
            pass_fds=(read_end,),
            env=child_env(SKY_ASYNC_BACKEND=backend),
        )
        name = f"/dev/fd/{read_end}".encode()  # the same in both runs, whatever its number
        done.stdout = done.stdout.replace(name, b"PIPE")
        done.stderr = done.stderr.replace(name, b"PIPE")
        return done
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_hash_reads_process_substitution_and_dev_null(alpha: Path, backend: str) -> None:
    args = ["PIPE", "/dev/null", "a"]
    mine = _with_pipe(b"substituted\n", [sys.executable, "-m", "sky_async", "hash", *args], alpha, backend)
    theirs = _with_pipe(b"substituted\n", ["sha256sum", *args], alpha)
    assert_same(mine, theirs)
    assert mine.returncode == 0


@pytest.mark.parametrize(
    ("args", "manifest_file", "stdin"),
    [
        ([], None, HEX + b"  a\n"),
        (["-"], None, HEX + b"  a\n"),
        (["-"], None, HEX + b"  -\n" + HEX + b"  a\n"),  # "-" in a manifest read from stdin: misformatted
        (["m"], HEX + b"  -\n", A),  # "-" in a manifest file: standard input
        (["m"], ZERO + b"  -\n", A),
    ],
    ids=["none", "dash", "dash-in-stdin-manifest", "dash-listed", "dash-listed-wrong"],
)
def test_check_reads_standard_input_as_sha256sum_does(
    alpha: Path, backend: str, args: list[str], manifest_file: bytes | None, stdin: bytes
) -> None:
    if manifest_file is not None:
        (alpha / "m").write_bytes(manifest_file)
    assert_same(
        ours("-c", *args, cwd=alpha, stdin=stdin, backend=backend), gnu("-c", *args, cwd=alpha, stdin=stdin)
    )


# --- memory ----------------------------------------------------------------------------------

LONG_LINE = 64 * 1024 * 1024


# Runs the command line in this child and reports the child's own peak resident set: VmHWM
# belongs to the address space made by exec, where ru_maxrss would carry the forking parent's.
_MEASURED = """
import sys
from sky_async.cli import main
try:
    main(sys.argv[2:])
finally:
    with open("/proc/self/status") as status, open(sys.argv[1], "w") as report:
        report.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
"""


def _peak_rss(args: list[str], cwd: Path) -> int:
    """The peak resident set, in bytes, of ``sky-async ARGS`` run in a child."""
    report = cwd / "peak"
    subprocess.run(
        [sys.executable, "-c", _MEASURED, str(report), *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(),
        timeout=300,
        check=False,
    )
    return int(report.read_text()) * 1024


def _write_long_line(path: Path, head: bytes, fill: bytes) -> None:
    with open(path, "wb") as file:
        file.write(head)
        for _ in range(LONG_LINE // (1024 * 1024)):
            file.write(fill * (1024 * 1024))
        file.write(b"\n" + HEX + b"  a\n")


@pytest.mark.parametrize(
    ("head", "fill"),
    [(HEX + b"  ", b"n"), (b"", b"x"), (b"#", b"c")],
    ids=["long-name", "long-garbage", "long-comment"],
)
def test_a_long_manifest_line_is_held_once(tmp_path: Path, head: bytes, fill: bytes) -> None:
    (tmp_path / "small").write_bytes(HEX + b"  a\n")
    (tmp_path / "a").write_bytes(A)
    _write_long_line(tmp_path / "big", head, fill)
    baseline = _peak_rss(["hash", "-c", "small"], tmp_path)
    peak = _peak_rss(["hash", "-c", "big"], tmp_path)
    # Held once the line costs about its size (with a bytearray's growth margin); the
    # manifest read whole and split, or the line copied, costs twice that.
    assert peak - baseline < 1.5 * LONG_LINE, (peak, baseline)


def test_lines_are_read_incrementally() -> None:
    class Chunks:
        def __init__(self) -> None:
            self.reads = 0

        def read1(self, size: int) -> bytes:
            self.reads += 1
            return [b"ab\nc", b"d\n\ne", b"f", b""][self.reads - 1]

    stream = Chunks()
    lines = check.read_lines(stream)  # type: ignore[arg-type]
    assert next(lines) == b"ab"
    assert stream.reads == 1
    assert [bytes(line) for line in lines] == [b"cd", b"", b"ef"]
