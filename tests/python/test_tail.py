"""read_last_n_lines and tail_files on both backends, through the coroutines and the sync twins.

The oracle is the definition applied to the whole file at once (no chunks): split on LF,
drop the empty piece after a final LF, keep the last n pieces, decode each one, strip its
trailing CRs, end all but the last with a newline.
"""

from __future__ import annotations

import asyncio
import codecs
import errno
import io
import json
import os
import random
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    API_PRELUDE,
    Caller,
    GiB,
    MiB,
    fd_count,
    fds_open_on,
    make_backend,
    run_python,
    wait_until_open,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sky_async._api import Api
from sky_async._tail import api as _tail_api


def oracle(data: bytes, n: int, encoding: str = "utf-8", errors: str = "replace") -> list[str]:
    if n == 0 or not data:
        return []
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    lines = [piece.decode(encoding, errors).rstrip("\r") for piece in pieces[-n:]]
    return [line + "\n" for line in lines[:-1]] + lines[-1:]


def bytes_oracle(data: bytes, n: int) -> list[bytes]:
    """The last *n* lines undecoded, each with its LF (a binary stream's lines: split after
    each LF only, CRs kept), as tail_files(encoding=None) returns them."""
    return io.BytesIO(data).readlines()[-n:] if n else []


@pytest.fixture
def write(tmp_path: Path) -> Any:
    counter = iter(range(10**9))

    def write(data: bytes) -> Path:
        path = tmp_path / f"f{next(counter)}.log"
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(os.fspath(path))
        yield path


# --- results: every case of the reference ------------------------------------------------------

REFERENCE_CASES = [
    # (data, n, expected)
    (b"line1\nline2\nline3\n", 2, ["line2\n", "line3"]),
    (b"a\nb\n", 2, ["a\n", "b"]),
    (b"a\nb", 2, ["a\n", "b"]),
    (b"a\nb\n", 5, ["a\n", "b"]),
    (b"only one line\n", 5, ["only one line"]),
    (b"\n", 1, [""]),
    (b"\n\n", 5, ["\n", ""]),
    (b"x\n\ny\n", 2, ["\n", "y"]),
    (b"a\rb\n", 1, ["a\rb"]),
    (b"a\r\nb\r\n", 5, ["a\n", "b"]),
    (b"a\r\r\n", 1, ["a"]),
    (b"cr\r", 1, ["cr"]),
    (b"\r\r\r", 1, [""]),
    (b"v\x0bf\x0cs\x1c\xc2\x85\xe2\x80\xa8\xe2\x80\xa9e\n", 5, ["v\x0bf\x0cs\x1c\x85\u2028\u2029e"]),
    (b"bad \xff\xfe end\n", 1, ["bad \ufffd\ufffd end"]),
    (b"cut \xe2\x82\n", 1, ["cut \ufffd"]),
    (b"\xef\xbb\xbfbom\n", 1, ["\ufeffbom"]),
    (b"n\x00u\x00l\n", 1, ["n\x00u\x00l"]),
    (b"a\nb\nc\n", 0, []),
    (b"", 3, []),
    (b"one\ntwo", 100, ["one\n", "two"]),
]


@pytest.mark.parametrize(("data", "n", "expected"), REFERENCE_CASES)
async def test_reference_cases(call: Caller, write: Any, data: bytes, n: int, expected: list[str]) -> None:
    assert oracle(data, n) == expected  # the oracle agrees with the reference
    path = write(data)
    assert await call.read_last_n_lines(path, n) == expected
    assert await call.read_last_n_lines(path, n, chunk_size=1) == expected


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 64, 8192, 2**40])
async def test_every_chunk_size_gives_the_same_lines(call: Caller, write: Any, chunk_size: int) -> None:
    data = b"".join(b"line %d %s\r\n" % (i, b"x" * (i % 13)) for i in range(300)) + b"tail"
    path = write(data)
    for n in (1, 2, 10, 299, 300, 301, 1000):
        assert await call.read_last_n_lines(path, n, chunk_size=chunk_size) == oracle(data, n)


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("latin-1", "caf\xe9\nna\xefve\n"),
        ("utf-16", "a\nb\nc"),
        ("utf-16-le", "\u0a0a\nz\n"),
        ("cp1252", "\u20ac\n"),
    ],
)
async def test_other_encodings_split_on_the_lf_byte_like_skypilot(
    call: Caller, write: Any, encoding: str, text: str
) -> None:
    data = text.encode(encoding)
    path = write(data)
    for n in (1, 2, 5):
        expected = oracle(data, n, encoding)
        assert await call.read_last_n_lines(path, n, encoding=encoding) == expected
        assert _tail_api.read_last_n_lines(os.fspath(path), n, encoding=encoding) == expected


