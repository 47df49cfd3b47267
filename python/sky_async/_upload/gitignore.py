"""git's ignore rules, read and evaluated without running git.

What ``git ls-files --others --ignored --exclude-standard --directory`` lists (git 2.39,
the version the tests compare with), worked out from the repository on disk:

* Where the rules come from, strongest first: the ``.gitignore`` of each directory on the
  path (the deepest first; each applies to its own directory and below), then
  ``$GIT_COMMON_DIR/info/exclude``, then ``core.excludesFile`` (from the system, global
  and repository config files; when unset, ``$XDG_CONFIG_HOME/git/ignore`` or
  ``~/.config/git/ignore``). Within one file the last matching line wins; ``!`` turns a
  line into a re-include.
* A line: a trailing ``\\r`` and unescaped trailing spaces go, blank lines and lines
  starting with ``#`` are skipped, a leading ``!`` negates, a trailing ``/`` matches only
  directories; a pattern with no other ``/`` matches the name at any depth, one with a
  ``/`` (leading or in the middle) matches the path relative to the ``.gitignore``'s
  directory. Matching is git's wildmatch on bytes: ``*`` and ``?`` and ``[...]`` never
  match ``/`` in a path pattern, ``**`` as a whole component crosses directories, ``\\``
  escapes, an unclosed ``[`` or an unknown ``[:class:]`` makes the line match nothing.
* Inside an excluded directory everything is excluded (its ``.gitignore`` is not even
  read), so no line can re-include a file there.
* Tracked paths (in ``.git/index``, versions 2 to 4) are never listed; directories that
  hold tracked paths are entered, a submodule (gitlink) is not, and neither is an
  untracked nested repository (listed whole if excluded).
* With ``--directory`` an excluded directory is listed once, as ``dir/``. An untracked,
  not excluded directory is walked; when everything found in it is excluded, git 2.39
  lists the directory itself *and* the excluded paths inside it (an empty directory counts
  as something not excluded). FIFOs, sockets and devices are never listed.

Not modelled (documented in docs/gitignore.md): ``core.ignoreCase``, ``GIT_DIR`` and
``GIT_WORK_TREE``, ``GIT_CEILING_DIRECTORIES``, config ``include`` directives, split and
sparse indexes' shared parts, and ``.gitignore`` files read from the index when a sparse
checkout leaves them out of the work tree.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .._checks import require_str_path

GIT_IGNORE_FILE = ".gitignore"

# What a path is, for git's listing; ordered as git orders them (the most significant wins
# when a directory's contents are summed up).
_NONE, _RECURSE, _EXCLUDED, _UNTRACKED = range(4)

_SLASH = ord("/")

# How a compiled pattern is tested (Pattern.kind): through Pattern.matches, never, by the
# name's bytes, by the name's end, by the regex on the name, by the path's bytes, or by the
# regex on the path after the pattern's base (Pattern.literal holds the bytes compared).
_GENERIC, _NEVER, _NAME_EQ, _NAME_SUFFIX, _NAME_RE, _PATH_EQ, _PATH_RE = range(7)
_SPECIAL = re.compile(rb"[*?\[\\]")
_BACKSLASH = ord("\\")

# git's character classes, on ASCII bytes only (its own ctype table).
_CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    b"alpha": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    b"blank": frozenset(b" \t"),
    b"cntrl": frozenset([*range(32), 127]),
    b"digit": frozenset(b"0123456789"),
    b"graph": frozenset(range(33, 127)),
    b"lower": frozenset(b"abcdefghijklmnopqrstuvwxyz"),
    b"print": frozenset(range(32, 127)),
    b"punct": frozenset(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    b"space": frozenset(b" \t\n\r"),
    b"upper": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    b"xdigit": frozenset(b"0123456789ABCDEFabcdef"),
}


class NativeEngine(Protocol):
    """The native engine (the module ``sky_async._upload.native``): what ``GitIgnore`` runs
    when it is set. ``sky_async._default`` sets it when the native backend is the one in
    use; None (the pure-Python backend, or no compiled module) lists with the walk below
    and reads the index in Python. This module imports no compiled code, so it is handed
    the engine."""

    def listing(
        self, top: bytes, prefix: bytes, index: bytes, hash_size: int, exclude_files: list[bytes], /
    ) -> list[str] | None:
        """``GitIgnore.ignored_paths`` (paths as bytes; None where git fails)."""

    def gitlinks(self, index: bytes, hash_size: int, /) -> list[bytes]:
        """``GitIgnore.gitlinks``: the index's submodules, in the index's order."""


_native_engine: NativeEngine | None = None


def use_native_engine(engine: NativeEngine | None) -> None:
    """Run *engine* (the native one) from now on; None: the pure-Python walk and reader."""
    global _native_engine
    _native_engine = engine


def native_engine() -> NativeEngine | None:
    """The engine ``GitIgnore`` uses, None for the pure-Python walk and reader."""
    return _native_engine


class NotAGitRepository(OSError):
    """The directory is not inside a git work tree."""


class GitListingError(RuntimeError):
    """A listing git itself cannot print: git 2.39's ``ls-files`` stops with an internal
    error (exit status 128) when run below a directory its rules exclude."""


_LISTING_FAILURE = "git ls-files: internal error - directory entry not superset of prefix"


# --- patterns ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """One line of an ignore file, compiled."""

    source: str
    """The file it comes from."""
    line: int
    """1-based line number."""
    text: str
    """The line after trimming, as git keeps it."""
    negative: bool
    directory_only: bool
    basename_only: bool
    """No ``/`` but a trailing one: it matches a name at any depth."""
    base: bytes
    """The directory of its ``.gitignore`` relative to the top of the work tree, ``b""``
    for the root's and for info/exclude and core.excludesFile."""
    regex: re.Pattern[bytes] | None = field(compare=False)
    """None for a pattern that can match nothing (a malformed bracket, a lone ``\\``)."""
    kind: int = field(default=0, compare=False, repr=False)
    """How the walk tests it without the regex (``_GENERIC``: through ``matches``)."""
    literal: bytes = field(default=b"", compare=False, repr=False)
    """The bytes the fast kinds compare with (see ``_compile``)."""

    def matches(self, path: bytes, name: bytes, is_dir: bool) -> bool:
        """Whether the line matches *path* (relative to the work tree's top, under this
        pattern's base) whose last component is *name*, ignoring negation."""
        if self.regex is None or (self.directory_only and not is_dir):
            return False
        if self.basename_only:
            return self.regex.fullmatch(name) is not None
        if self.base:
            if not path.startswith(self.base) or path[len(self.base) : len(self.base) + 1] != b"/":
                return False
            path = path[len(self.base) + 1 :]
        return self.regex.fullmatch(path) is not None


