"""``sky-async hash``: checksums of files, in the format of sha256sum."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from .. import SUPPORTED_ALGORITHMS, get_backend_info, sync
from ..scan import IGNORE_CHOICES, IgnoreMode
from ._common import describe as _describe
from ._common import is_special, rule_error
from ._names import checksum_line, quotef
from .check import check_manifests, hash_by_reading


class _RulesFailed(Exception):
    """The ignore rules of a tree cannot be applied; the message names the tree and why."""


def _excluded(root: str, ignore: IgnoreMode | None) -> frozenset[str]:
    """The top-most paths below *root* that *ignore*'s rules exclude, as ``scan_tree`` names
    them (relative, ``/``-separated, a directory with a trailing ``/``); none without rules.
    _RulesFailed when the rules cannot be applied (see sky_async.scan)."""
    if ignore is None:
        return frozenset()
    try:
        scan = sync.scan_tree(root, largest=0, max_problems=0, ignore=ignore)
    except (UnicodeDecodeError, RuntimeError) as exc:
        raise _RulesFailed(rule_error(root, ignore, exc)) from exc
    return frozenset(excluded.relative for excluded in scan.excluded or ())


def _walk_files(root: str, errors: list[OSError], excluded: frozenset[str] = frozenset()) -> list[str]:
    """The files below *root* (regular, special, symlinks to files), in the byte order of
    their paths as ``LC_ALL=C sort`` orders them: a listing that is the same on every
    machine, whatever the locale or the order on disk. Symlinks to directories are neither
    followed nor listed. The *excluded* relative paths are left out, and an excluded
    directory is not entered."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        if excluded:
            below = os.path.relpath(dirpath, root)
            prefix = "" if below == os.curdir else below + "/"
            dirnames[:] = [name for name in dirnames if prefix + name + "/" not in excluded]
            filenames = [name for name in filenames if prefix + name not in excluded]
        found.extend(os.path.join(dirpath, name) for name in filenames)
    found.sort(key=os.fsencode)
    return found


def _targets(
    paths: Sequence[str], recursive: bool, errors: list[OSError], ignore: IgnoreMode | None = None
) -> list[tuple[str, bool]]:
    """Each file to hash, and whether it is read as a stream (sha256sum reads whatever it is
    named: standard input, a FIFO, /dev/fd/N, a device); files found by a walk never are.
    With *ignore*, a walk leaves out what those rules exclude below the directory walked; a
    file named directly is hashed all the same."""
    targets: list[tuple[str, bool]] = []
    for path in paths:
        if recursive and os.path.isdir(path) and not os.path.islink(path):
            excluded = _excluded(path, ignore)
            targets.extend((found, False) for found in _walk_files(path, errors, excluded))
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
    if args.ignore is not None and not args.recursive:
        args.parser.error("--ignore is meaningful only with --recursive")
    args.algorithm = args.algorithm or "sha256"
    walk_errors: list[OSError] = []
    try:
        targets = _targets(args.paths or ["-"], args.recursive, walk_errors, args.ignore)
    except _RulesFailed as exc:  # before anything is hashed: a usage error, as in preflight
        print(f"sky-async: {exc}", file=sys.stderr)
        return 2
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
    hash_parser.add_argument(
        "--ignore",
        choices=IGNORE_CHOICES,
        help="with --recursive: leave out what these ignore rules exclude below each directory",
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
