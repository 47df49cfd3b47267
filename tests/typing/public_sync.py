"""What mypy --strict must infer for the blocking twins in ``sky_async.sync``.

Checked by ``scripts/lint``, never run; see public_async.py for how the cases work.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import assert_type

from sky_async import PackResult, sync
from sky_async.scan import ExcludedPath, LargeFile, ScanProblem, TreeScan


def hashing(paths: list[str], flag: bool) -> None:
    assert_type(sync.hash_file("a.txt"), str)
    assert_type(sync.hash_file(b"a.txt", "sha512"), str)
    assert_type(sync.hash_files(paths), list[str])
    assert_type(sync.hash_files(paths, return_exceptions=False), list[str])
    assert_type(sync.hash_files(paths, return_exceptions=True), list[str | BaseException])
    assert_type(sync.hash_files(paths, return_exceptions=flag), list[str] | list[str | BaseException])
    assert_type(sync.hash_files((Path(p) for p in paths), concurrency=None), list[str])

    digests: list[str] = sync.hash_files(paths, return_exceptions=True)  # type: ignore[assignment]
    sync.hash_file(None)  # type: ignore[arg-type]
    sync.hash_files(paths, return_exceptions=1)  # type: ignore[call-overload]
    del digests


def tailing(paths: list[str], flag: bool, encoding: str | None) -> None:
    assert_type(sync.read_last_n_lines("log", 10), list[str])
    assert_type(sync.tail_files(paths, 5, encoding="latin-1"), list[list[str]])
    assert_type(sync.tail_files(paths, 5, return_exceptions=True), list[list[str] | BaseException])
    assert_type(
        sync.tail_files(paths, 5, return_exceptions=flag), list[list[str]] | list[list[str] | BaseException]
    )
    assert_type(sync.follow("log", lines=2), Iterator[str])
    for line in sync.follow(b"log"):
        assert_type(line, str)
    # encoding=None: the lines undecoded, as bytes.
    assert_type(sync.tail_files(paths, 5, encoding=None), list[list[bytes]])
    assert_type(
        sync.tail_files(paths, 5, encoding=None, return_exceptions=True), list[list[bytes] | BaseException]
    )
    assert_type(
        sync.tail_files(paths, 5, encoding=None, return_exceptions=flag),
        list[list[bytes]] | list[list[bytes] | BaseException],
    )
    assert_type(
        sync.tail_files(paths, 5, encoding=encoding, return_exceptions=True),
        list[list[str] | BaseException] | list[list[bytes] | BaseException],
    )
    assert_type(sync.follow("log", lines=2, encoding=None), Iterator[bytes])
    assert_type(sync.follow("log", encoding=encoding), Iterator[str] | Iterator[bytes])

    lines: list[list[str]] = sync.tail_files(paths, 5, return_exceptions=True)  # type: ignore[assignment]
    sync.tail_files(paths, 5, chunk_size=None)  # type: ignore[call-overload]
    sync.read_last_n_lines(["log"], 10)  # type: ignore[arg-type]
    texts: list[list[str]] = sync.tail_files(paths, 5, encoding=None)  # type: ignore[assignment]
    del lines, texts


def streaming(done: threading.Event) -> None:
    assert_type(sync.stream_log("log", tail=10, until=done), Iterator[str])
    for chunk in sync.stream_log(b"log", follow=False, line_filter=lambda line: "payload" not in line):
        assert_type(chunk, str)
    sync.stream_log("log", until=asyncio.Event())  # type: ignore[arg-type]
    sync.stream_log("log", max_chunk_bytes=None)  # type: ignore[arg-type]


def processes(pid: int) -> None:
    assert_type(sync.is_process_alive(pid), bool)
    assert_type(sync.probe_processes({pid}, start_times=[sync.process_start_time(pid)]), list[bool])
    assert_type(sync.process_start_time(pid), int | None)
    assert_type(sync.wait_for_exit(pid, 0.1), bool)

    sync.is_process_alive(1.0)  # type: ignore[arg-type]
    sync.probe_processes(["1"])  # type: ignore[list-item]


def scanning(root: str, broot: bytes) -> None:
    text = sync.scan_tree(Path(root), max_problems=5)
    assert_type(text, TreeScan[str])
    raw = sync.scan_tree(broot, collect_files=True)
    assert_type(raw, TreeScan[bytes])
    assert_type(text.problems, tuple[ScanProblem[str], ...])
    assert_type(text.file_paths, tuple[str, ...] | None)
    assert_type(raw.largest, tuple[LargeFile[bytes], ...])
    assert_type(sync.scan_tree(broot, ignore="rsync").excluded, tuple[ExcludedPath[bytes], ...] | None)
    assert_type(sync.scan_tree(root, ignore="skyignore").excluded, tuple[ExcludedPath[str], ...] | None)

    name: str = raw.problems[0].path  # type: ignore[assignment]
    sync.scan_tree(root, follow_symlinks="yes")  # type: ignore[call-overload]
    sync.scan_tree(root, ignore=True)  # type: ignore[call-overload]
    del name


def system(mounts: dict[str, str]) -> None:
    assert_type(sync.get_cpu_count(), int)
    assert_type(sync.get_mem_size_gb(), float)
    assert_type(sync.get_parallel_threads(None), int)
    assert_type(sync.estimate_fd_for_directory(Path("data")), int)
    assert_type(sync.find_free_port(0), int)
    assert_type(sync.get_max_workers_for_file_mounts(mounts, cloud_str="gcp"), int)
    assert_type(sync.file_mounts_digest(mounts), str)
    assert_type(sync.file_mounts_digest(mounts, prefix=b"", concurrency=2), str)

    sync.estimate_fd_for_directory(3)  # type: ignore[arg-type]
    sync.get_max_workers_for_file_mounts(mounts, 1)  # type: ignore[arg-type]
    sync.file_mounts_digest(["a"])  # type: ignore[arg-type]


def pack(sources: list[str]) -> None:
    assert_type(sync.pack_mounts(sources, "upload.zip"), PackResult)
    assert_type(sync.pack_mounts(sources, "upload.zip", ignore=None).blob_id, str)

    sync.pack_mounts(sources, "out.zip", ignore="rsync")  # type: ignore[arg-type]
