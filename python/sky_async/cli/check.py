"""``sky-async hash -c``: verify checksum manifests like ``sha256sum -c``.

Same input (``HEX  NAME``, ``HEX *NAME``, the backslash-escaped form, BSD tags
``SHA256 (NAME) = HEX``, comments, CRLF), same output and warnings and exit status as
GNU coreutils 9; the files are hashed concurrently with ``hash_files``. Without ``-a``
each line's algorithm is inferred from its digest length.

Known differences from coreutils: names in error lines are not shell-quoted; a FIFO,
socket or device listed in a manifest fails as "Not a regular file" instead of
blocking or being read; lines of one algorithm may mix with another's when ``-a`` is
not given.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Iterable
from typing import BinaryIO

from .. import sync
from ._common import describe

HEX_LENGTHS = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}
_HEX = frozenset(b"0123456789abcdefABCDEF")


class Entry:
    __slots__ = ("algorithm", "expected", "name")

    def __init__(self, name: bytes, algorithm: str, expected: str) -> None:
        self.name = name
        self.algorithm = algorithm
        self.expected = expected


def _algorithm_for(digest: bytes, wanted: str | None) -> str | None:
    if not digest or any(byte not in _HEX for byte in digest):
        return None
    algorithm = HEX_LENGTHS.get(len(digest))
    if algorithm is None or (wanted is not None and algorithm != wanted):
        return None
    return algorithm


def _unescape(name: bytes) -> bytes | None:
    out = bytearray()
    index = 0
    while index < len(name):
        byte = name[index]
        if byte == 0x5C:  # backslash
            following = name[index + 1 : index + 2]
            if following == b"\\":
                out += b"\\"
            elif following == b"n":
                out += b"\n"
            else:
                return None
            index += 2
        else:
            out.append(byte)
            index += 1
    return bytes(out)


def parse_line(line: bytes, wanted: str | None) -> Entry | None:
    """One manifest line (without its newline) as an Entry, or None if improperly formatted."""
    text = line.lstrip(b" \t")
    escaped = text.startswith(b"\\")
    if escaped:
        text = text[1:]
    tag, sep, rest = text.partition(b" (")
    if sep and tag.isalnum() and b") = " in rest:
        name, _, digest = rest.rpartition(b") = ")
        algorithm = _algorithm_for(digest, wanted)
        if algorithm is None or tag.decode("ascii", "replace").lower() != algorithm:
            return None
    else:
        split = 0
        while split < len(text) and text[split] in _HEX:
            split += 1
        digest = text[:split]
        algorithm = _algorithm_for(digest, wanted)
        if algorithm is None or split >= len(text) or text[split] not in b" \t":
            return None
        name = text[split + 1 :]
        if name[:1] in (b" ", b"*"):
            name = name[1:]
    if escaped:
        unescaped = _unescape(name)
        if unescaped is None:
            return None
        name = unescaped
    if not name:
        return None
    return Entry(name, algorithm, digest.decode("ascii").lower())


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class Checker:
    def __init__(self, args: argparse.Namespace, out: BinaryIO) -> None:
        self.args = args
        self.out = out

    def say(self, name: bytes, verdict: bytes) -> None:
        if b"\n" in name:  # coreutils escapes a name only when it has a newline
            name = b"\\" + name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
        self.out.write(name + b": " + verdict + b"\n")

    def check(self, manifest: str) -> bool:
        """Verify one manifest; whether everything in it passed."""
        args = self.args
        label = "standard input" if manifest == "-" else manifest
        try:
            if manifest == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(manifest, "rb") as file:
                    data = file.read()
        except OSError as exc:
            _error(f"{label}: {describe(exc)}")
            return False
        entries: list[Entry] = []
        misformatted = 0
        for line in data.split(b"\n")[: -1 if data.endswith(b"\n") else None]:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line or line.startswith(b"#"):
                continue
            entry = parse_line(line, args.algorithm)
            if entry is None:
                misformatted += 1
            else:
                entries.append(entry)
        if not entries:
            _error(f"{label}: no properly formatted checksum lines found")
            return False

        results = self._hash(entries)
        mismatched = unreadable = verified = 0
        for entry, result in zip(entries, results):
            if isinstance(result, BaseException):
                if args.ignore_missing and isinstance(result, OSError) and result.errno == errno.ENOENT:
                    continue
                unreadable += 1
                self.out.flush()
                _error(f"{os.fsdecode(entry.name)}: {describe(result)}")
                if not args.status:
                    self.say(entry.name, b"FAILED open or read")
                continue
            if result != entry.expected:
                mismatched += 1
                if not args.status:
                    self.say(entry.name, b"FAILED")
                continue
            verified += 1  # as coreutils counts for "no file was verified": matches only
            if not (args.status or args.quiet):
                self.say(entry.name, b"OK")
        self.out.flush()
        if not args.status:
            if misformatted:
                _error("WARNING: " + _plural(misformatted, "line is", "lines are") + " improperly formatted")
            if unreadable:
                _error(
                    "WARNING: " + _plural(unreadable, "listed file", "listed files") + " could not be read"
                )
            if mismatched:
                _error(
                    "WARNING: "
                    + _plural(mismatched, "computed checksum", "computed checksums")
                    + " did NOT match"
                )
        if args.ignore_missing and verified == 0:
            _error(f"{label}: no file was verified")
            return False
        return not (mismatched or unreadable or (args.strict and misformatted))

    def _hash(self, entries: list[Entry]) -> list[object]:
        """Every entry's digest or exception, hashing each algorithm's files in one concurrent call."""
        results: list[object] = [None] * len(entries)
        for algorithm in sorted({entry.algorithm for entry in entries}):
            indices = [i for i, entry in enumerate(entries) if entry.algorithm == algorithm]
            paths = [os.fsdecode(entries[i].name) for i in indices]
            digests = sync.hash_files(
                paths, algorithm, concurrency=self.args.concurrency, return_exceptions=True
            )
            for index, digest in zip(indices, digests):
                results[index] = digest
        return results


def _error(message: str) -> None:
    print(f"sky-async: {message}", file=sys.stderr, flush=True)


def check_manifests(args: argparse.Namespace, manifests: Iterable[str]) -> int:
    sys.stdout.flush()
    checker = Checker(args, sys.stdout.buffer)
    passed = True
    for manifest in manifests:
        passed = checker.check(manifest) and passed
    return 0 if passed else 1
