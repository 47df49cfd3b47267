"""``sky-async hash -c``: verify checksum manifests like ``sha256sum -c``.

Same input as GNU coreutils 9.1: ``HEX  NAME``, ``HEX *NAME``, the one-space BSD form
``HEX NAME`` (a manifest is in one form or the other, decided by its first such line), the
backslash-escaped form, BSD tags ``SHA256 (NAME) = HEX`` and OpenSSL's ``SHA256(NAME)= HEX``,
comments, CRLF, and ``-`` for standard input; the same output, warnings, quoting of names
in messages and exit status. The files are hashed concurrently with ``hash_files``, in
batches, while the manifest is read a line at a time: a manifest of any size is checked in
bounded memory, a single long line held once (its name is cut out of it in place; only an
escaped name is unescaped into a copy). Without ``-a`` each line's algorithm is inferred
from its tag or its digest's length.

Known differences from coreutils: a FIFO, socket or device listed in a manifest fails as
"Not a regular file" instead of blocking or being read; lines of one algorithm may mix with
another's when ``-a`` is not given; on a terminal, a name that would write an unprintable
character is shown quoted (see ``_names``).
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from .. import sync
from ._common import describe
from ._names import checksum_unescape, quotef, shell_quote, verdict_name

HEX_LENGTHS = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}
HEX_DIGITS = {algorithm: length for length, algorithm in HEX_LENGTHS.items()}
# The BSD tags, in GNU's case: "sha256 (a) = ..." is not a checksum line.
TAGS = {
    "md5": b"MD5",
    "sha1": b"SHA1",
    "sha224": b"SHA224",
    "sha256": b"SHA256",
    "sha384": b"SHA384",
    "sha512": b"SHA512",
}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_WHITE = b" \t"
# No path this long can be opened (Linux PATH_MAX, counting the terminating NUL).
PATH_MAX = 4096
# Entries hashed per hash_files call, and the name bytes a batch may hold.
BATCH_ENTRIES = 512
BATCH_NAME_BYTES = 8 * 1024 * 1024
READ_SIZE = 64 * 1024


class Entry:
    __slots__ = ("algorithm", "expected", "name")

    def __init__(self, name: bytes | bytearray, algorithm: str, expected: bytes) -> None:
        self.name = name
        self.algorithm = algorithm
        self.expected = expected


def _c_string(line: bytearray, start: int) -> bytearray:
    """``line[start:]`` up to its first NUL, as C reads it, cut from *line* in place (no copy)."""
    end = line.find(b"\0", start)
    if end >= 0:
        del line[end:]
    del line[:start]
    return line


class LineParser:
    """GNU's rules for one checksum line; the one- or two-space form is remembered across lines."""

    def __init__(self, wanted: str | None) -> None:
        self.wanted = wanted
        self.tags = {wanted: TAGS[wanted]} if wanted else TAGS
        # Whether lines are in the one-space BSD form ("HEX NAME"): None until a line decides.
        self.bsd_reversed: bool | None = None

    def parse(self, line: bytearray) -> Entry | None:
        """The entry of *line* (without its newline; consumed), or None if it is improperly formatted."""
        index = 0
        while index < len(line) and line[index] in _WHITE:
            index += 1
        escaped = line.startswith(b"\\", index)
        index += escaped
        for algorithm, tag in self.tags.items():
            if line.startswith(tag, index):
                after = index + len(tag)
                after += line.startswith(b" ", after)
                if not line.startswith(b"(", after):
                    return None
                return self._tagged(line, after + 1, algorithm, escaped)
        return self._untagged(line, index, escaped)

    def _tagged(self, line: bytearray, start: int, algorithm: str, escaped: bool) -> Entry | None:
        close = line.rfind(b")", start)
        if close < 0:
            return None
        index = close + 1
        while index < len(line) and line[index] in _WHITE:
            index += 1
        if not line.startswith(b"=", index):
            return None
        index += 1
        while index < len(line) and line[index] in _WHITE:
            index += 1
        # The digest runs to the end of the line, or to a NUL as C reads it.
        stop = line.find(b"\0", index)
        stop = len(line) if stop < 0 else stop
        digest = bytes(line[index:stop]) if stop - index == HEX_DIGITS[algorithm] else b""
        if not digest or not all(byte in _HEX for byte in digest):
            return None
        name: bytes | bytearray | None
        if escaped:
            name = checksum_unescape(line[start:close])
            if name is None:
                return None
        else:
            del line[close:]
            name = _c_string(line, start)
        return Entry(name, algorithm, digest.lower())

    def _untagged(self, line: bytearray, index: int, escaped: bool) -> Entry | None:
        end = index
        while end < len(line) and line[end] in _HEX and end - index <= 128:
            end += 1
        algorithm = HEX_LENGTHS.get(end - index)
        if algorithm is None or (self.wanted is not None and algorithm != self.wanted):
            return None
        # The digest followed by a blank and at least one more byte.
        if len(line) - index < end - index + 2 or line[end] not in _WHITE:
            return None
        digest = bytes(line[index:end]).lower()
        index = end + 1
        if len(line) - index == 1 or line[index] not in b" *":
            if self.bsd_reversed is False:
                return None  # no mixing of the two forms: a renamed file could pass
            self.bsd_reversed = True
        elif self.bsd_reversed is not True:
            self.bsd_reversed = False
            index += 1
        name: bytes | bytearray | None
        if escaped:
            name = checksum_unescape(line[index:])
            if name is None:
                return None
        else:
            name = _c_string(line, index)
        return Entry(name, algorithm, digest)


