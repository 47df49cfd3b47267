"""stream_log(): a log as chunks of whole lines, through inotify and through polling.

No timing asserts: every wait is bounded only to turn a hang into a failure. In the inotify
mode the reader's recheck interval is made far longer than those bounds, so a passing test
proves that inotify woke the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import resource
import select
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sky_async
from conftest import (
    MiB,
    assert_closing_from_another_task_ends_its_wait,
    clean_env,
    fd_count,
    fds_open_on,
    import_skypilot,
    interruptible_child,
    require_native,
    run_python,
)
from sky_async._tail import follow as _follow
from sky_async._tail import inotify_hub as _inotify_hub
from sky_async._tail import stream_log as _stream_log

HANG = 20.0  # seconds before a wait that should succeed is reported as a failure

CONTENT = b"".join(b"line %04d of the log\n" % i for i in range(2000)) + b"unterminated"


@pytest.fixture(params=["inotify", "polling"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_follow, "_FORCE_POLLING", request.param == "polling")
    if request.param == "inotify":
        # Only inotify can wake the reader within HANG.
        monkeypatch.setattr(_stream_log, "_RECHECK_INOTIFY", 3600.0)
    else:
        monkeypatch.setattr(_stream_log, "_RECHECK_POLLING", 0.01)
    return request.param


@pytest.fixture(params=["async", "sync"])
def front(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_bytes(CONTENT)
    return path


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


async def read_all(front: str, path: Path, **kwargs: Any) -> list[str]:
    """Every chunk of a stream that ends by itself, through the coroutine or the generator."""
    if front == "sync":
        return list(sky_async.sync.stream_log(path, **kwargs))
    return [chunk async for chunk in sky_async.stream_log(path, **kwargs)]


async def take(chunks: AsyncIterator[str], count: int = 1) -> list[str]:
    return [await asyncio.wait_for(chunks.__anext__(), HANG) for _ in range(count)]


async def take_text(chunks: AsyncIterator[str], wanted: str) -> str:
    """Chunks until their concatenation is *wanted* long; the concatenation."""
    text = ""
    while len(text) < len(wanted):
        text += (await take(chunks))[0]
    return text


def last_lines(data: bytes, n: int) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-n:]) if n else b""


# --- reading what is there ------------------------------------------------------------------------


async def test_no_tail_streams_the_whole_file_in_chunks_of_whole_lines(log: Path, front: str) -> None:
    chunks = await read_all(front, log, follow=False, max_chunk_bytes=1000)
    assert "".join(chunks) == CONTENT.decode()
    assert len(chunks) > 40
    for chunk in chunks[:-1]:
        assert chunk.endswith("\n")
        assert len(chunk.encode()) <= 1000
    assert chunks[-1].endswith("unterminated")  # delivered as it is when the stream ends


@pytest.mark.parametrize("tail", [0, 1, 2, 7, 1999, 2000, 2001, 10**9])
async def test_tail_is_the_last_lines_a_partial_one_included(log: Path, front: str, tail: int) -> None:
    chunks = await read_all(front, log, tail=tail, follow=False)
    assert "".join(chunks) == last_lines(CONTENT, tail).decode()


async def test_a_line_longer_than_max_chunk_bytes_is_a_chunk_of_its_own(tmp_path: Path, front: str) -> None:
    path = tmp_path / "long.log"
    path.write_bytes(b"a\n" + b"x" * 100 + b"\nb\nc\n")
    chunks = await read_all(front, path, follow=False, max_chunk_bytes=4)
    assert chunks == ["a\n", "x" * 100 + "\n", "b\nc\n"]


async def test_bytes_are_delivered_as_they_are(tmp_path: Path, front: str) -> None:
    path = tmp_path / "crlf.log"
    path.write_bytes(b"dos\r\n\r\n bad \xff\n\n")
    assert "".join(await read_all(front, path, follow=False)) == "dos\r\n\r\n bad \ufffd\n\n"
    with pytest.raises(UnicodeDecodeError):
        await read_all(front, path, follow=False, errors="strict")


async def test_the_line_filter_drops_lines_and_sees_each_with_its_newline(log: Path, front: str) -> None:
    seen: list[str] = []

    def keep(line: str) -> bool:
        seen.append(line)
        return not line.startswith("line 00")

    chunks = await read_all(front, log, tail=102, follow=False, line_filter=keep)
    assert seen == last_lines(CONTENT, 102).decode().splitlines(keepends=True)
    assert "".join(chunks) == "".join(line for line in seen if not line.startswith("line 00"))


async def test_tail_reads_the_end_of_a_big_file_not_all_of_it(
    tmp_path: Path, front: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.log"
    line = b"y" * 99 + b"\n"
    path.write_bytes(line * (64 * MiB // len(line)))
    read = 0
    pread = os.pread

    def counting_pread(fd: int, size: int, offset: int) -> bytes:
        nonlocal read
        data = pread(fd, size, offset)
        read += len(data)
        return data

    monkeypatch.setattr(os, "pread", counting_pread)
    chunks = await read_all(front, path, tail=10, follow=False)
    assert "".join(chunks) == (line * 10).decode()
    assert read < 1 * MiB


# --- following -------------------------------------------------------------------------------------


async def test_appended_lines_arrive_and_a_partial_line_waits_for_its_newline(log: Path, mode: str) -> None:
    async with sky_async.stream_log(log, tail=2, max_delay=0) as chunks:
        assert await take(chunks) == ["line 1999 of the log\n"]  # "unterminated" is held
        waiting = asyncio.ensure_future(chunks.__anext__())
        append(log, b" now\nand half")
        assert await asyncio.wait_for(waiting, HANG) == "unterminated now\n"
        append(log, b" a line\n")
        assert await take(chunks) == ["and half a line\n"]


async def test_tail_zero_starts_at_the_end(log: Path, mode: str) -> None:
    async with sky_async.stream_log(log, tail=0, max_delay=0) as chunks:
        append(log, b"\nnew\n")  # as tail -n 0 -f: from the end, inside the partial line
        assert await take_text(chunks, "\nnew\n") == "\nnew\n"


async def test_chunks_fill_up_to_max_chunk_bytes_before_max_delay(log: Path, mode: str) -> None:
    # A delay no test waits for: only the size limit can release the appended lines.
    async with sky_async.stream_log(log, tail=2, max_chunk_bytes=30, max_delay=3600) as chunks:
        assert await take(chunks) == ["line 1999 of the log\n"]  # the tail goes out at once
        append(log, b"\n")
        for _ in range(3):
            append(log, b"123456789\n")
        assert await take(chunks) == ["unterminated\n123456789\n"]  # the next line would exceed 30
        append(log, b"abcdefghi\n")
        assert await take(chunks) == ["123456789\n123456789\nabcdefghi\n"]
        waiting = asyncio.ensure_future(chunks.__anext__())
        append(log, b"short\n")
        await asyncio.sleep(0.1)
        assert not waiting.done()  # held for max_delay (an hour), as the buffer is not full
        waiting.cancel()


async def test_lines_wait_at_most_max_delay(log: Path, mode: str) -> None:
    async with sky_async.stream_log(log, tail=1, max_chunk_bytes=1 << 20, max_delay=0.05) as chunks:
        append(log, b"\n")
        assert await take(chunks) == ["unterminated\n"]
        text = ""
        for i in range(5):
            append(log, b"%d\n" % i)
        while text != "0\n1\n2\n3\n4\n":
            text += (await take(chunks))[0]


async def test_truncation_reads_again_from_the_start(log: Path, mode: str) -> None:
    async with sky_async.stream_log(log, tail=0, max_delay=0) as chunks:
        append(log, b"\nbefore\n")
        assert await take_text(chunks, "\nbefore\n") == "\nbefore\n"
        with open(log, "r+b") as file:
            file.truncate(0)
            file.write(b"re\n")  # shorter than what was read: seen as a truncation
        assert await take(chunks) == ["re\n"]


async def test_rotation_by_rename_finishes_the_old_file_first(log: Path, mode: str) -> None:
    async with sky_async.stream_log(log, tail=0, max_delay=0) as chunks:
        os.rename(log, log.with_suffix(".1"))
        append(log.with_suffix(".1"), b"\nlast old\nunterminated")
        log.write_bytes(b"fresh\n")
        wanted = "\nlast old\nunterminated\nfresh\n"  # follow's rule: the old partial line gets an LF
        assert await take_text(chunks, wanted) == wanted
        append(log, b"more\n")
        assert await take(chunks) == ["more\n"]
        assert fds_open_on([log.with_suffix(".1")]) == []


async def test_a_replaced_directory_is_followed_to_the_new_file(tmp_path: Path, mode: str) -> None:
    """The log's directory moved away and a new one made in its place: no event names the
    file, and the reader must still find the new one (the directory's own move wakes it)."""
    directory = tmp_path / "logs"
    directory.mkdir()
    log = directory / "app.log"
    log.write_bytes(b"old\n")
    async with sky_async.stream_log(log, tail=0, max_delay=0) as chunks:
        append(log, b"before\n")
        assert await take(chunks) == ["before\n"]  # iterating: watched from here on
        directory.rename(tmp_path / "logs.1")
        append(tmp_path / "logs.1" / "app.log", b"last old\n")
        assert await take(chunks) == ["last old\n"]  # the name is gone meanwhile
        directory.mkdir()
        log.write_bytes(b"new\n")
        append(tmp_path / "logs.1" / "app.log", b"very last\n")  # the old file's event
        wanted = "very last\nnew\n"
        assert await take_text(chunks, wanted) == wanted


async def test_an_appended_line_costs_one_read_and_no_lookup_of_the_name(
    log: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the hub on a local file system, a line written to the file is read with one
    pread: no fstat, no stat of the name (only its directory's events can change what the
    name refers to), no read that finds nothing."""
    if mode != "inotify":
        pytest.skip("polling looks at the name on every turn")
    calls: dict[str, int] = {"pread": 0, "fstat": 0, "stat": 0}

    def counting(name: str) -> Any:
        real = getattr(os, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    async with sky_async.stream_log(log, tail=0, max_delay=0) as chunks:
        append(log, b"first\n")
        assert await take(chunks) == ["first\n"]
        if not _inotify_hub.reliable(os.fsencode(log.parent)):
            pytest.skip("the test directory's file system may miss inotify events")
        for name in calls:
            monkeypatch.setattr(os, name, counting(name))
        for i in range(20):
            append(log, b"line %d\n" % i)
            assert await take(chunks) == [f"line {i}\n"]
        monkeypatch.undo()
    assert calls == {"pread": 20, "fstat": 0, "stat": 0}


# --- until -------------------------------------------------------------------------------------------


async def test_until_an_event_delivers_everything_written_then_ends(log: Path, mode: str) -> None:
    done = asyncio.Event()
    before = fd_count()
    chunks = sky_async.stream_log(log, tail=1, until=done, max_delay=3600, max_chunk_bytes=1 << 20)
    append(log, b" end\nmore\nand a partial")
    got = await take(chunks)  # the tail and what followed it, read at once
    done.set()
    async for chunk in chunks:
        got.append(chunk)
    assert "".join(got) == "unterminated end\nmore\nand a partial"
    assert fd_count() == before


async def test_until_ends_a_reader_that_never_has_to_wait(log: Path) -> None:
    done = asyncio.Event()
    writing = True

    async def write_without_pause() -> None:
        i = 0
        while writing:
            append(log, b"busy %d\n" % i)
            i += 1
            await asyncio.sleep(0)

    writer = asyncio.ensure_future(write_without_pause())
    got: list[str] = []
    try:
        async with sky_async.stream_log(log, tail=0, until=done, max_delay=0) as chunks:
            async for chunk in chunks:
                got.append(chunk)
                if len(got) == 20:
                    written_before = log.read_bytes()
                    done.set()
                assert len(got) < 100_000, "until was never seen"
    finally:
        writing = False
        await writer
    text = "".join(got).encode()
    assert text.endswith(b"\n")
    assert log.read_bytes()[len(CONTENT) :].startswith(text)
    assert len(CONTENT) + len(text) >= len(written_before)  # all that was written before until


async def test_until_a_coroutine_and_an_already_completed_future(log: Path) -> None:
    got = [chunk async for chunk in sky_async.stream_log(log, tail=3, until=asyncio.sleep(0.01))]
    assert "".join(got) == last_lines(CONTENT, 3).decode()
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    finished.set_result(None)
    got = [chunk async for chunk in sky_async.stream_log(log, tail=1, until=finished)]
    assert got == ["unterminated"]


async def test_a_future_passed_as_until_is_not_cancelled_by_closing(log: Path) -> None:
    owner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    chunks = sky_async.stream_log(log, tail=2, until=owner)
    assert await take(chunks) == ["line 1999 of the log\n"]
    await chunks.aclose()
    assert not owner.cancelled()
    owner.cancel()


async def test_an_until_that_fails_still_ends_the_stream_quietly(log: Path) -> None:
    async def request_failed() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("the request failed")

    got = [chunk async for chunk in sky_async.stream_log(log, tail=1, until=request_failed())]
    assert got == ["unterminated"]


def test_sync_until_a_threading_event(log: Path) -> None:
    done = threading.Event()
    chunks = sky_async.sync.stream_log(log, tail=2, until=done, max_delay=0)
    assert next(chunks) == "line 1999 of the log\n"
    append(log, b"!\n")
    assert next(chunks) == "unterminated!\n"
    append(log, b"last")
    done.set()
    assert list(chunks) == ["last"]


def test_sync_follow_is_a_blocking_generator(log: Path, mode: str) -> None:
    chunks = sky_async.sync.stream_log(log, tail=2, max_delay=0)
    try:
        assert next(chunks) == "line 1999 of the log\n"
        append(log, b"\nfour\n")
        text = ""
        while text != "unterminated\nfour\n":
            text += next(chunks)
    finally:
        chunks.close()  # type: ignore[attr-defined]
    assert fds_open_on([log]) == []


# --- descriptors -------------------------------------------------------------------------------------


def inotify_count() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify"
    return count


async def test_cancelling_the_task_closes_every_descriptor(log: Path, mode: str) -> None:
    before, inotify_before = fd_count(), inotify_count()
    seen: list[str] = []

    async def respond() -> None:  # what a StreamingResponse does until its client leaves
        async for chunk in sky_async.stream_log(log, tail=1, until=asyncio.Event()):
            seen.append(chunk)

    append(log, b"\n")
    task = asyncio.ensure_future(respond())
    while not seen:
        await asyncio.sleep(0.005)
    assert fds_open_on([log])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["unterminated\n"]
    assert fds_open_on([log]) == []
    assert (fd_count(), inotify_count()) == (before, inotify_before)


async def test_aclose_and_garbage_collection_release_descriptors(log: Path) -> None:
    before = fd_count()
    chunks = sky_async.stream_log(log)
    await take(chunks)
    await chunks.aclose()
    assert fd_count() == before
    with pytest.raises(StopAsyncIteration):
        await chunks.__anext__()
    sky_async.stream_log(log, until=asyncio.sleep(1))  # never iterated, dropped at once
    gc.collect()
    assert fd_count() == before


async def test_a_big_backlog_is_read_off_the_loop_in_bounded_slices(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    line = b"z" * 63 + b"\n"
    path.write_bytes(line * (12 * MiB // len(line)))
    chunks = sky_async.stream_log(path, follow=False, max_chunk_bytes=1 << 20)
    first = await take(chunks)
    # One worker turn reads a few MiB, not the whole file.
    assert chunks._stream._pending_bytes <= 2 * _stream_log._WORKER_BYTES
    total = len(first[0]) + sum([len(chunk) async for chunk in chunks])
    assert total == path.stat().st_size


# --- bad input ----------------------------------------------------------------------------------------


def test_missing_file_raises_at_call(tmp_path: Path, front: str) -> None:
    stream_log: Any = sky_async.sync.stream_log if front == "sync" else sky_async.stream_log
    with pytest.raises(FileNotFoundError) as info:
        stream_log(tmp_path / "not-yet.log")
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == tmp_path / "not-yet.log"
    with pytest.raises(IsADirectoryError):
        stream_log(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"tail": -1}, ValueError),
        ({"tail": 1.5}, TypeError),
        ({"tail": True}, TypeError),
        ({"follow": 1}, TypeError),
        ({"max_chunk_bytes": 0}, ValueError),
        ({"max_chunk_bytes": 8.0}, TypeError),
        ({"max_delay": -0.1}, ValueError),
        ({"max_delay": float("nan")}, ValueError),
        ({"max_delay": "0.02"}, TypeError),
        ({"until": 5}, TypeError),
        ({"line_filter": "payload"}, TypeError),
        ({"encoding": "no-such-codec"}, LookupError),
        ({"errors": 3}, TypeError),
    ],
)
def test_bad_arguments(log: Path, front: str, kwargs: dict[str, Any], error: type[Exception]) -> None:
    stream_log: Any = sky_async.sync.stream_log if front == "sync" else sky_async.stream_log
    before = fd_count()
    with pytest.raises(error):
        stream_log(log, **kwargs)
    assert fd_count() == before


def test_sync_until_must_be_a_threading_event(log: Path) -> None:
    with pytest.raises(TypeError, match=r"threading\.Event"):
        sky_async.sync.stream_log(log, until=asyncio.Event())  # type: ignore[arg-type]


# --- SkyPilot's log_streamer, the specification ------------------------------------------------------

APPENDS = [b" completed\n", b"two lines\nthree", b"\n", b"x" * 100_000 + b"\n", b"end without newline"]


async def collect_into(chunks: AsyncIterator[str], out: list[str]) -> None:
    async for chunk in chunks:
        out.append(chunk)


async def until_text(out: list[str], wanted: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG
    while "".join(out) != wanted:
        if loop.time() > deadline or len("".join(out)) > len(wanted):
            pytest.fail(f"streamed {''.join(out)[-200:]!r}, wanted {wanted[-200:]!r}")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("tail", [None, 0, 3])
async def test_the_chunks_concatenate_to_what_skypilots_tail_log_file_yields(
    tmp_path: Path, tail: int | None
) -> None:
    (_, stream_utils) = import_skypilot("server.stream_utils")
    aiofiles = pytest.importorskip("aiofiles")
    ours_path, theirs_path = tmp_path / "ours.log", tmp_path / "theirs.log"
    ours_path.write_bytes(CONTENT)
    theirs_path.write_bytes(CONTENT)
    start = 0 if tail is None else len(CONTENT) - len(last_lines(CONTENT, tail))
    wanted = (CONTENT + b"".join(APPENDS))[start:].decode()

    done = asyncio.Event()
    ours: list[str] = []
    theirs: list[str] = []
    async with aiofiles.open(theirs_path, "rb") as file:
        tasks = [
            asyncio.ensure_future(collect_into(sky_async.stream_log(ours_path, tail=tail, until=done), ours)),
            asyncio.ensure_future(
                collect_into(stream_utils._tail_log_file(file, tail=tail, follow=True), theirs)
            ),
        ]
        try:
            # SkyPilot's tail point is where its whole-file read ends (one thread hop per
            # line): lines appended during that read would count as the tail. Append once it
            # is past the end.
            deadline = asyncio.get_running_loop().time() + HANG
            while await file.tell() < len(CONTENT):
                assert asyncio.get_running_loop().time() < deadline, "SkyPilot never read the file"
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            for data in APPENDS:
                await asyncio.sleep(0.03)  # each append read on its own (a partial line included)
                append(ours_path, data)
                append(theirs_path, data)
            await until_text(theirs, wanted)  # SkyPilot's follow never ends by itself
            done.set()
            await asyncio.wait_for(tasks[0], HANG)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert "".join(ours) == "".join(theirs) == wanted
    assert all(chunk.endswith("\n") for chunk in ours[:-1])


# --- a real server: examples/log_server.py under uvicorn, read with httpx ----------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "log_server.py"


@contextlib.contextmanager
def log_server(log_dir: Path, backend: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The example server on a free port of 127.0.0.1, and its URL; killed on every way out."""
    package_root = os.path.dirname(os.path.dirname(sky_async.__file__))  # the tree under test
    env = clean_env(SKY_ASYNC_BACKEND=backend, PYTHONPATH=package_root)
    argv = [sys.executable, os.fspath(EXAMPLE), os.fspath(log_dir), "--port", "0"]
    with interruptible_child(argv, env=env, stdout=subprocess.PIPE) as server:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], HANG)
        assert ready, "the server never said where it listens"
        line = server.stdout.readline().decode()
        assert line.startswith("serving on http://127.0.0.1:"), line
        yield server, line.split()[-1]


