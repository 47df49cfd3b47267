"""``sky-async preflight``: check directory trees before a cluster mounts or uploads them.

Walks every tree with ``scan_tree`` (concurrently, symlinks not followed unless asked),
reports counts, sizes, the largest files and every problem a mount would hit, judges the
file-descriptor budget the way SkyPilot sizes its rsync workers, and optionally hashes
every file with ``hash_files`` into a manifest that ``sha256sum -c`` verifies.

Exit status: 0 when no problem was found, 1 when some were, 2 on a usage error.
The ``--json`` output follows the schema in docs/preflight.md ("sky-async.preflight/1").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import stat
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from .. import (
    SUPPORTED_ALGORITHMS,
    __version__,
    estimate_fd_for_directory,
    file_mounts_digest,
    get_max_workers_for_file_mounts,
    hash_files,
    scan_tree,
)
from .._system import python as _system_py
from ..scan import (
    BROKEN_SYMLINK,
    IGNORE_CHOICES,
    INVALID_UTF8_NAME,
    SPECIAL_FILE,
    STAT_ERROR,
    SYMLINK_LOOP,
    TOO_LARGE,
    UNREADABLE_DIRECTORY,
    UNREADABLE_FILE,
    TreeScan,
)
from . import _preflight_skypilot
from ._common import describe, explain, rule_error
from ._names import checksum_line, for_terminal, quotef

SCHEMA = "sky-async.preflight/1"
# Hashing is done in slices of this many files or bytes when a progress bar is shown, two
# slices in flight, so that the bar moves while the pool stays busy.
SLICE_FILES = 2000
SLICE_BYTES = 256 * 1024 * 1024
# Preflight's own problem kind, beside the scan's: a file the scan passed that could not be hashed.
HASH_ERROR = "hash_error"
PROBLEM_LABELS = {
    UNREADABLE_DIRECTORY: "unreadable directory",
    UNREADABLE_FILE: "unreadable file",
    BROKEN_SYMLINK: "broken symlink",
    SYMLINK_LOOP: "symlink loop",
    SPECIAL_FILE: "special file",
    INVALID_UTF8_NAME: "name not UTF-8",
    TOO_LARGE: "file too large",
    STAT_ERROR: "cannot stat",
    HASH_ERROR: "cannot hash",
}
# With --ignore, the text report lists this many excluded paths, the first ones by path (as the
# scan sorts them), not the biggest: sizing an excluded directory would mean walking it, which is
# the very work --ignore saves (node_modules/, a build tree); --json lists them all.
EXCLUDED_SHOWN = 10
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``1000``, ``512K``, ``100M``, ``2G``, ``1T`` (binary units; an optional trailing B or iB)."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = value[: len(value) - len(unit)]
    try:
        size = float(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 1000, 512K, 100M, 2G)") from None
    if size < 1 or size != size:
        raise argparse.ArgumentTypeError(f"the size must be at least 1 byte, got {text!r}")
    return int(size)


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_size(size: int) -> str:
    """*size* as people say it: ``20 GiB``, ``1.5 KiB``, ``512 B`` (a whole number without ``.0``)."""
    return human_bytes(size).replace(".0 ", " ")


def over_the_limit(size: int, limit: int) -> str:
    """``20 GiB over the 1 GiB limit``; in bytes when both round to the same."""
    if human_size(size) == human_size(limit):
        return f"{size:,} B over the {limit:,} B limit"
    return f"{human_size(size)} over the {human_size(limit)} limit"


# What a special file is, in the report's words (stat.S_IFMT -> name).
_SPECIAL_KINDS = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFBLK: "block device",
    stat.S_IFCHR: "character device",
}


def _detail(problem: dict[str, Any], max_file_size: int | None, follow_symlinks: bool) -> str:
    """What the text report says after a problem's path. A special file's kind and a large
    file's size are looked up again (the scan reports neither); if the file changed or went
    away since, the scan's own message is shown."""
    kind = problem["kind"]
    if kind in (SPECIAL_FILE, TOO_LARGE):
        try:
            st = (os.stat if follow_symlinks else os.lstat)(problem["path"])
        except OSError:
            st = None
        file_type = None if st is None else stat.S_IFMT(st.st_mode)
        if kind == SPECIAL_FILE and file_type in _SPECIAL_KINDS:
            return f" ({_SPECIAL_KINDS[file_type]})"
        size = st.st_size if st is not None and file_type == stat.S_IFREG else 0
        if kind == TOO_LARGE and max_file_size and size > max_file_size:
            return f" ({over_the_limit(size, max_file_size)})"
    return f" ({problem['message']})" if problem["message"] else ""


