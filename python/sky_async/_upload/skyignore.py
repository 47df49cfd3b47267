"""``.skyignore`` with SkyPilot 0.14.1's exact semantics, evaluated in one walk.

SkyPilot (``sky.data.storage_utils.get_excluded_files_from_skyignore``) reads only the
root's ``.skyignore``; each line is stripped of surrounding whitespace, blank lines and
lines starting with ``#`` are skipped, a line starting with ``/`` becomes ``.`` + line
(anchored at the root) and any other ``**/`` + line (any depth); each becomes a
``glob.glob(root/<that>, recursive=True)`` whose hits, relative to the root, are the
excluded paths. So there is no negation (``!x`` names a file called ``!x``), ``*`` never
crosses ``/``, ``*`` and ``**`` skip names starting with ``.`` (a component that itself
starts with ``.`` may match them), a trailing ``/`` keeps directories only, ``foo/**``
also matches a *file* named ``foo`` (glob yields ``foo/`` before checking anything; an
anchored ``/a/**`` even lists an ``a`` that does not exist), and
``.`` as a component means "this directory" (a line ``.`` lists every directory ``**``
reaches).

SkyPilot runs one glob, hence one walk of the tree, per line. Here every line is compiled
into components (literal names, fnmatch wildcards, ``**``, ``.``, a trailing ``/``) and
all of them advance together through a single walk, as an automaton whose states are
(line, component); the walk enters only directories some line can still match in. Each
wildcard component is matched with the interpreter's own ``fnmatch`` translation, which
is what ``glob`` uses, so names match exactly as SkyPilot's do. A line with a ``..``
component (which can leave the root and depends on the physical parent of symlinks) is
rare enough to be handed to ``glob`` itself.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import re
import stat
from dataclasses import dataclass
from typing import NamedTuple

from .._checks import require_str_path
from .._dirs import list_dir

SKY_IGNORE_FILE = ".skyignore"

# Component kinds.
_LITERAL = 0  # a name without wildcards: the entry must exist (any type)
_WILD = 1  # fnmatch wildcards, one name
_STARSTAR = 2  # '**': zero or more names (directories, and files when last)
_DOT = 3  # '.': the current directory, if it is one
_TRAILING = 4  # the empty name after a trailing '/': the current node, if a directory

_MAGIC = re.compile(r"[*?[]")


class _Wild(NamedTuple):
    regex: re.Pattern[str]  # fnmatch's translation of the name pattern
    hidden_ok: bool  # glob lets it match names starting with '.' only if it starts with one


State = tuple[int, int]  # (rule index, index of the component it matches next)
States = frozenset[State]

_logger = logging.getLogger("sky_async.compat")


@dataclass(frozen=True)
class Rule:
    """One pattern line of a ``.skyignore``."""

    line: int
    """1-based line number in the file."""
    text: str
    """The line as SkyPilot uses it: stripped of surrounding whitespace."""

    @property
    def glob(self) -> str:
        """The glob SkyPilot runs for this line, relative to the root."""
        return "." + self.text if self.text.startswith("/") else "**/" + self.text


def parse(text: str) -> list[Rule]:
    """The rules of a ``.skyignore``'s decoded content, as SkyPilot reads them.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (a text-mode file's universal newlines),
    not at other Unicode line separators; whitespace is what ``str.strip`` removes.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    rules = []
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append(Rule(number, line))
    return rules


def _check_root(root: object) -> str:
    path = require_str_path(root, "root")
    if "\0" in path:
        raise ValueError("root: embedded null byte")
    return os.path.expanduser(path)


def read_rules(root: str) -> list[Rule]:
    """The rules of *root*'s ``.skyignore``. OSError when it cannot be opened or read
    (where SkyPilot logs a warning and excludes nothing); UnicodeDecodeError when it is
    not UTF-8, as in SkyPilot."""
    with open(os.path.join(root, SKY_IGNORE_FILE), encoding="utf-8", newline="") as file:
        return parse(file.read())


