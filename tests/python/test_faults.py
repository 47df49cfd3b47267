"""The fault suite: stress and hostile conditions, each asserting the exact outcome.

Every case checks for a correct result or a clear typed error, no hang (each await is
bounded), no leaked descriptor and no lost result. Cases that run long are marked
``slow``; scripts/test runs them once, and skips them in the asyncio debug-mode rerun.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hashlib
import os
import random
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import MiB, fd_count, hashlib_digest, write_random
from sky_async._api import Api

# Bounds that only stop a hang; the operations take a small fraction of them.
HANG_BOUND = 30.0


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str]]:
    root = tmp_path_factory.mktemp("faults")
    paths = [
        write_random(root / f"f{index:03d}", (index * 7919) % (300 * 1024), seed=index) for index in range(60)
    ]
    return paths, [hashlib_digest(path) for path in paths]


async def test_cancelling_at_random_points_leaks_nothing_and_the_loop_stays_usable(
    api: Api, batch: tuple[list[Path], list[str]]
) -> None:
    """1,000 hash_files calls, each cancelled after a random delay (often mid-file)."""
    paths, digests = batch
    rng = random.Random(20261129)
    # The runtime's threads, rings and this loop's completion queue exist from the first call on.
    assert await api.hash_files(paths) == digests
    before = fd_count()
    outcomes = {"cancelled": 0, "finished": 0}
    for _ in range(1000):
        task = asyncio.ensure_future(api.hash_files(paths))
        # From "before it started" to "probably done": the cancel lands everywhere in between.
        await asyncio.sleep(rng.choice((0, 0, 0.0001, 0.0005, 0.001, 0.003)))
        task.cancel()
        try:
            result = await asyncio.wait_for(asyncio.shield(task), HANG_BOUND)
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
        else:
            assert result == digests
            outcomes["finished"] += 1
    assert fd_count() == before
    # The loop and the backend still work, with every result right.
    assert await api.hash_files(paths) == digests
    assert outcomes["cancelled"] > 0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
        )
    ]


def heap_in_use() -> tuple[int, int]:
    """Python blocks allocated, and bytes malloc has handed out (C++ allocations included)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    return sys.getallocatedblocks(), libc.mallinfo2().uordblks


@pytest.mark.slow
@pytest.mark.single_loop
async def test_one_hundred_thousand_awaited_calls_in_one_gather_leave_nothing_behind(
    api: Api, tmp_path: Path
) -> None:
    """Every call gets its result; once caches and pools are warm, a round allocates nothing lasting.

    RSS is no measure here (freed arenas are kept by the allocators), so the test counts live
    Python blocks and malloc's bytes in use: a leak of one object or one C++ result per call
    would show as 100,000 blocks or megabytes.
    """
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    expected = hashlib_digest(empty)
    growth = []
    for _ in range(3):
        gc.collect()
        blocks, heap = heap_in_use()
        results = await asyncio.wait_for(
            asyncio.gather(*(api.hash_file(empty) for _ in range(100_000))), HANG_BOUND * 4
        )
        assert len(results) == 100_000
        assert all(result == expected for result in results)
        del results
        gc.collect()
        after_blocks, after_heap = heap_in_use()
        growth.append((after_blocks - blocks, after_heap - heap))
    # Rounds one and two fill free lists and pools; the third must find them warm.
    blocks, heap = growth[2]
    assert blocks < 1000, growth
    assert heap < 1 * MiB, growth


def test_eight_threads_with_their_own_loops_hash_at_once(
    api: Api, batch: tuple[list[Path], list[str]]
) -> None:
    paths, digests = batch
    errors: list[BaseException] = []
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(asyncio.run(asyncio.wait_for(api.hash_files(paths * 5), HANG_BOUND)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_BOUND * 2)
    assert not errors
    assert results == [digests * 5] * 8


async def test_file_truncated_while_being_hashed_gives_a_digest_of_what_was_read(
    api: Api, tmp_path: Path
) -> None:
    """Reading to EOF means a file cut short mid-read hashes as its bytes up to the cut."""
    path = write_random(tmp_path / "shrinking", 64 * MiB, seed=1)
    content = path.read_bytes()
    task = asyncio.ensure_future(api.hash_file(path))
    await asyncio.sleep(0.002)
    os.truncate(path, 1 * MiB)
    digest = await asyncio.wait_for(task, HANG_BOUND)
    # Whatever the timing, the result is the hash of some prefix of the original file that
    # is at least as long as what is left: never an error, never garbage.
    # A cut landing mid-read leaves the digest of a longer prefix ending on a chunk boundary
    # (both backends read in multiples of 64 KiB), or of the whole file if the read won.
    prefixes = set()
    running = hashlib.sha256(content[: 1 * MiB])
    prefixes.add(running.hexdigest())
    for start in range(1 * MiB, len(content), 64 * 1024):
        running.update(content[start : start + 64 * 1024])
        prefixes.add(running.hexdigest())
    assert digest in prefixes


async def test_file_replaced_by_rename_while_being_hashed_hashes_one_of_the_two(
    api: Api, tmp_path: Path
) -> None:
    """An open file keeps its inode: the digest is of the old file or of the new one, whole."""
    path = write_random(tmp_path / "data", 32 * MiB, seed=2)
    old = hashlib_digest(path)
    replacement = write_random(tmp_path / "next", 3 * MiB, seed=3)
    new = hashlib_digest(replacement)
    task = asyncio.ensure_future(api.hash_file(path))
    await asyncio.sleep(0.001)
    os.rename(replacement, path)
    assert await asyncio.wait_for(task, HANG_BOUND) in (old, new)


async def test_hostile_names_hash_like_any_other(api: Api, tmp_path: Path) -> None:
    names = [b"new\nline", b"tab\tand space ", b"\xff\xfe-not-utf8", b"-starts-with-dash", "ünïcødé".encode()]
    paths = []
    for index, name in enumerate(names):
        path = os.path.join(os.fsencode(tmp_path), name)
        with open(path, "wb") as file:
            file.write(random.Random(index).randbytes(1000 + index))
        paths.append(path)
    results = await api.hash_files(paths)
    assert results == [hashlib_digest(os.fsdecode(path)) for path in paths]


@pytest.mark.parametrize(
    "path", ["/proc/self/status", "/proc/self/maps", "/sys/kernel/mm/transparent_hugepage/enabled"]
)
async def test_proc_and_sys_files_hash_or_fail_cleanly(api: Api, path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this kernel")
    (result,) = await api.hash_files([path], return_exceptions=True)
    # The content changes between reads for /proc/self/*, so only the form can be checked.
    assert isinstance(result, str)
    assert len(result) == 64
