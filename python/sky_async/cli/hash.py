"""``sky-async hash``: checksums of files, in the format of sha256sum."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence

from .. import SUPPORTED_ALGORITHMS, get_backend_info, sync
from ._common import describe as _describe
from .check import check_manifests


def _walk_files(root: str, errors: list[OSError]) -> Iterator[str]:
    """Regular files and symlinks below *root*, sorted, without following directory links."""
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames.sort()
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)


def _targets(paths: Sequence[str], recursive: bool, errors: list[OSError]) -> list[str]:
    targets: list[str] = []
    for path in paths:
        if recursive and os.path.isdir(path) and not os.path.islink(path):
            targets.extend(_walk_files(path, errors))
        else:
            targets.append(path)
    return targets


def checksum_line(digest: str, path: str) -> str:
    """A line as sha256sum prints it, escaping names with a backslash or newline as it does."""
    if "\\" in path or "\n" in path:
        return "\\" + digest + "  " + path.replace("\\", "\\\\").replace("\n", "\\n") + "\n"
    return f"{digest}  {path}\n"


_CHECK_ONLY = ("quiet", "status", "strict", "ignore_missing")


def _hash_command(args: argparse.Namespace) -> int:
    if args.check:
        if args.recursive:
            args.parser.error("--recursive cannot be used with --check")
        return check_manifests(args, args.paths)
    for option in _CHECK_ONLY:
        if getattr(args, option):
            args.parser.error(f"--{option.replace('_', '-')} is meaningful only with --check")
    args.algorithm = args.algorithm or "sha256"
    walk_errors: list[OSError] = []
    targets = _targets(args.paths, args.recursive, walk_errors)
    started = time.perf_counter()
    results = sync.hash_files(targets, args.algorithm, concurrency=args.concurrency, return_exceptions=True)
    elapsed = time.perf_counter() - started

    failed = len(walk_errors)
    out = sys.stdout
    for error in walk_errors:
        print(f"sky-async: {error.filename}: {_describe(error)}", file=sys.stderr)
    for path, result in zip(targets, results):
        if isinstance(result, BaseException):
            failed += 1
            print(f"sky-async: {path}: {_describe(result)}", file=sys.stderr)
        else:
            out.write(checksum_line(result, path))
    if args.summary:
        total = sum(1 for r in results if isinstance(r, str))
        print(
            f"sky-async: hashed {total} files with {args.algorithm} in {elapsed:.3f} s"
            f" ({get_backend_info()['backend']} backend), {failed} failed",
            file=sys.stderr,
        )
    return 1 if failed else 0


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hash_parser = commands.add_parser(
        "hash", help="print checksums of files, like sha256sum", description="Hash files concurrently."
    )
    hash_parser.add_argument("paths", nargs="+", metavar="PATH", help="files, or manifests with --check")
    hash_parser.add_argument(
        "-a",
        "--algorithm",
        choices=SUPPORTED_ALGORITHMS,
        help="default sha256; with --check, inferred from each digest's length",
    )
    hash_parser.add_argument(
        "-r", "--recursive", action="store_true", help="hash every file below directories"
    )
    hash_parser.add_argument("--concurrency", type=int, default=None, help="files open at once")
    hash_parser.add_argument(
        "--summary", action="store_true", help="print a timing line on stderr at the end"
    )
    check = hash_parser.add_argument_group("verifying (like sha256sum -c)")
    check.add_argument(
        "-c", "--check", action="store_true", help="read checksums from the PATHs and check them"
    )
    check.add_argument(
        "--ignore-missing", action="store_true", help="don't fail or report status for missing files"
    )
    check.add_argument(
        "--quiet", action="store_true", help="don't print OK for each successfully verified file"
    )
    check.add_argument(
        "--status", action="store_true", help="don't output anything, status code shows success"
    )
    check.add_argument(
        "--strict", action="store_true", help="exit non-zero for improperly formatted checksum lines"
    )
    hash_parser.set_defaults(handler=_hash_command, parser=hash_parser)
