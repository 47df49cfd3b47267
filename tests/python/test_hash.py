"""What hash_file/hash_files return and raise, on both backends, through the coroutines and the sync twins.

hashlib reading the same file to EOF is the oracle for every digest.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    API_PRELUDE,
    SIZES,
    Caller,
    KiB,
    MiB,
    fd_count,
    fds_open_on,
    hashlib_digest,
    run_python,
    write_random,
)
from sky_async._api import Api
from sky_async._hash.api import SUPPORTED_ALGORITHMS

ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_random(tmp_path / "good.bin", 300 * KiB + 7, seed=1)


@pytest.fixture
def other(tmp_path: Path) -> Path:
    return write_random(tmp_path / "other.bin", 3 * KiB, seed=2)


@pytest.fixture
def missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.bin"


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    path = tmp_path / "dir"
    path.mkdir()
    return path


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
        server.listen()
        yield path


@pytest.fixture(scope="session")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str]]:
    """2,500 small files of assorted sizes, and their sha1 digests."""
    root = tmp_path_factory.mktemp("many")
    rng = random.Random(2500)
    paths = []
    for index in range(2500):
        size = rng.choice((0, 1, rng.randrange(2, 4 * KiB), rng.randrange(4 * KiB, 40 * KiB)))
        paths.append(write_random(root / f"f{index:04d}", size, seed=index))
    return paths, [hashlib_digest(path, "sha1") for path in paths]


# --- digests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_hash_file_matches_hashlib_at_chunk_boundaries(
    call: Caller, sized_files: dict[int, Path], size: int
) -> None:
    path = sized_files[size]
    assert await call.hash_file(path) == hashlib_digest(path, "sha256")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_hash_files_matches_hashlib_for_every_algorithm(
    call: Caller, sized_files: dict[int, Path], algorithm: str
) -> None:
    paths = list(sized_files.values())
    expected = [hashlib_digest(path, algorithm) for path in paths]
    assert await call.hash_files(paths, algorithm) == expected
    assert await call.hash_file(paths[-1], algorithm) == expected[-1]


async def test_supported_algorithms_are_the_documented_ones() -> None:
    assert tuple(SUPPORTED_ALGORITHMS) == ALGORITHMS


@pytest.mark.parametrize(("name", "algorithm"), [("SHA256", "sha256"), ("Md5", "md5"), ("SHA512", "sha512")])
async def test_algorithm_name_is_case_insensitive(
    call: Caller, good: Path, name: str, algorithm: str
) -> None:
    expected = hashlib_digest(good, algorithm)
    assert await call.hash_file(good, name) == expected
    assert await call.hash_files([good], name) == [expected]


async def test_default_algorithm_is_sha256(call: Caller, good: Path) -> None:
    assert await call.hash_file(good) == hashlib_digest(good, "sha256")
    assert await call.hash_files([good]) == [hashlib_digest(good, "sha256")]


async def test_digest_is_lower_case_hex(call: Caller, good: Path) -> None:
    digest = await call.hash_file(good, "sha384")
    assert len(digest) == 96
    assert set(digest) <= set("0123456789abcdef")


@pytest.mark.parametrize("name", ["sha3_256", "blake2b", "crc32", "sha-256", "", "sha256 "])
async def test_unknown_algorithm_raises_value_error_naming_the_supported_ones(
    call: Caller, good: Path, name: str
) -> None:
    for attempt in (call.hash_file(good, name), call.hash_files([good], name)):
        with pytest.raises(ValueError, match="supported") as info:
            await attempt
        for supported in ALGORITHMS:
            assert supported in str(info.value)


@pytest.mark.parametrize("name", [b"sha256", None, 256, ["sha256"]])
async def test_algorithm_that_is_not_a_str_raises_type_error(call: Caller, good: Path, name: Any) -> None:
    with pytest.raises(TypeError, match="algorithm"):
        await call.hash_file(good, name)
    with pytest.raises(TypeError, match="algorithm"):
        await call.hash_files([good], name)


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [str, os.fsencode, Path])
async def test_paths_may_be_str_bytes_or_pathlike(call: Caller, good: Path, other: Path, kind: Any) -> None:
    expected = [hashlib_digest(good), hashlib_digest(other)]
    assert await call.hash_file(kind(good)) == expected[0]
    assert await call.hash_files([kind(good), kind(other)]) == expected


async def test_bytes_path_that_is_not_utf8_is_passed_through(call: Caller, tmp_path: Path) -> None:
    path = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff.bin")
    with open(path, "wb") as file:
        file.write(b"latin-1 name")
    expected = hashlib_digest(os.fsdecode(path))
    assert await call.hash_file(path) == expected
    assert await call.hash_files([path, os.fsdecode(path)]) == [expected, expected]


@pytest.mark.parametrize("concurrency", [1, 3, None])
async def test_hash_files_keeps_input_order_with_duplicates(
    call: Caller, sized_files: dict[int, Path], concurrency: int | None
) -> None:
    paths = list(sized_files.values()) * 3
    random.Random(7).shuffle(paths)
    expected = [hashlib_digest(path, "md5") for path in paths]
    assert await call.hash_files(paths, "md5", concurrency=concurrency) == expected


async def test_hash_files_of_no_paths_is_an_empty_list(call: Caller) -> None:
    assert await call.hash_files([]) == []
    assert await call.hash_files(()) == []
    assert await call.hash_files(iter([]), return_exceptions=True) == []


async def test_hash_files_accepts_any_iterable_of_paths(call: Caller, good: Path, other: Path) -> None:
    expected = [hashlib_digest(good), hashlib_digest(other)]
    assert await call.hash_files((good, other)) == expected
    assert await call.hash_files(path for path in [good, other]) == expected
    assert await call.hash_files({os.fspath(good): 1, os.fspath(other): 2}) == expected


async def test_thousands_of_files_with_concurrency_three_are_all_correct(
    call: Caller, many_files: tuple[list[Path], list[str]]
) -> None:
    paths, expected = many_files
    assert await call.hash_files(paths, "sha1", concurrency=3) == expected
    assert fds_open_on([paths[0].parent]) == []


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [str, os.fsencode, Path])
async def test_missing_file_raises_file_not_found_with_errno_and_the_path_as_passed(
    call: Caller, missing: Path, kind: Any
) -> None:
    path = kind(missing)
    with pytest.raises(FileNotFoundError) as info:
        await call.hash_file(path)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == path
    assert type(info.value.filename) is type(path)
    assert info.value.strerror == os.strerror(errno.ENOENT)

    with pytest.raises(FileNotFoundError) as info:
        await call.hash_files([path])
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == path


async def test_directory_raises_is_a_directory_error(call: Caller, directory: Path) -> None:
    with pytest.raises(IsADirectoryError) as info:
        await call.hash_file(directory)
    assert info.value.errno == errno.EISDIR
    assert info.value.filename == directory
    with pytest.raises(IsADirectoryError):
        await call.hash_files([directory])


def _assert_not_a_regular_file(error: BaseException, path: object) -> None:
    assert type(error) is OSError, repr(error)
    assert error.errno == errno.EINVAL
    assert error.strerror == "Not a regular file"
    assert error.filename == path


@contextlib.contextmanager
def fifo_rescuer(path: Path, after: float = 5.0) -> Iterator[list[bool]]:
    """Whenever a reader has been stuck opening the FIFO for *after* seconds, become its writer
    (so the test cannot hang) and record it: the yielded list then holds True."""
    rescued: list[bool] = []
    done = threading.Event()

    def rescue() -> None:
        while not done.wait(after):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO unless a reader is waiting
            except OSError:
                continue
            rescued.append(True)
            os.close(fd)

    thread = threading.Thread(target=rescue, daemon=True)
    thread.start()
    try:
        yield rescued
    finally:
        done.set()
        thread.join()


async def test_fifo_is_rejected_with_einval_without_waiting_for_a_writer(call: Caller, fifo: Path) -> None:
    with fifo_rescuer(fifo) as rescued:
        with pytest.raises(OSError) as info:
            await call.hash_file(fifo)
        results = await call.hash_files([fifo, fifo], return_exceptions=True)
    assert rescued == [], "opening the FIFO blocked until a writer appeared"
    _assert_not_a_regular_file(info.value, fifo)
    for result in results:
        _assert_not_a_regular_file(result, fifo)


async def test_character_device_is_rejected_with_einval(call: Caller) -> None:
    with pytest.raises(OSError) as info:
        await call.hash_file("/dev/null")
    _assert_not_a_regular_file(info.value, "/dev/null")
    (result,) = await call.hash_files([b"/dev/zero"], return_exceptions=True)
    _assert_not_a_regular_file(result, b"/dev/zero")


async def test_socket_file_is_rejected_with_einval(call: Caller, unix_socket: Path) -> None:
    with pytest.raises(OSError) as info:
        await call.hash_file(unix_socket)
    _assert_not_a_regular_file(info.value, unix_socket)


@pytest.mark.parametrize("path", ["a\0b", b"a\0b", Path("a\0b")], ids=["str", "bytes", "path"])
async def test_embedded_nul_in_path_raises_value_error(call: Caller, good: Path, path: Any) -> None:
    with pytest.raises(ValueError, match="null"):
        await call.hash_file(path)
    with pytest.raises(ValueError, match="null"):
        await call.hash_files([good, path])
    results = await call.hash_files([good, path, good], return_exceptions=True)
    assert results[0] == results[2] == hashlib_digest(good)
    assert isinstance(results[1], ValueError)


@pytest.mark.parametrize("path", [None, 42, 1.5, object()])
async def test_path_that_is_not_a_path_raises_type_error(call: Caller, good: Path, path: Any) -> None:
    with pytest.raises(TypeError):
        await call.hash_file(path)
    with pytest.raises(TypeError):
        await call.hash_files([good, path])
    results = await call.hash_files([path, good], return_exceptions=True)
    assert isinstance(results[0], TypeError)
    assert results[1] == hashlib_digest(good)


@pytest.mark.parametrize("kind", [str, os.fsencode, Path])
async def test_single_path_passed_as_paths_raises_type_error(call: Caller, good: Path, kind: Any) -> None:
    with pytest.raises(TypeError, match="single path"):
        await call.hash_files(kind(good))


async def test_paths_that_are_not_iterable_raise_type_error(call: Caller) -> None:
    with pytest.raises(TypeError, match="iterable"):
        await call.hash_files(42)


@pytest.mark.parametrize("concurrency", [0, -1, -(2**70)])
async def test_concurrency_below_one_raises_value_error(call: Caller, good: Path, concurrency: int) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await call.hash_files([good], concurrency=concurrency)


@pytest.mark.parametrize("concurrency", ["2", True, False, 2.0])
async def test_concurrency_that_is_not_an_int_raises_type_error(
    call: Caller, good: Path, concurrency: Any
) -> None:
    with pytest.raises(TypeError, match="concurrency"):
        await call.hash_files([good], concurrency=concurrency)


@pytest.mark.parametrize("concurrency", [1, 2, 10**9, None])
async def test_any_concurrency_of_at_least_one_works(
    call: Caller, sized_files: dict[int, Path], concurrency: int | None
) -> None:
    paths = list(sized_files.values())
    expected = [hashlib_digest(path) for path in paths]
    assert await call.hash_files(paths, concurrency=concurrency) == expected


async def fd_count_after_warm_up(call: Caller, path: Path) -> int:
    """The fds open once the runtime (threads, rings) and this loop's wakeup fd exist."""
    await call.hash_file(path)
    return fd_count()