# --- compilation ---------------------------------------------------------------------------


def _components(rule: Rule) -> list[tuple[int, object]] | None:
    """The rule's glob below the root as components, or None if it has a '..' one."""
    names = rule.glob.split("/")
    comps: list[tuple[int, object]] = []
    for index, name in enumerate(names):
        last = index == len(names) - 1
        if name == "":
            # os.path.split drops empty names, except a final one: a trailing '/'.
            if last and comps:
                comps.append((_TRAILING, None))
            continue
        if name == "..":
            return None
        if name == ".":
            comps.append((_DOT, None))
        elif name == "**":
            comps.append((_STARSTAR, None))
        elif _MAGIC.search(name):
            comps.append((_WILD, _Wild(re.compile(fnmatch.translate(name)), name.startswith("."))))
        else:
            comps.append((_LITERAL, name))
    if comps and comps[0] == (_DOT, None) and rule.text.startswith("/"):
        comps.pop(0)  # the '.' SkyPilot puts before an anchored line is the root itself
    return comps


class _Automaton:
    """All compiled rules; a state is (rule index, component index)."""

    def __init__(self, rules: list[Rule], comps: list[list[tuple[int, object]]]) -> None:
        self.rules = rules
        self.comps = comps
        self._closures: dict[tuple[States, bool], tuple[int, States]] = {}
        self._steps: dict[States, _Step] = {}

    def closure(self, states: States, is_dir: bool) -> tuple[int, States]:
        """(the lowest rule index that accepts this node or -1, the states that consume
        children) after following '**' (zero names), '.' and a trailing '/'."""
        key = (states, is_dir)
        cached = self._closures.get(key)
        if cached is not None:
            return cached
        accept = -1
        live: set[State] = set()
        seen: set[State] = set()
        pending = list(states)
        while pending:
            state = pending.pop()
            if state in seen:
                continue
            seen.add(state)
            rule, pos = state
            comps = self.comps[rule]
            if pos == len(comps):
                if accept < 0 or rule < accept:
                    accept = rule
                continue
            kind = comps[pos][0]
            if kind == _STARSTAR:
                live.add(state)
                pending.append((rule, pos + 1))
            elif kind in (_DOT, _TRAILING):
                if is_dir:
                    pending.append((rule, pos + 1))
            else:
                live.add(state)
        result = (accept, frozenset(live) if is_dir else frozenset())
        self._closures[key] = result
        return result

    def step(self, states: States) -> _Step:
        cached = self._steps.get(states)
        if cached is None:
            cached = self._steps[states] = _Step(self.comps, states)
        return cached


class _Step:
    """How one set of live states moves on a child's name: grouped by kind so that a name
    no rule mentions costs a dict lookup and one combined regex match."""

    def __init__(self, comps: list[list[tuple[int, object]]], states: States) -> None:
        self.star_dirs: list[State] = []  # '**' not last: stays, on non-hidden dirs
        self.star_any: list[State] = []  # '**' last: stays, on any non-hidden name
        self.literal: dict[str, list[State]] = {}
        self.wild: list[tuple[re.Pattern[str], bool, bool, State]] = []
        for rule, pos in sorted(states):
            kind, payload = comps[rule][pos]
            last = pos == len(comps[rule]) - 1
            if kind == _STARSTAR:
                (self.star_any if last else self.star_dirs).append((rule, pos))
            elif kind == _LITERAL:
                assert isinstance(payload, str)
                self.literal.setdefault(payload, []).append((rule, pos + 1))
            else:
                assert isinstance(payload, _Wild)
                self.wild.append((payload.regex, payload.hidden_ok, not last, (rule, pos + 1)))
        self.any_wild = (
            re.compile("|".join(f"(?:{wild[0].pattern})" for wild in self.wild)) if self.wild else None
        )

    def advance(self, name: str, is_dir: bool) -> States:
        hidden = name.startswith(".")
        found: list[State] = []
        if not hidden:
            found.extend(self.star_any)
            if is_dir:
                found.extend(self.star_dirs)
        literal = self.literal.get(name)
        if literal:
            found.extend(literal)
        if self.any_wild is not None and self.any_wild.match(name):
            for regex, hidden_ok, needs_dir, state in self.wild:
                if (hidden_ok or not hidden) and (is_dir or not needs_dir) and regex.match(name):
                    found.append(state)
        return frozenset(found)


