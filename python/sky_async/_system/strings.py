"""SkyPilot's pure string helpers, with SkyPilot's exact results.

These are pure functions on short inputs: a call into C++ would cost more than the
work, so they are plain Python on both backends.
"""

from __future__ import annotations

_BASE36_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36_encode(hex_str: str) -> str:
    """Re-encode a hexadecimal string in lower-case base 36, most significant digit first.

    The input is parsed as ``int(hex_str, 16)`` parses it (case, surrounding
    whitespace, a ``0x`` prefix, a sign and single underscores are accepted).
    Deliberate deviation: SkyPilot loops forever on a negative value; this raises
    ValueError instead.
    """
    value = int(hex_str, 16)
    if value < 0:
        raise ValueError(f"base36_encode needs a non-negative value, got {hex_str!r}")
    if value == 0:
        return "0"
    digits = []
    while value:
        value, digit = divmod(value, 36)
        digits.append(_BASE36_DIGITS[digit])
    return "".join(reversed(digits))


def format_float(num: float | int, precision: int = 1) -> str:
    """``str()`` of an int; an integral float without decimals; else *precision* decimals.

    Fixed-point only (never an exponent), correctly rounded, ties to even. The
    integral test comes before rounding, so ``0.96`` gives ``'1.0'`` but ``1.0`` gives ``'1'``.
    """
    if isinstance(num, int):
        return str(num)
    if num.is_integer():
        return f"{num:.0f}"
    return f"{num:.{precision}f}"


def truncate_long_string(s: str, max_length: int = 35, truncate_middle: bool = False) -> str:
    """Shorten *s* to about *max_length* code points, marking the cut with ``'...'``.

    Middle mode keeps the head and the tail (exactly *max_length* characters). End
    mode cuts at a word boundary (words split on single spaces) when that keeps at
    least *max_length* characters, else at *max_length*, then appends ``'...'``; the
    result can therefore be longer than *max_length*, as in SkyPilot.
    """
    if len(s) <= max_length:
        return s
    if truncate_middle:
        if max_length <= 3:
            return "..."
        keep = max_length - 3
        head, tail = keep // 2 + keep % 2, keep // 2
        return s[:head] + "..." + (s[-tail:] if tail else "")
    words = s.split(" ")
    if len(words[0]) > max_length:
        return words[0][:max_length] + "..."
    total = 0
    cut = len(words) - 1
    for index, word in enumerate(words):
        total += len(word)
        if total >= max_length:
            cut = index
            break
    prefix = " ".join(words[:cut])
    if len(prefix) < max_length:
        prefix = s[:max_length]
    return prefix + "..."
