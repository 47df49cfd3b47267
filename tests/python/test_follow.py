"""follow(): lines appended to a file as they arrive, through inotify and through polling.

No timing asserts: every wait is bounded only to turn a hang into a failure. In the inotify
mode the poll interval is far longer than those bounds, so a passing test proves that
inotify woke the follower.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import resource
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sky_async
from conftest import MiB, assert_closing_from_another_task_ends_its_wait, fd_count, fds_open_on, run_python
from sky_async._tail import follow as _follow

HANG = 20.0  # seconds before a wait that should succeed is reported as a failure


@pytest.fixture(params=["inotify", "polling"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_follow, "_FORCE_POLLING", request.param == "polling")
    return request.param


@pytest.fixture
def interval(mode: str) -> float:
    return 3600.0 if mode == "inotify" else 0.02


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    return path


async def take(lines: Any, count: int) -> list[str]:
    return [await asyncio.wait_for(lines.__anext__(), HANG) for _ in range(count)]


async def collect(lines: Any, count: int) -> list[str]:
    return [await lines.__anext__() for _ in range(count)]


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


async def test_backlog_then_appended_lines(log: Path, interval: float, mode: str) -> None:
    async with sky_async.follow(log, lines=2, poll_interval=interval) as lines:
        assert (lines._follower.fileno() is None) == (mode == "polling")
        assert await take(lines, 2) == ["two\n", "three\n"]
        append(log, b"four\nfive\n")
        assert await take(lines, 2) == ["four\n", "five\n"]


async def test_lines_zero_starts_at_the_end(log: Path, interval: float) -> None:
    async with sky_async.follow(log, poll_interval=interval) as lines:
        append(log, b"new\n")
        assert await take(lines, 1) == ["new\n"]


async def test_more_backlog_lines_than_the_file_has(log: Path, interval: float) -> None:
    async with sky_async.follow(log, lines=100, poll_interval=interval) as lines:
        assert await take(lines, 3) == ["one\n", "two\n", "three\n"]


async def test_partial_line_is_held_until_its_newline(log: Path, interval: float) -> None:
    append(log, b"par")
    async with sky_async.follow(log, lines=1, poll_interval=interval) as lines:
        append(log, b"tial\r\nbad \xff\n")
        assert await take(lines, 2) == ["partial\n", "bad \ufffd\n"]


async def test_undecoded_lines_are_the_files_bytes_with_their_lf(log: Path, interval: float) -> None:
    append(log, b"cr\r\nbad \xff\npar")
    # The partial line counts among the last 4 lines, and is held until its LF arrives.
    async with sky_async.follow(log, lines=4, encoding=None, poll_interval=interval) as lines:
        assert lines.take_ready() == [b"three\n", b"cr\r\n", b"bad \xff\n"]
        append(log, b"tial \xe2\x82\r\n")
        assert await take(lines, 1) == [b"partial \xe2\x82\r\n"]
        append(log, b"a\nb\r\n")
        assert await take(lines, 2) == [b"a\n", b"b\r\n"]


async def test_undecoded_ignores_errors(log: Path, interval: float) -> None:
    append(log, b"bad \xff\n")
    async with sky_async.follow(
        log, lines=1, encoding=None, errors="strict", poll_interval=interval
    ) as lines:
        assert await take(lines, 1) == [b"bad \xff\n"]


async def test_undecoded_rotation_delivers_the_unterminated_line_with_an_lf(
    log: Path, interval: float
) -> None:
    async with sky_async.follow(log, encoding=None, poll_interval=interval) as lines:
        os.rename(log, log.with_suffix(".1"))
        append(log.with_suffix(".1"), b"last old\r\nunterminated\r")
        log.write_bytes(b"fresh\n")
        assert await take(lines, 3) == [b"last old\r\n", b"unterminated\r\n", b"fresh\n"]


def test_sync_follow_undecoded_yields_bytes(log: Path, interval: float) -> None:
    append(log, b"\xff\r\n")
    lines = sky_async.sync.follow(log, lines=2, encoding=None, poll_interval=min(interval, 0.05))
    try:
        assert [next(lines), next(lines)] == [b"three\n", b"\xff\r\n"]
        append(log, b"four\xfe\n")
        assert next(lines) == b"four\xfe\n"
    finally:
        lines.close()  # type: ignore[attr-defined]
    assert fds_open_on([log]) == []


async def test_a_line_that_fails_to_decode_raises_in_its_turn_and_ends_the_follow(
    log: Path, interval: float
) -> None:
    append(log, b"bad \xff\nnever\n")
    lines = sky_async.follow(log, lines=3, errors="strict", poll_interval=interval)
    assert await take(lines, 1) == ["three\n"]
    with pytest.raises(UnicodeDecodeError):
        await lines.__anext__()
    assert fds_open_on([log]) == []


async def test_truncation_reads_again_from_the_start(log: Path, interval: float) -> None:
    async with sky_async.follow(log, poll_interval=interval) as lines:
        append(log, b"before\n")
        assert await take(lines, 1) == ["before\n"]
        with open(log, "r+b") as file:
            file.truncate(0)
            file.write(b"re\n")  # shorter than what was read: seen as a truncation
        assert await take(lines, 1) == ["re\n"]


async def test_rotation_by_rename_finishes_the_old_file_first(log: Path, interval: float) -> None:
    async with sky_async.follow(log, poll_interval=interval) as lines:
        os.rename(log, log.with_suffix(".1"))
        append(log.with_suffix(".1"), b"last old\nunterminated")
        log.write_bytes(b"fresh\n")
        assert await take(lines, 3) == ["last old\n", "unterminated\n", "fresh\n"]
        append(log, b"more\n")
        assert await take(lines, 1) == ["more\n"]
        assert fds_open_on([log.with_suffix(".1")]) == []


async def test_delete_then_recreate(log: Path, interval: float) -> None:
    async with sky_async.follow(log, poll_interval=interval) as lines:
        log.unlink()
        waiting = asyncio.ensure_future(lines.__anext__())
        await asyncio.sleep(0.05)  # the follower sees the name missing and keeps waiting
        assert not waiting.done()
        log.write_bytes(b"reborn\n")
        assert await asyncio.wait_for(waiting, HANG) == "reborn\n"


def test_missing_file_raises_at_call(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        sky_async.follow(tmp_path / "not-yet.log")
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == tmp_path / "not-yet.log"


def test_directory_and_fifo_are_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        sky_async.follow(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="Not a regular file") as info:
        sky_async.follow(fifo)
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"lines": -1}, ValueError),
        ({"lines": 1.5}, TypeError),
        ({"poll_interval": 0}, ValueError),
        ({"poll_interval": "1"}, TypeError),
        ({"encoding": "no-such-codec"}, LookupError),
    ],
)
def test_bad_arguments(log: Path, kwargs: dict[str, Any], error: type[Exception]) -> None:
    before = fd_count()
    with pytest.raises(error):
        sky_async.follow(log, **kwargs)
    assert fd_count() == before


async def test_cancelling_the_task_closes_every_descriptor(log: Path, interval: float) -> None:
    before = fd_count()
    seen: list[str] = []

    async def consume() -> None:
        async for line in sky_async.follow(log, lines=1, poll_interval=interval):
            seen.append(line)

    task = asyncio.ensure_future(consume())
    while not seen:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["three\n"]
    assert fds_open_on([log]) == []
    assert fd_count() == before


async def test_aclose_and_garbage_collection_release_descriptors(log: Path, interval: float) -> None:
    before = fd_count()
    lines = sky_async.follow(log, poll_interval=interval)
    await lines.aclose()
    assert fd_count() == before
    sky_async.follow(log, poll_interval=interval)  # never iterated, dropped at once
    gc.collect()
    assert fd_count() == before


@pytest.fixture
def blocking_lines(log: Path, interval: float) -> Iterator[Iterator[str]]:
    lines = sky_async.sync.follow(log, lines=1, poll_interval=min(interval, 0.05))
    yield lines
    lines.close()  # type: ignore[attr-defined]


def test_sync_follow_is_a_blocking_generator(log: Path, blocking_lines: Iterator[str]) -> None:
    before_close = fds_open_on([log])
    assert before_close
    assert next(blocking_lines) == "three\n"
    append(log, b"four\n")
    assert next(blocking_lines) == "four\n"
    blocking_lines.close()  # type: ignore[attr-defined]
    assert fds_open_on([log]) == []


def test_sync_follow_with_an_infinite_interval_waits_for_inotify(log: Path) -> None:
    lines = sky_async.sync.follow(log, lines=1, poll_interval=float("inf"))
    try:
        assert next(lines) == "three\n"
        append(log, b"four\n")
        assert next(lines) == "four\n"  # the wait that follows the backlog has no timeout
    finally:
        lines.close()  # type: ignore[attr-defined]


async def test_async_follow_with_an_infinite_interval_waits_for_inotify(log: Path) -> None:
    async with sky_async.follow(log, lines=1, poll_interval=float("inf")) as lines:
        assert await take(lines, 1) == ["three\n"]
        append(log, b"four\n")
        assert await take(lines, 1) == ["four\n"]


HIGH_FD_SCRIPT = """
import os, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
import sky_async
path = sys.argv[1]
lines = sky_async.sync.follow(path, lines=1, poll_interval=3600)
inotify = []
for name in os.listdir("/proc/self/fd"):
    try:
        if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
            inotify.append(int(name))
    except OSError:
        pass