@pytest.mark.parametrize("errors", ["replace", "ignore", "backslashreplace", "surrogateescape"])
async def test_error_handlers_are_pythons(call: Caller, write: Any, errors: str) -> None:
    data = b"ok\n\xff\xfe\x80 tail \xe2\x82\n\xc3"
    path = write(data)
    assert await call.read_last_n_lines(path, 3, errors=errors) == oracle(data, 3, "utf-8", errors)


async def test_custom_error_handler_is_called_like_bytes_decode(call: Caller, write: Any) -> None:
    # A handler may return anything, CRs included: they are stripped after decoding, as in SkyPilot.
    codecs.register_error("sky_async_test_cr", lambda exc: ("\r", exc.end))  # type: ignore[arg-type,return-value]
    data = b"plain\r\nbad\xff\nlast\xfe"
    path = write(data)
    expected = oracle(data, 3, "utf-8", "sky_async_test_cr")
    assert expected == ["plain\n", "bad\n", "last"]
    assert await call.read_last_n_lines(path, 3, errors="sky_async_test_cr") == expected
    for encoding in ("UTF8", "latin_1", "ASCII"):
        assert await call.read_last_n_lines(path, 3, encoding=encoding, errors="sky_async_test_cr") == oracle(
            data, 3, encoding, "sky_async_test_cr"
        )


async def test_strict_decoding_raises_unicode_decode_error(call: Caller, write: Any) -> None:
    path = write(b"fine\n\xff bad\n")
    with pytest.raises(UnicodeDecodeError):
        await call.read_last_n_lines(path, 1, errors="strict")
    # Only the decoded lines matter: the invalid line is not among the last one here.
    path = write(b"\xff bad\nfine\n")
    assert await call.read_last_n_lines(path, 1, errors="strict") == ["fine"]


def test_result_matches_skypilots_own_algorithm(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"a\r\nb\n\n\xffc\n")
    for n in range(6):
        assert _tail_api.read_last_n_lines(os.fspath(path), n) == oracle(path.read_bytes(), n)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=400)
    | st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\xff", b"\xe2\x82"])).map(b"".join),
    n=st.integers(min_value=0, max_value=40),
    chunk_size=st.integers(min_value=1, max_value=64),
)
def test_random_bytes_match_the_oracle_on_both_backends(data: bytes, n: int, chunk_size: int) -> None:
    with tempfile.NamedTemporaryFile() as file:
        file.write(data)
        file.flush()
        expected = oracle(data, n)
        for name in ("native", "python"):
            api = Api(make_backend(name))
            assert api.sync.read_last_n_lines(file.name, n, chunk_size=chunk_size) == expected, name


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=400)
    | st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"\xff", b"\xe2\x82"])).map(b"".join),
    n=st.integers(min_value=0, max_value=40),
    chunk_size=st.integers(min_value=1, max_value=64),
)
def test_random_bytes_undecoded_are_the_last_lines_on_both_backends(
    data: bytes, n: int, chunk_size: int
) -> None:
    # What tail -n prints, computed from the bytes directly: what follows the n-th LF from
    # the end, a final LF not counted (all of it if there are fewer).
    body = data[:-1] if data.endswith(b"\n") else data
    cut = len(body)
    for _ in range(n):
        cut = body.rfind(b"\n", 0, cut)
        if cut < 0:
            break
    start = cut + 1 if cut >= 0 else 0
    tail = data[start:] if n else b""
    with tempfile.NamedTemporaryFile() as file:
        file.write(data)
        file.flush()
        for name in ("native", "python"):
            api = Api(make_backend(name))
            (lines,) = api.sync.tail_files([file.name], n, chunk_size=chunk_size, encoding=None)
            assert b"".join(lines) == tail, name
            assert lines == bytes_oracle(data, n), name
            assert asyncio.run(api.tail_files([file.name], n, chunk_size=chunk_size, encoding=None)) == [
                lines
            ]
            # The str mode is these lines decoded one by one, CRs and the last LF dropped.
            decoded = [
                line.removesuffix(b"\n").decode("utf-8", "surrogateescape").rstrip("\r") for line in lines
            ]
            assert (
                api.sync.read_last_n_lines(file.name, n, errors="surrogateescape")
                == [line + "\n" for line in decoded[:-1]] + decoded[-1:]
            ), name


