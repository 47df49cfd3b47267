"""rsync's ``--filter='dir-merge,- .skyignore'``: what SkyPilot's rsync of a tree leaves out.

SkyPilot 0.14.1 syncs a file mount or workdir whose root has a ``.skyignore`` with
``rsync -Pavz --filter='dir-merge,- .skyignore' ROOT/ DEST``. The filter is rsync's
(3.2 and later, tested with 3.5.0), worked out here from the tree on disk without running
rsync:

* Where rules come from: every directory rsync enters is searched for a ``.skyignore``;
  its rules apply to the entries of that directory and everything below it. The rules of
  a directory's own file come first, then its parent's, and so on up to the root's (rsync
  prefixes each directory's rules to the list it inherits); the first rule that matches
  decides. An excluded directory is not entered, so nothing below it is listed and its
  ``.skyignore`` is never read. The ``.skyignore`` files themselves are transferred unless
  a rule matches them. The root itself is always transferred.
* Lines (the ``-`` modifier: every line is an exclude pattern): a line ends at ``\\n`` or
  ``\\r``, and at its first NUL byte; empty lines and lines starting with ``#`` or ``;``
  are skipped; nothing is stripped (``foo `` with its space does not match ``foo``);
  ``!`` is not the list-clearing rule here (rsync accepts that only in CVS mode): it is a
  pattern naming ``!``, and ``!x`` names ``!x``. A pattern of 4,096 bytes or more, and a
  line longer than rsync's 5,119-byte buffer, is dropped.
* Patterns: a trailing ``/`` (on a pattern longer than one byte) matches directories only
  (by ``lstat``: a symbolic link to a directory is not one); a leading ``/`` anchors at
  the ``.skyignore``'s directory; without ``*``, ``?`` or ``[`` a pattern is compared as a
  string (a backslash is then literal). Otherwise it is rsync's wildmatch on bytes: ``?``
  and ``[...]`` match one byte other than ``/``, ``*`` any run without ``/``, ``**`` any
  run (a ``**`` anywhere, not only as a whole component), a trailing ``/***`` the
  directory and everything in it, ``\\`` escapes; an unclosed ``[``, an unknown
  ``[:class:]`` or a final ``\\`` match nothing.
* What a pattern is matched against, as rsync's ``rule_matches`` decides: a pattern with
  no ``/`` (but the trailing one) and no ``**`` matches the entry's name; one with a ``/``
  inside matches the last as many components of the path *from the transfer root*, not
  from the ``.skyignore``'s directory (so ``sub/x`` in ``sub/.skyignore`` matches
  ``sub/x``); one with ``**`` is tried at the start of that path and after each ``/`` in
  it (one that starts with ``**`` only at the start, where it may match an empty run
  before a ``/``). An anchored pattern becomes the ``.skyignore``'s directory (absolute,
  as rsync's current directory names it) followed by the pattern, matched against the
  absolute path: wildcard characters in the root's own path then act as wildcards.

Not modelled (docs/rsync-filter.md): ``[:class:]`` sets beyond ASCII (rsync asks the C
library, whose sets depend on the locale), names longer than rsync's path buffer, and
options other than SkyPilot's (``-L``, ``--copy-dirlinks``, ``-x``, other filters).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from .._dirs import list_dir
from .gitignore import _CLASSES, _bracket
from .skyignore import SKY_IGNORE_FILE, _check_root, _relative

RSYNC_FILTER = f"dir-merge,- {SKY_IGNORE_FILE}"
"""The filter rule SkyPilot passes to rsync (``--filter='dir-merge,- .skyignore'``)."""

_MAXPATHLEN = 4096  # Linux's: a longer pattern is discarded
_LINE_BUFFER = _MAXPATHLEN + 1024  # rsync's BIGPATHBUFLEN: a line holds one byte less
_WILDCARDS = re.compile(rb"[*?\[]")
_NEWLINES = re.compile(rb"\r\n|\r|\n")

# The C library's classes (ASCII): the same as git's but for [:space:], which has \v and \f.
_C_CLASSES = {**_CLASSES, b"space": frozenset(b" \t\n\v\f\r")}

# How a compiled rule is tested (Rule.kind): never; the name equals the literal; the regex
# matches the name; the path ends with the literal at a '/'; the regex matches the path's
# last `count` components; the anchored path equals the literal; the regex matches the
# anchored path; the regex matches the path at its start or after a '/'; the regex matches
# '/' + the path (a pattern starting with '**').
_NEVER, _NAME_EQ, _NAME_RE, _SUFFIX_EQ, _TRAILING_RE, _ANCHORED_EQ, _ANCHORED_RE, _ANY_RE, _ROOTED_RE = range(
    9
)


@dataclass(frozen=True)
class Rule:
    """One pattern line of a ``.skyignore``, compiled for its directory."""

    source: str
    """The ``.skyignore`` it comes from, relative to the root (``sub/.skyignore``)."""
    line: int
    """1-based line number (``\\r\\n``, ``\\r`` and ``\\n`` each end a line)."""
    text: str
    """The pattern as rsync reads it (bytes decoded as os.fsdecode does)."""
    directory_only: bool = field(default=False, compare=False)
    kind: int = field(default=_NEVER, compare=False, repr=False)
    literal: bytes = field(default=b"", compare=False, repr=False)
    regex: re.Pattern[bytes] | None = field(default=None, compare=False, repr=False)
    count: int = field(default=0, compare=False, repr=False)
    """Components matched from the end (``_TRAILING_RE``)."""
    directory_suffix: bool = field(default=False, compare=False, repr=False)
    """It ends with ``***``: a directory is matched with a ``/`` after its path."""

    def matches(self, path: bytes, is_dir: bool, base: bytes = b"") -> bool:
        """Whether rsync's ``rule_matches`` says yes for *path* (from the transfer root,
        without a leading ``/``). *base* is what rsync puts before the path for an anchored
        rule: its current directory without the leading ``/``, and a ``/``."""
        kind = self.kind
        if kind == _NEVER or (self.directory_only and not is_dir):
            return False
        if kind == _NAME_EQ:
            return path.rpartition(b"/")[2] == self.literal
        if kind == _SUFFIX_EQ:
            literal = self.literal
            return path == literal or path.endswith(b"/" + literal)
        if kind == _ANCHORED_EQ:
            return path == self.literal
        regex = self.regex
        assert regex is not None
        if kind == _NAME_RE:
            return regex.fullmatch(path.rpartition(b"/")[2]) is not None
        if kind == _TRAILING_RE:
            start = _trailing(path, self.count)
            return start >= 0 and regex.fullmatch(path, start) is not None
        text = path + b"/" if is_dir and self.directory_suffix else path
        if kind == _ANCHORED_RE:
            return regex.fullmatch(base + text) is not None
        if kind == _ROOTED_RE:
            return regex.fullmatch(b"/" + text) is not None
        if regex.fullmatch(text) is not None:
            return True
        slash = text.find(b"/")
        while slash >= 0:
            if regex.fullmatch(text, slash + 1) is not None:
                return True
            slash = text.find(b"/", slash + 1)
        return False


def _trailing(path: bytes, count: int) -> int:
    """Where the last *count* components of *path* start; -1 when it has fewer (a path of
    exactly *count* components starts at 0)."""
    slash = len(path)
    while True:
        slash = path.rfind(b"/", 0, slash)
        if slash < 0:
            return 0 if count == 1 else -1
        count -= 1
        if count == 0:
            return slash + 1


def _translate(pattern: bytes) -> re.Pattern[bytes] | None:
    """rsync's wildmatch of *pattern* as a regex over bytes, or None if it matches nothing."""
    out: list[bytes] = []
    index = 0
    end = len(pattern)
    while index < end:
        char = pattern[index : index + 1]
        if char == b"\\":
            if index + 1 >= end:
                return None
            out.append(re.escape(pattern[index + 1 : index + 2]))
            index += 2
        elif char == b"?":
            out.append(b"[^/]")
            index += 1
        elif char == b"*":
            stop = index
            while stop < end and pattern[stop] == ord("*"):
                stop += 1
            out.append(b".*" if stop - index > 1 else b"[^/]*")
            index = stop
        elif char == b"[":
            bracket = _bracket(pattern, index, True, _C_CLASSES)
            if bracket is None:
                return None
            regex, index = bracket
            out.append(regex)
        else:
            out.append(re.escape(char))
            index += 1
    return re.compile(b"".join(out), re.DOTALL)