print("inotify fds:", inotify)
got = [next(lines)]
with open(path, "ab") as file:
    file.write(b"four\\n")
got.append(next(lines))  # first waits on the inotify descriptor, then reads
print(repr(got))
"""


def test_sync_follow_waits_on_an_inotify_descriptor_above_1024(log: Path) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1200:
        pytest.skip("the hard RLIMIT_NOFILE is below 1200: no descriptor above 1024 can be opened")
    result = run_python(HIGH_FD_SCRIPT, os.fspath(log), timeout=60)
    assert result.returncode == 0, result.stderr
    inotify_line, got_line = result.stdout.splitlines()
    assert min(int(fd) for fd in inotify_line.split(":")[1].strip(" []").split(",")) >= 1024
    assert got_line == repr(["three\n", "four\n"])


LONG_LINE_SIZE = 32 * MiB
PIECE = 64 * 1024


def long_line() -> tuple[bytes, str]:
    """A 32 MiB line (multi-byte characters across every read boundary, CRLF-terminated)."""
    text = "ab\u00e9\u4e2d" * (LONG_LINE_SIZE // 8)
    return text.encode() + b"\r\n", text + "\n"


@pytest.mark.parametrize("appends", [1, LONG_LINE_SIZE // PIECE], ids=["one_append", "many_appends"])
async def test_a_32_mib_line_is_delivered_exactly(log: Path, interval: float, appends: int) -> None:
    data, expected = long_line()
    async with sky_async.follow(log, lines=1, poll_interval=interval) as lines:
        assert await take(lines, 1) == ["three\n"]
        step = -(-len(data) // appends)
        for start in range(0, len(data), step):
            append(log, data[start : start + step])
            await asyncio.sleep(0)  # the follower may see any prefix of the line
        append(log, b"after\n")
        got = await take(lines, 2)
        assert got[0] == expected  # not got == [...]: a failure would print 64 MiB
        assert got[1] == "after\n"


@pytest.mark.parametrize("appends", [1, LONG_LINE_SIZE // PIECE], ids=["one_append", "many_appends"])
def test_assembling_a_long_line_copies_its_bytes_a_constant_number_of_times(
    log: Path, appends: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts the bytes allocated between reads, where the old follower re-copied its held line.

    Every copy allocates, so the peak of traced memory between two reads (above what was
    allocated before) bounds from below what that step copied. A follower that copies the
    held part of a line on every read allocates about the line's size per read, hundreds
    of times over; a linear one allocates the line once, when it is joined.
    """
    data = b"x" * (LONG_LINE_SIZE - 1) + b"\n"
    follower = _follow._Follower(log, 0, use_inotify=False)
    real_pread = os.pread
    steps: list[int] = []
    mark = [0]

    def pread(fd: int, size: int, offset: int) -> bytes:
        steps.append(tracemalloc.get_traced_memory()[1] - mark[0])
        chunk = real_pread(fd, size, offset)
        tracemalloc.reset_peak()
        mark[0] = tracemalloc.get_traced_memory()[0]
        return chunk

    got: list[bytes] = []
    monkeypatch.setattr(os, "pread", pread)
    tracemalloc.start()
    try:
        step = len(data) // appends
        for start in range(0, len(data), step):
            append(log, data[start : start + step])
            tracemalloc.reset_peak()
            mark[0] = tracemalloc.get_traced_memory()[0]
            got.extend(follower.poll())
    finally:
        tracemalloc.stop()
        follower.close()
    assert len(got) == 1 and got[0] == data
    assert sum(steps) <= 2 * len(data)
    # Only the step that joins the line allocates more than a read's worth of bytes.
    assert sorted(steps)[-2] <= 2 * _follow._MAX_READ