async def test_return_exceptions_keeps_every_other_result(
    call: Caller, good: Path, other: Path, missing: Path, directory: Path, fifo: Path
) -> None:
    before = await fd_count_after_warm_up(call, good)
    with fifo_rescuer(fifo) as rescued:
        results = await call.hash_files(
            [good, missing, directory, other, "/dev/null", fifo, good], return_exceptions=True
        )
    assert rescued == [], "opening the FIFO blocked until a writer appeared"
    assert fd_count() == before
    assert results[0] == results[6] == hashlib_digest(good)
    assert results[3] == hashlib_digest(other)
    assert isinstance(results[1], FileNotFoundError)
    assert results[1].filename == missing
    assert isinstance(results[2], IsADirectoryError)
    assert results[2].filename == directory
    _assert_not_a_regular_file(results[4], "/dev/null")
    _assert_not_a_regular_file(results[5], fifo)


@pytest.mark.parametrize("concurrency", [1, None])
async def test_without_return_exceptions_the_first_failure_in_input_order_is_raised(
    call: Caller, good: Path, missing: Path, directory: Path, concurrency: int | None
) -> None:
    before = await fd_count_after_warm_up(call, good)
    for _ in range(20):  # whatever order the files happen to fail in
        with pytest.raises(FileNotFoundError):
            await call.hash_files([good, missing, directory, good], concurrency=concurrency)
        with pytest.raises(IsADirectoryError):
            await call.hash_files([good, directory, missing, good], concurrency=concurrency)
    assert fd_count() == before


