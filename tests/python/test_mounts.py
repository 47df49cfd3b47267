"""file_mounts_digest on both backends, through the coroutine and its blocking twin.

The oracle is SkyPilot's serial procedure (skypilot_mounts_oracle.py): every tree that
SkyPilot can digest must give its digest byte for byte.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import pickle
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sky_async
from conftest import Caller, KiB, fd_count, fds_open_on, wait_until_open, write_random
from sky_async import FileMountsError
from sky_async._api import Api
from skypilot_mounts_oracle import skypilot_file_mounts_digest as oracle


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from tmp_path, with HOME there too, so relative and ``~`` sources resolve into it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def _fixed_tree(root: Path) -> dict[str, str]:
    """The tree and mounts of tests/cpp/mounts_test.cpp (same expected digests)."""
    (root / "tree/sub/deep").mkdir(parents=True)
    (root / "tree/empty_dir").mkdir()
    (root / "tree/a.txt").write_text("alpha\n")
    (root / "tree/.hidden").write_text("h")
    (root / "tree/sub/b.bin").write_bytes(b"b" * 300000)
    (root / "tree/sub/deep/c.txt").write_text("c")
    (root / "tree/\u00fcn\u00ef.txt").write_text("u")
    (root / "tree/link_to_a").symlink_to("a.txt")
    (root / "tree/link_to_sub").symlink_to("sub")
    (root / "single.txt").write_text("single")
    return {
        "/remote/tree": "tree",
        "/remote/file": "single.txt",
        "/remote/missing": "nope",
        "/a/first": "tree/sub/",
    }


def _nested(root: Path) -> dict[str, str]:
    for depth in range(4):
        level = root / "nested" / "/".join(f"d{i}" for i in range(depth + 1))
        level.mkdir(parents=True, exist_ok=True)
        for index in range(3):
            write_random(level / f"f{index}.bin", (depth * 37 + index) * KiB + index, seed=depth * 10 + index)
    (root / "nested/d0/empty").mkdir()
    (root / "nested/d0/.dot").mkdir()
    (root / "nested/d0/.dot/.file").write_text("hidden")
    return {"/n": str(root / "nested")}


def _symlinks(root: Path) -> dict[str, str]:
    (root / "target_dir/inner").mkdir(parents=True)
    (root / "target_dir/inner/x").write_text("x")
    (root / "target.txt").write_text("t")
    (root / "s").mkdir()
    (root / "s/to_file").symlink_to(root / "target.txt")
    (root / "s/to_dir").symlink_to(root / "target_dir")
    (root / "top_link").symlink_to(root / "target_dir")
    (root / "file_link").symlink_to(root / "target.txt")
    # a symlinked directory is listed but not descended; a symlinked mount source is followed
    return {"/s": str(root / "s"), "/top": str(root / "top_link"), "/file": str(root / "file_link")}


def _unicode(root: Path) -> dict[str, str]:
    (root / "\u65e5\u672c/\u00e9t\u00e9").mkdir(parents=True)
    for name in ("Z", "a", "\u00e9", "\u65e5", "\U0001f600", "A b", "-"):
        (root / "\u65e5\u672c" / name).write_text(name)
    (root / "\u65e5\u672c/\u00e9t\u00e9/\u00fc").write_text("u")
    return {
        "/\u00fcnicode/dest": str(root / "\u65e5\u672c"),
        "/ascii": str(root / "\u65e5\u672c/\u00e9t\u00e9"),
    }


def _single_and_empty(root: Path) -> dict[str, str]:
    (root / "one.bin").write_bytes(b"")
    (root / "empty").mkdir()
    return {"/one": str(root / "one.bin"), "/empty": str(root / "empty"), "/gone": str(root / "missing")}


def _home_and_relative(root: Path) -> dict[str, str]:
    (root / "cfg/sub").mkdir(parents=True)
    (root / "cfg/sub/key").write_text("secret")
    (root / "cfg/top").write_text("top")
    return {"/home": "~/cfg", "/rel": "cfg/sub", "/trailing": "./cfg/", "/file": "~/cfg/top"}


def _many_mounts(root: Path) -> dict[str, str]:
    mounts = {}
    rng = random.Random(5)
    for index in range(40):
        path = root / f"m{index}"
        if index % 3:
            path.mkdir()
            for j in range(rng.randrange(4)):
                write_random(path / f"{j}.dat", rng.randrange(3 * KiB), seed=index * 7 + j)
        else:
            write_random(path, rng.randrange(300 * KiB), seed=index)
        mounts[f"/dst/{rng.randrange(10**6):06d}/{index}"] = str(path)
    mounts["s3://bucket/x"] = "s3://bucket/path"  # not local: contributes nothing but the separators
    return mounts


def _fifo_as_source(root: Path) -> dict[str, str]:
    os.mkfifo(root / "fifo")
    (root / "f").write_text("f")
    # isfile and isdir are both False for a FIFO source: SkyPilot feeds nothing, never opens it
    return {"/fifo": str(root / "fifo"), "/f": str(root / "f")}


TREES: dict[str, Callable[[Path], dict[str, str]]] = {
    "fixed": _fixed_tree,
    "nested": _nested,
    "symlinks": _symlinks,
    "unicode": _unicode,
    "single_and_empty": _single_and_empty,
    "home_and_relative": _home_and_relative,
    "many_mounts": _many_mounts,
    "fifo_as_source": _fifo_as_source,
}


@pytest.mark.parametrize("tree", TREES)
async def test_digest_matches_skypilot_byte_for_byte(call: Caller, in_tmp: Path, tree: str) -> None:
    mounts = TREES[tree](in_tmp)
    assert await call.file_mounts_digest(mounts) == oracle(mounts)


async def test_fixed_tree_gives_the_digests_the_cpp_test_expects(call: Caller, in_tmp: Path) -> None:
    mounts = _fixed_tree(in_tmp)
    expected = "52b7cff61c36bde2d384ff03b73fdcf2a5e2baad40b32362e4552b5f053a950d"
    assert await call.file_mounts_digest(mounts) == expected
    yaml_hash = hashlib.sha256(b"yaml").digest()
    assert (
        await call.file_mounts_digest(mounts, prefix=yaml_hash)
        == "535a07f5d61534407e9480845acb3a4661a7cb506a647943c221e4dfea9ed049"
    )


@pytest.mark.parametrize("prefix", [b"", b"\0", hashlib.sha256(b"cluster: yaml").digest(), bytearray(b"abc")])
async def test_prefix_is_fed_first(call: Caller, in_tmp: Path, prefix: bytes) -> None:
    mounts = _nested(in_tmp)
    assert await call.file_mounts_digest(mounts, prefix=prefix) == oracle(mounts, bytes(prefix))


async def test_no_mounts_is_the_digest_of_the_prefix(call: Caller) -> None:
    assert await call.file_mounts_digest({}) == hashlib.sha256().hexdigest()
    assert await call.file_mounts_digest({}, prefix=b"p") == hashlib.sha256(b"p").hexdigest()


@pytest.mark.parametrize("seed", range(4))
async def test_random_trees_match_skypilot(call: Caller, in_tmp: Path, seed: int) -> None:
    rng = random.Random(seed)
    dirs = [in_tmp / "r"]
    dirs[0].mkdir()
    for index in range(60):
        parent = rng.choice(dirs)
        if rng.random() < 0.3:
            child = parent / f"d{index}"
            child.mkdir()
            dirs.append(child)
        elif rng.random() < 0.1:
            (parent / f"l{index}").symlink_to(rng.choice(dirs))
        else:
            write_random(parent / f"f{index}", rng.choice([0, 1, 4 * KiB, 130 * KiB]), seed=index)
    mounts = {"/r": str(in_tmp / "r"), "/sub": str(rng.choice(dirs))}
    assert await call.file_mounts_digest(mounts, concurrency=rng.choice([None, 1, 3])) == oracle(mounts)


async def test_a_tilde_user_that_is_not_ascii_is_left_as_is(call: Caller, in_tmp: Path) -> None:
    # As SkyPilot's os.path.expanduser on str: an unknown user leaves the path unchanged
    # (expanduser on bytes would raise UnicodeDecodeError for such a name).
    (in_tmp / "~\u00fcser").mkdir()
    (in_tmp / "~\u00fcser/x").write_text("x")
    mounts = {"/u": "~\u00fcser", "/v": "~\u00fcser/x"}
    assert await call.file_mounts_digest(mounts) == oracle(mounts)


async def test_credential_caches_are_named_but_their_content_is_not_fed(call: Caller, in_tmp: Path) -> None:
    # SkyPilot 0.14.1's _FILE_MOUNT_BASENAMES_SKIP_HASH: a FIFO by such a name is never
    # opened (it would be a problem otherwise), and a changed cache leaves the digest as is.
    (in_tmp / "tree").mkdir()
    (in_tmp / "tree" / "a.txt").write_bytes(b"a")
    os.mkfifo(in_tmp / "tree" / "credentials.db")
    cache = in_tmp / "tree" / "access_tokens.db-wal"
    cache.write_bytes(b"one")
    (in_tmp / "access_tokens.db").write_bytes(b"token")
    mounts = {"/t": str(in_tmp / "tree"), "/f": str(in_tmp / "access_tokens.db")}
    before = await call.file_mounts_digest(mounts)
    assert before == oracle(mounts)
    cache.write_bytes(b"two")
    (in_tmp / "access_tokens.db").write_bytes(b"refreshed")
    assert await call.file_mounts_digest(mounts) == before
    (in_tmp / "tree" / "a.txt").write_bytes(b"b")
    assert await call.file_mounts_digest(mounts) != before


async def test_names_that_are_not_utf8_are_fed_raw_in_byte_order(call: Caller, in_tmp: Path) -> None:
    root = os.fsencode(in_tmp / "bytes")
    os.mkdir(root)
    for name, content in ((b"\x80raw", b"1"), ("\u4e2d".encode(), b"2"), (b"z", b"3")):
        with open(os.path.join(root, name), "wb") as file:
            file.write(content)
    mounts = {"/d": os.fsdecode(root)}
    with pytest.raises(UnicodeEncodeError):
        oracle(mounts)  # SkyPilot cannot digest this tree at all

    def raw(data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    # Byte order puts b"\x80raw" before U+4E2D; Python's str order (U+DC80) would not.
    stream = b"/d\0dir" + root + b"\0\0" + b"z\0" + raw(b"3") + b"\x80raw\0" + raw(b"1")
    stream += "\u4e2d".encode() + b"\0" + raw(b"2") + b"\0" + b"\0\0"
    assert await call.file_mounts_digest(mounts) == hashlib.sha256(stream).hexdigest()


@pytest.fixture
def troubled_tree(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    root = tmp_path / "troubled"
    (root / "ok").mkdir(parents=True)
    (root / "ok/file").write_text("fine")
    (root / "broken").symlink_to(root / "nowhere")
    os.mkfifo(root / "fifo")
    (root / "null").symlink_to("/dev/null")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    try:
        yield root, [str(root / name) for name in ("broken", "fifo", "null", "sock")]
    finally:
        server.close()


async def test_every_problem_is_reported_at_once_without_blocking(
    call: Caller, troubled_tree: tuple[Path, list[str]]
) -> None:
    root, expected = troubled_tree
    before = fd_count()
    with pytest.raises(FileMountsError) as caught:
        await asyncio.wait_for(call.file_mounts_digest({"/t": str(root)}), 30)
    error = caught.value
    assert isinstance(error, OSError)
    assert [path for path, _ in error.problems] == expected
    assert [problem.errno for _, problem in error.problems] == [errno.ENOENT] + [errno.EINVAL] * 3
    assert all(problem.filename == path for path, problem in error.problems)
    assert error.errno == errno.ENOENT and error.filename == expected[0]
    assert "4 file mount paths cannot be hashed" in str(error)
    assert fds_open_on([root]) == [] and fd_count() == before


async def test_file_mounts_error_survives_pickling(call: Caller, tmp_path: Path) -> None:
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileMountsError) as caught:
        await call.file_mounts_digest({"/t": str(tmp_path)})
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.problems[0][0] == str(tmp_path / "broken") and copy.errno == errno.ENOENT


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads directories whatever their mode")
async def test_unreadable_directory_is_a_problem(call: Caller, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(FileMountsError) as caught:
            await call.file_mounts_digest({"/t": str(tmp_path)})
        assert caught.value.problems[0][0] == str(locked)
        assert caught.value.errno == errno.EACCES
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("mounts", "kwargs", "exception", "message"),
    [
        (["/a"], {}, TypeError, "file_mounts must be a mapping"),
        ({1: "x"}, {}, TypeError, "destinations must be str"),
        ({"/a": 3}, {}, TypeError, "source for '/a' must be a str"),
        ({"/a": b"x"}, {}, TypeError, "source for '/a' must be a str"),
        ({"/a": "x\0y"}, {}, ValueError, "null byte"),
        ({"/\ud800": "x"}, {}, ValueError, "not valid Unicode"),
        ({}, {"prefix": "text"}, TypeError, "prefix must be bytes"),
        ({}, {"concurrency": 0}, ValueError, "concurrency must be at least 1"),
        ({}, {"concurrency": "2"}, TypeError, "concurrency must be an int"),
    ],
)
async def test_bad_arguments_raise_typed_errors(
    call: Caller, mounts: Any, kwargs: dict[str, Any], exception: type[Exception], message: str
) -> None:
    with pytest.raises(exception, match=message):
        await call.file_mounts_digest(mounts, **kwargs)


async def test_path_like_sources_are_accepted(call: Caller, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("f")
    assert await call.file_mounts_digest({"/f": tmp_path / "f"}) == oracle({"/f": str(tmp_path / "f")})


async def test_cancelling_the_task_cancels_the_hashing_and_closes_files(
    api: Api, huge_sparse_file: Path
) -> None:
    before = fd_count()
    task = asyncio.ensure_future(api.file_mounts_digest({"/huge": str(huge_sparse_file.parent)}))
    await wait_until_open(huge_sparse_file)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fds_open_on([huge_sparse_file]) == []
    assert fd_count() == before


async def test_the_native_backend_walks_in_cpp_not_in_python(
    call: Caller, backend_name: str, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One implementation per behaviour: the pure-Python walk serves only the Python backend."""
    from sky_async._mounts import python as _mounts_py

    def no_python_walk(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pure-Python walk ran")

    mounts = _nested(in_tmp)
    expected = oracle(mounts)
    monkeypatch.setattr(_mounts_py, "plan", no_python_walk)
    if backend_name == "native":
        assert await call.file_mounts_digest(mounts) == expected
    else:
        with pytest.raises(AssertionError, match="pure-Python walk"):
            await call.file_mounts_digest(mounts)


def test_public_names() -> None:
    assert sky_async.file_mounts_digest.__doc__
    assert "file_mounts_digest" in sky_async.__all__ and "FileMountsError" in sky_async.__all__
    assert sky_async.sync.file_mounts_digest.__self__.__class__.__name__ == "SyncApi"
    assert issubclass(sky_async.FileMountsError, OSError)