def compile_rule(source: str, line: int, pattern: bytes, prefix: bytes, base: bytes) -> Rule:
    """The rule of one pattern line of the ``.skyignore`` in the directory whose absolute path
    (as rsync names it, no trailing ``/``; empty for ``/``) is *prefix*. *base* is what
    ``Rule.matches`` is given for anchored rules (see there)."""
    text = os.fsdecode(pattern)
    directory_only = len(pattern) > 1 and pattern.endswith(b"/")
    if directory_only:
        pattern = pattern[:-1]
    if pattern.startswith(b"/"):
        pattern = prefix + pattern
    slashes = pattern.count(b"/")
    wild = _WILDCARDS.search(pattern) is not None
    double = wild and b"**" in pattern
    anchored = pattern.startswith(b"/")
    suffix = double and pattern.endswith(b"***")
    kind, literal, count = _NEVER, b"", 0
    if not slashes and not double:
        kind, literal = (_NAME_RE, b"") if wild else (_NAME_EQ, pattern)
    elif anchored:
        body = pattern[1:]
        if wild:
            kind = _ANCHORED_RE
        elif body.startswith(base):
            kind, literal = _ANCHORED_EQ, body[len(base) :]
    elif double:
        kind = _ROOTED_RE if pattern.startswith(b"**") else _ANY_RE
    elif wild:
        kind, count = _TRAILING_RE, slashes + 1
    else:
        kind, literal = _SUFFIX_EQ, pattern
    regex = None
    if wild:
        regex = _translate(pattern[1:] if anchored else pattern)
        if regex is None:
            kind = _NEVER
    return Rule(source, line, text, directory_only, kind, literal, regex, count, suffix)


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """(line number, pattern) of each rule of a ``.skyignore``'s content, as rsync reads a
    merge file with the ``-`` modifier."""
    if not isinstance(data, bytes):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    found: list[tuple[int, bytes]] = []
    for number, raw in enumerate(_NEWLINES.split(data), 1):
        if len(raw) >= _LINE_BUFFER:
            continue  # rsync: "discarding over-long filter"
        pattern = raw.partition(b"\0")[0]
        if pattern and pattern[:1] not in (b"#", b";") and len(pattern) < _MAXPATHLEN:
            found.append((number, pattern))
    return found