async def test_many_failures_in_a_large_batch_are_each_reported(
    call: Caller, many_files: tuple[list[Path], list[str]], tmp_path: Path
) -> None:
    paths: list[Any] = list(many_files[0][:600])
    expected: list[Any] = list(many_files[1][:600])
    for index in range(0, 600, 7):
        paths[index] = tmp_path / f"gone-{index}"
        expected[index] = FileNotFoundError
    before = await fd_count_after_warm_up(call, paths[1])
    results = await call.hash_files(paths, "sha1", concurrency=5, return_exceptions=True)
    assert fd_count() == before
    for path, result, want in zip(paths, results, expected):
        if want is FileNotFoundError:
            assert isinstance(result, FileNotFoundError)
            assert result.filename == path
        else:
            assert result == want


async def test_backend_stops_starting_files_after_a_failure(
    api: Api, good: Path, missing: Path, other: Path
) -> None:
    # The backend protocol under the public API: a file never started is reported as None.
    backend = api._backend
    paths = [os.fsencode(p) for p in (missing, good, other, good)]
    items = await backend.hash_files(paths, "sha256", 1, True)
    assert items[0] == (errno.ENOENT, None)
    assert items[1:] == [None, None, None]
    items = backend.hash_files_blocking(paths, "sha256", 1, True)
    assert items[0] == (errno.ENOENT, None)
    assert items[1:] == [None, None, None]
    # Without stop_on_error every file is done.
    items = await backend.hash_files(paths, "sha256", 1, False)
    assert items == [(errno.ENOENT, None), hashlib_digest(good), hashlib_digest(other), hashlib_digest(good)]


