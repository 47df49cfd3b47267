"""pack_mounts and compat's zip drop-ins against SkyPilot 0.14.1's own functions.

SkyPilot's ``storage_utils.zip_files_and_folders`` and ``client.common._compute_zip_blob_id``
are the specification: on random trees (files, nested directories, symlinks to files and
directories, broken links, empty directories, a ``.skyignore`` or a git repository with a
``.gitignore``) both zips must be the same bytes, entry by entry, and the blob ids equal.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Caller, import_skypilot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sky_async import PackResult, compat, sync
from sky_async import pack_mounts as pack_mounts_async
from sky_async._upload import pack as _pack

sky, sky_storage, sky_common = import_skypilot("data.storage_utils", "client.common")


def entries(path: Path) -> list[tuple[str, int, int, int, int, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [
            (i.filename, i.external_attr, i.compress_type, i.CRC, i.file_size, archive.read(i))
            for i in archive.infolist()
        ]


def assert_same_as_skypilot(items: list[str], out_dir: Path, ignore: str | None = "skypilot") -> PackResult:
    theirs, ours, drop_in = out_dir / "sky.zip", out_dir / "ours.zip", out_dir / "compat.zip"
    sky_storage.zip_files_and_folders(items, str(theirs))
    result = sync.pack_mounts(items, ours, ignore=ignore)
    compat.zip_files_and_folders(items, str(drop_in))
    assert entries(ours) == entries(theirs)
    assert ours.read_bytes() == theirs.read_bytes() == drop_in.read_bytes()
    blob_id = sky_common._compute_zip_blob_id(str(theirs))
    assert result.blob_id == blob_id == compat.compute_zip_blob_id(str(ours))
    assert result.archive_bytes == theirs.stat().st_size
    for tmp in out_dir.iterdir():
        assert not tmp.name.endswith(".tmp")
    return result


# --- random trees ------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c.txt", "d.log", ".e", "node_modules", "x.gz"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)
CONTENT = st.one_of(
    st.binary(max_size=64), st.integers(0, 300_000).map(lambda n: bytes(range(256)) * (n // 256))
)
NODE = st.one_of(
    st.tuples(st.just("file"), PATHS, CONTENT),
    st.tuples(st.just("dir"), PATHS, st.just(b"")),
    st.tuples(st.just("link"), PATHS, PATHS.map(str.encode)),
    st.tuples(st.just("abslink"), PATHS, PATHS.map(str.encode)),
)
IGNORE_LINES = st.lists(
    st.sampled_from(["*.log", "node_modules/", "/a", "b/", "*.gz", ".e", "a/b", "#x", "*"])
)
IGNORE = st.one_of(
    st.tuples(st.just("none"), st.just([])),
    st.tuples(st.just("skyignore"), IGNORE_LINES),
    st.tuples(st.just("git"), IGNORE_LINES),
)


def build(root: Path, nodes: list[tuple[str, str, bytes]]) -> None:
    for kind, rel, data in nodes:
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "file":
                path.write_bytes(data)
            elif kind == "dir":
                path.mkdir(exist_ok=True)
            elif kind == "link":
                path.symlink_to(os.path.relpath(root / data.decode(), path.parent))
            else:
                path.symlink_to(root / data.decode())
        except OSError:  # the path is taken by another node (a file where a directory goes)
            continue


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(NODE, max_size=12), ignore=IGNORE, name_a_file=st.booleans())
def test_random_trees_pack_to_skypilots_zip_and_blob_id(
    nodes: list[tuple[str, str, bytes]], ignore: tuple[str, list[str]], name_a_file: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp, "src"), Path(tmp, "out")
        root.mkdir()
        out.mkdir()
        (root / "empty").mkdir()
        build(root, nodes)
        kind, lines = ignore
        if kind == "skyignore":
            (root / ".skyignore").write_text("\n".join(lines) + "\n")
        elif kind == "git":
            git(root, "init", "-q")
            (root / ".gitignore").write_text("\n".join(lines) + "\n")
        items = [str(root)]
        files = sorted(
            p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and ".git" not in p.parts
        )
        if name_a_file and files:
            items.append(str(files[-1]))
        assert_same_as_skypilot(items, out)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.lists(NODE, max_size=10), second=st.lists(NODE, max_size=10), overlap=st.booleans())
def test_archives_concatenated_are_the_archive_of_all_their_sources(
    first: list[tuple[str, str, bytes]], second: list[tuple[str, str, bytes]], overlap: bool
) -> None:
    """preflight packs each source alone, then the launch archive of all of them by copying
    the entries: byte for byte what packing all the sources at once writes (overlapping
    sources, whose shared entries are stored twice, included), with the same blob id."""
    with tempfile.TemporaryDirectory() as tmp:
        a, b, out = Path(tmp, "a"), Path(tmp, "b"), Path(tmp, "out")
        for root in (a, b, out):
            root.mkdir()
        build(a, first)
        build(b, second)
        (b / "ünïcode name").write_bytes(b"\x00" * 1000)
        sources = [str(a), str(b)]
        subdirs = [p for p in a.rglob("*") if p.is_dir() and not p.is_symlink()]
        if overlap and subdirs:
            sources.append(str(subdirs[0]))  # inside the first source
        whole = _pack.pack(sources, str(out / "whole.zip"), exclusions_of=None)
        parts, pairs = [], []
        for index, source in enumerate(sources):
            part = str(out / f"part{index}.zip")
            _pack.pack([source], part, exclusions_of=None, pairs=pairs)
            parts.append(part)
        size = _pack.concatenate(parts, str(out / "joined.zip"))
        assert (out / "joined.zip").read_bytes() == (out / "whole.zip").read_bytes()
        assert size == whole.archive_bytes
        assert _pack.blob_id_of(pairs) == whole.blob_id


# --- one test per rule ----------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "src"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a.txt").write_text("a" * 5000)
    (root / "top.log").write_text("log")
    (root / "link").symlink_to("dir/a.txt")
    (root / "dirlink").symlink_to(root / "dir")
    (root / "broken").symlink_to("nowhere")
    yield root


def test_counts_sizes_and_the_excluded_paths(tree: Path, tmp_path: Path) -> None:
    (tree / ".skyignore").write_text("*.log\n")
    result = assert_same_as_skypilot([str(tree)], tmp_path)
    assert (result.files, result.directories, result.symlinks) == (2, 3, 3)  # a.txt, .skyignore
    assert result.bytes == 5000 + len("*.log\n")
    assert result.excluded == [str(tree / "top.log")]


def test_ignore_none_keeps_what_the_rules_exclude(tree: Path, tmp_path: Path) -> None:
    (tree / ".skyignore").write_text("*.log\n")
    result = sync.pack_mounts([tree], tmp_path / "out.zip", ignore=None)
    assert result.excluded == []
    assert str(tree / "top.log").lstrip("/") in zipfile.ZipFile(tmp_path / "out.zip").namelist()


def test_a_socket_is_skipped(tree: Path, tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree / "sock"))
        assert_same_as_skypilot([str(tree)], tmp_path)
        names = zipfile.ZipFile(tmp_path / "ours.zip").namelist()
        assert not any(name.endswith("sock") for name in names)


def test_a_file_named_directly_is_stored_though_ignored(tree: Path, tmp_path: Path) -> None:
    (tree / ".skyignore").write_text("*.log\n")
    result = assert_same_as_skypilot([str(tree), str(tree / "top.log")], tmp_path)
    assert str(tree / "top.log") in result.excluded
    assert str(tree / "top.log").lstrip("/") in zipfile.ZipFile(tmp_path / "ours.zip").namelist()


def test_gitignore_in_a_repository(tree: Path, tmp_path: Path) -> None:
    git(tree, "init", "-q")
    (tree / ".gitignore").write_text("*.log\ndir/sub/\n")
    result = assert_same_as_skypilot([str(tree)], tmp_path)
    assert sorted(result.excluded) == [str(tree / "dir" / "sub"), str(tree / "top.log")]


def test_relative_names_and_stored_compression_as_skypilot(tree: Path, tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"relative_to_items": True, "compression": zipfile.ZIP_STORED}
    sky_storage.zip_files_and_folders([str(tree)], str(tmp_path / "sky.zip"), **kwargs)
    compat.zip_files_and_folders([str(tree)], str(tmp_path / "ours.zip"), **kwargs)
    assert (tmp_path / "ours.zip").read_bytes() == (tmp_path / "sky.zip").read_bytes()


def test_the_output_inside_the_tree_is_refused(tree: Path) -> None:
    with pytest.raises(ValueError, match="inside the source directory"):
        sync.pack_mounts([tree], tree / "dir" / "out.zip")
    with pytest.raises(ValueError, match="is the source file"):
        sync.pack_mounts([tree / "top.log"], tree / "top.log")
    assert not (tree / "dir" / "out.zip").exists()
    assert sorted(p.name for p in (tree / "dir").iterdir()) == ["a.txt", "sub"]


def test_a_missing_source_is_skypilots_value_error_and_writes_nothing(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    with pytest.raises(ValueError) as sky_error:
        sky_storage.zip_files_and_folders([missing], str(tmp_path / "sky.zip"))
    with pytest.raises(ValueError) as our_error:
        compat.zip_files_and_folders([missing], str(tmp_path / "ours.zip"))
    assert str(our_error.value) == str(sky_error.value)
    assert not (tmp_path / "ours.zip").exists()


def test_bad_arguments_are_typed_errors(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'skypilot', None"):
        sync.pack_mounts([tree], tmp_path / "o.zip", ignore="git")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence of paths"):
        sync.pack_mounts(str(tree), tmp_path / "o.zip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="output"):
        sync.pack_mounts([tree], b"o.zip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency must be at least 1, got 0"):
        sync.pack_mounts([tree], tmp_path / "o.zip", concurrency=0)
    with pytest.raises(TypeError, match="concurrency must be an int or None, not float"):
        sync.pack_mounts([tree], tmp_path / "o.zip", concurrency=2.0)  # type: ignore[arg-type]
    assert not (tmp_path / "o.zip").exists()


def test_a_file_growing_during_the_read_is_an_error_and_output_is_untouched(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tree / "dir" / "a.txt"
    big.write_bytes(b"x" * (3 * _pack.CHUNK_SIZE))
    output = tmp_path / "out.zip"
    output.write_bytes(b"previous")
    real_read = os.read

    def read_then_grow(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        with open(big, "ab") as f:  # the writer appends while the packer reads
            f.write(b"more")
        return chunk

    monkeypatch.setattr(_pack.os, "read", read_then_grow)
    with pytest.raises(OSError, match="changed size while being archived") as error:
        sync.pack_mounts([tree], output)
    assert error.value.filename == str(big)
    monkeypatch.undo()
    assert output.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "src"]


def test_a_fifo_is_an_error_not_a_hang(tree: Path, tmp_path: Path) -> None:
    os.mkfifo(tree / "fifo")
    with pytest.raises(OSError, match="Not a regular file"):
        sync.pack_mounts([tree], tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_cancellation_leaves_no_file_and_no_descriptor(tree: Path, tmp_path: Path) -> None:
    with open(tree / "dir" / "sparse", "wb") as f:
        f.truncate(512 * _pack.CHUNK_SIZE)  # long enough to be cancelled while it is read
    output = tmp_path / "out.zip"
    before = open_descriptors()
    task = asyncio.ensure_future(pack_mounts_async([tree], output))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    assert open_descriptors() <= before


async def test_the_coroutine_and_its_twin_give_the_same_result(
    call: Caller, tree: Path, tmp_path: Path
) -> None:
    result = await call.pack_mounts([tree], tmp_path / "out.zip")
    assert isinstance(result, PackResult)
    assert result.blob_id == sky_common._compute_zip_blob_id(str(tmp_path / "out.zip"))


@pytest.mark.parametrize("where", ["name", "target"])
def test_a_name_that_is_not_utf8_is_skypilots_error_naming_the_path(tmp_path: Path, where: str) -> None:
    src = os.path.join(os.fsencode(tmp_path), b"src")
    os.makedirs(src)
    with open(os.path.join(src, b"ok"), "wb") as file:
        file.write(b"ok")
    if where == "name":
        bad = os.path.join(src, b"bad\xff")
        with open(bad, "wb") as file:
            file.write(b"x")
    else:
        bad = os.path.join(src, b"link")
        os.symlink(b"target\xff", bad)
    source = os.fsdecode(src)
    with pytest.raises(UnicodeEncodeError):
        sky_storage.zip_files_and_folders([source], str(tmp_path / "sky.zip"))
    for pack in (sync.pack_mounts, compat.zip_files_and_folders):
        with pytest.raises(UnicodeEncodeError) as error:
            pack([source], str(tmp_path / "ours.zip"))
        assert repr(os.fsdecode(bad)) in str(error.value)
        assert "not valid UTF-8" in str(error.value)
        # Nothing half-written is left (SkyPilot leaves its partial zip).
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sky.zip", "src"]


@pytest.mark.slow
def test_more_entries_than_a_zip_without_zip64_holds_are_skypilots_zip(tmp_path: Path) -> None:
    # 65,535 entries is the most a zip's end record holds; beyond it zipfile writes zip64
    # records, and so must the packer, byte for byte as SkyPilot's zip.
    src = tmp_path / "src"
    for group in range(66):
        directory = src / f"d{group:02d}"
        directory.mkdir(parents=True)
        for index in range(1000):
            (directory / f"f{index:03d}").write_bytes(b"")
    theirs, ours = tmp_path / "sky.zip", tmp_path / "ours.zip"
    sky_storage.zip_files_and_folders([str(src)], str(theirs))
    result = sync.pack_mounts([src], ours)
    assert ours.read_bytes() == theirs.read_bytes()
    assert result.blob_id == sky_common._compute_zip_blob_id(str(theirs))
    assert (result.files, result.directories) == (66_000, 67)
    with zipfile.ZipFile(ours) as archive:
        assert len(archive.infolist()) == 66_067


# --- the pool: files read and compressed by threads, written in archive order ----------------


def mixed_tree(root: Path) -> None:
    """Files below and above a small pooled size, in nested directories, links between."""
    sizes = [0, 1, 100, 40_000, 64 * 1024, 64 * 1024 + 1, 200_000, 700_000]
    for depth in range(3):
        directory = root.joinpath(*[f"d{k}" for k in range(depth)])
        directory.mkdir(parents=True, exist_ok=True)
        for i, size in enumerate(sizes):
            data = (bytes(range(256)) * (size // 256 + 1))[:size] if i % 2 else os.urandom(size)
            (directory / f"f{i}").write_bytes(data)
        (directory / "link").symlink_to("f1")


def pack_mixed_tree(tmp_path: Path) -> PackResult:
    root = tmp_path / "src"
    mixed_tree(root)
    out = tmp_path / "out"
    out.mkdir()
    return assert_same_as_skypilot([str(root)], out)


@pytest.mark.parametrize(("budget", "queue"), [(120_000, 64), (10**9, 4)])
def test_pooled_and_streamed_files_in_one_archive_are_skypilots_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int, queue: int
) -> None:
    # Small limits, so that one tree goes through every path: files read by the pool, tiny
    # files read at their turn and files streamed on the writing thread, a full budget or
    # a full queue holding the walk.
    monkeypatch.setattr(_pack, "_POOLED_MAX", 64 * 1024)
    monkeypatch.setattr(_pack, "_POOL_BUDGET", budget)
    monkeypatch.setattr(_pack, "_QUEUE_MAX", queue)
    seen: list[tuple[int, int]] = []
    real_write_next = _pack._Packer._write_next

    def write_next(self: Any) -> None:
        seen.append((self._pooled_bytes, len(self._pending)))
        real_write_next(self)

    monkeypatch.setattr(_pack._Packer, "_write_next", write_next)
    pack_mixed_tree(tmp_path)
    # the pool held at most its budget of files read and not yet written, the queue at
    # most its length of entries waiting (and one being added)
    pooled = max(p for p, _ in seen)
    assert pooled <= budget
    assert max(n for _, n in seen) <= queue + 1
    if budget < 10**9:
        assert pooled > 64 * 1024  # several files were in the pool at once


def test_tiny_files_are_read_at_their_turn_and_the_others_by_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Handing a tiny file to a pool thread costs more than reading it: those are read on
    # the writing thread when their turn comes, the same entry either way.
    monkeypatch.setattr(_pack, "_POOLED_MAX", 64 * 1024)
    inline: list[int] = []
    pooled: list[int] = []
    real_inline, real_pooled = _pack._Packer._write_inline, _pack._Packer._write_pooled

    def write_inline(self: Any, path: str, info: Any) -> None:
        inline.append(info.file_size)
        real_inline(self, path, info)

    def write_pooled(self: Any, path: str, info: Any, read: Any) -> None:
        pooled.append(info.file_size)
        real_pooled(self, path, info, read)

    monkeypatch.setattr(_pack._Packer, "_write_inline", write_inline)
    monkeypatch.setattr(_pack._Packer, "_write_pooled", write_pooled)
    pack_mixed_tree(tmp_path)
    # Twice each (pack_mounts, then compat's drop-in), three directories of the tree.
    assert sorted(inline) == sorted([0, 1, 100] * 6)
    assert sorted(pooled) == sorted([40_000, 64 * 1024] * 6)


def test_links_to_themselves_and_broken_links_are_stored_as_links_as_skypilot(tmp_path: Path) -> None:
    # The walk knows links from the directory listing; a link whose target cannot be
    # stat'ed (a loop) must still be a link, not a file that fails to open.
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "loop").symlink_to("loop")
    (root / "broken").symlink_to("missing")
    (root / "dirlink").symlink_to("sub")
    (root / "file").write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    result = assert_same_as_skypilot([str(root)], out)
    assert result.symlinks == 3


def test_the_first_failure_in_archive_order_is_the_one_raised(tmp_path: Path) -> None:
    # The FIFO (read by the pool) comes before the directory holding a name that is not
    # UTF-8 (refused when its entry is written): the FIFO's error is the one raised.
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    os.mkfifo(root / "fifo")
    for i in range(20):
        (root / "sub" / f"f{i}").write_bytes(os.urandom(10_000))
    (root / "sub").joinpath(os.fsdecode(b"bad-\xff")).write_bytes(b"x")
    with pytest.raises(OSError, match="Not a regular file") as error:
        sync.pack_mounts([root], tmp_path / "out.zip")
    assert error.value.filename == str(root / "fifo")
    assert not (tmp_path / "out.zip").exists()


def pack_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sky-async-pack")}


async def test_cancellation_while_the_pool_reads_closes_every_file(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    for i in range(60):  # incompressible: each takes the pool a while
        (root / f"f{i}").write_bytes(os.urandom(2 * 1024 * 1024))
    output = tmp_path / "out.zip"
    before = open_descriptors()
    task = asyncio.ensure_future(pack_mounts_async([root], output))
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    assert open_descriptors() <= before
    assert not pack_threads()


@pytest.mark.parametrize("concurrency", [1, 2, 3])
async def test_files_open_at_once_never_exceed_concurrency(
    call: Caller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, concurrency: int
) -> None:
    monkeypatch.setattr(_pack, "_POOLED_MAX", 64 * 1024)  # large files too: the writer holds one
    lock = threading.Lock()
    held: set[int] = set()
    most = 0
    real_open, real_close = _pack._open_regular, os.close

    def open_regular(path: str, expected: int) -> int:
        nonlocal most
        fd = real_open(path, expected)
        with lock:
            held.add(fd)
            most = max(most, len(held))
        return fd

    def close(fd: int) -> None:
        with lock:
            held.discard(fd)
        real_close(fd)

    monkeypatch.setattr(_pack, "_open_regular", open_regular)
    monkeypatch.setattr(_pack.os, "close", close)
    root = tmp_path / "src"
    mixed_tree(root)
    for i in range(40):
        (root / f"g{i}").write_bytes(os.urandom(30_000))
    result = await call.pack_mounts([root], tmp_path / "out.zip", concurrency=concurrency)
    assert result.files == 3 * 8 + 40
    assert not held
    assert 1 <= most <= concurrency