def _read(path: bytes) -> bytes:
    """A ``.skyignore``'s content; nothing when it cannot be read (rsync then has no rules
    from it and says nothing). O_NONBLOCK: a FIFO is read as empty instead of waiting."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        with os.fdopen(fd, "rb") as file:
            return file.read()
    except OSError:
        return b""


class Entry(NamedTuple):
    """A path rsync's sender meets, and the rule that excludes it (None: transferred)."""

    path: str
    is_dir: bool
    rule: Rule | None


def walk(root: str | os.PathLike[str]) -> Iterator[Entry]:
    """Every path below *root* that rsync's sender tests against the filter, in no
    particular order: the transferred ones and the excluded ones (nothing below an excluded
    directory). Paths are relative to the root, ``/``-separated; names that are not UTF-8
    are decoded as os.fsdecode does. Iterative, so no depth is too deep; it holds one
    directory's listing per level."""
    top = _existing_root(root)
    current = os.fsencode(os.path.abspath(top))  # rsync's curr_dir after it enters the root
    base = current[1:] + b"/" if len(current) > 1 else b""
    stack: list[tuple[bytes, list[Rule], Iterator[tuple[bytes, bool]]]] = []
    root_bytes = os.fsencode(top)
    stack.append((b"", _rules_of(root_bytes, b"", current, base, []), _entries(root_bytes)))
    while stack:
        rel, rules, entries = stack[-1]
        for name, is_dir in entries:
            path = rel + b"/" + name if rel else name
            rule = next((rule for rule in rules if rule.matches(path, is_dir, base)), None)
            yield Entry(os.fsdecode(path), is_dir, rule)
            if is_dir and rule is None:
                directory = os.path.join(root_bytes, path)
                stack.append((path, _rules_of(directory, path, current, base, rules), _entries(directory)))
                break
        else:
            stack.pop()