def _entries(path: str) -> list[tuple[str, bool]]:
    """(name, is a directory following symlinks) of each entry, as glob lists them; none
    when *path* cannot be listed."""
    try:
        return [(name, is_dir) for name, is_dir, _ in list_dir(path)]
    except OSError:
        return []


# --- the matcher ---------------------------------------------------------------------------


class SkyIgnore:
    """The paths SkyPilot 0.14.1 excludes under one root, and the rule that excludes each.

    ``SkyIgnore(root)`` reads ``root/.skyignore`` (a missing or unreadable one excludes
    nothing) and evaluates every rule in one walk. Paths are relative to the root,
    ``/``-separated, as SkyPilot lists them (``.`` is the root itself).
    """

    def __init__(self, root: str | os.PathLike[str], rules: list[Rule] | None = None) -> None:
        self.root = _check_root(root)
        if not os.path.isdir(self.root):
            if os.path.exists(self.root):
                raise NotADirectoryError(20, "Not a directory", self.root)
            raise FileNotFoundError(2, "No such file or directory", self.root)
        if rules is None:
            try:
                rules = read_rules(self.root)
            except OSError:
                rules = []  # as SkyPilot: no readable .skyignore, nothing excluded
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._matches = _evaluate(self.root, list(self.rules), escape_root=True)

    def matches(self) -> dict[str, Rule]:
        """Every excluded path and the first rule (by line) that lists it."""
        return dict(self._matches)

    def match(self, path: str | os.PathLike[str]) -> Rule | None:
        """The first rule that lists *path* (relative to the root), or None."""
        return self._matches.get(_relative(path))

    def is_excluded(self, path: str | os.PathLike[str]) -> bool:
        """Whether SkyPilot's ``zip_files_and_folders`` leaves *path* out of the archive:
        it is listed, or a directory above it is (the walk does not enter it). The root
        itself is never left out (SkyPilot lists it as ``.``, which the zip never meets)."""
        rel = _relative(path)
        if rel == ".":
            return False
        parts = rel.split("/")
        return any("/".join(parts[: i + 1]) in self._matches for i in range(len(parts)))


def _relative(path: object) -> str:
    text = require_str_path(path, "path")
    if os.path.isabs(text):
        raise ValueError(f"path must be relative to the root, not absolute: {text!r}")
    return os.path.normpath(text)


def _evaluate(root: str, rules: list[Rule], *, escape_root: bool) -> dict[str, Rule]:
    """Relative path -> first rule listing it, SkyPilot's set exactly."""
    found: dict[str, int] = {}
    comps: list[list[tuple[int, object]]] = []
    for index, rule in enumerate(rules):
        compiled = _components(rule)
        if compiled is None or (not escape_root and _MAGIC.search(root)):
            comps.append([(_LITERAL, "\0")])  # matches nothing in the walk
            _glob_rule(root, index, rule, found, escape_root=escape_root)
        else:
            comps.append(compiled)
            if rule.text.startswith("/"):
                _unchecked_prefix(compiled, index, found)
    automaton = _Automaton(rules, comps)
    start = frozenset((index, 0) for index in range(len(rules)))
    accept, live = automaton.closure(start, True)
    if accept >= 0:
        _record(found, ".", accept)
    pending: list[tuple[str, States]] = [("", live)] if live else []
    top = root or "."
    while pending:
        rel, states = pending.pop()
        step = automaton.step(states)
        for name, is_dir in _entries(os.path.join(top, rel) if rel else top):
            moved = step.advance(name, is_dir)
            if not moved:
                continue
            child = f"{rel}/{name}" if rel else name
            accept, live = automaton.closure(moved, is_dir)
            if accept >= 0:
                _record(found, child, accept)
            if live:
                pending.append((child, live))
    return {path: rules[index] for path, index in found.items()}