def _drop_privileges_and_hash(backend_name: str, locked: Path, readable: Path) -> dict[str, Any]:
    code = (
        API_PRELUDE
        + """
import asyncio, json, os
locked, readable = sys.argv[2], sys.argv[3]
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
out = {"uid": os.getuid()}

def describe(exc):
    return [type(exc).__name__, exc.errno, exc.filename]

try:
    out["sync"] = api.sync.hash_file(locked)
except OSError as exc:
    out["sync"] = describe(exc)

async def main():
    try:
        out["async"] = await api.hash_file(locked)
    except OSError as exc:
        out["async"] = describe(exc)
    out["readable"] = await api.hash_file(readable)
    results = await api.hash_files([readable, locked], return_exceptions=True)
    out["batch"] = [results[0], describe(results[1])]

asyncio.run(main())
print(json.dumps(out))
"""
    )
    result = run_python(code, backend_name, os.fspath(locked), os.fspath(readable))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_unreadable_file_raises_permission_error(backend_name: str, api: Api) -> None:
    if os.getuid() != 0:
        with tempfile.TemporaryDirectory() as root:
            locked = write_random(Path(root, "locked.bin"), 10, seed=3)
            locked.chmod(0)
            if os.access(locked, os.R_OK):
                pytest.skip("this user can read a mode-000 file (CAP_DAC_OVERRIDE); cannot test EACCES")
            with pytest.raises(PermissionError) as info:
                api.sync.hash_file(locked)
            assert info.value.errno == errno.EACCES
            assert info.value.filename == locked
        return
    # As root, mode 000 does not stop us: a child drops to nobody (65534) before hashing.
    # The directory must be traversable by nobody, which pytest's 0700 tmp_path is not.
    root = tempfile.mkdtemp(prefix="sky_async-perm-")
    try:
        os.chmod(root, 0o755)
        locked = write_random(Path(root, "locked.bin"), 10, seed=3)
        locked.chmod(0)
        readable = write_random(Path(root, "readable.bin"), 200 * KiB, seed=4)
        readable.chmod(0o644)
        readable_digest = hashlib_digest(readable)
        out = _drop_privileges_and_hash(backend_name, locked, readable)
    finally:
        shutil.rmtree(root)
    expected_error = ["PermissionError", errno.EACCES, os.fspath(locked)]
    assert out["uid"] == 65534
    assert out["sync"] == expected_error
    assert out["async"] == expected_error
    assert out["readable"] == readable_digest
    assert out["batch"] == [readable_digest, expected_error]


