"""How the command line writes file names, as GNU coreutils 9.1 does.

Two forms, each implemented once here:

- **checksum lines** (``hash``, ``preflight --manifest``, read back by ``hash -c``): a name
  with a backslash, LF or CR is written with ``\\\\``, ``\\n``, ``\\r`` and the line starts
  with a backslash, as ``sha256sum`` does; every other byte is written as it is;
- **shell-escape quoting** (gnulib's ``quotearg`` style ``shell-escape``): what ``ls`` shows
  on a terminal and what coreutils put in error messages (``quotef``, which also quotes
  ``:``), e.g. ``'a'$'\\033''[2J'``. Which bytes are printable is the C library's answer in
  the current locale (``LC_ALL``/``LC_CTYPE``), as for ``ls``.

On a terminal a name is shown quoted only when what would otherwise be written contains a
character that is not printable; a printable name stays as it is, so that ordinary output
is the same as coreutils' on a terminal and stays byte-exact everywhere else.
"""

from __future__ import annotations

import ctypes
import os
import re

# --- checksum lines ----------------------------------------------------------------------------

_CHECKSUM_SPECIAL = re.compile(rb"[\\\n\r]")
_CHECKSUM_ESCAPES = {b"\\": b"\\\\", b"\n": b"\\n", b"\r": b"\\r"}
_CHECKSUM_UNESCAPES = {b"\\": b"\\", b"n": b"\n", b"r": b"\r"}
_CHECKSUM_ESCAPE_OR_BAD = re.compile(rb"\\(.?)|\x00", re.DOTALL)


def checksum_escape(name: bytes) -> bytes:
    """*name* with backslash, LF and CR written as ``\\\\``, ``\\n`` and ``\\r``."""
    return _CHECKSUM_SPECIAL.sub(lambda match: _CHECKSUM_ESCAPES[match.group()], name)


def needs_checksum_escape(name: bytes) -> bool:
    return _CHECKSUM_SPECIAL.search(name) is not None


def checksum_line(digest: str, name: bytes, *, terminal: bool = False) -> bytes:
    """The line ``sha256sum`` prints for a file: ``HEX  NAME``, or ``\\HEX  ESCAPED`` when needed.

    With *terminal*, a line that would still hold an unprintable character shows the name
    shell-quoted instead (and is then no manifest line, but safe to display).
    """
    escaped = needs_checksum_escape(name)
    shown = checksum_escape(name) if escaped else name
    if terminal and not printable(shown):
        return digest.encode("ascii") + b"  " + bytes(shell_quote(name)) + b"\n"
    return (b"\\" if escaped else b"") + digest.encode("ascii") + b"  " + shown + b"\n"


def verdict_name(name: bytes | bytearray, *, terminal: bool = False) -> bytes | bytearray:
    """*name* as ``sha256sum -c`` prints it before ``: OK``: escaped only if it has a newline."""
    shown = b"\\" + checksum_escape(bytes(name)) if b"\n" in name else name
    if terminal and not printable(shown):
        return bytes(shell_quote(name))
    return shown


def checksum_unescape(text: bytes | bytearray) -> bytes | None:
    """The name an escaped checksum line holds, or None when *text* is not validly escaped.

    Only ``\\\\``, ``\\n`` and ``\\r`` may follow a backslash, and a NUL is not allowed.
    """
    valid = True

    def one(match: re.Match[bytes]) -> bytes:
        nonlocal valid
        replacement = _CHECKSUM_UNESCAPES.get(match.group(1) or b"")
        if match.group() == b"\x00" or replacement is None:
            valid = False
            return b""
        return replacement

    name = _CHECKSUM_ESCAPE_OR_BAD.sub(one, text)
    return bytes(name) if valid else None


# --- printable characters in the current locale ------------------------------------------------