def server_descriptors(pid: int, log_dir: Path) -> list[str]:
    """The server's descriptors on the logs, and its inotify instances."""
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{name}")
            if target.startswith(os.fspath(log_dir)) or target == "anon_inode:inotify":
                found.append(target)
    return found


@pytest.mark.single_loop  # the loop under test is the server's, in the child
@pytest.mark.parametrize("backend", ["native", "python"])
async def test_a_real_server_streams_exactly_the_file_from_the_tail_point_on(
    tmp_path: Path, backend: str
) -> None:
    pytest.importorskip("fastapi", reason="the example server needs fastapi (the test extra)")
    pytest.importorskip("uvicorn", reason="the example server needs uvicorn (the test extra)")
    httpx = pytest.importorskip("httpx", reason="the client is httpx (the test extra)")
    if backend == "native":
        require_native()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    path = log_dir / "app.log"
    path.write_bytes(CONTENT)
    # Everything from the tail point on, in the order written; the server holds a partial
    # line until its LF, so what has arrived is checked up to the last LF written.
    written = bytearray(last_lines(CONTENT, 3))
    received = bytearray()

    with log_server(log_dir, backend) as (server, url):
        async with httpx.AsyncClient(base_url=url, timeout=HANG) as client:
            missing = await client.get("/logs/missing.log")
            assert missing.status_code == 404
            params = {"tail": "3", "follow": "1"}
            async with client.stream("GET", "/logs/app.log", params=params) as response:
                assert response.status_code == 200
                body = response.aiter_raw()

                async def caught_up() -> None:
                    wanted = bytes(written[: written.rindex(b"\n") + 1])
                    while len(received) < len(wanted):
                        received.extend(await asyncio.wait_for(body.__anext__(), HANG))
                    assert bytes(received) == wanted

                def write(data: bytes, target: Path = path) -> None:
                    append(target, data)
                    written.extend(data)

                await caught_up()
                following = server_descriptors(server.pid, log_dir)
                assert sorted(following) == sorted(["anon_inode:inotify", os.fspath(path)])
                write(b" now\n")
                await caught_up()
                write(b"a\nb\n" + b"w" * 200_000 + b"\nhalf")
                write(b" and the rest\n")
                await caught_up()
                # Rotation: the old file is read to its end, then the new one from its start.
                os.rename(path, log_dir / "app.log.1")
                write(b"old tail\n", log_dir / "app.log.1")
                write(b"fresh\n")
                await caught_up()
                # Truncation: read again from the start.
                with open(path, "r+b") as file:
                    file.truncate(0)
                    file.write(b"re\n")
                written.extend(b"re\n")
                await caught_up()
                write(b"final\n")
                await caught_up()
                assert fds_open_on([log_dir]) == []  # all of it was the server's work
            # The client has gone: the server closes the file and its inotify instance.
            deadline = asyncio.get_running_loop().time() + HANG
            while server_descriptors(server.pid, log_dir):
                assert asyncio.get_running_loop().time() < deadline, server_descriptors(server.pid, log_dir)
                await asyncio.sleep(0.02)
            whole = await client.get("/logs/app.log")
            assert whole.content == path.read_bytes() == b"re\nfinal\n"
            tail = await client.get("/logs/app.log.1", params={"tail": "1"})
            assert tail.content == b"old tail\n"
        server.send_signal(signal.SIGINT)
        assert server.wait(HANG) in (130, -signal.SIGINT)


