"""``sky-async tail``: the last lines of files, like GNU tail, optionally following them.

The command line of GNU coreutils 9.1's tail: ``-n N`` (last N lines), ``-n +K`` (from line K
on), ``-c N`` and ``-c +K`` (bytes), numbers with tail's suffixes (``b`` 512, ``K`` 1024,
``KB`` 1000, ``KiB`` 1024, ``M``, ``G``, ...), the obsolete forms ``-N``, ``+K``, ``-Nc``,
``-Nf`` (first argument, one file at most), ``-`` or no FILE for standard input. Output is
byte for byte tail's: the lines as they are in the file (no decoding, CRs kept), ending with
a newline only where the file has one, with ``==> FILE <==`` headers (``==> standard input
<==`` for ``-``; a blank line before every header but the first) when there are several
files. The last N lines of a named file come from ``tail_files``, which reads regular files
backwards (and /proc or /sys files, which report size 0, forwards); everything else (standard
input, a FIFO or device named on the command line, ``+K``, ``-c``) is read here as a stream,
keeping only what will be printed.

Errors are GNU tail's, with the program named ``sky-async tail``: a file that cannot be opened
gets ``cannot open 'FILE' for reading: reason`` and no header; one that opens but cannot be
read (a directory) gets its header, then ``error reading 'FILE': reason``; where GNU tail
gives up on the remaining files (a read failing while it copies the rest of a file: a
directory with ``-n +1`` or ``-c +K``) this stops there too; a bad count or digit option is
GNU's one line and exit status 1. Differences from GNU tail:

- a count in an error message is quoted as in the C locale (``'x'``; GNU uses the locale's
  quotation marks, curly ones in a UTF-8 locale);
- standard input is read to its end even when it is a regular file (GNU seeks);
- ``-f`` follows named files with ``-n N`` only (not ``+K``, ``-c`` or standard input), every
  file like ``tail -F`` (rotation and truncation survived), and a line is printed once its
  newline arrives (GNU tail prints partial lines as they come); its errors are
  ``sky-async: FILE: reason``, and ``-s`` takes a positive number of seconds (GNU's also 0);
- other usage errors are argparse's (exit 2; GNU tail exits 1).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import re
import stat
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple, NoReturn

from .. import Follow, follow, sync
from ._common import describe as _describe
from ._common import is_special
from ._names import for_terminal, quotef


class _Printer:
    """Writes chunks of output, with a header whenever the file being shown changes."""

    def __init__(self, out: BinaryIO, headers: bool, terminal: bool) -> None:
        self._out = out
        self._headers = headers
        self._terminal = terminal
        self._current: object = None
        self._first = True

    def show(self, key: object, name: str, data: bytes) -> None:
        """*data* of the file *name*; a header when *key* differs from the last one shown."""
        if self._headers and key != self._current:
            label = os.fsencode(name)
            if self._terminal:  # as GNU tail, byte-exact unless a name could drive the terminal
                label = for_terminal(label)
            self._out.write(b"%s==> %s <==\n" % (b"" if self._first else b"\n", label))
            self._first = False
        self._current = key
        self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


PROGRAM = "sky-async tail"


def _complain(message: str) -> None:
    """One line on stderr, as GNU tail words it, under this command's name."""
    print(f"{PROGRAM}: {message}", file=sys.stderr)


def _fail(message: str) -> NoReturn:
    """Ends the command as GNU tail ends on a bad argument: its one line, exit status 1."""
    _complain(message)
    raise SystemExit(1)


def _quoteaf(name: str) -> str:
    """*name* as GNU tail names a file in an error message (gnulib's ``quoteaf``): shell-escape
    quoting, in quotes even when it needs none."""
    quoted = quotef(name)
    return quoted if quoted != name else f"'{name}'"


_C_ESCAPES = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 0x27: "'", 0x5C: "\\"}


