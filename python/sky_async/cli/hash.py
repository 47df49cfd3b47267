"""``sky-async hash``: checksums of files, in the format of sha256sum."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from .. import SUPPORTED_ALGORITHMS, get_backend_info, sync
from ._common import describe as _describe
from ._common import is_special
from ._names import checksum_line, quotef
from .check import check_manifests, hash_by_reading


def _walk_files(root: str, errors: list[OSError]) -> list[str]:
    """The files below *root* (regular, special, symlinks to files), in the byte order of
    their paths as ``LC_ALL=C sort`` orders them: a listing that is the same on every
    machine, whatever the locale or the order on disk. Symlinks to directories are neither
    followed nor listed."""
    found: list[str] = []
    for dirpath, _, filenames in os.walk(root, onerror=errors.append):
        found.extend(os.path.join(dirpath, name) for name in filenames)
    found.sort(key=os.fsencode)
    return found


def _targets(paths: Sequence[str], recursive: bool, errors: list[OSError]) -> list[tuple[str, bool]]:
    """Each file to hash, and whether it is read as a stream (sha256sum reads whatever it is
    named: standard input, a FIFO, /dev/fd/N, a device); files found by a walk never are."""
    targets: list[tuple[str, bool]] = []
    for path in paths:
        if recursive and os.path.isdir(path) and not os.path.islink(path):
            targets.extend((found, False) for found in _walk_files(path, errors))
        else:
            targets.append((path, path == "-" or is_special(path)))
    return targets


_CHECK_ONLY = ("quiet", "status", "strict", "ignore_missing")


def _hash_command(args: argparse.Namespace) -> int:
    if args.check:
        if args.recursive:
            args.parser.error("--recursive cannot be used with --check")
        return check_manifests(args, args.paths or ["-"])
    for option in _CHECK_ONLY:
        if getattr(args, option):
            args.parser.error(f"--{option.replace('_', '-')} is meaningful only with --check")
    args.algorithm = args.algorithm or "sha256"
    walk_errors: list[OSError] = []
    targets = _targets(args.paths or ["-"], args.recursive, walk_errors)
    files = [path for path, streamed in targets if not streamed]
    started = time.perf_counter()
    digests = sync.hash_files(files, args.algorithm, concurrency=args.concurrency, return_exceptions=True)
    elapsed = time.perf_counter() - started
    by_file = iter(digests)

    failed = len(walk_errors)
    hashed = 0
    out = sys.stdout.buffer
    terminal = sys.stdout.isatty()
    for error in walk_errors:
        _error(error.filename, error)
    for path, streamed in targets:
        result: object
        if streamed:  # read where it is listed, as sha256sum does
            try:
                result = hash_by_reading(path, args.algorithm)
            except OSError as exc:
                result = exc
        else:
            result = next(by_file)
        if isinstance(result, BaseException):
            failed += 1
            out.flush()
            _error(path, result)
            continue
        hashed += 1
        out.write(checksum_line(str(result), os.fsencode(path), terminal=terminal))
    out.flush()
    if args.summary:
        print(
            f"sky-async: hashed {hashed} files with {args.algorithm} in {elapsed:.3f} s"
            f" ({get_backend_info()['backend']} backend), {failed} failed",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _error(path: str, error: BaseException) -> None:
    print(f"sky-async: {quotef(path)}: {_describe(error)}", file=sys.stderr, flush=True)


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hash_parser = commands.add_parser(
        "hash", help="print checksums of files, like sha256sum", description="Hash files concurrently."
    )
    hash_parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files, or manifests with --check; - or none: standard input",
    )
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
