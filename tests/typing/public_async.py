"""What mypy --strict must infer for the coroutines and functions of ``sky_async``.

Checked by ``scripts/lint`` (mypy --strict, warn_unused_ignores), never run. Each
``assert_type`` fails when a signature changes its result; each ``# type: ignore[code]``
is a call the signatures must reject, so a signature that starts accepting it fails the
lint with an unused ignore.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import assert_type

import sky_async
from sky_async.scan import ExcludedPath, LargeFile, ScanProblem, TreeScan


async def hashing(paths: list[str], flag: bool) -> None:
    assert_type(await sky_async.hash_file("a.txt"), str)
    assert_type(await sky_async.hash_file(Path("a.txt"), "md5"), str)
    assert_type(await sky_async.hash_files(paths), list[str])
    assert_type(await sky_async.hash_files(paths, return_exceptions=False), list[str])
    assert_type(await sky_async.hash_files(paths, return_exceptions=True), list[str | BaseException])
    assert_type(
        await sky_async.hash_files(paths, return_exceptions=flag), list[str] | list[str | BaseException]
    )
    assert_type(await sky_async.hash_files([b"a", Path("b")], "sha1", concurrency=4), list[str])
    assert_type(sky_async.SUPPORTED_ALGORITHMS, tuple[str, ...])

    # With return_exceptions=True a slot may hold an exception: not a list of digests.
    digests: list[str] = await sky_async.hash_files(paths, return_exceptions=True)  # type: ignore[assignment]
    await sky_async.hash_file(3)  # type: ignore[arg-type]
    await sky_async.hash_files(paths, concurrency="4")  # type: ignore[call-overload]
    await sky_async.hash_files(paths, "sha256", 4)  # type: ignore[call-overload]  # concurrency is keyword-only
    del digests


async def tailing(paths: list[str], flag: bool, encoding: str | None) -> None:
    assert_type(await sky_async.read_last_n_lines("log", 10), list[str])
    assert_type(await sky_async.read_last_n_lines(b"log", 10, chunk_size=4096, errors="strict"), list[str])
    assert_type(await sky_async.tail_files(paths, 5), list[list[str]])
    assert_type(await sky_async.tail_files(paths, 5, return_exceptions=True), list[list[str] | BaseException])
    assert_type(
        await sky_async.tail_files(paths, 5, return_exceptions=flag),
        list[list[str]] | list[list[str] | BaseException],
    )
    async for line in sky_async.follow("log", lines=3, poll_interval=0.5):
        assert_type(line, str)
    # encoding=None: the lines undecoded, as bytes.
    assert_type(await sky_async.tail_files(paths, 5, encoding=None), list[list[bytes]])
    assert_type(
        await sky_async.tail_files(paths, 5, encoding=None, return_exceptions=True),
        list[list[bytes] | BaseException],
    )
    assert_type(
        await sky_async.tail_files(paths, 5, encoding=None, return_exceptions=flag),
        list[list[bytes]] | list[list[bytes] | BaseException],
    )
    assert_type(
        await sky_async.tail_files(paths, 5, encoding=encoding),
        list[list[str]] | list[list[bytes]],
    )
    async for raw in sky_async.follow("log", lines=3, encoding=None):
        assert_type(raw, bytes)
    async with sky_async.follow(b"log", encoding=None) as raw_lines:
        assert_type(raw_lines, sky_async.Follow[bytes])
        assert_type(raw_lines.take_ready(), list[bytes])
    assert_type(sky_async.follow("log"), sky_async.Follow[str])

    lines: list[list[str]] = await sky_async.tail_files(paths, 5, return_exceptions=True)  # type: ignore[assignment]
    await sky_async.tail_files(paths)  # type: ignore[call-overload]  # n is required
    await sky_async.read_last_n_lines("log", "10")  # type: ignore[arg-type]
    sky_async.follow("log", 3)  # type: ignore[call-overload]  # lines is keyword-only
    texts: list[list[str]] = await sky_async.tail_files(paths, 5, encoding=None)  # type: ignore[assignment]
    await sky_async.read_last_n_lines("log", 10, encoding=None)  # type: ignore[arg-type]
    del lines, texts


async def streaming(done: asyncio.Event, finished: asyncio.Future[None]) -> None:
    async for chunk in sky_async.stream_log("log", tail=10, until=done, line_filter=str.isprintable):
        assert_type(chunk, str)
    async with sky_async.stream_log(Path("log"), follow=False, max_chunk_bytes=1024, max_delay=0) as chunks:
        assert_type(await chunks.__anext__(), str)
    sky_async.stream_log(b"log", until=finished, encoding="latin-1", errors="strict")
    sky_async.stream_log("log", 10)  # type: ignore[call-arg]  # tail is keyword-only
    sky_async.stream_log("log", tail="10")  # type: ignore[arg-type]
    sky_async.stream_log("log", until=threading.Event())  # type: ignore[arg-type]
    sky_async.stream_log("log", line_filter=len)  # type: ignore[arg-type]


async def processes(pid: int) -> None:
    assert_type(await sky_async.is_process_alive(pid), bool)
    assert_type(await sky_async.probe_processes([pid, 1]), list[bool])
    assert_type(await sky_async.probe_processes((pid,), start_times=[None, 5]), list[bool])
    assert_type(sky_async.process_start_time(pid), int | None)
    assert_type(await sky_async.wait_for_exit(pid), bool)
    assert_type(await sky_async.wait_for_exit(pid, timeout=1.5), bool)

    await sky_async.is_process_alive("1")  # type: ignore[arg-type]
    await sky_async.probe_processes([pid], start_times=["0"])  # type: ignore[list-item]
    await sky_async.wait_for_exit(pid, "1")  # type: ignore[arg-type]


async def scanning(root: str, broot: bytes, proot: os.PathLike[str], either: str | bytes) -> None:
    text = await sky_async.scan_tree(root)
    assert_type(text, sky_async.TreeScan[str])
    assert_type(await sky_async.scan_tree(proot, follow_symlinks=True), TreeScan[str])
    raw = await sky_async.scan_tree(broot, collect_files=True, max_file_size=2**30, largest=3, max_problems=9)
    assert_type(raw, TreeScan[bytes])
    assert_type(await sky_async.scan_tree(either), TreeScan[str] | TreeScan[bytes])
    assert_type(text.problems, tuple[ScanProblem[str], ...])
    assert_type(raw.problems[0].path, bytes)
    assert_type(text.largest, tuple[LargeFile[str], ...])
    assert_type(raw.largest[0].path, bytes)
    assert_type(raw.file_paths, tuple[bytes, ...] | None)
    assert_type(text.problem_counts, dict[str, int])
    assert_type(text.total_problems, int)
    assert_type(text.problems_truncated, bool)
    assert_type(sky_async.ScanProblem[str], type[ScanProblem[str]])
    ignored = await sky_async.scan_tree(root, ignore="skypilot")
    assert_type(ignored.excluded, tuple[ExcludedPath[str], ...] | None)
    assert_type(
        (await sky_async.scan_tree(broot, ignore="git")).excluded, tuple[ExcludedPath[bytes], ...] | None
    )
    assert_type(await sky_async.scan_tree(root, ignore=None), TreeScan[str])
    for excluded in ignored.excluded or ():
        assert_type(excluded.path, str)
        assert_type(excluded.relative, str)
        assert_type(excluded.source, str | None)
        assert_type(excluded.line, int | None)
        assert_type(excluded.pattern, str | None)
        assert_type(excluded.rule, str | None)
        assert_type(excluded.is_dir, bool)

    # A bytes root gives bytes paths, a str root str paths.
    name: str = raw.problems[0].path  # type: ignore[assignment]
    data: bytes = text.largest[0].path  # type: ignore[assignment]
    await sky_async.scan_tree(root, largest="3")  # type: ignore[call-overload]
    await sky_async.scan_tree(root, True)  # type: ignore[call-overload]  # the options are keyword-only
    await sky_async.scan_tree(root, ignore="gitignore")  # type: ignore[call-overload]  # not a rule set
    del name, data


async def system(mounts: dict[str, str]) -> None:
    assert_type(sky_async.get_cpu_count(), int)
    assert_type(sky_async.get_mem_size_gb(), float)
    assert_type(sky_async.get_parallel_threads(), int)
    assert_type(sky_async.get_parallel_threads("kubernetes"), int)
    assert_type(await sky_async.estimate_fd_for_directory("data"), int)
    assert_type(await sky_async.find_free_port(8000), int)
    assert_type(await sky_async.get_max_workers_for_file_mounts(mounts), int)
    assert_type(await sky_async.get_max_workers_for_file_mounts({"~/d": Path("d")}, "aws"), int)
    assert_type(sky_async.get_backend_info(), dict[str, object])

    sky_async.get_parallel_threads(4)  # type: ignore[arg-type]
    await sky_async.find_free_port("8000")  # type: ignore[arg-type]
    await sky_async.get_max_workers_for_file_mounts({"~/d": 3})  # type: ignore[dict-item]
    await sky_async.get_max_workers_for_file_mounts(["d"])  # type: ignore[arg-type]


def strings() -> None:
    assert_type(sky_async.base36_encode("ff"), str)
    assert_type(sky_async.format_float(1.25), str)
    assert_type(sky_async.format_float(3, precision=2), str)
    assert_type(sky_async.truncate_long_string("text", 10, truncate_middle=True), str)

    sky_async.base36_encode(255)  # type: ignore[arg-type]
    sky_async.format_float("1.5")  # type: ignore[arg-type]


async def mounts(file_mounts: dict[str, str]) -> None:
    assert_type(await sky_async.file_mounts_digest(file_mounts), str)
    assert_type(await sky_async.file_mounts_digest(file_mounts, prefix=b"v1", concurrency=8), str)
    assert_type(sky_async.FileMountsError([("a", OSError(2, "gone"))]), sky_async.FileMountsError)
    assert_type(sky_async.__version__, str)

    await sky_async.file_mounts_digest(file_mounts, prefix="v1")  # type: ignore[arg-type]


async def pack(sources: list[str]) -> None:
    result = await sky_async.pack_mounts(sources, "upload.zip")
    assert_type(result, sky_async.PackResult)
    plain = await sky_async.pack_mounts([Path("src")], Path("out.zip"), ignore=None)
    assert_type(plain, sky_async.PackResult)
    assert_type(result.files, int)
    assert_type(result.archive_bytes, int)
    assert_type(result.excluded, list[str])
    assert_type(result.blob_id, str)

    await sky_async.pack_mounts(sources, "out.zip", ignore="git")  # type: ignore[arg-type]
    await sky_async.pack_mounts(sources, b"out.zip")  # type: ignore[arg-type]