def _quote(text: str) -> str:
    """*text* as GNU tail quotes an argument in the C locale (gnulib's ``quote``): in single
    quotes, with backslash escapes for ``'``, ``\\`` and every byte that is not printable ASCII."""
    out = []
    for byte in os.fsencode(text):
        if byte in _C_ESCAPES:
            out.append("\\" + _C_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return "'" + "".join(out) + "'"


def _error(path: str, error: BaseException) -> None:
    """An error of ``-f``: it follows as ``tail -F`` does, not ``tail -f``, and keeps the command
    line's ``sky-async: FILE: reason`` (see the differences above)."""
    print(f"sky-async: {quotef(path)}: {_describe(error)}", file=sys.stderr)


class _OpenFailed(Exception):
    """The file could not be opened: GNU tail says so, and prints no header for it."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class _ReadFailed(Exception):
    """A file that opened (its header printed) could not be read. *fatal*: the read failed
    while the rest of the file was being copied (GNU tail's ``dump_remainder``), where GNU
    tail exits at once, leaving the files after it untouched."""

    def __init__(self, error: BaseException, fatal: bool = False) -> None:
        super().__init__(error)
        self.error = error
        self.fatal = fatal


class Count(NamedTuple):
    """What to print of each file: the last *n* (or from the *n*-th on) lines or bytes."""

    n: int
    lines: bool = True
    from_start: bool = False


STDIN_LABEL = "standard input"
READ_SIZE = 64 * 1024
OFF_T_MAX = 2**63 - 1  # the furthest lseek reaches


def _tail_command(args: argparse.Namespace) -> int:
    count: Count = args.count
    files: list[str] = args.files or ["-"]
    headers = args.verbose or (len(files) > 1 and not args.quiet)
    printer = _Printer(sys.stdout.buffer, headers, sys.stdout.isatty())
    if args.follow:
        if count.from_start or not count.lines or "-" in files:
            args.parser.error("-f follows named files with -n N (not -n +K, -c or standard input)")
        return asyncio.run(_follow_all(args, files, printer))
    if count.n == 0 and not count.from_start:
        return 0  # as GNU tail: nothing to print, so nothing is opened (`yes | tail -n 0` ends)
    # The last lines of named files, regular ones, come from the library, all in one call.
    streamed = [name == "-" or not count.lines or count.from_start or is_special(name) for name in files]
    selected = iter(
        sync.tail_files(
            [name for name, stream in zip(files, streamed) if not stream],
            count.n,
            encoding=None,
            return_exceptions=True,
        )
    )
    failed = False
    for index, (name, stream) in enumerate(zip(files, streamed)):
        label = STDIN_LABEL if name == "-" else name
        write = functools.partial(printer.show, index, label)
        try:
            if stream:
                _copy_stream(name, count, write)
            else:
                _show_selected(name, next(selected), write)
        except _OpenFailed as exc:
            failed = True
            printer.flush()
            _complain(f"cannot open {_quoteaf(label)} for reading: {_describe(exc.error)}")
        except _ReadFailed as exc:
            failed = True
            printer.flush()
            _complain(f"error reading {_quoteaf(label)}: {_describe(exc.error)}")
            if exc.fatal:
                break
    printer.flush()
    return 1 if failed else 0


def _show_selected(name: str, result: list[bytes] | BaseException, write: Any) -> None:
    """Writes what ``tail_files`` selected of the file *name*, or raises why there is nothing."""
    if isinstance(result, BaseException):
        # tail_files reports a file it could not open and one it could not read alike, but GNU
        # tail words them differently and prints a header only for a file it opened: opening it
        # again tells which. O_NONBLOCK: a FIFO put in the file's place meanwhile must not block.
        try:
            os.close(os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK))
        except OSError as exc:
            raise _OpenFailed(exc) from result
        write(b"")  # the header
        raise _ReadFailed(result) from result
    write(b"".join(result))


def _copy_stream(name: str, count: Count, write: Any) -> None:
    """What tail prints of *name* (``-``: standard input), read from where it is, to *write*."""
    if name == "-":
        _select(0, count, write)
        return
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _OpenFailed(exc) from exc
    try:
        _select(fd, count, write)
    finally:
        os.close(fd)


def _chunks(fd: int, *, fatal: bool = False, limit: int | None = None) -> Iterator[bytes]:
    """What *fd* holds from where it is to its end (at most *limit* bytes); a read that fails
    raises ``_ReadFailed`` (*fatal* for GNU tail's ``dump_remainder``)."""
    while limit is None or limit > 0:
        try:
            data = os.read(fd, READ_SIZE if limit is None else min(READ_SIZE, limit))
        except OSError as exc:
            raise _ReadFailed(exc, fatal) from exc
        if not data:
            return
        if limit is not None:
            limit -= len(data)
        yield data


def _select(fd: int, count: Count, write: Any) -> None:
    # Each case takes the path GNU tail takes for the same kind of file (the same seeks, and
    # reads where it reads), so that a file that cannot be read fails where GNU tail's does.
    write(b"")  # the header, even when nothing follows it
    if count.from_start:
        skip = max(count.n - 1, 0)
        if not count.lines and skip <= OFF_T_MAX:
            # Bytes are skipped by seeking wherever that works: a directory too, whose read then
            # fails in the copy (fatal, as in GNU tail); a pipe refuses, and they are read.
            try:
                os.lseek(fd, skip, os.SEEK_CUR)
                skip = 0
            except OSError:
                pass
        if skip and not _skip(fd, count.lines, skip, write):
            return  # the file ended first: no read after its end (a terminal would wait again)
        for data in _chunks(fd, fatal=True):
            write(data)
        return
    if not count.lines:
        st = os.fstat(fd)
        end = _end_offset(fd, st, count.n)
        if end is not None and end > st.st_blksize:
            here = os.lseek(fd, 0, os.SEEK_CUR)
            if end - here > count.n:
                os.lseek(fd, end - count.n, os.SEEK_SET)
            for data in _chunks(fd, fatal=True, limit=count.n):
                write(data)
            return
        kept = bytearray()
        for data in _chunks(fd):
            kept += data
            if len(kept) > 2 * count.n + READ_SIZE:
                del kept[: len(kept) - count.n]
        write(bytes(kept[max(len(kept) - count.n, 0) :]))
        return
    kept = bytearray()
    trim_at = 2 * READ_SIZE  # doubled from what a trim kept: linear however many lines are kept
    for data in _chunks(fd):
        kept += data
        if len(kept) > trim_at:
            del kept[: _last_lines_start(kept, count.n)]
            trim_at = 2 * max(len(kept), READ_SIZE)
    write(bytes(kept[_last_lines_start(kept, count.n) :]))


def _skip(fd: int, lines: bool, skip: int, write: Any) -> bool:
    """Reads past the first *skip* lines or bytes (GNU tail's ``start_lines``/``start_bytes``,
    whose read errors are not fatal) and writes what follows them in the last chunk read;
    False if the file ended first."""
    for data in _chunks(fd):
        if lines:
            at = -1
            while skip and (at := data.find(b"\n", at + 1)) >= 0:
                skip -= 1
            data = data[at + 1 :]
        else:
            data, skip = data[skip:], max(skip - len(data), 0)
        if not skip:
            if data:
                write(data)
            return True
    return False


def _end_offset(fd: int, st: os.stat_result, n: int) -> int | None:
    """Where GNU tail takes the end of *fd* to be when it prints the last *n* bytes: a regular
    file's size; else where a seek to *n* bytes before the end lands, plus n (for a directory
    on ext4 far beyond a block, on tmpfs refused); None where no seek works (a pipe)."""
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if n > OFF_T_MAX:
        return None
    try:
        return os.lseek(fd, -n, os.SEEK_END) + n
    except OSError:
        return None


def _last_lines_start(data: bytearray, n: int) -> int:
    """Where the last *n* lines of *data* begin (a last line without its newline counts)."""
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(n):
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            return 0
    return end + 1


async def _follow_all(args: argparse.Namespace, files: list[str], printer: _Printer) -> int:
    followers: list[tuple[str, Follow[bytes]]] = []
    failed = 0
    for path in files:
        try:
            follower: Follow[bytes] = follow(
                path, lines=args.count.n, encoding=None, poll_interval=args.sleep_interval
            )
        except (OSError, ValueError) as exc:
            failed += 1
            _error(path, exc)
            continue
        followers.append((path, follower))
        backlog = follower.take_ready()
        if backlog:
            printer.show(path, path, b"".join(backlog))
    printer.flush()
    if not followers:
        return 1

    lines: asyncio.Queue[tuple[str, bytes | BaseException]] = asyncio.Queue()

    async def pump(path: str, follower: Follow[bytes]) -> None:
        try:
            async for line in follower:
                lines.put_nowait((path, line))
        except Exception as exc:  # reported; the other files go on
            lines.put_nowait((path, exc))

    tasks = [asyncio.create_task(pump(path, follower)) for path, follower in followers]
    try:
        alive = len(tasks)
        while alive:
            path, item = await lines.get()
            if isinstance(item, BaseException):
                alive -= 1
                failed += 1
                printer.flush()
                _error(path, item)
                continue
            printer.show(path, path, item)
            if lines.empty():
                printer.flush()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, follower in followers:
            follower.close()
    return 1


# tail's number suffixes (xstrtoumax with "bkKmMGTPEZY0" in coreutils 9.1, before R and Q were
# added): b is 512; a letter alone or followed by iB is a power of 1024, followed by B a power
# of 1000.
_POWERS = {
    letter: power
    for power, letters in enumerate(("kK", "mM", "G", "T", "P", "E", "Z", "Y"), 1)
    for letter in letters
}
_NUMBER = re.compile(r"[ \t\n\v\f\r]*\+?([0-9]*)(?:(b)|([kKmMGTPEZY])(iB|B)?)?\Z")
UINTMAX_MAX = 2**64 - 1


def _number(text: str, what: str) -> int:
    """A count as tail reads it (decimal, optional suffix), or GNU tail's error and exit."""
    match = _NUMBER.match(text)
    if match is None or not (match.group(1) or match.group(2) or match.group(3)):
        _fail(f"invalid number of {what}: {_quote(text)}")
    digits, block, letter, after = match.groups()
    digits = digits.lstrip("0") or ("0" if digits else "1")
    value = int(digits) if len(digits) <= 20 else UINTMAX_MAX + 1  # no need to read 5,000 digits
    if block:
        value *= 512
    elif letter:
        value *= (1000 if after == "B" else 1024) ** _POWERS[letter]
    if value > UINTMAX_MAX:
        _fail(f"invalid number of {what}: {_quote(text)}: Value too large for defined data type")
    return value


def _count(text: str, lines: bool) -> Count:
    from_start = text.startswith("+")
    number = text[1:] if text.startswith("-") else text  # "-n -5" is "-n 5", as in GNU tail
    return Count(_number(number, "lines" if lines else "bytes"), lines, from_start)


def _line_count(text: str) -> Count:
    return _count(text, lines=True)


def _byte_count(text: str) -> Count:
    return _count(text, lines=False)


_OBSOLETE = re.compile(r"([+-])([0-9]*)([bcl]?)(f?)\Z")
# tail's options that take a value: what follows them is no option.
_LONG = {"-n": "--lines", "-c": "--bytes", "-s": "--sleep-interval"}
_WITH_VALUE = (*_LONG, *_LONG.values())


def obsolete_usage(argv: list[str]) -> list[str]:
    """``tail``'s arguments with the obsolete forms GNU tail 9.1 accepts (``-5``, ``+5``,
    ``-5c``, ``-5f``, ``-l``...: the first argument, at most one file after it, that file not
    an option) written as options; a digit option anywhere else is GNU's usage error."""
    if len(argv) in (1, 2) and (len(argv) == 1 or not (argv[1].startswith("-") and len(argv[1]) > 1)):
        match = _OBSOLETE.match(argv[0])
        if match and not (match.group(1) == "-" and argv[0] in ("-", "-c")):
            sign, digits, unit, follow = match.groups()
            n = int(digits) if digits else 10
            option = "-n" if unit in ("", "l") else "-c"
            n *= 512 if unit == "b" else 1
            return [option, f"{'+' if sign == '+' else ''}{n}", *(["-f"] if follow else []), *argv[1:]]
    out: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--":
            out += [arg, *rest]
            break
        if arg in _WITH_VALUE:
            # Joined to its value, which may start with "-" ("-n -5", "-c --3"), as getopt takes it.
            value = next(rest, None)
            out.append(arg if value is None else f"{_LONG.get(arg, arg)}={value}")
            continue
        if arg.startswith("-") and not arg.startswith("--"):
            for letter in arg[1:]:  # a bundle of letters, as getopt reads it
                if letter.isdigit():
                    _fail(f"option used in invalid context -- {letter}")
                if letter in "ncs":  # the rest is its value
                    break
        out.append(arg)
    return out


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:  # GNU tail also takes 0; following needs a positive interval
        _fail(f"invalid number of seconds: {_quote(text)}")
    return value


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "tail",
        help="print the last lines of files, like tail",
        description="Print the last lines of files (SkyPilot's read_last_n_lines selection), like GNU tail.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="- or none: standard input")
    parser.add_argument(
        "-n",
        "--lines",
        dest="count",
        type=_line_count,
        metavar="[+]N",
        help="the last N lines (10), or with +K from line K on",
    )
    parser.add_argument(
        "-c",
        "--bytes",
        dest="count",
        type=_byte_count,
        metavar="[+]N",
        help="the last N bytes, or with +K from byte K on",
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="print lines as they are appended (survives rotation)"
    )
    parser.add_argument(
        "-s",
        "--sleep-interval",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="with -f, how often to check even without inotify events (1.0)",
    )
    header = parser.add_mutually_exclusive_group()
    header.add_argument("-q", "--quiet", action="store_true", help="never print headers")
    header.add_argument("-v", "--verbose", action="store_true", help="always print headers")
    parser.set_defaults(handler=_tail_command, parser=parser, count=Count(10))