# --- special files -------------------------------------------------------------------------------


def _stable_pseudo_files() -> list[str]:
    candidates = ["/proc/version", "/proc/filesystems", "/sys/devices/system/cpu/online"]
    return [path for path in candidates if os.path.exists(path)]


@pytest.mark.parametrize("path", _stable_pseudo_files())
async def test_pseudo_file_hashes_like_python_reading_it_to_eof(call: Caller, path: str) -> None:
    # /proc reports size 0 and /sys 4096, whatever the content: only reading to EOF is right.
    content = Path(path).read_bytes()
    assert content, f"{path} is empty"
    assert os.stat(path).st_size != len(content), f"{path} reports its true size; the test proves nothing"
    expected = hashlib_digest(path, "sha1")
    assert await call.hash_file(path, "sha1") == expected
    assert await call.hash_files([path, path], "sha1") == [expected, expected]


async def test_file_growing_in_place_is_hashed_as_read(call: Caller, tmp_path: Path) -> None:
    # A regular file is read to EOF: a short file hashes to exactly its content.
    path = tmp_path / "short"
    path.write_bytes(b"x")
    assert await call.hash_file(path) == hashlib_digest(path)
    with open(path, "ab") as file:
        file.write(b"y" * (3 * MiB))
    assert await call.hash_file(path) == hashlib_digest(path)


# --- info ----------------------------------------------------------------------------------------


def test_backend_info_names_the_backend_and_its_resources(api: Api, backend_name: str) -> None:
    info = api.get_backend_info()
    assert api.backend_name == backend_name
    assert info["backend"] == backend_name
    assert {"backend", "io_backend", "version", "threads", "openssl", "boost"} <= set(info)
    assert isinstance(info["threads"], int)
    assert info["threads"] >= 1
    assert isinstance(info["version"], str)
    assert info["version"]
    if backend_name == "python":
        import platform
        import ssl

        import sky_async

        assert info["io_backend"] is None
        assert info["boost"] is None
        assert info["openssl"] == ssl.OPENSSL_VERSION
        assert info["python"] == platform.python_version()
        assert info["version"] == sky_async.__version__
    else:
        assert info["io_backend"] in ("io_uring", "threads")