class _Classifier:
    """Splits bytes into characters and says which are printable, as the C library does."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None)
        # getattr: a double-underscore name written in a class body would be mangled.
        self._mb_cur_max = getattr(libc, "__ctype_get_mb_cur_max")
        self._mb_cur_max.restype = ctypes.c_size_t
        libc.mbrtowc.restype = ctypes.c_size_t
        libc.mbrtowc.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p)
        libc.iswprint.argtypes = (ctypes.c_uint32,)
        libc.isprint.argtypes = (ctypes.c_int,)
        self._libc = libc

    def characters(self, text: bytes) -> list[tuple[bytes, bool]]:
        """Each character of *text* and whether it is printable (an invalid byte: one, unprintable)."""
        libc = self._libc
        unibyte = self._mb_cur_max() == 1
        wide = ctypes.c_uint32()
        state = ctypes.create_string_buffer(32)  # an mbstate_t, zeroed: the initial shift state
        out: list[tuple[bytes, bool]] = []
        index = 0
        while index < len(text):
            byte = text[index]
            if byte < 0x80:
                out.append((text[index : index + 1], 0x20 <= byte < 0x7F))
                index += 1
                continue
            if unibyte:
                out.append((text[index : index + 1], libc.isprint(byte) != 0))
                index += 1
                continue
            ctypes.memset(state, 0, len(state))
            piece = text[index : index + 16]
            used = libc.mbrtowc(ctypes.byref(wide), piece, len(piece), state)
            if used == ctypes.c_size_t(-2).value:  # incomplete at the end: every byte left
                out.extend((text[i : i + 1], False) for i in range(index, len(text)))
                break
            if used == ctypes.c_size_t(-1).value or used == 0:
                out.append((text[index : index + 1], False))
                index += 1
                continue
            out.append((text[index : index + used], libc.iswprint(wide.value) != 0))
            index += used
        return out


_classifier: _Classifier | None = None


def _characters(text: bytes) -> list[tuple[bytes, bool]]:
    global _classifier
    if _classifier is None:
        _classifier = _Classifier()
    return _classifier.characters(text)


_ALL_PRINTABLE_ASCII = re.compile(rb"[\x20-\x7e]*\Z")


def printable(text: bytes | bytearray) -> bool:
    """Whether every character of *text* is printable in the current locale."""
    if _ALL_PRINTABLE_ASCII.match(text):
        return True
    return all(ok for _, ok in _characters(bytes(text)))


# --- shell-escape quoting ----------------------------------------------------------------------

# Characters that never need quoting (quotearg's list of harmless bytes, and '@').
_BARE = re.compile(rb"[A-Za-z0-9%+,./:@\]_-]+\Z")
_BARE_NO_COLON = re.compile(rb"[A-Za-z0-9%+,./@\]_-]+\Z")
_SHELL_SPECIAL = frozenset(b" !\"$&()*;<=>[^`|?\\'")
_C_ESCAPES = {7: b"a", 8: b"b", 9: b"t", 10: b"n", 11: b"v", 12: b"f", 13: b"r"}
# Characters a double-quoted form may hold as they are (quotearg's "c and shell quote compatible").
_DOUBLE_QUOTE_SAFE = frozenset(b"%+,-./0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ]_abcdefghijklmnopqrstuvwxyz@ '")


def shell_quote(name: bytes | bytearray, *, colon: bool = False) -> bytes | bytearray:
    """*name* quoted as ``ls --quoting-style=shell-escape`` shows it (with *colon*, as ``quotef``).

    A name that needs no quotes is returned itself, not copied.
    """
    if (_BARE_NO_COLON if colon else _BARE).match(name):
        return name
    name = bytes(name)
    # Each character: its bytes, its backslash escape inside $'...' (None: written as it is),
    # whether it forces the name into quotes, and whether a double-quoted form may hold it.
    pieces: list[tuple[bytes, bytes | None, bool, bool]] = []
    for position, (char, is_printable) in enumerate(_characters(name)):
        if len(char) > 1 or char[0] >= 0x80:
            escape = None if is_printable else b"".join(b"\\%03o" % byte for byte in char)
            pieces.append((char, escape, not is_printable, is_printable))
            continue
        byte = char[0]
        if byte in _C_ESCAPES:
            pieces.append((char, b"\\" + _C_ESCAPES[byte], True, False))
        elif not is_printable:
            pieces.append((char, b"\\%03o" % byte, True, False))
        elif (byte in b"#~" and position == 0) or (byte in b"{}" and len(name) == 1):
            pieces.append((char, None, True, True))
        elif byte in b"#~{}":
            pieces.append((char, None, False, False))
        elif byte in _SHELL_SPECIAL:
            pieces.append((char, None, True, byte in b" '"))
        else:  # harmless; a colon is quoted only for messages
            pieces.append((char, None, colon and byte == 0x3A, byte in _DOUBLE_QUOTE_SAFE))
    if name and not any(forces for _, _, forces, _ in pieces):
        return name
    if b"'" in name and all(safe for _, _, _, safe in pieces):
        return b'"' + name + b'"'  # "it's" rather than 'it'\''s'
    quoted, ends_in_dollar_quote = _single_quoted(pieces, False)
    if b"'" in name:
        # coreutils 9.1 (gnulib) writes a name with a single quote twice, and the second
        # pass starts in the $'...' state the first one ended in: its output is kept as is.
        quoted, _ = _single_quoted(pieces, ends_in_dollar_quote)
    return quoted


_Piece = tuple[bytes, "bytes | None", bool, bool]


def _single_quoted(pieces: list[_Piece], in_dollar_quote: bool) -> tuple[bytes, bool]:
    out = [b"'"]
    for char, escape, _, _ in pieces:
        if escape is not None:
            if not in_dollar_quote:
                out.append(b"'$'")
                in_dollar_quote = True
            out.append(escape)
        elif char == b"'":
            out.append(b"'\\''")
            in_dollar_quote = False
        else:
            if in_dollar_quote:
                out.append(b"''")
                in_dollar_quote = False
            out.append(char)
    out.append(b"'")
    return b"".join(out), in_dollar_quote


def quotef(name: str | bytes | bytearray) -> str:
    """*name* for an error message, as coreutils' ``quotef`` writes it."""
    raw = os.fsencode(name) if isinstance(name, str) else name
    return os.fsdecode(bytes(shell_quote(raw, colon=True)))


def for_terminal(name: bytes) -> bytes:
    """*name* as it is when printable, else shell-quoted: for names shown on a terminal."""
    return name if printable(name) else bytes(shell_quote(name))
