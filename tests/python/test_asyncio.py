"""The asyncio side: concurrency, cancellation, uvloop, several loops and threads, closed loops."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    GiB,
    MiB,
    fd_count,
    fds_open_on,
    hashlib_digest,
    loop_factories,
    uvloop,
    wait_until_open,
    write_random,
)
from sky_async._api import Api

# The generous bound on how long a cancelled hash may take to end (the target is far lower).
CANCEL_BOUND = 2.0


@pytest.fixture(scope="session")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str]]:
    root = tmp_path_factory.mktemp("small")
    paths = [write_random(root / f"s{index}", index * 997, seed=index) for index in range(40)]
    return paths, [hashlib_digest(path) for path in paths]


@pytest.fixture(scope="session")
def sparse_batch(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """100 files of 32 MiB of zeros (holes on disk): a batch that takes seconds to hash."""
    root = tmp_path_factory.mktemp("sparse")
    paths = []
    for index in range(100):
        path = root / f"z{index:03d}"
        with open(path, "wb") as file:
            file.truncate(32 * MiB)
        paths.append(path)
    return paths


async def _cancel_and_time(task: asyncio.Task[Any]) -> float:
    """Cancel *task*, check that it ends cancelled, and return how long that took."""
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - started


async def test_gather_of_many_hash_file_calls_is_correct(
    api: Api, small_files: tuple[list[Path], list[str]]
) -> None:
    paths, expected = small_files
    calls = [api.hash_file(path) for path in paths * 5]
    assert await asyncio.gather(*calls) == expected * 5


async def test_gather_of_batches_and_single_files_together(
    api: Api, small_files: tuple[list[Path], list[str]], tmp_path: Path
) -> None:
    paths, expected = small_files
    results = await asyncio.gather(
        api.hash_files(paths, concurrency=2),
        api.hash_files(reversed(paths), concurrency=7),
        api.hash_file(paths[3]),
        api.hash_file(tmp_path / "absent"),
        return_exceptions=True,
    )
    assert results[0] == expected
    assert results[1] == expected[::-1]
    assert results[2] == expected[3]
    assert isinstance(results[3], FileNotFoundError)


async def test_loop_keeps_running_while_a_big_file_is_hashed(api: Api, huge_sparse_file: Path) -> None:
    # The hash runs off the loop: the loop keeps serving other tasks meanwhile.
    task = asyncio.ensure_future(api.hash_file(huge_sparse_file, "md5"))
    await wait_until_open(huge_sparse_file)
    ticks = 0
    for _ in range(20):
        await asyncio.sleep(0.001)
        ticks += 1
    assert not task.done()
    assert ticks == 20
    await _cancel_and_time(task)


async def test_small_calls_are_not_held_up_behind_huge_files(
    api: Api, huge_sparse_file: Path, tmp_path: Path
) -> None:
    # Regression: a worker used to finish a whole large file before it looked at new
    # calls (io_uring: reads completing inline kept its loop busy; threads: a small call
    # could be given to a worker already busy with a large file).
    small = write_random(tmp_path / "small.bin", 5000, seed=3)
    busy = asyncio.ensure_future(api.hash_files([huge_sparse_file] * 3, "sha512"))
    await wait_until_open(huge_sparse_file)
    for _ in range(20):
        assert await api.hash_file(small) == hashlib_digest(small)
    assert not busy.done()
    await _cancel_and_time(busy)


async def test_cancelling_a_task_hashing_a_huge_file_ends_promptly_and_closes_it(
    api: Api, huge_sparse_file: Path, small_files: tuple[list[Path], list[str]]
) -> None:
    paths, expected = small_files
    assert await api.hash_files(paths) == expected  # warm up: runtime, threads, this loop's wakeup fd
    before = fd_count()
    task = asyncio.ensure_future(api.hash_file(huge_sparse_file, "md5"))
    await wait_until_open(huge_sparse_file)
    assert await _cancel_and_time(task) < CANCEL_BOUND
    assert fds_open_on([huge_sparse_file]) == []
    assert fd_count() == before
    assert await api.hash_files(paths) == expected  # still usable


async def test_timeout_on_a_huge_file_ends_promptly_and_closes_it(api: Api, huge_sparse_file: Path) -> None:
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(api.hash_file(huge_sparse_file, "md5"), 0.3)
    assert time.monotonic() - started < 0.3 + CANCEL_BOUND
    assert fds_open_on([huge_sparse_file]) == []


async def test_cancelling_a_batch_of_many_files_ends_promptly_and_closes_them(
    api: Api, sparse_batch: list[Path], small_files: tuple[list[Path], list[str]]
) -> None:
    paths, expected = small_files
    assert await api.hash_files(paths) == expected
    before = fd_count()
    task = asyncio.ensure_future(api.hash_files(sparse_batch, "md5", concurrency=8))
    await wait_until_open(sparse_batch[0])
    assert await _cancel_and_time(task) < CANCEL_BOUND
    assert fds_open_on([sparse_batch[0].parent]) == []
    assert fd_count() == before
    assert await api.hash_files(paths, concurrency=3) == expected


async def test_cancelling_again_while_the_cancel_is_under_way_still_waits_for_the_files(
    api: Api, sparse_batch: list[Path]
) -> None:
    task = asyncio.ensure_future(api.hash_files(sparse_batch, "md5", concurrency=16))
    await wait_until_open(sparse_batch[0])
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fds_open_on([sparse_batch[0].parent]) == []


async def test_cancelling_one_call_leaves_a_concurrent_call_intact(
    api: Api, huge_sparse_file: Path, small_files: tuple[list[Path], list[str]]
) -> None:
    paths, expected = small_files
    doomed = asyncio.ensure_future(api.hash_file(huge_sparse_file, "md5"))
    survivor = asyncio.ensure_future(api.hash_files(paths * 10, concurrency=2))
    await wait_until_open(huge_sparse_file)
    await _cancel_and_time(doomed)
    assert await survivor == expected * 10


async def test_concurrency_bounds_the_files_open_at_once(api: Api, sparse_batch: list[Path]) -> None:
    root = sparse_batch[0].parent
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(len(fds_open_on([root])))
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        await api.hash_files(sparse_batch[:24], "sha1", concurrency=3)
    finally:
        stop.set()
        sampler.join()
    assert max(seen) <= 3
    assert max(seen) >= 1, "the sampler never saw a file open"


# --- explicit loops and threads ------------------------------------------------------------------


async def _scenario(api: Api, paths: list[Path], expected: list[str], huge: Path) -> None:
    """Digests, an error, and a cancellation, on whatever loop runs it."""
    assert await api.hash_files(paths) == expected
    assert await asyncio.gather(*(api.hash_file(path) for path in paths)) == expected
    with pytest.raises(FileNotFoundError):
        await api.hash_file(paths[0].with_name("nope"))
    task = asyncio.ensure_future(api.hash_file(huge, "md5"))
    await wait_until_open(huge)
    assert await _cancel_and_time(task) < CANCEL_BOUND
    assert fds_open_on([huge]) == []


@pytest.mark.skipif(uvloop is None, reason="uvloop is not installed")
def test_explicit_uvloop_loop_runs_hashes_errors_and_cancellation(
    api: Api, small_files: tuple[list[Path], list[str]], huge_sparse_file: Path
) -> None:
    loop = uvloop.new_event_loop()
    try:
        assert type(loop).__module__.startswith("uvloop")
        loop.run_until_complete(_scenario(api, *small_files, huge_sparse_file))
    finally:
        loop.close()


def test_threads_each_running_their_own_loop_hash_at_once(
    api: Api, small_files: tuple[list[Path], list[str]], tmp_path: Path
) -> None:
    factories = list(loop_factories().values())
    count = 6
    huge_files = []
    for index in range(count):  # one each, so that each thread sees only its own file open
        huge_files.append(tmp_path / f"huge{index}.bin")
        with open(huge_files[-1], "wb") as file:
            file.truncate(4 * GiB)
    barrier = threading.Barrier(count)
    outcomes: dict[int, Any] = {}

    def run(index: int) -> None:
        loop = factories[index % len(factories)]()
        try:
            barrier.wait(timeout=30)
            loop.run_until_complete(_scenario(api, *small_files, huge_files[index]))
            outcomes[index] = "ok"
        except BaseException as exc:
            outcomes[index] = exc
        finally:
            loop.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread's loop hung"
    assert outcomes == dict.fromkeys(range(count), "ok")


def test_blocking_calls_from_several_threads_at_once(
    api: Api, small_files: tuple[list[Path], list[str]]
) -> None:
    paths, expected = small_files
    outcomes: dict[int, Any] = {}

    def run(index: int) -> None:
        try:
            outcomes[index] = api.sync.hash_files(paths[index:] + paths[:index], concurrency=1 + index % 4)
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert outcomes == {index: expected[index:] + expected[:index] for index in range(8)}


@pytest.mark.parametrize("factory", list(loop_factories().values()), ids=list(loop_factories()))
def test_closing_a_loop_with_a_hash_pending_then_using_a_new_loop(
    api: Api,
    factory: Callable[[], asyncio.AbstractEventLoop],
    tmp_path: Path,
    small_files: tuple[list[Path], list[str]],
) -> None:
    paths, expected = small_files
    big = tmp_path / "big.bin"
    with open(big, "wb") as file:
        file.truncate(512 * MiB)
    loop = factory()
    task = loop.create_task(api.hash_file(big, "md5"))
    loop.run_until_complete(wait_until_open(big))
    loop.close()  # the task is still pending
    new_loop = factory()
    try:
        assert new_loop.run_until_complete(api.hash_files(paths)) == expected
    finally:
        new_loop.close()
    # The abandoned work still ends and closes its file.
    deadline = time.monotonic() + 60
    while fds_open_on([big]):
        assert time.monotonic() < deadline, "the file of the abandoned hash was never closed"
        time.sleep(0.01)
    del task
    gc.collect()