def _unchecked_prefix(comps: list[tuple[int, object]], index: int, found: dict[str, int]) -> None:
    """glob lists a wildcard-free start of an anchored pattern without checking it exists:
    ``/a/**`` lists ``a`` in a tree without one, and a NUL in that start fails the listing
    (ValueError, as in SkyPilot) instead of matching nothing."""
    start = 0
    while start < len(comps) and comps[start][0] in (_LITERAL, _DOT):
        start += 1
    rest = comps[start:]
    if not rest or rest[0][0] not in (_WILD, _STARSTAR):
        return
    names = [str(payload) for kind, payload in comps[:start] if kind == _LITERAL]
    if any("\0" in name for name in names):
        raise ValueError("embedded null byte")
    if all(kind == _STARSTAR for kind, _ in rest):
        _record(found, "/".join(names) or ".", index)


def _record(found: dict[str, int], path: str, index: int) -> None:
    previous = found.get(path)
    if previous is None or index < previous:
        found[path] = index


def _glob_rule(root: str, index: int, rule: Rule, found: dict[str, int], *, escape_root: bool) -> None:
    base = glob.escape(root) if escape_root else root
    absolute = os.path.abspath(root)
    for hit in glob.glob(os.path.join(base, rule.glob), recursive=True):
        _record(found, os.path.relpath(hit, absolute), index)


def excluded_paths(root: str | os.PathLike[str]) -> list[str]:
    """The paths SkyPilot's ``get_excluded_files_from_skyignore(root)`` lists, sorted
    (SkyPilot's order comes from a set, so it varies between runs)."""
    return sorted(SkyIgnore(root).matches())


def _lists_directory(root: str, path: str) -> str:
    """*path* with a trailing ``/`` when it is a directory (by lstat), as git lists one."""
    return path + "/" if stat.S_ISDIR(_lstat_mode(os.path.join(root, path))) else path


def _lstat_mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def excluded_top_most(root: str | os.PathLike[str]) -> list[tuple[str, str, int, str]]:
    """The top-most paths *root*'s ``.skyignore`` excludes (what is inside an excluded
    directory is left out), sorted, each as (path, source, line, pattern): relative to
    the root, directories with a trailing ``/``; ``.skyignore``, the line number and the
    line as SkyPilot uses it. The root itself (a line such as ``.``) and paths outside
    it (``..``) are not paths below the root, so they are not listed."""
    ignore = SkyIgnore(root)
    matches = ignore.matches()
    found = []
    for path, rule in sorted(matches.items()):
        if path == "." or path == ".." or path.startswith("../"):
            continue
        parts = path.split("/")
        if any("/".join(parts[:depth]) in matches for depth in range(1, len(parts))):
            continue
        found.append((_lists_directory(ignore.root, path), SKY_IGNORE_FILE, rule.line, rule.text))
    return found


def skypilot_excluded(src_dir_path: str) -> list[str]:
    """``get_excluded_files_from_skyignore`` exactly: no checks beyond SkyPilot's (a missing
    directory or ``.skyignore`` gives []), and a root containing ``*?[`` is itself a glob
    pattern, as in SkyPilot."""
    root = os.path.expanduser(src_dir_path)
    path = os.path.join(root, SKY_IGNORE_FILE)  # TypeError for non-paths, as in SkyPilot
    try:
        rules = read_rules(root)
    except OSError as exc:
        _logger.warning("Error reading %s: [%s] %s", path, type(exc).__name__, exc)
        return []
    return list(_evaluate(root, rules, escape_root=False))