def load_mounts(path: str) -> dict[str, str]:
    """SkyPilot-style file mounts: a JSON or YAML mapping of remote destination -> local source.

    Every problem with the file is a ValueError of one line naming it.
    """
    return load_task(path)[0]


def load_task(path: str) -> tuple[dict[str, str], str | None]:
    """``load_mounts``, and the task's ``workdir`` when the file is a task YAML with a local
    one (a string; a git workdir, a mapping, is not uploaded from here)."""
    where = quotef(path)
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ValueError(f"{where}: {describe(exc)}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        data = _parse_mounts(text, where)
    except RecursionError:
        raise ValueError(f"{where}: nested too deeply") from None
    workdir = None
    if isinstance(data, Mapping) and isinstance(data.get("workdir"), str):
        workdir = data["workdir"]
    if isinstance(data, Mapping) and isinstance(data.get("file_mounts"), Mapping):
        data = data["file_mounts"]  # a whole task YAML
    elif isinstance(data, Mapping) and workdir is not None and "file_mounts" not in data:
        data = {}  # a task YAML with a workdir and no file mounts
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError(f"{where}: expected a mapping of remote destination to local source (strings)")
    return dict(data), workdir


def _parse_mounts(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        import yaml
    except ImportError:
        raise ValueError(
            f"{where}: not JSON, and reading YAML needs PyYAML: pip install 'sky-async[yaml]'"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML's messages span lines (problem, context, position): one line here.
        raise ValueError(f"{where}: not valid JSON or YAML: {' '.join(str(exc).split())}") from None


def shown(path: str | bytes) -> str:
    """A path for a report not on a terminal: bytes that are not UTF-8 as backslash escapes (\\xff)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def shown_on_terminal(path: str | bytes) -> str:
    """A path for a terminal: quoted as ``ls`` quotes it when it has unprintable characters."""
    return for_terminal(os.fsencode(path)).decode("utf-8", "backslashreplace")


def is_cloud_url(source: str) -> bool:
    return "://" in source


@dataclass
class TreeReport:
    path: str
    scan: Any = None
    error: OSError | None = None
    fd_estimate: int = 0
    hash_failures: list[tuple[str, OSError]] = field(default_factory=list)
    skypilot: dict[str, Any] | None = None
    """With --skypilot: what a launch would upload from this tree (docs/preflight.md)."""

    def problems(self) -> int:
        if self.error is not None:
            return 1
        counted: int = sum(self.scan.problem_counts.values())
        upload_failed = self.skypilot is not None and self.skypilot["error"] is not None
        return counted + len(self.hash_failures) + upload_failed


class Progress:
    """A one-line progress bar on a terminal (stderr); does nothing when not a terminal."""

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.started = time.monotonic()
        self.total_files = self.total_bytes = self.done_files = self.done_bytes = 0
        self.phase = "scanning"
        self._width = 0

    def draw(self) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        if self.phase == "scanning":
            line = f"scanning... {elapsed:.1f} s"
        else:
            rate = self.done_bytes / elapsed
            left = self.total_bytes - self.done_bytes
            eta = f"{left / rate:.0f} s" if rate > 0 and self.done_bytes else "?"
            share = self.done_bytes / self.total_bytes if self.total_bytes else 1.0
            bar = "#" * int(share * 20)
            line = (
                f"hashing [{bar:<20}] {self.done_files:,}/{self.total_files:,} files,"
                f" {human_bytes(self.done_bytes)}/{human_bytes(self.total_bytes)},"
                f" {human_bytes(rate)}/s, ETA {eta}"
            )
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    async def run(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(0.1)


async def hash_all(
    paths: list[bytes], sizes: dict[bytes, int], algorithm: str, progress: Progress
) -> list[Any]:
    """Every file's digest or exception, in order; in slices when a progress bar is shown."""
    progress.phase = "hashing"
    progress.total_files = len(paths)
    progress.total_bytes = sum(sizes.get(path, 0) for path in paths)
    if not progress.enabled:
        return await hash_files(paths, algorithm, return_exceptions=True)
    slices: list[list[bytes]] = [[]]
    weight = 0
    for path in paths:
        if len(slices[-1]) >= SLICE_FILES or weight >= SLICE_BYTES:
            slices.append([])
            weight = 0
        slices[-1].append(path)
        weight += sizes.get(path, 0)
    results: list[Any] = []
    gate = asyncio.Semaphore(2)

    async def one(part: list[bytes]) -> list[Any]:
        async with gate:
            out = await hash_files(part, algorithm, return_exceptions=True)
        progress.done_files += len(part)
        progress.done_bytes += sum(sizes.get(path, 0) for path in part)
        return out

    for part_results in await asyncio.gather(*(one(part) for part in slices)):
        results.extend(part_results)
    return results


def fd_verdict(fds_per_rsync: int, workers: int) -> tuple[str, str]:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft:,}"
    if soft != resource.RLIM_INFINITY and fds_per_rsync + _system_py.FD_RESERVE > soft:
        return "insufficient", (
            f"one rsync may need about {fds_per_rsync:,} file descriptors but this process may open {limit}:"
            f" raise the limit (ulimit -n {fds_per_rsync + _system_py.FD_RESERVE})"
        )
    if soft != resource.RLIM_INFINITY and soft < _system_py.LOW_FD_LIMIT:
        return "low", (
            f"the file descriptor limit ({limit}) is below {_system_py.LOW_FD_LIMIT}: file sync will run"
            f" {workers} worker(s) and may be slow (ulimit -n to raise it)"
        )
    return (
        "ok",
        f"about {fds_per_rsync:,} file descriptors per rsync against a limit of {limit}: {workers} worker(s)",
    )


async def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    # Parsing is CPU work that a hostile file can make long (deep nesting): off the loop.
    mounts: dict[str, str] | None = None
    workdir: str | None = None
    if args.mounts:
        mounts, workdir = await asyncio.to_thread(load_task, args.mounts)
    roots: list[str] = list(args.paths)
    if workdir is not None and args.skypilot:
        # SkyPilot uploads the workdir first, then the file mounts' sources.
        workdir = os.path.expanduser(workdir)
        roots.append(workdir)
    else:
        workdir = None
    skipped_sources: list[str] = []
    if mounts is not None:
        for source in mounts.values():
            if is_cloud_url(source):
                skipped_sources.append(source)
            else:
                roots.append(os.path.expanduser(source))
    if not roots:
        roots = ["."]
    missing = _missing(roots)
    if missing:  # nothing to check there: a usage error, before anything is scanned or written
        for error in missing:
            print(f"sky-async: {explain(error)}", file=err)
        return 2

    progress = Progress(err, enabled=err.isatty() and not args.json and not args.quiet)
    ticker = asyncio.ensure_future(progress.run()) if progress.enabled else None
    algorithm = args.hash or ("sha256" if args.manifest else None)
    reports = [TreeReport(path) for path in roots]
    hashed: dict[str, Any] | None = None
    try:
        scans = await asyncio.gather(
            *(
                scan_tree(
                    report.path,
                    follow_symlinks=args.follow_symlinks,
                    max_file_size=args.max_file_size,
                    largest=args.largest,
                    collect_files=algorithm is not None,
                    max_problems=args.max_problems,
                    ignore=args.ignore,
                )
                for report in reports
            ),
            return_exceptions=True,
        )
        rule_errors = [
            rule_error(report.path, args.ignore, scan)
            for report, scan in zip(reports, scans)
            if args.ignore is not None and isinstance(scan, (UnicodeDecodeError, RuntimeError))
        ]
        if rule_errors:  # rules that cannot be applied: a usage error, before anything is written
            for line in rule_errors:
                print(f"sky-async: {line}", file=err)
            return 2
        for report, scan in zip(reports, scans):
            if isinstance(scan, OSError):
                report.error = scan
            elif isinstance(scan, BaseException):
                raise scan
            else:
                report.scan = scan
                report.fd_estimate = await estimate_fd_for_directory(report.path)
        if algorithm is not None:
            hashed = await hash_reports(reports, algorithm, args.manifest, progress)
        upload: dict[str, Any] | None = None
        if args.skypilot:
            per_root, upload = await asyncio.to_thread(
                _preflight_skypilot.analyze, [r.path for r in reports], workdir, args.pack
            )
            for report in reports:
                if report.error is None:
                    report.skypilot = per_root[report.path]
        digest: dict[str, Any] | None = None
        if mounts is not None:
            digest = {"file": args.mounts, "digest": None, "error": None, "skipped_sources": skipped_sources}
            try:
                digest["digest"] = await file_mounts_digest(mounts)
            except OSError as exc:
                digest["error"] = explain(exc)
    finally:
        if ticker is not None:
            ticker.cancel()
        progress.clear()

    fds_per_rsync = max([_system_py.FDS_PER_ENTRY, *(r.fd_estimate for r in reports)])
    sources = mounts if mounts is not None else {f"~/sky_workdir/{i}": r.path for i, r in enumerate(reports)}
    workers = await get_max_workers_for_file_mounts({k: v for k, v in sources.items() if not is_cloud_url(v)})
    verdict, message = fd_verdict(fds_per_rsync, workers)
    problems = sum(report.problems() for report in reports) + (verdict == "insufficient")
    if digest is not None and digest["error"]:
        problems += 1
    if upload is not None and upload["error"] is not None and not any(r.problems() for r in reports):
        problems += 1
    status = 1 if problems else 0
    if args.json:
        payload = json_payload(
            reports, algorithm, hashed, digest, fds_per_rsync, workers, verdict, message, status, upload
        )
        json.dump(payload, out, indent=2)
        out.write("\n")
    else:
        write_text(
            out,
            reports,
            hashed,
            digest,
            verdict,
            message,
            workers,
            args.quiet,
            args.max_file_size,
            args.follow_symlinks,
            upload,
        )
    return status


def _missing(roots: list[str]) -> list[OSError]:
    """The errors of the roots that do not exist (a dangling symlink is one)."""
    missing: list[OSError] = []
    for root in roots:
        try:
            os.stat(root)
        except (FileNotFoundError, NotADirectoryError) as exc:
            missing.append(exc)
        except OSError:  # it exists; the scan reports why it cannot be read
            pass
    return missing


async def hash_reports(
    reports: list[TreeReport], algorithm: str, manifest: str | None, progress: Progress
) -> dict[str, Any]:
    paths: list[bytes] = []
    owners: list[TreeReport] = []
    sizes: dict[bytes, int] = {}
    for report in reports:
        if report.scan is None:
            continue
        for path in report.scan.file_paths:
            encoded = os.fsencode(path)
            paths.append(encoded)
            owners.append(report)
        for item in report.scan.largest:
            sizes[os.fsencode(item.path)] = item.size
    # Sizes of every file come from a stat here only when the bar needs them: the scan
    # keeps the largest few, and the rest weigh in by count.
    if progress.enabled:
        for path in paths:
            if path not in sizes:
                try:
                    sizes[path] = os.stat(path).st_size
                except OSError:
                    sizes[path] = 0
    started = time.perf_counter()
    results = await hash_all(paths, sizes, algorithm, progress)
    elapsed = time.perf_counter() - started
    total_bytes = sum(r.scan.bytes for r in reports if r.scan is not None)
    lines: list[bytes] = []
    for path, owner, result in zip(paths, owners, results):
        if isinstance(result, OSError):
            owner.hash_failures.append((os.fsdecode(path), result))
        else:
            lines.append(checksum_line(result, path))
    if manifest is not None:
        try:
            with open(manifest, "wb") as file:
                file.writelines(lines)
        except OSError as exc:
            raise ValueError(f"{quotef(manifest)}: {describe(exc)}") from None
    return {
        "algorithm": algorithm,
        "files": len(lines),
        "failed": len(paths) - len(lines),
        "bytes": total_bytes,
        "seconds": round(elapsed, 3),
        "manifest": manifest,
    }


def _problem_dicts(report: TreeReport) -> list[dict[str, Any]]:
    items = [
        {"kind": p.kind, "path": os.fsdecode(p.path), "errno": p.errno, "message": p.message}
        for p in report.scan.problems
    ]
    items += [
        {"kind": HASH_ERROR, "path": path, "errno": exc.errno, "message": describe(exc)}
        for path, exc in report.hash_failures
    ]
    return items


def _excluded_dicts(scan: TreeScan[str]) -> list[dict[str, Any]]:
    return [
        {"path": os.fsdecode(item.path), "source": item.source, "line": item.line, "pattern": item.pattern}
        for item in scan.excluded or ()
    ]


def json_payload(
    reports: list[TreeReport],
    algorithm: str | None,
    hashed: dict[str, Any] | None,
    digest: dict[str, Any] | None,
    fds_per_rsync: int,
    workers: int,
    verdict: str,
    message: str,
    status: int,
    upload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    trees = []
    totals = {
        "files": 0,
        "directories": 0,
        "symlinks": 0,
        "special_files": 0,
        "bytes": 0,
        "vanished": 0,
        "problems": 0,
    }
    for report in reports:
        if report.error is not None:
            trees.append(
                {
                    "path": report.path,
                    "error": {"errno": report.error.errno, "message": describe(report.error)},
                }
            )
            totals["problems"] += 1
            continue
        scan = report.scan
        counts = dict(scan.problem_counts)
        if report.hash_failures:
            counts[HASH_ERROR] = len(report.hash_failures)
        tree = {
            "path": report.path,
            "error": None,
            "files": scan.files,
            "directories": scan.directories,
            "symlinks": scan.symlinks,
            "special_files": scan.special_files,
            "bytes": scan.bytes,
            "vanished": scan.vanished,
            "largest": [{"path": os.fsdecode(item.path), "size": item.size} for item in scan.largest],
            "problem_counts": counts,
            "problems": _problem_dicts(report),
            "fd_estimate": report.fd_estimate,
            "skypilot": report.skypilot,
        }
        if scan.excluded is not None:  # only with --ignore: the output without it is unchanged
            tree["excluded"] = _excluded_dicts(scan)
        trees.append(tree)
        for key in ("files", "directories", "symlinks", "special_files", "bytes", "vanished"):
            totals[key] += tree[key]
        totals["problems"] += report.problems()
    return {
        "schema": SCHEMA,
        "version": __version__,
        "trees": trees,
        "totals": totals,
        "resources": {
            "rlimit_nofile_soft": None if soft == resource.RLIM_INFINITY else soft,
            "rlimit_nofile_hard": None if hard == resource.RLIM_INFINITY else hard,
            "fds_per_rsync": fds_per_rsync,
            "workers": workers,
            "verdict": verdict,
            "message": message,
        },
        "hash": hashed,
        "mounts": digest,
        "skypilot": upload,
        "problems_found": status == 1,
        "exit_status": status,
    }


def write_text(
    out: IO[str],
    reports: list[TreeReport],
    hashed: dict[str, Any] | None,
    digest: dict[str, Any] | None,
    verdict: str,
    message: str,
    workers: int,
    quiet: bool,
    max_file_size: int | None = None,
    follow_symlinks: bool = False,
    upload: dict[str, Any] | None = None,
) -> None:
    def row(label: str, value: str) -> None:
        out.write(f"  {label:<15}{value}\n")

    # A file name must not drive the terminal (clear it, forge report lines).
    show = shown_on_terminal if out.isatty() else shown

    for report in reports:
        out.write(f"{show(report.path)}\n")
        if report.error is not None:
            row("error", describe(report.error))
            continue
        scan = report.scan
        row("files", f"{scan.files:,} ({human_bytes(scan.bytes)})")
        row("directories", f"{scan.directories:,}")
        row("symlinks", f"{scan.symlinks:,}")
        row("special files", f"{scan.special_files:,}")
        if scan.vanished:
            row("vanished", f"{scan.vanished:,} (removed or replaced during the scan: not problems)")
        if scan.largest and not quiet:
            out.write("  largest files\n")
            for item in scan.largest:
                out.write(f"    {human_bytes(item.size):>10}  {show(item.path)}\n")
        if scan.excluded is not None:
            write_excluded(out, scan, row, show)
        if report.skypilot is not None:
            write_skypilot(out, report.skypilot, row, show)
        problems = _problem_dicts(report)
        total = report.problems()
        if not total:
            row("problems", "none")
            continue
        row("problems", f"{total:,}")
        for problem in problems:
            label = PROBLEM_LABELS.get(problem["kind"], problem["kind"])
            detail = _detail(problem, max_file_size, follow_symlinks)
            out.write(f"    {label:<22}{show(problem['path'])}{detail}\n")
        # The upload's failure is counted in total and shown on its own "upload" line.
        listed = len(problems) + (report.skypilot is not None and report.skypilot["error"] is not None)
        if listed < total:
            out.write(f"    ... and {total - listed:,} more (see --max-problems)\n")
    out.write(f"resources: {verdict.upper()}: {message}\n")
    if hashed is not None:
        rate = hashed["bytes"] / hashed["seconds"] if hashed["seconds"] else 0.0
        where = f" -> {show(hashed['manifest'])}" if hashed["manifest"] else ""
        failed = f", {hashed['failed']:,} failed" if hashed["failed"] else ""
        out.write(
            f"hashed: {hashed['files']:,} files with {hashed['algorithm']} in {hashed['seconds']:.2f} s"
            f" ({human_bytes(rate)}/s){failed}{where}\n"
        )
    if digest is not None:
        if digest["error"]:
            out.write(f"mounts digest: cannot compute: {digest['error']}\n")
        else:
            out.write(f"mounts digest: {digest['digest']}\n")
        for source in digest["skipped_sources"]:
            out.write(f"  (not local, not checked: {show(source)})\n")
    if upload is not None and len(upload["sources"]) > 1:
        if upload["error"]:
            out.write(f"skypilot upload: cannot be written: {upload['error']}\n")
        else:
            out.write(f"skypilot upload: {_upload_line(upload, show)}\n")
    found = sum(report.problems() for report in reports) + (verdict == "insufficient")
    if digest is not None and digest["error"]:
        found += 1
    if upload is not None and upload["error"] is not None and not any(r.problems() for r in reports):
        found += 1
    out.write(
        "verdict: ready (no problems found)\n" if not found else f"verdict: {found:,} problem(s) found\n"
    )


def write_excluded(out: IO[str], scan: TreeScan[str], row: Any, show: Any) -> None:
    """A tree's ``--ignore`` section: how many top-most paths the rules excluded, and the
    first EXCLUDED_SHOWN of them with their rules."""
    excluded = scan.excluded or ()
    if not excluded:
        row("excluded", "nothing")
        return
    row("excluded", f"{len(excluded):,} path(s), not counted")
    for item in excluded[:EXCLUDED_SHOWN]:
        out.write(f"    {show(str(item))}\n")
    if len(excluded) > EXCLUDED_SHOWN:
        out.write(f"    ... and {len(excluded) - EXCLUDED_SHOWN:,} more (see --json)\n")


def _upload_line(info: dict[str, Any], show: Any) -> str:
    where = f" -> {show(info['pack'])}" if info["pack"] else ""
    return (
        f"{info['files']:,} files ({human_bytes(info['bytes'])}), archive"
        f" {human_bytes(info['archive_bytes'])}, blob id {info['blob_id']}{where}"
    )


def write_skypilot(out: IO[str], info: dict[str, Any], row: Any, show: Any) -> None:
    """A tree's ``--skypilot`` section: the upload, the biggest exclusions and their rules,
    SkyPilot's warnings."""
    if info["error"] is not None:
        row("upload", f"ERROR: {info['error']}")
        for warning in info["warnings"]:
            row("warning", show(warning))
        return
    row("upload", _upload_line(info, show))
    if info["excluded_count"]:
        by = "by .skyignore" if info["ignore"] == ".skyignore" else "by git's rules"
        row(
            "excluded",
            f"{info['excluded_count']:,} path(s), {human_bytes(info['excluded_bytes'])}, {by}",
        )
        width = max(len(show(item["path"])) for item in info["excluded"])
        for item in info["excluded"]:
            rule = item["rule"] or "?"
            out.write(f"    {show(item['path']):<{width}}  {human_bytes(item['size']):>10}  {rule}\n")
        if info["excluded_count"] > len(info["excluded"]):
            out.write(f"    ... and {info['excluded_count'] - len(info['excluded']):,} more\n")
    else:
        row("excluded", "nothing")
    for warning in info["warnings"]:
        row("warning", show(warning))


def _command(args: argparse.Namespace) -> int:
    if args.max_problems < 0 or args.largest < 0:
        print("sky-async preflight: --max-problems and --largest must be >= 0", file=sys.stderr)
        return 2
    if args.pack is not None and not args.skypilot:
        print("sky-async preflight: --pack needs --skypilot", file=sys.stderr)
        return 2
    if args.ignore is not None and args.skypilot:
        print(
            "sky-async preflight: --ignore is for the plain report: --skypilot applies SkyPilot's own rules",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(run(args, sys.stdout, sys.stderr))


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "preflight",
        help="check directory trees before a mount or upload",
        description=(
            "Walk each PATH (default: the current directory) and report files, directories, symlinks,"
            " bytes, the largest files and the problems a mount would hit, with a file-descriptor verdict."
            " Exit status: 0 no problems, 1 problems found, 2 usage error."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument("--hash", metavar="ALGO", choices=SUPPORTED_ALGORITHMS, help="hash every file")
    parser.add_argument(
        "--manifest", metavar="FILE", help="write a sha256sum-format manifest (implies --hash sha256)"
    )
    parser.add_argument(
        "--max-file-size", type=parse_size, default=None, metavar="SIZE", help="e.g. 100M, 2G"
    )
    parser.add_argument("--follow-symlinks", action="store_true", help="descend into symlinked directories")
    parser.add_argument(
        "--ignore",
        choices=IGNORE_CHOICES,
        help="leave out what these ignore rules exclude: not counted, not hashed (not with --skypilot)",
    )
    parser.add_argument(
        "--mounts", metavar="FILE", help="SkyPilot file mounts (YAML or JSON): check their sources"
    )
    parser.add_argument(
        "--skypilot",
        action="store_true",
        help="also report what a SkyPilot launch would upload: files, bytes, archive, blob id, exclusions",
    )
    parser.add_argument(
        "--pack", metavar="FILE", help="with --skypilot: keep the upload archive (SkyPilot's zip) in FILE"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output (docs/preflight.md)")
    parser.add_argument(
        "--largest", type=int, default=5, metavar="N", help="largest files to list (default 5)"
    )
    parser.add_argument(
        "--max-problems", type=int, default=100, metavar="N", help="problems to list per tree"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no largest-files list")
    parser.set_defaults(handler=_command)