# --- one inotify instance per event loop ---------------------------------------------------------------


def inotify_watches() -> int:
    """The watches of this process's inotify instances (from /proc/self/fdinfo)."""
    watches = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                with open(f"/proc/self/fdinfo/{name}") as info:
                    watches += sum(line.startswith("inotify wd:") for line in info)
    return watches


async def test_readers_on_one_loop_share_one_instance_and_one_watch_per_file(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_stream_log, "_RECHECK_INOTIFY", 3600.0)  # only inotify can wake them
    other = log.with_name("other.log")
    other.write_bytes(b"other\n")
    instances, watches = inotify_count(), inotify_watches()
    readers = [sky_async.stream_log(path, tail=2, max_delay=0) for path in (log, log, log, other)]
    try:
        for reader in readers[:3]:
            assert await take(reader) == ["line 1999 of the log\n"]
        assert await take(readers[3]) == ["other\n"]
        # All four have subscribed: one instance, the two files and their directory watched.
        assert inotify_count() - instances == 1
        assert inotify_watches() - watches == 3
        hub = _inotify_hub.hub_of(asyncio.get_running_loop())
        assert hub.watch_counts() == (2, 1)
        append(log, b"!\n")
        for reader in readers[:3]:
            assert await take(reader) == ["unterminated!\n"]
        await readers[0].aclose()
        assert hub.watch_counts() == (2, 1)  # the file still has two readers
        os.rename(other, log.with_name("other.log.1"))
        other.write_bytes(b"new other\n")
        assert await take(readers[3]) == ["new other\n"]
        assert inotify_watches() - watches == 3  # the rotated-away file is not watched any more
    finally:
        for reader in readers:
            await reader.aclose()
    assert (inotify_count(), inotify_watches()) == (instances, watches)
    assert _inotify_hub.hub_of(asyncio.get_running_loop()) is None