def _trim_trailing_spaces(line: bytes) -> bytes:
    end = len(line)
    cut = None
    index = 0
    while index < end:
        char = line[index]
        if char == 0x20:
            if cut is None:
                cut = index
        elif char == _BACKSLASH:
            index += 1
            if index >= end:
                return line  # a final backslash keeps everything
            cut = None
        else:
            cut = None
        index += 1
    return line if cut is None else line[:cut]


def parse(data: bytes, *, base: bytes = b"", source: str = "") -> list[Pattern]:
    """The patterns of an ignore file's content, as git reads them."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    patterns: list[Pattern] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        if not raw or raw.startswith(b"#"):
            continue
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        patterns.append(_compile(_trim_trailing_spaces(raw), base, source, number))
    return patterns


def _compile(line: bytes, base: bytes, source: str, number: int) -> Pattern:
    text = os.fsdecode(line)
    negative = line.startswith(b"!")
    body = line[1:] if negative else line
    directory_only = body.endswith(b"/")
    if directory_only:
        body = body[:-1]
    basename_only = b"/" not in body
    if not basename_only and body.startswith(b"/"):
        body = body[1:]
    regex = _translate(body, pathname=not basename_only)
    # The same decisions without the regex engine where the pattern allows it. A name has no
    # '/', so a basename pattern's '*' (which may cross '/') is any run of bytes in it.
    prefix = base + b"/" if base else b""
    if regex is None:
        kind, literal = _NEVER, b""
    elif not _SPECIAL.search(body):
        kind, literal = (_NAME_EQ, body) if basename_only else (_PATH_EQ, prefix + body)
    elif basename_only and body.startswith(b"*") and not _SPECIAL.search(body, 1):
        kind, literal = _NAME_SUFFIX, body[1:]
    elif basename_only:
        kind, literal = _NAME_RE, b""
    else:
        kind, literal = _PATH_RE, prefix
    return Pattern(source, number, text, negative, directory_only, basename_only, base, regex, kind, literal)


def _byte_class(allowed: set[int]) -> bytes:
    if not allowed:
        return b"(?!)"
    parts: list[bytes] = []
    values = sorted(allowed)
    start = prev = values[0]
    for value in [*values[1:], -2]:
        if value == prev + 1:
            prev = value
            continue
        parts.append(b"\\x%02x" % start if start == prev else b"\\x%02x-\\x%02x" % (start, prev))
        start = prev = value
    return b"[" + b"".join(parts) + b"]"


def _bracket(
    pattern: bytes, start: int, pathname: bool, classes: dict[bytes, frozenset[int]] = _CLASSES
) -> tuple[bytes, int] | None:
    """The regex of the bracket expression at *start* (its ``[``) and the index after it,
    or None when git finds it malformed (the pattern then matches nothing). *classes* are
    the ``[:name:]`` sets (git's own; rsync's wildmatch, which git's comes from, parses
    brackets the same way but takes the sets from the C library)."""
    end = len(pattern)
    index = start + 1
    negated = index < end and pattern[index] in b"!^"
    if negated:
        index += 1
    members: set[int] = set()
    previous = 0  # the last single member, which a following '-' makes a range start
    first = True
    while True:
        if index >= end:
            return None
        char = pattern[index]
        if char == ord("]") and not first:
            break
        first = False
        if char == _BACKSLASH:
            index += 1
            if index >= end:
                return None
            char = pattern[index]
            members.add(char)
            previous = char
        elif char == ord("-") and previous and index + 1 < end and pattern[index + 1] != ord("]"):
            index += 1
            high = pattern[index]
            if high == _BACKSLASH:
                index += 1
                if index >= end:
                    return None
                high = pattern[index]
            members.update(range(previous, high + 1))
            previous = 0
        elif char == ord("[") and index + 1 < end and pattern[index + 1] == ord(":"):
            close = pattern.find(b"]", index + 2)
            if close < 0:
                return None
            if close - (index + 2) < 1 or pattern[close - 1] != ord(":"):
                members.add(char)  # no ':]' before the next ']': a plain '['
                previous = char
            else:
                members_of = classes.get(pattern[index + 2 : close - 1])
                if members_of is None:
                    return None
                members.update(members_of)
                previous = 0
                index = close
        else:
            members.add(char)
            previous = char
        index += 1
    allowed = set(range(256)) - members if negated else members
    if pathname:
        allowed.discard(_SLASH)
    return _byte_class(allowed), index + 1


def _translate(pattern: bytes, *, pathname: bool) -> re.Pattern[bytes] | None:
    """git's wildmatch of *pattern* as a regex over bytes (with WM_PATHNAME when
    *pathname*), or None if it can match nothing."""
    one = b"[^/]" if pathname else b"."
    out: list[bytes] = []
    index = 0
    end = len(pattern)
    while index < end:
        char = pattern[index]
        if char == _BACKSLASH:
            if index + 1 >= end:
                return None  # a final backslash matches nothing
            out.append(re.escape(pattern[index + 1 : index + 2]))
            index += 2
        elif char == ord("?"):
            out.append(one)
            index += 1
        elif char == ord("*"):
            stop = index
            while stop < end and pattern[stop] == ord("*"):
                stop += 1
            whole = (
                stop - index >= 2
                and (index == 0 or pattern[index - 1] == _SLASH)
                and (stop == end or pattern[stop] == _SLASH or pattern[stop : stop + 2] == b"\\/")
            )
            if whole and stop < end and pattern[stop] == _SLASH:
                out.append(b"(?:.*/)?")  # '**/': any number of directories, none included
                index = stop + 1
                continue
            out.append(b".*" if whole or not pathname else b"[^/]*")
            index = stop
        elif char == ord("["):
            bracket = _bracket(pattern, index, pathname)
            if bracket is None:
                return None
            regex, index = bracket
            out.append(regex)
        else:
            out.append(re.escape(pattern[index : index + 1]))
            index += 1
    return re.compile(b"".join(out), re.DOTALL)


def read_patterns(path: str, *, base: bytes = b"", follow_symlinks: bool = True) -> list[Pattern]:
    """The patterns of the ignore file at *path*; [] when it is missing or unreadable
    (git skips it too). An in-tree ``.gitignore`` that is a symbolic link is not followed."""
    flags = os.O_RDONLY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError:
        return []
    try:
        with os.fdopen(fd, "rb") as file:
            data = file.read()
    except OSError:
        return []
    return parse(data, base=base, source=path)


# --- the repository ------------------------------------------------------------------------


def _is_git_directory(path: str) -> bool:
    """Whether *path* looks like a git directory, as git decides before using one."""
    try:
        with open(os.path.join(path, "HEAD"), "rb") as file:
            head = file.read(256)
    except OSError:
        return False
    if not (head.startswith(b"ref:") or re.match(rb"[0-9a-f]{40}", head)):
        return False
    common = path
    try:
        with open(os.path.join(path, "commondir"), "rb") as file:
            common = os.path.join(path, os.fsdecode(file.read().strip()))
    except OSError:
        pass
    return os.path.isdir(os.path.join(common, "objects")) and os.path.isdir(os.path.join(common, "refs"))


def git_dir_of(worktree: str) -> str | None:
    """The git directory that ``worktree/.git`` names (a directory or a ``gitdir:`` file)."""
    dot_git = os.path.join(worktree, ".git")
    try:
        mode = os.stat(dot_git).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return dot_git if _is_git_directory(dot_git) else None
    if not stat.S_ISREG(mode):
        return None
    try:
        with open(dot_git, "rb") as file:
            content = file.read(4096)
    except OSError:
        return None
    if not content.startswith(b"gitdir: "):
        return None
    target = os.path.join(worktree, os.fsdecode(content[8:].strip()))
    return target if _is_git_directory(target) else None


@dataclass
class Repository:
    """A git work tree: its top directory and its git directory."""

    top: str
    git_dir: str

    @property
    def common_dir(self) -> str:
        try:
            with open(os.path.join(self.git_dir, "commondir"), "rb") as file:
                return os.path.normpath(os.path.join(self.git_dir, os.fsdecode(file.read().strip())))
        except OSError:
            return self.git_dir


def find_repository(path: str | os.PathLike[str]) -> Repository | None:
    """The work tree containing directory *path*, found as git finds it (upwards, not
    across a filesystem boundary unless GIT_DISCOVERY_ACROSS_FILESYSTEM is true), or None."""
    current = os.path.realpath(os.fspath(path))
    across = os.environ.get("GIT_DISCOVERY_ACROSS_FILESYSTEM", "").lower() in ("1", "true", "yes", "on")
    device = os.stat(current).st_dev
    while True:
        git_dir = git_dir_of(current)
        if git_dir is not None:
            return Repository(current, os.path.realpath(git_dir))
        parent = os.path.dirname(current)
        if parent == current:
            return None
        if not across and os.stat(parent).st_dev != device:
            return None
        current = parent


@dataclass
class Index:
    """The paths ``.git/index`` tracks."""

    files: set[bytes] = field(default_factory=set)
    """Every entry's path (files, symbolic links and gitlinks)."""
    gitlinks: set[bytes] = field(default_factory=set)
    """Submodules: entries of mode 160000."""
    directories: set[bytes] = field(default_factory=set)
    """Every directory above a tracked path (and sparse-index directory entries)."""