def read_lines(stream: BinaryIO) -> Iterator[bytearray]:
    """The lines of *stream* without their newline, read incrementally (each in its own buffer)."""
    read = stream.read1 if hasattr(stream, "read1") else stream.read
    line = bytearray()
    while True:
        data = read(READ_SIZE)
        if not data:
            break
        view = memoryview(data)
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                line += view[start:]
                break
            line += view[start:end]
            yield line
            line = bytearray()
            start = end + 1
    if line:
        yield line


def hash_by_reading(path: str | bytes, algorithm: str) -> str:
    """The digest of *path* read to its end as coreutils read it: ``-`` is what is left on
    standard input; any other name is opened and read (a FIFO, ``/dev/fd/N``, a device)."""
    digest = hashlib.new(algorithm)
    if path in ("-", b"-"):
        _read_into(digest, sys.stdin.buffer)
    else:
        with open(path, "rb", buffering=0) as stream:
            _read_into(digest, stream)
    return digest.hexdigest()


def _read_into(digest: Any, stream: BinaryIO) -> None:
    while True:
        data = stream.read(1024 * 1024)
        if not data:
            return
        digest.update(data)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class _Counts:
    __slots__ = ("misformatted", "mismatched", "properly_formatted", "unreadable", "verified")

    def __init__(self) -> None:
        self.misformatted = self.mismatched = self.unreadable = self.verified = 0
        self.properly_formatted = False