# --- undecoded: encoding=None ------------------------------------------------------------------

UNDECODED_CASES = [
    # (data, n, expected)
    (b"a\nb\nc", 2, [b"b\n", b"c"]),
    (b"a\nb\n", 2, [b"a\n", b"b\n"]),
    (b"a\nb\n", 5, [b"a\n", b"b\n"]),
    (b"only\n", 1, [b"only\n"]),
    (b"\n", 1, [b"\n"]),
    (b"\n\n", 5, [b"\n", b"\n"]),
    (b"a\r\nb\r\n", 5, [b"a\r\n", b"b\r\n"]),
    (b"a\rb\r\r\nc\r", 2, [b"a\rb\r\r\n", b"c\r"]),
    (b"bad \xff\xfe end\ncut \xe2\x82", 5, [b"bad \xff\xfe end\n", b"cut \xe2\x82"]),
    (b"n\x00u\x00l\n", 1, [b"n\x00u\x00l\n"]),
    (b"a\nb\nc\n", 0, []),
    (b"", 3, []),
    (b"one\ntwo", 100, [b"one\n", b"two"]),
]


@pytest.mark.parametrize(("data", "n", "expected"), UNDECODED_CASES)
async def test_undecoded_lines_keep_their_endings_and_bytes(
    call: Caller, write: Any, data: bytes, n: int, expected: list[bytes]
) -> None:
    assert bytes_oracle(data, n) == expected  # the oracle agrees with the cases
    path = write(data)
    assert await call.tail_files([path], n, encoding=None) == [expected]
    assert await call.tail_files([path], n, chunk_size=1, encoding=None) == [expected]
    # The lines of invalid UTF-8 decoded with surrogateescape give back these bytes.
    lines = await call.tail_files([path], n, errors="surrogateescape")
    assert [line.encode("utf-8", "surrogateescape") for line in lines[0]] == [
        line.removesuffix(b"\n").rstrip(b"\r") + (b"\n" if i < len(expected) - 1 else b"")
        for i, line in enumerate(expected)
    ]


async def test_undecoded_ignores_errors(call: Caller, write: Any) -> None:
    path = write(b"bad \xff\n")
    for errors in ("strict", "no-such-handler"):
        assert await call.tail_files([path], 1, encoding=None, errors=errors) == [[b"bad \xff\n"]]


async def test_undecoded_keeps_order_and_each_error_in_its_slot(
    call: Caller, write: Any, tmp_path: Path
) -> None:
    a = write(b"1\n2\n3\n")
    b = write(b"x\r\ny")
    missing = tmp_path / "missing"
    results = await call.tail_files([a, missing, tmp_path, b], 2, encoding=None, return_exceptions=True)
    assert results[0] == [b"2\n", b"3\n"]
    assert isinstance(results[1], FileNotFoundError) and results[1].filename == missing
    assert isinstance(results[2], IsADirectoryError) and results[2].filename == tmp_path
    assert results[3] == [b"x\r\n", b"y"]
    with pytest.raises(FileNotFoundError):
        await call.tail_files([a, missing], 2, encoding=None)