def _existing_root(root: object) -> str:
    top = _check_root(root)
    if not os.path.isdir(top):
        if os.path.exists(top):
            raise NotADirectoryError(20, "Not a directory", top)
        raise FileNotFoundError(2, "No such file or directory", top)
    return top


def _entries(directory: bytes) -> Iterator[tuple[bytes, bool]]:
    """(name, is a directory by lstat) of each entry; none when it cannot be listed (rsync
    reports the error and goes on)."""
    try:
        listing = list_dir(directory, follow_symlinks=False)
    except OSError:
        listing = []
    return iter([(name, is_dir) for name, is_dir, _ in listing])


def _rules_of(directory: bytes, rel: bytes, current: bytes, base: bytes, inherited: list[Rule]) -> list[Rule]:
    """The rules for *directory*'s entries: its own ``.skyignore``'s, then *inherited*."""
    data = _read(os.path.join(directory, os.fsencode(SKY_IGNORE_FILE)))
    if not data:
        return inherited
    source = f"{os.fsdecode(rel)}/{SKY_IGNORE_FILE}" if rel else SKY_IGNORE_FILE
    absolute = current.rstrip(b"/") + b"/" + rel if rel else current
    prefix = b"" if absolute == b"/" else absolute
    own = [compile_rule(source, number, pattern, prefix, base) for number, pattern in parse(data)]
    return [*own, *inherited] if own else inherited


class RsyncFilter:
    """What ``rsync -r --filter='dir-merge,- .skyignore' ROOT/ DEST`` leaves out of ROOT,
    and the rule that leaves out each path.

    ``RsyncFilter(root)`` walks the tree once. Paths are relative to the root,
    ``/``-separated, as rsync lists them."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = _existing_root(root)
        self._matches = {entry.path: entry.rule for entry in walk(self.root) if entry.rule is not None}

    def matches(self) -> dict[str, Rule]:
        """Every path rsync tests and excludes, and the rule that excludes it (paths below
        an excluded directory are not tested, so not listed)."""
        return dict(self._matches)

    def match(self, path: str | os.PathLike[str]) -> Rule | None:
        """The rule that leaves *path* out: its own, or that of the excluded directory above
        it; None when rsync transfers it (or it is not in the tree)."""
        parts = _relative(path).split("/")
        for depth in range(1, len(parts) + 1):
            rule = self._matches.get("/".join(parts[:depth]))
            if rule is not None:
                return rule
        return None

    def is_excluded(self, path: str | os.PathLike[str]) -> bool:
        """Whether rsync leaves *path* out of the transfer (the root never is)."""
        return self.match(path) is not None


def excluded_top_most(root: str | os.PathLike[str]) -> list[tuple[str, str, int, str]]:
    """The paths rsync tests and excludes under *root* (the top-most: nothing below an
    excluded directory is tested), sorted, each as (path, source, line, pattern): relative
    to the root, directories (by lstat) with a trailing ``/``; the ``.skyignore`` the rule
    comes from (``sub/.skyignore``), its line number and its pattern."""
    found = [
        (
            entry.path + "/" if entry.is_dir else entry.path,
            entry.rule.source,
            entry.rule.line,
            entry.rule.text,
        )
        for entry in walk(root)
        if entry.rule is not None
    ]
    found.sort()
    return found


def excluded_paths(root: str | os.PathLike[str]) -> list[str]:
    """The paths rsync tests and excludes under *root*, sorted (see ``RsyncFilter.matches``)."""
    return sorted(RsyncFilter(root).matches())


def transferred_paths(root: str | os.PathLike[str]) -> list[str]:
    """Every path rsync transfers from *root*, sorted: ``.`` (the root) and the paths the
    filter lets through (what ``rsync -rlD -n --out-format=%n`` prints, without the ``/``
    after directories)."""
    return sorted([".", *(entry.path for entry in walk(root) if entry.rule is None)])