class Checker:
    def __init__(self, args: argparse.Namespace, out: BinaryIO, terminal: bool) -> None:
        self.args = args
        self.out = out
        self.terminal = terminal
        self.parser = LineParser(args.algorithm)

    def say(self, name: bytes | bytearray, verdict: bytes) -> None:
        self.out.write(verdict_name(name, terminal=self.terminal))
        self.out.write(b": " + verdict + b"\n")

    def check(self, manifest: str) -> bool:
        """Verify one manifest; whether everything in it passed."""
        is_stdin = manifest == "-"
        label = quotef("standard input" if is_stdin else manifest)
        counts = _Counts()
        try:
            stream: BinaryIO = sys.stdin.buffer if is_stdin else open(manifest, "rb")  # noqa: SIM115
        except IsADirectoryError:
            _error(f"{label}: read error")
            return False
        except OSError as exc:
            _error(f"{label}: {describe(exc)}")
            return False
        batch: list[Entry] = []
        batch_bytes = 0
        try:
            try:
                for line in read_lines(stream):
                    if line.startswith(b"#"):
                        continue
                    if line.endswith(b"\r"):
                        del line[-1:]
                    if not line:
                        continue
                    entry = self.parser.parse(line)
                    if entry is None or (is_stdin and entry.name == b"-"):
                        counts.misformatted += 1
                        continue
                    counts.properly_formatted = True
                    batch.append(entry)
                    batch_bytes += len(entry.name)
                    if len(batch) >= BATCH_ENTRIES or batch_bytes >= BATCH_NAME_BYTES:
                        self._verify(batch, counts)
                        batch, batch_bytes = [], 0
            except OSError:
                self._verify(batch, counts)
                _error(f"{label}: read error")
                return False
        finally:
            if not is_stdin:
                stream.close()
        self._verify(batch, counts)
        return self._summary(label, counts)

    def _summary(self, label: str, counts: _Counts) -> bool:
        args = self.args
        self.out.flush()
        if not counts.properly_formatted:
            _error(f"{label}: no properly formatted checksum lines found")
            return False
        if not args.status:
            if counts.misformatted:
                lines = _plural(counts.misformatted, "line is", "lines are")
                _error(f"WARNING: {lines} improperly formatted")
            if counts.unreadable:
                _error(
                    "WARNING: "
                    + _plural(counts.unreadable, "listed file", "listed files")
                    + " could not be read"
                )
            if counts.mismatched:
                _error(
                    "WARNING: "
                    + _plural(counts.mismatched, "computed checksum", "computed checksums")
                    + " did NOT match"
                )
        if args.ignore_missing and counts.verified == 0:
            if not args.status:
                _error(f"{label}: no file was verified")
            return False
        return not (counts.mismatched or counts.unreadable or (args.strict and counts.misformatted))

    def _verify(self, entries: list[Entry], counts: _Counts) -> None:
        args = self.args
        for entry, result in zip(entries, self._hash(entries)):
            if isinstance(result, BaseException):
                if args.ignore_missing and isinstance(result, OSError) and result.errno == errno.ENOENT:
                    continue
                counts.unreadable += 1
                self.out.flush()
                _error_about(entry.name, describe(result))
                if not args.status:
                    self.say(entry.name, b"FAILED open or read")
            # A str: _hash fills every slot with a digest or an exception.
            elif result.encode("ascii") != entry.expected:  # type: ignore[attr-defined]
                counts.mismatched += 1
                if not args.status:
                    self.say(entry.name, b"FAILED")
            else:
                counts.verified += 1  # as coreutils counts for "no file was verified": matches only
                if not (args.status or args.quiet):
                    self.say(entry.name, b"OK")

    def _hash(self, entries: list[Entry]) -> list[object]:
        """Every entry's digest or exception, hashing each algorithm's files in one concurrent call."""
        results: list[object] = [None] * len(entries)
        for algorithm in sorted({entry.algorithm for entry in entries}):
            indices: list[int] = []
            for index, entry in enumerate(entries):
                if entry.algorithm != algorithm:
                    continue
                if len(entry.name) >= PATH_MAX:
                    # The kernel refuses such a path before looking at it; not copied to be refused.
                    results[index] = OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
                elif not entry.name:
                    results[index] = OSError(errno.ENOENT, os.strerror(errno.ENOENT))
                elif entry.name != b"-":
                    indices.append(index)
            digests = sync.hash_files(
                [bytes(entries[i].name) for i in indices],
                algorithm,
                concurrency=self.args.concurrency,
                return_exceptions=True,
            )
            for index, digest in zip(indices, digests):
                results[index] = digest
        for index, entry in enumerate(entries):
            if entry.name == b"-":  # read in manifest order, as coreutils does
                try:
                    results[index] = hash_by_reading("-", entry.algorithm)
                except OSError as exc:
                    results[index] = exc
        return results


def _error(message: str) -> None:
    print(f"sky-async: {message}", file=sys.stderr, flush=True)


def _error_about(name: bytes | bytearray, reason: str) -> None:
    """``sky-async: NAME: reason`` with the name quoted as coreutils quote it (written in pieces)."""
    err = sys.stderr
    err.flush()
    err.buffer.write(b"sky-async: ")
    err.buffer.write(shell_quote(name, colon=True))
    err.buffer.write(b": " + reason.encode() + b"\n")
    err.buffer.flush()


def check_manifests(args: argparse.Namespace, manifests: Iterable[str]) -> int:
    sys.stdout.flush()
    checker = Checker(args, sys.stdout.buffer, sys.stdout.isatty())
    passed = True
    for manifest in manifests:
        passed = checker.check(manifest) and passed
    return 0 if passed else 1