async def test_undecoded_file_of_size_zero_is_read_forwards(call: Caller) -> None:
    data = Path("/proc/self/mounts").read_bytes()  # stable while the test runs
    assert data.endswith(b"\n")
    assert await call.tail_files(["/proc/self/mounts"], 3, encoding=None) == [bytes_oracle(data, 3)]


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [-1, -(2**70)])
async def test_negative_n_raises_value_error(call: Caller, write: Any, n: int) -> None:
    with pytest.raises(ValueError, match="n must be non-negative"):
        await call.read_last_n_lines(write(b"a\n"), n)


@pytest.mark.parametrize("n", [1.0, "3", None, True])
async def test_n_that_is_not_an_int_raises_type_error(call: Caller, write: Any, n: Any) -> None:
    with pytest.raises(TypeError, match="n must be an int"):
        await call.read_last_n_lines(write(b"a\n"), n)


async def test_huge_n_returns_every_line(call: Caller, write: Any) -> None:
    assert await call.read_last_n_lines(write(b"a\nb\n"), 2**80) == ["a\n", "b"]


@pytest.mark.parametrize("chunk_size", [0, -5])
async def test_chunk_size_not_positive_raises_value_error(call: Caller, write: Any, chunk_size: int) -> None:
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        await call.read_last_n_lines(write(b"a\n"), 1, chunk_size=chunk_size)


async def test_chunk_size_not_an_int_raises_type_error(call: Caller, write: Any) -> None:
    with pytest.raises(TypeError, match="chunk_size must be an int"):
        await call.read_last_n_lines(write(b"a\n"), 1, chunk_size=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["no-such-codec", "hex", "rot13"])
async def test_unknown_or_non_text_encoding_raises_lookup_error(
    call: Caller, write: Any, encoding: str
) -> None:
    with pytest.raises(LookupError):
        await call.read_last_n_lines(write(b"a\n"), 1, encoding=encoding)


async def test_encoding_not_a_str_raises_type_error(call: Caller, write: Any) -> None:
    with pytest.raises(TypeError, match="encoding must be a str"):
        await call.read_last_n_lines(write(b"a\n"), 1, encoding=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, 3])
async def test_missing_file_raises_file_not_found_with_errno_and_path(
    call: Caller, tmp_path: Path, n: int
) -> None:
    missing = tmp_path / "missing.log"
    with pytest.raises(FileNotFoundError) as info:
        await call.read_last_n_lines(missing, n)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == missing