_MODE = struct.Struct(">I")
_FLAGS = struct.Struct(">H")


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """git's offset varint (index v4 prefix lengths): 7 bits a byte, high bit continues,
    and each continuation adds one before shifting."""
    byte = data[offset]
    value = byte & 0x7F
    offset += 1
    while byte & 0x80:
        byte = data[offset]
        offset += 1
        value = ((value + 1) << 7) | (byte & 0x7F)
    return value, offset


def read_index(path: str, *, hash_size: int = 20) -> Index:
    """The tracked paths of the index file at *path* (versions 2, 3 and 4); an empty
    index when the file does not exist. ValueError when it is not an index."""
    index = Index()
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return index
    if len(data) < 12 or data[:4] != b"DIRC":
        raise ValueError(f"{path}: not a git index")
    version = int.from_bytes(data[4:8], "big")
    count = int.from_bytes(data[8:12], "big")
    if version not in (2, 3, 4):
        raise ValueError(f"{path}: index version {version} is not supported")
    offset = 12
    previous = b""
    files, gitlinks, directories = index.files, index.gitlinks, index.directories
    parent_of_previous = b""
    fixed = 40 + hash_size  # ctime to the object name; the flags follow
    extended = version >= 3
    unpack_mode = _MODE.unpack_from
    unpack_flags = _FLAGS.unpack_from
    try:
        for _ in range(count):
            start = offset
            (mode,) = unpack_mode(data, start + 24)
            offset += fixed
            (flags,) = unpack_flags(data, offset)
            offset += 2
            if extended and flags & 0x4000:
                offset += 2  # extended flags
            if version == 4:
                strip, offset = _varint(data, offset)
                nul = data.index(b"\0", offset)
                if strip > len(previous):
                    raise IndexError(strip)
                name = previous[: len(previous) - strip] + data[offset:nul]
                offset = nul + 1
                previous = name
            else:
                length = flags & 0xFFF  # the name's length, 0xFFF when it is that long or longer
                nul = offset + length if length < 0xFFF else data.index(b"\0", offset + 0xFFF)
                if nul > len(data):
                    raise IndexError(nul)
                name = data[offset:nul]
                offset = start + ((nul - start) // 8 + 1) * 8  # 1 to 8 NULs pad to 8 bytes
            kind = mode & 0o170000
            if kind == 0o040000:  # a sparse-index directory entry ('dir/')
                name = name.rstrip(b"/")
                directories.add(name)
            else:
                files.add(name)
                if kind == 0o160000:
                    gitlinks.add(name)
            slash = name.rfind(b"/")
            if slash <= 0:
                continue
            parent = name[:slash]
            if parent == parent_of_previous:
                continue  # sorted entries: the same directory as the last one's, already added
            parent_of_previous = parent
            while parent not in directories:
                directories.add(parent)
                slash = parent.rfind(b"/")
                if slash <= 0:
                    break
                parent = parent[:slash]
    except (struct.error, IndexError, ValueError):  # the entries run past the end of the file
        raise ValueError(f"{path}: not a git index") from None
    return index


# --- configuration -------------------------------------------------------------------------

_SECTION = re.compile(r'\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]')


def _config_value(raw: str) -> str:
    """A config value: quotes removed, escapes decoded, a comment outside quotes dropped."""
    out: list[str] = []
    quoted = False
    index = 0
    pending_space = ""
    while index < len(raw):
        char = raw[index]
        if char == '"':
            quoted = not quoted
        elif char == "\\" and index + 1 < len(raw):
            index += 1
            out.append(pending_space + {"n": "\n", "t": "\t", "b": "\b"}.get(raw[index], raw[index]))
            pending_space = ""
        elif char in "#;" and not quoted:
            break
        elif char.isspace() and not quoted:
            if out:
                pending_space += char
        else:
            out.append(pending_space + char)
            pending_space = ""
        index += 1
    return "".join(out)


def read_config(path: str, section: str, key: str) -> str | None:
    """The last value of ``section.key`` in the git config file at *path* (names compared
    case-insensitively, no subsection), None when it is absent or the file unreadable."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            text = file.read()
    except OSError:
        return None
    value: str | None = None
    current = ""
    for line in text.replace("\\\n", "").splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            match = _SECTION.match(stripped)
            if match:
                current = match.group(1).lower() + ("\0" if match.group(2) is not None else "")
                stripped = stripped[match.end() :].strip()
                if not stripped:
                    continue
        name, eq, raw = stripped.partition("=")
        if current == section.lower() and name.strip().lower() == key.lower():
            value = _config_value(raw) if eq else "true"
    return value


def _home() -> str | None:
    return os.environ.get("HOME") or None


def _global_config_files() -> list[str]:
    files: list[str] = []
    if not os.environ.get("GIT_CONFIG_NOSYSTEM"):
        files.append(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig")
    if "GIT_CONFIG_GLOBAL" in os.environ:
        files.append(os.environ["GIT_CONFIG_GLOBAL"])
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        home = _home()
        if xdg:
            files.append(os.path.join(xdg, "git", "config"))
        elif home:
            files.append(os.path.join(home, ".config", "git", "config"))
        if home:
            files.append(os.path.join(home, ".gitconfig"))
    return files


def _config(repo: Repository, section: str, key: str) -> str | None:
    value = None
    for path in [*_global_config_files(), os.path.join(repo.common_dir, "config")]:
        found = read_config(path, section, key)
        if found is not None:
            value = found
    return value


def _expand_user(path: str) -> str:
    if path == "~" or path.startswith("~/"):
        home = _home()
        return path if home is None else home + path[1:]
    return os.path.expanduser(path) if path.startswith("~") else path


def excludes_file(repo: Repository) -> str | None:
    """``core.excludesFile`` as git resolves it (relative to the work tree's top), or the
    default ``$XDG_CONFIG_HOME/git/ignore`` / ``~/.config/git/ignore``."""
    configured = _config(repo, "core", "excludesfile")
    if configured is not None:
        return os.path.join(repo.top, _expand_user(configured))
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return os.path.join(xdg, "git", "ignore")
    home = _home()
    return os.path.join(home, ".config", "git", "ignore") if home else None


# --- the matcher ---------------------------------------------------------------------------


def _is_nested_repository(path: str) -> bool:
    return git_dir_of(path) is not None


def _first_match(ordered: list[Pattern], path: bytes, is_dir: bool) -> Pattern | None:
    name = path[path.rfind(b"/") + 1 :]
    for pattern in ordered:
        if pattern.matches(path, name, is_dir):
            return pattern
    return None


class GitIgnore:
    """git's ignore rules for the work tree containing *root*.

    ``GitIgnore(root)`` finds the repository (NotAGitRepository if there is none), reads its
    index, ``info/exclude`` and ``core.excludesFile``; ``.gitignore`` files are read as they
    are needed. Paths given to it are relative to *root*, ``/``-separated.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = os.path.expanduser(require_str_path(root, "root"))
        if not os.path.isdir(path):
            if os.path.exists(path):
                raise NotADirectoryError(20, "Not a directory", path)
            raise FileNotFoundError(2, "No such file or directory", path)
        repo = find_repository(path)
        if repo is None:
            raise NotAGitRepository(f"not a git repository (or any of the parent directories): {path}")
        self.root = path
        self.repository = repo
        relative = os.path.relpath(os.path.realpath(path), repo.top)
        self.prefix = b"" if relative == "." else os.fsencode(relative)
        """*root* relative to the top of the work tree (``b""`` at the top)."""
        sha256 = (_config(repo, "extensions", "objectformat") or "").lower() == "sha256"
        self._hash_size = 32 if sha256 else 20
        self._index_path = os.path.join(repo.git_dir, "index")
        # info/exclude, then core.excludesFile, strongest first (read when needed: the
        # native listing reads them itself).
        self._exclude_files = [os.path.join(repo.common_dir, "info", "exclude")]
        excludes = excludes_file(repo)
        if excludes is not None and os.access(excludes, os.R_OK):
            self._exclude_files.append(excludes)
        self._per_dir: dict[bytes, list[Pattern]] = {}

    @functools.cached_property
    def index(self) -> Index:
        """The paths the index tracks (read on first use)."""
        return read_index(self._index_path, hash_size=self._hash_size)

    @functools.cached_property
    def gitlinks(self) -> frozenset[bytes]:
        """The index's submodules (entries of mode 160000), read on first use: by the
        native engine when one is set, which reads only those (0.05 against 1.5 ms for
        ``index`` on the 3,200 entries of ``bench/gitignore_bench.py``), else from ``index``."""
        engine = _native_engine
        if engine is not None:
            return frozenset(engine.gitlinks(os.fsencode(self._index_path), self._hash_size))
        return frozenset(self.index.gitlinks)

    @functools.cached_property
    def global_patterns(self) -> list[list[Pattern]]:
        """info/exclude, then core.excludesFile: the weaker lists, strongest first."""
        return [read_patterns(path) for path in self._exclude_files]

    # --- rules -----------------------------------------------------------------------------

    def _patterns_of(self, directory: bytes) -> list[Pattern]:
        """The patterns of *directory*'s ``.gitignore`` (relative to the top)."""
        found = self._per_dir.get(directory)
        if found is None:
            parts = [self.repository.top, os.fsdecode(directory), GIT_IGNORE_FILE] if directory else None
            path = os.path.join(*parts) if parts else os.path.join(self.repository.top, GIT_IGNORE_FILE)
            found = self._per_dir[directory] = read_patterns(path, base=directory, follow_symlinks=False)
        return found

    def _in_order(self, stack: list[list[Pattern]]) -> list[Pattern]:
        """Every pattern that applies below the ``.gitignore`` lists *stack* (top first), in
        the order git tries them: the deepest file first, the last line of a file first."""
        return [
            pattern
            for patterns in [*reversed(stack), *self.global_patterns]
            for pattern in reversed(patterns)
        ]

    def _decide(self, stack: list[list[Pattern]], path: bytes, is_dir: bool) -> Pattern | None:
        """The pattern that decides *path*, given the ``.gitignore`` lists of its directories
        (top first): the last matching line of the deepest list that has one."""
        return _first_match(self._in_order(stack), path, is_dir)

    def _excluded(self, stack: list[list[Pattern]], path: bytes, is_dir: bool) -> bool:
        pattern = self._decide(stack, path, is_dir)
        return pattern is not None and not pattern.negative

    def _normalize(self, relpath: object) -> bytes:
        text = require_str_path(relpath, "relpath")
        if os.path.isabs(text):
            raise ValueError(f"relpath must be relative to the root, not absolute: {text!r}")
        text = os.path.normpath(text)
        if text == "." or text.startswith("../") or text == "..":
            raise ValueError(f"relpath must name a path below the root: {text!r}")
        return self.prefix + b"/" + os.fsencode(text) if self.prefix else os.fsencode(text)

    def match(self, relpath: str | os.PathLike[str], is_dir: bool) -> Pattern | None:
        """The pattern that decides *relpath* (it is ignored unless that pattern is negative),
        or None when no rule applies. A path under an ignored directory is decided by that
        directory's pattern: nothing below can re-include it."""
        path = self._normalize(relpath)
        ordered = self._in_order([self._patterns_of(b"")])
        slash = path.find(b"/")
        while slash >= 0:
            directory = path[:slash]
            pattern = _first_match(ordered, directory, True)
            if pattern is not None and not pattern.negative:
                return pattern
            own = self._patterns_of(directory)
            if own:  # tried before the lists above it, its last line first
                ordered = [*reversed(own), *ordered]
            slash = path.find(b"/", slash + 1)
        return _first_match(ordered, path, is_dir)

    def is_ignored(self, relpath: str | os.PathLike[str], is_dir: bool) -> bool:
        """Whether git's exclude rules ignore *relpath*, as ``git check-ignore --no-index``
        says (whether it is tracked is not considered: see ``is_tracked``)."""
        pattern = self.match(relpath, is_dir)
        return pattern is not None and not pattern.negative

    def source_name(self, pattern: Pattern) -> str:
        """Where *pattern* comes from, as a report names it: relative to the root
        (``.gitignore``, ``sub/.gitignore``), else to the top of the work tree
        (``.git/info/exclude``, a ``.gitignore`` above the root), else absolute (a
        ``core.excludesFile`` outside the work tree)."""
        shown = os.path.relpath(pattern.source, self.root)
        if shown.startswith(".."):
            inside = os.path.relpath(pattern.source, self.repository.top)
            shown = pattern.source if inside.startswith("..") else inside
        return shown

    def is_tracked(self, relpath: str | os.PathLike[str]) -> bool:
        """Whether the index has *relpath* (a file, link or submodule)."""
        return self._normalize(relpath) in self.index.files

    # --- the listing -----------------------------------------------------------------------

    def ignored_paths(self) -> list[str]:
        """What ``git ls-files --others --ignored --exclude-standard --directory`` run in the
        root prints (``-z`` form: no quoting), in git's order: relative to the root,
        directories with a trailing ``/``, ``./`` when the root itself is listed.

        Runs the native engine when one is set (``use_native_engine``), else the walk
        below; both give the same listing and errors."""
        engine = _native_engine
        if engine is not None:
            listed = engine.listing(
                os.fsencode(self.repository.top),
                self.prefix,
                os.fsencode(self._index_path),
                self._hash_size,
                [os.fsencode(path) for path in self._exclude_files],
            )
            if listed is None:
                raise GitListingError(_LISTING_FAILURE)
            return listed
        found: list[bytes] = []
        self._list(found)
        found.sort()
        prefix = self.prefix + b"/" if self.prefix else b""
        return [
            "./" if path == prefix else os.fsdecode(path[len(prefix) :])
            for path in found
            if path.startswith(prefix)
        ]

    def _list(self, found: list[bytes]) -> None:
        top = self.repository.top
        stack = [self._patterns_of(b"")]
        if not self.prefix:
            self._walk(top, b"", stack, False, found)
            return
        # Down from the top to the root, as git checks a subdirectory it is run in: each
        # directory on the way must be one git would enter.
        parts = self.prefix.split(b"/")
        excluded_above = False
        for depth in range(1, len(parts) + 1):
            path = b"/".join(parts[:depth])
            absolute = os.path.join(top, os.fsdecode(path))
            if parts[depth - 1] == b".git" or not os.path.isdir(absolute):
                return
            excluded = excluded_above or self._excluded(stack, path, True)
            last = depth == len(parts)
            if path in self.index.directories:
                pass  # tracked below: entered whatever the rules say
            elif path in self.index.gitlinks:
                return
            elif not last:
                if excluded:
                    raise GitListingError(_LISTING_FAILURE)
                if _is_nested_repository(absolute):
                    return  # git does not enter it: nothing printed
            elif excluded:
                found.append(path + b"/")
                return
            else:
                state = self._walk(absolute, path + b"/", [*stack, self._patterns_of(path)], False, found)
                if state == _EXCLUDED:
                    found.append(path + b"/")
                return
            excluded_above = excluded
            if not excluded:
                stack = [*stack, self._patterns_of(path)]
        self._walk(
            os.path.join(top, os.fsdecode(self.prefix)), self.prefix + b"/", stack, excluded_above, found
        )

    def _walk(
        self,
        directory: str,
        prefix: bytes,
        stack: list[list[Pattern]],
        excluded_above: bool,
        found: list[bytes],
    ) -> int:
        """List the excluded paths under *directory* (*prefix*, with its trailing ``/``, is
        its path from the top) into *found*, and return the most significant state of its
        entries (_NONE when it has none git considers).

        Iterative (one frame a directory on an explicit stack), so that no depth of tree
        reaches the interpreter's recursion limit. The order of *found* does not matter:
        the caller sorts it."""
        ordered = [] if excluded_above else self._in_order(stack)
        rules = (_rules(ordered, False), _rules(ordered, True))
        files, directories, gitlinks = self.index.files, self.index.directories, self.index.gitlinks
        frames = [self._enter(os.fsencode(directory), prefix, rules, excluded_above, None)]
        while True:
            frame = frames[-1]
            child: _Frame | None = None
            prefix = frame.prefix
            excluded_above = frame.excluded
            file_rules, dir_rules = frame.rules
            state = frame.state
            for entry in frame.entries:
                name = entry.name
                if name == b".git":
                    continue
                path = prefix + name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if not (is_dir or entry.is_file(follow_symlinks=False) or entry.is_symlink()):
                        continue  # FIFOs, sockets, devices: git looks at none of them
                except OSError:
                    continue
                if not is_dir:
                    if path in files:
                        continue
                    if excluded_above or _excludes(file_rules, path, name, False):
                        found.append(path)
                        if state < _EXCLUDED:
                            state = _EXCLUDED
                    elif state < _UNTRACKED:
                        state = _UNTRACKED
                    continue
                excluded = excluded_above or _excludes(dir_rules, path, name, True)
                if path in directories:  # tracked below: entered whatever the rules say
                    frame.pending, frame.pending_tracked = path + b"/", True
                    child = self._enter(entry.path, path + b"/", frame.rules, excluded, path)
                    break
                if path in gitlinks:
                    continue
                if not excluded and not _is_nested_repository(os.fsdecode(entry.path)):
                    frame.pending, frame.pending_tracked = path + b"/", False
                    child = self._enter(entry.path, path + b"/", frame.rules, False, path)
                    break
                if excluded:  # a directory, or an untracked nested repository, as a whole
                    found.append(path + b"/")
                    if state < _EXCLUDED:
                        state = _EXCLUDED
                elif state < _UNTRACKED:
                    state = _UNTRACKED
            frame.state = state
            if child is not None:
                frames.append(child)
                continue
            frames.pop()
            if not frames:
                return state
            parent = frames[-1]
            if parent.pending_tracked:
                parent.state = max(parent.state, _RECURSE, state)
            else:
                if state == _NONE:
                    state = _UNTRACKED  # nothing inside: an untracked directory
                parent.state = max(parent.state, state)
                if state == _EXCLUDED:
                    found.append(parent.pending)

    def _enter(
        self, directory: bytes, prefix: bytes, rules: _Rules, excluded: bool, own: bytes | None
    ) -> _Frame:
        """The frame of *directory*: its entries, and the rules for them (*rules*, the
        parent's, after those of its own ``.gitignore`` when *own*, its path from the top, is
        given and it is not excluded). Unreadable, it has no entries (git warns and goes on).
        """
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            entries = []
        if own is not None and not excluded:
            patterns = self._per_dir.get(own)
            if patterns is None and _GIT_IGNORE_NAME in map(_NAME_OF, entries):
                patterns = self._patterns_of(own)
            if patterns:
                mine = patterns[::-1]
                rules = (_rules(mine, False) + rules[0], _rules(mine, True) + rules[1])
        return _Frame(iter(entries), prefix, excluded, rules)


# One pattern as the walk tests it: (kind, literal, regex, negative, pattern).
_Rule = tuple[int, bytes, re.Pattern[bytes], bool, Pattern]
_Rules = tuple[list[_Rule], list[_Rule]]
_NO_REGEX = re.compile(b"(?!)")
_GIT_IGNORE_NAME = os.fsencode(GIT_IGNORE_FILE)
_NAME_OF = operator.attrgetter("name")


def _rules(ordered: list[Pattern], is_dir: bool) -> list[_Rule]:
    """The patterns of *ordered* (in the order they are tried) that can match a directory
    (*is_dir*) or a non-directory."""
    return [
        (pattern.kind, pattern.literal, pattern.regex or _NO_REGEX, pattern.negative, pattern)
        for pattern in ordered
        if pattern.kind != _NEVER and (is_dir or not pattern.directory_only)
    ]


def _excludes(rules: list[_Rule], path: bytes, name: bytes, is_dir: bool) -> bool:
    """Whether the first of *rules* that matches *path* (whose last component is *name*)
    excludes it: what ``_first_match`` decides, without a call per pattern."""
    for kind, literal, regex, negative, pattern in rules:
        if kind == _NAME_SUFFIX:
            hit = name.endswith(literal)
        elif kind == _NAME_EQ:
            hit = name == literal
        elif kind == _NAME_RE:
            hit = regex.fullmatch(name) is not None
        elif kind == _PATH_EQ:
            hit = path == literal
        elif kind == _PATH_RE:
            hit = path.startswith(literal) and regex.fullmatch(path, len(literal)) is not None
        else:
            hit = pattern.matches(path, name, is_dir)
        if hit:
            return not negative
    return False


class _Frame:
    """One directory of the walk: the entries still to look at, and what is known so far."""

    __slots__ = ("entries", "excluded", "pending", "pending_tracked", "prefix", "rules", "state")

    def __init__(
        self, entries: Iterator[os.DirEntry[bytes]], prefix: bytes, excluded: bool, rules: _Rules
    ) -> None:
        self.entries = entries
        self.prefix = prefix
        """The directory's path from the top, with its trailing ``/``."""
        self.excluded = excluded
        """Under (or itself) an excluded directory: every entry is excluded."""
        self.rules = rules
        """The rules for its files and for its directories, in the order git tries them."""
        self.state = _NONE
        """The most significant state of its entries so far."""
        self.pending = b""
        """The subdirectory being walked (with its trailing ``/``), while it is."""
        self.pending_tracked = False
        """Whether that subdirectory holds tracked paths."""


def excluded_top_most(root: str | os.PathLike[str]) -> list[tuple[str, str | None, int | None, str | None]]:
    """The top-most paths of *root*'s ``ignored_paths`` listing (what is inside a listed
    directory is left out), sorted, each as (path, source, line, pattern): relative to the
    root, directories with a trailing ``/``; the ignore file (``source_name``), the line
    number and the line of the pattern that ignores it. git also lists an untracked
    directory whose entries are all ignored, which no single line ignores: its source,
    line and pattern are None. [] outside a git work tree (no rule of git's applies), and
    when git ignores the root itself (the listing is then ``./``: a scan of the root
    leaves nothing out). GitListingError where git fails."""
    try:
        ignore = GitIgnore(root)
    except NotAGitRepository:
        return []
    found: list[tuple[str, str | None, int | None, str | None]] = []
    above = ""  # the last directory kept: the listing is sorted, so what it holds follows it
    for path in ignore.ignored_paths():
        if path == "./" or (above and path.startswith(above)):
            continue
        is_dir = path.endswith("/")
        if is_dir:
            above = path
        pattern = ignore.match(path.rstrip("/"), is_dir)
        if pattern is None or pattern.negative:
            found.append((path, None, None, None))
        else:
            found.append((path, ignore.source_name(pattern), pattern.line, pattern.text))
    return found


def ignored_paths(root: str | os.PathLike[str]) -> list[str]:
    """What ``git ls-files --others --ignored --exclude-standard --directory`` prints when
    run in *root* (see ``GitIgnore.ignored_paths``). NotAGitRepository outside a work tree;
    GitListingError where git fails (below an excluded, untracked directory)."""
    return GitIgnore(root).ignored_paths()