MANY_READERS_SCRIPT = """
import asyncio, os, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
import sky_async
from sky_async._tail import inotify_hub as _inotify_hub
from sky_async._tail import stream_log as _stream_log
# Neither a recheck nor polling could deliver within the test's bounds: only inotify can.
_stream_log._RECHECK_INOTIFY = _stream_log._RECHECK_POLLING = 3600.0
directory, count = sys.argv[1], int(sys.argv[2])

def inotify_fds():
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                found.append(name)
        except OSError:
            pass
    return found

async def main():
    paths = [os.path.join(directory, f"{i}.log") for i in range(count)]
    for i, path in enumerate(paths):
        with open(path, "wb") as file:
            file.write(b"backlog %d\\n" % i)
    before = len(os.listdir("/proc/self/fd"))
    readers = [sky_async.stream_log(path, tail=1, max_delay=0) for path in paths]
    firsts = await asyncio.wait_for(asyncio.gather(*(reader.__anext__() for reader in readers)), 60)
    assert firsts == ["backlog %d\\n" % i for i in range(count)], firsts[:3]
    hub = _inotify_hub.hub_of(asyncio.get_running_loop())
    print("instances", len(inotify_fds()), "watches", hub.watch_counts())
    for i, path in enumerate(paths):
        with open(path, "ab") as file:
            file.write(b"appended %d\\n" % i)
    seconds = await asyncio.wait_for(asyncio.gather(*(reader.__anext__() for reader in readers)), 60)
    assert seconds == ["appended %d\\n" % i for i in range(count)], seconds[:3]
    print("delivered", len(seconds))
    tasks = [asyncio.ensure_future(reader.__anext__()) for reader in readers]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()  # the clients disconnect
    await asyncio.gather(*tasks, return_exceptions=True)
    print("after", len(inotify_fds()), len(os.listdir("/proc/self/fd")) - before)

asyncio.run(main())
"""