async def test_directory_raises_is_a_directory_error(call: Caller, tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as info:
        await call.read_last_n_lines(tmp_path, 1)
    assert info.value.errno == errno.EISDIR
    assert info.value.filename == tmp_path


async def test_fifo_fails_at_once_with_einval(call: Caller, fifo: Path) -> None:
    with pytest.raises(OSError, match="Not a regular file") as info:
        await asyncio.wait_for(call.read_last_n_lines(fifo, 1), 20)
    assert info.value.errno == errno.EINVAL
    assert info.value.filename == fifo


@pytest.mark.parametrize("kind", ["socket", "device"])
async def test_socket_and_device_fail_with_einval(call: Caller, unix_socket: Path, kind: str) -> None:
    path = unix_socket if kind == "socket" else Path("/dev/null")
    with pytest.raises(OSError, match="Not a regular file") as info:
        await call.read_last_n_lines(path, 1)
    assert info.value.errno == errno.EINVAL


PERMISSION_SCRIPT = (
    API_PRELUDE
    + """
import asyncio, json, os
if os.getuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
def outcome(call):
    try:
        return call()
    except OSError as exc:
        return [type(exc).__name__, exc.errno, exc.filename]
locked, readable = sys.argv[2], sys.argv[3]
print(json.dumps({
    "sync": outcome(lambda: api.sync.read_last_n_lines(locked, 1)),
    "async": outcome(lambda: asyncio.run(api.read_last_n_lines(locked, 1))),
    "batch": api.sync.tail_files([readable, locked], 1, return_exceptions=True)[0],
}))
"""
)


def test_unreadable_file_raises_permission_error(backend_name: str, api: Api) -> None:
    # As root, mode 000 does not stop us: the child drops to nobody (65534) first, in a
    # directory nobody can traverse (pytest's tmp_path is 0700).
    root = tempfile.mkdtemp(prefix="sky_async-perm-")
    try:
        os.chmod(root, 0o755)
        locked, readable = Path(root, "locked.log"), Path(root, "readable.log")
        locked.write_bytes(b"secret\n")
        locked.chmod(0)
        readable.write_bytes(b"public\n")
        readable.chmod(0o644)
        proc = run_python(PERMISSION_SCRIPT, backend_name, os.fspath(locked), os.fspath(readable))
    finally:
        for name in os.listdir(root):
            os.unlink(os.path.join(root, name))
        os.rmdir(root)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    if out["sync"] == ["secret"]:
        pytest.skip("this user can read a mode-000 file (CAP_DAC_OVERRIDE); cannot test EACCES")
    expected = ["PermissionError", errno.EACCES, os.fspath(locked)]
    assert out["sync"] == expected
    assert out["async"] == expected
    assert out["batch"] == ["public"]


@pytest.mark.parametrize("path", [b"bad\0path", 42])
async def test_bad_path_raises_value_or_type_error(call: Caller, path: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        await call.read_last_n_lines(path, 1)


# --- batches -------------------------------------------------------------------------------------


async def test_tail_files_keeps_order_and_each_error_in_its_slot(
    call: Caller, write: Any, tmp_path: Path, fifo: Path
) -> None:
    a = write(b"1\n2\n3\n")
    b = write(b"x\r\ny")
    missing = tmp_path / "missing"
    paths = [a, missing, tmp_path, fifo, b, os.fsencode(a), b"bad\0", a]
    results = await call.tail_files(paths, 2, return_exceptions=True)
    assert results[0] == ["2\n", "3"]
    assert isinstance(results[1], FileNotFoundError) and results[1].filename == missing
    assert isinstance(results[2], IsADirectoryError) and results[2].filename == tmp_path
    assert isinstance(results[3], OSError) and results[3].errno == errno.EINVAL
    assert results[4] == ["x\n", "y"]
    assert results[5] == ["2\n", "3"]
    assert isinstance(results[6], ValueError)
    assert results[7] == ["2\n", "3"]


async def test_all_str_paths_encode_like_os_fsencode(call: Caller, tmp_path: Path) -> None:
    # A list of only str paths takes a faster encoding; it must give what os.fsencode
    # gives (a non-UTF-8 name arrives as surrogate escapes), and a NUL still fails alone.
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.log")
    plain = str(tmp_path / "plain.log")
    Path(odd).write_bytes(b"odd\n")
    Path(plain).write_bytes(b"plain\n")
    assert await call.tail_files([odd, plain], 1) == [["odd"], ["plain"]]
    results = await call.tail_files([plain, "bad\0name", odd], 1, return_exceptions=True)
    assert results[0] == ["plain"] and results[2] == ["odd"]
    assert isinstance(results[1], ValueError)


async def test_without_return_exceptions_the_first_failure_in_input_order_is_raised(
    call: Caller, write: Any, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError) as info:
        await call.tail_files([write(b"a\n"), tmp_path / "m1", tmp_path], 1)
    assert info.value.filename == tmp_path / "m1"


async def test_decode_error_of_one_file_does_not_lose_the_others(call: Caller, write: Any) -> None:
    results = await call.tail_files(
        [write(b"\xff\n"), write(b"ok\n")], 1, errors="strict", return_exceptions=True
    )
    assert isinstance(results[0], UnicodeDecodeError)
    assert results[1] == ["ok"]


async def test_tail_files_of_no_paths_is_an_empty_list(call: Caller) -> None:
    assert await call.tail_files([], 3) == []


async def test_single_path_as_paths_raises_type_error(call: Caller, write: Any) -> None:
    with pytest.raises(TypeError, match="iterable of paths"):
        await call.tail_files(write(b"a"), 1)


@pytest.mark.parametrize("concurrency", [1, 2, 7, None, 5000])
async def test_many_files_at_any_concurrency_are_all_correct(
    call: Caller, tmp_path: Path, concurrency: Any
) -> None:
    paths, expected = [], []
    for i in range(400):
        data = b"".join(b"%d:%d\n" % (i, j) for j in range(i % 25)) + (b"partial" if i % 3 else b"")
        path = tmp_path / f"{i}.log"
        path.write_bytes(data)
        paths.append(path)
        expected.append(oracle(data, 10))
    assert await call.tail_files(paths, 10, concurrency=concurrency) == expected


@pytest.mark.parametrize("chunk_size", [700, 8192])
@pytest.mark.parametrize("concurrency", [1, None])
async def test_files_of_very_different_line_lengths_in_one_batch(
    call: Caller, tmp_path: Path, chunk_size: int, concurrency: Any
) -> None:
    # The native engine sizes each first read by the previous file's lines: long lines
    # after short ones (and the reverse) must not change a result.
    rng = random.Random(9)
    paths, contents = [], []
    for i in range(60):
        width = rng.choice([0, 2, 60, 400, 3000, 12000])
        data = b"".join(
            b"%c" % (97 + j % 26) * rng.randrange(2 * width + 1) + b"\n" for j in range(rng.randrange(25))
        )
        data += b"\xe2\x82\xac tail" if i % 4 == 0 else b""
        path = tmp_path / f"{i}.log"
        path.write_bytes(data)
        paths.append(path)
        contents.append(data)
    for n in (1, 10, 30):
        got = await call.tail_files(paths, n, chunk_size=chunk_size, concurrency=concurrency)
        assert got == [oracle(data, n) for data in contents]


async def test_runs_of_files_per_directory_give_what_the_whole_path_gives(
    call: Caller, tmp_path: Path
) -> None:
    # The native engine opens consecutive files of one directory relative to it.
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    paths: list[Any] = []
    expected: list[Any] = []
    for i in range(3):
        for where in ("a", "a/b"):
            (tmp_path / where / f"f{i}").write_bytes(b"%s %d\nlast" % (where.encode(), i))
        for where, real in (("a", "a"), ("a/b", "a/b"), ("a", "a"), ("link/b", "a/b")):
            path = tmp_path / where / f"f{i}"
            paths += [path, os.fsencode(path), str(tmp_path / where / "." / f"f{i}")]
            expected += [[f"{real} {i}\n", "last"]] * 3
        paths += [tmp_path / "missing" / "x", tmp_path / "missing" / "y", tmp_path / "a" / "f0" / "z"]
        expected += [FileNotFoundError, FileNotFoundError, NotADirectoryError]
    got = await call.tail_files(paths, 2, return_exceptions=True)
    for path, result, want in zip(paths, got, expected):
        if isinstance(want, list):
            assert result == want
        else:
            assert type(result) is want and result.filename == path


@pytest.mark.parametrize("concurrency", [0, -1])
async def test_concurrency_below_one_raises_value_error(call: Caller, write: Any, concurrency: int) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await call.tail_files([write(b"a")], 1, concurrency=concurrency)


async def test_no_descriptor_is_leaked(call: Caller, write: Any, tmp_path: Path, fifo: Path) -> None:
    paths = [write(b"a\nb\n") for _ in range(50)] + [tmp_path / "missing", tmp_path, fifo]
    await call.tail_files(paths, 1, return_exceptions=True)  # the runtime is up from here on
    before = fd_count()
    for _ in range(3):
        await call.tail_files(paths, 1, return_exceptions=True)
    assert fd_count() == before
    assert fds_open_on([tmp_path]) == []


# --- size, truncation, cancellation, descriptor limits -------------------------------------------


def _rchar() -> int:
    with open("/proc/self/io") as io:
        for line in io:
            key, value = line.split(":")
            if key == "rchar":
                return int(value)
    raise AssertionError("no rchar in /proc/self/io")


@pytest.fixture(scope="module")
def ten_gib_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 GiB of hole, then three short lines."""
    path = tmp_path_factory.mktemp("huge") / "huge.log"
    with open(path, "wb") as file:
        file.truncate(10 * GiB)
        file.seek(10 * GiB)
        file.write(b"\nfirst\nsecond\nthird\n")
    return path


async def test_ten_gib_file_costs_kilobytes_of_reads(call: Caller, ten_gib_log: Path) -> None:
    before = _rchar()
    assert await call.read_last_n_lines(ten_gib_log, 2) == ["second\n", "third"]
    read = _rchar() - before
    assert read < 64 * 1024, f"read {read} bytes of a 10 GiB file for two lines"


def test_file_truncated_during_the_read_gives_short_reads(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    data = b"".join(b"line %d\n" % i for i in range(1000))
    path.write_bytes(data)
    calls = 0

    def truncate_midway() -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            os.truncate(path, 100)
        return False

    fd = os.open(path, os.O_RDONLY)
    try:
        result = _tail_api.read_tail_pieces(fd, len(data), 10_000, 1000, truncate_midway)
    finally:
        os.close(fd)
    assert result is not None
    pieces, _ = result
    # Two full chunks from before the truncation, then whatever was left under them.
    assert b"\n".join(pieces).endswith(data[-2000:-1])
    assert b"\n".join(pieces).startswith(data[:100])


async def test_cancelling_a_long_tail_ends_it_and_closes_the_file(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "no-newline"
    with open(path, "wb") as file:
        file.truncate(256 * MiB)  # no LF: 256 MiB read 64 bytes at a time is seconds of work
    before = fd_count()
    task = asyncio.ensure_future(api.read_last_n_lines(path, 1, chunk_size=64))
    await wait_until_open(path)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fds_open_on([path]) == []
    assert fd_count() <= before + 1  # a first native call may open the completion queue


LOW_FD_LIMIT_SCRIPT = (
    API_PRELUDE
    + """
import asyncio, json, os, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
paths = [os.path.join(sys.argv[2], name) for name in sorted(os.listdir(sys.argv[2]))]
async def run():
    return await api.tail_files(paths, 2, concurrency=256, return_exceptions=True)
first = asyncio.run(run())
started = len(os.listdir("/proc/self/fd"))
second = api.sync.tail_files(paths, 2, concurrency=256, return_exceptions=True)
print(json.dumps({
    "first": [r if isinstance(r, list) else repr(r) for r in first],
    "same_again": first == second,
    "fds_leaked": len(os.listdir("/proc/self/fd")) - started,
}))
"""
)


@pytest.mark.parametrize("io_backend", ["io_uring", "threads"])
def test_thousand_files_under_rlimit_nofile_64(
    backend_name: str, api: Api, tmp_path: Path, io_backend: str
) -> None:
    if backend_name == "python" and io_backend == "threads":
        pytest.skip("the python backend has no I/O backend")
    for i in range(1000):
        (tmp_path / f"{i:04d}.log").write_bytes(b"a %d\nb %d\n" % (i, i))
    from conftest import clean_env

    proc = run_python(
        LOW_FD_LIMIT_SCRIPT, backend_name, os.fspath(tmp_path), env=clean_env(SKY_ASYNC_IO_BACKEND=io_backend)
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["first"] == [[f"a {i}\n", f"b {i}"] for i in range(1000)]
    assert out["same_again"]
    assert out["fds_leaked"] == 0