async def test_a_long_line_is_read_off_the_loop_thread_while_other_tasks_run(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    real_pread = os.pread
    readers: list[int] = []
    released = threading.Event()

    def pread(fd: int, size: int, offset: int) -> bytes:
        readers.append(threading.get_ident())
        if threading.get_ident() != loop_thread:
            # Holds the first worker read until a task on the loop releases it: the loop
            # must be running other tasks while the line is read.
            assert released.wait(HANG), "the loop never ran the releasing task"
        return real_pread(fd, size, offset)

    async def release_once_a_worker_reads() -> None:
        while not any(reader != loop_thread for reader in readers):
            await asyncio.sleep(0.001)
        released.set()

    data, expected = long_line()
    async with sky_async.follow(log, poll_interval=3600) as lines:
        monkeypatch.setattr(os, "pread", pread)
        append(log, data)
        releaser = asyncio.ensure_future(release_once_a_worker_reads())
        got = await take(lines, 1)
        released_by_the_loop = releaser.done()
        releaser.cancel()
        assert got[0] == expected
    assert readers and loop_thread not in readers
    assert released_by_the_loop


async def test_cancelling_during_a_worker_read_closes_every_descriptor_after_it(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fd_count()
    real_pread = os.pread
    loop_thread = threading.get_ident()
    reading = threading.Event()
    released = threading.Event()
    closed_under_read: list[int] = []

    def pread(fd: int, size: int, offset: int) -> bytes:
        if threading.get_ident() != loop_thread:
            reading.set()
            assert released.wait(HANG)
        try:
            return real_pread(fd, size, offset)
        except OSError as exc:
            closed_under_read.append(exc.errno or 0)
            raise

    lines = sky_async.follow(log, poll_interval=3600)
    monkeypatch.setattr(os, "pread", pread)
    append(log, b"y" * (4 * MiB) + b"\n")
    task = asyncio.ensure_future(lines.__anext__())
    for _ in range(int(HANG / 0.001)):
        if reading.is_set() or task.done():
            break
        await asyncio.sleep(0.001)
    assert reading.is_set(), "the line was not read in a worker thread"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    released.set()
    for _ in range(int(HANG / 0.01)):
        if fd_count() == before:
            break
        await asyncio.sleep(0.01)
    assert fds_open_on([log]) == []
    assert fd_count() == before
    assert closed_under_read == []


async def test_rotation_to_a_big_file_delivers_all_of_it_in_order(log: Path, interval: float) -> None:
    # 1.2 MiB, more than a wake-up reads on the loop thread: the rest is read in a worker.
    fresh = [b"fresh line %06d of the new file\n" % index for index in range(40_000)]
    async with sky_async.follow(log, poll_interval=interval) as lines:
        os.rename(log, log.with_suffix(".1"))
        append(log.with_suffix(".1"), b"last old\n")
        log.write_bytes(b"".join(fresh))
        got = await asyncio.wait_for(collect(lines, 1 + len(fresh)), HANG)
        assert got[0] == "last old\n"
        assert got[1:] == [line.decode() for line in fresh]


@pytest.mark.parametrize("use_inotify", [True, False], ids=["inotify", "polling"])
def test_a_second_close_while_the_worker_releases_closes_nothing_twice(
    log: Path, use_inotify: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker that was reading when close() came releases the descriptors; a close()
    arriving meanwhile (stream_log closes on cancel and again on exit) must not close them
    again: by then their numbers may belong to another thread's files or pipes."""
    follower = _follow._Follower(log, 0, use_inotify=use_inotify)
    ours = {fd for fd in (follower._fd, follower.fileno()) if fd is not None}
    reading, resume, releasing = threading.Event(), threading.Event(), threading.Event()
    closed: list[int] = []
    real_close = os.close

    def slow_close(fd: int) -> None:
        if fd in ours:
            closed.append(fd)
        real_close(fd)
        if fd in ours and threading.current_thread() is not threading.main_thread():
            releasing.set()
            time.sleep(0.05)  # widens the moment between closing a number and forgetting it

    def finish(lines: list[bytes]) -> list[bytes]:
        reading.set()
        resume.wait(HANG)
        return lines

    monkeypatch.setattr(os, "close", slow_close)
    worker = threading.Thread(target=follower.poll_in_worker, args=(finish,))
    worker.start()
    try:
        assert reading.wait(HANG)
        follower.close()  # the worker is reading: it will release
        assert not closed
        resume.set()
        assert releasing.wait(HANG)
        follower.close()  # while the worker is closing
    finally:
        resume.set()
        worker.join(HANG)
    assert not worker.is_alive()
    assert sorted(closed) == sorted(ours)


async def test_closing_a_follow_that_another_task_awaits_ends_that_task_and_spares_the_reused_number(
    log: Path, interval: float
) -> None:
    lines = sky_async.follow(log, lines=0, poll_interval=interval)
    await assert_closing_from_another_task_ends_its_wait(lines, HANG)