@pytest.mark.slow
def test_2000_readers_under_the_default_inotify_limits(tmp_path: Path) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 4096:
        pytest.skip("the hard RLIMIT_NOFILE is below 4096: 2,000 files cannot be open at once")
    with open("/proc/sys/fs/inotify/max_user_instances") as limit:
        instances = int(limit.read())
    assert instances < 2000  # otherwise this would not show that the readers share
    package_root = os.path.dirname(os.path.dirname(sky_async.__file__))
    result = run_python(
        MANY_READERS_SCRIPT, os.fspath(tmp_path), "2000", env=clean_env(PYTHONPATH=package_root), timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["instances 1 watches (2000, 1)", "delivered 2000", "after 0 0"]


class CountingSelector(selectors.EpollSelector):
    """An epoll selector that counts the event loop's wake-ups (returns from select)."""

    wakeups = 0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(timeout)
        self.wakeups += 1
        return ready


IDLE_READERS = 500
IDLE_SECONDS = 2.0


def run_idle_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, reliable: bool, drop_events: bool = False
) -> dict[str, int]:
    """IDLE_READERS readers of their own files on one loop, left idle for IDLE_SECONDS: the
    loop's wake-ups, the readers' reads (follower polls) and the hub's probes meanwhile;
    then one append, which must reach its reader (and only it must read)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < IDLE_READERS + 100:
        pytest.skip(f"the hard RLIMIT_NOFILE ({hard}) is too low for {IDLE_READERS} open files")
    monkeypatch.setattr(_inotify_hub, "reliable", lambda directory: reliable)
    monkeypatch.setattr(_inotify_hub, "_RECHECK", 0.25)
    if drop_events:  # inotify misses every change, as it does for another machine's writes on NFS
        monkeypatch.setattr(_inotify_hub.Hub, "_route", lambda self, data, woken: None)
    counts = {"polls": 0, "probes": 0}
    poll, changed = _follow._Follower.poll, _follow._Follower.changed

    def counting_poll(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["polls"] += 1
        return poll(self, *args, **kwargs)

    def counting_changed(self: Any) -> bool:
        counts["probes"] += 1
        return changed(self)

    monkeypatch.setattr(_follow._Follower, "poll", counting_poll)
    monkeypatch.setattr(_follow._Follower, "changed", counting_changed)
    paths = [tmp_path / f"{i}.log" for i in range(IDLE_READERS)]
    for i, path in enumerate(paths):
        path.write_bytes(b"backlog %d\n" % i)

    async def main(selector: CountingSelector) -> dict[str, int]:
        readers = [sky_async.stream_log(path, tail=1, max_delay=0) for path in paths]
        try:
            firsts = await asyncio.wait_for(asyncio.gather(*(r.__anext__() for r in readers)), HANG)
            assert firsts == [f"backlog {i}\n" for i in range(IDLE_READERS)]
            waiting = [asyncio.ensure_future(reader.__anext__()) for reader in readers]
            await asyncio.sleep(0.1)  # every reader is waiting now
            assert not any(task.done() for task in waiting)
            hub = _inotify_hub.hub_of(asyncio.get_running_loop())
            ticks = hub.recheck_ticks
            before = dict(counts, wakeups=selector.wakeups)
            await asyncio.sleep(IDLE_SECONDS)
            idle = {key: value - before[key] for key, value in dict(counts, wakeups=selector.wakeups).items()}
            idle["ticks"] = hub.recheck_ticks - ticks
            assert not any(task.done() for task in waiting)
            polls = counts["polls"]
            append(paths[7], b"news\n")
            assert await asyncio.wait_for(waiting[7], HANG) == "news\n"
            idle["polls_for_one_append"] = counts["polls"] - polls
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            return idle
        finally:
            for reader in readers:
                await reader.aclose()

    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, IDLE_READERS + 1000)), hard))
    selector = CountingSelector()
    loop = asyncio.SelectorEventLoop(selector)
    try:
        return loop.run_until_complete(main(selector))
    finally:
        loop.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_readers_on_a_local_file_system_never_wake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idle = run_idle_readers(tmp_path, monkeypatch, reliable=True)
    # One wake-up ends the test's own sleep (a second one may come from the loop's clock
    # granularity); the readers neither read, nor are probed, nor have a timer.
    assert idle["wakeups"] <= 3, idle
    assert idle["polls"] == 0 and idle["probes"] == 0 and idle["ticks"] == 0, idle
    assert idle["polls_for_one_append"] <= 2, idle  # the append woke its reader alone


def test_idle_readers_elsewhere_share_one_recheck_timer_per_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idle = run_idle_readers(tmp_path, monkeypatch, reliable=False)
    ticks = idle["ticks"]  # about IDLE_SECONDS / 0.25 = 8, whatever the number of readers
    assert 1 <= ticks <= 12, idle
    assert idle["wakeups"] <= ticks + 3, idle  # the one timer; no reader wakes on its own
    assert idle["probes"] == ticks * IDLE_READERS, idle  # two stat calls per reader per tick
    assert idle["polls"] == 0, idle  # nothing changed: no reader was woken to read
    assert idle["polls_for_one_append"] <= 2, idle


def test_the_hub_recheck_delivers_what_inotify_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idle = run_idle_readers(tmp_path, monkeypatch, reliable=False, drop_events=True)
    assert idle["polls"] == 0, idle
    assert idle["polls_for_one_append"] <= 2, idle  # found by the probe, read once


async def test_closing_a_stream_that_another_task_awaits_ends_that_task_and_spares_the_reused_number(
    log: Path, mode: str
) -> None:
    """The server's disconnect handler closes the stream its response task iterates."""
    chunks = sky_async.stream_log(log, tail=0)
    await assert_closing_from_another_task_ends_its_wait(chunks, HANG)
    assert _inotify_hub.hub_of(asyncio.get_running_loop()) is None
