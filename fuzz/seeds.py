#!/usr/bin/env python3
"""Writes the hand-made seed inputs into fuzz/corpus/<target>/seed-*.

The targets that take several parameters read them with libFuzzer's FuzzedDataProvider,
which takes integers and booleans from the END of the input (one byte each for the small
ranges used here) and strings from the front; `tail_bytes` builds that layout. Seeds are
edge cases from the SkyPilot semantics reference (sections 1, 4-8) and real /proc lines.
Run from the repository root; fuzzing then grows the corpus (see fuzz/README.md).
"""

import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def tail_bytes(*values):
    """Bytes that FuzzedDataProvider consumes as the given one-byte values, in order."""
    return bytes(reversed(values))


def in_range(value, low):
    """The byte that ConsumeIntegralInRange(low, high) maps to `value` (range < 256)."""
    return value - low


def write(target, seeds):
    directory = os.path.join(ROOT, target)
    os.makedirs(directory, exist_ok=True)
    for i, seed in enumerate(seeds):
        data = seed.encode() if isinstance(seed, str) else seed
        with open(os.path.join(directory, f"seed-{i:02d}"), "wb") as f:
            f.write(data)


def base36():
    return [
        "ff",
        "0x10",
        "100",
        "23",
        "24",
        "0",
        "-0",
        "-1",
        "-ff",
        "",
        "0x",
        "de_ad",
        "0x_ff",
        "_1",
        "1__2",
        " 1 2 ",
        " \t+0XfF\n",
        "\u00a0ff\u2003",
        "d41d8cd98f00b204e9800998ecf8427e",
        "ffffffffffffffffffffffffffffffff",
        "1" + "0" * 200,
        "\u0661",
    ]


def format_float():
    # Provider order (from the end): precision selector (0: -3..20), precision, the
    # double's bits, the int64; so the file is int64 LE, bits LE, precision, selector.
    seeds = []
    cases = [
        (2.0, 1),
        (-0.0, 1),
        (1e20, 1),
        (2.25, 1),
        (2.35, 1),
        (2.675, 2),
        (2.5, 0),
        (3.5, 0),
        (0.96, 1),
        (9.999, 2),
        (1e-7, 2),
        (-1e-7, 2),
        (float("inf"), 1),
        (float("-inf"), 1),
        (float("nan"), 1),
        (0.5, -1),
        (1.7976931348623157e308, 1),
        (5e-324, 20),
        (0.05, 1),
    ]
    for value, precision in cases:
        seeds.append(
            struct.pack("<q", -(2**63)) + struct.pack("<d", value) + tail_bytes(0, in_range(precision, -3))
        )
    return seeds


def truncate():
    cases = [
        ("short string", 15, False),
        ("this is a very long string that needs truncation", 20, False),
        ("us-west-2-availability-zone-1", 20, True),
        ("us-west-2-availability-zone-1", 15, True),
        ("us-west-2-availability-zone-1", 3, True),
        ("", 10, False),
        ("abcde", 5, True),
        ("abcde", 4, True),
        ("abcdefghijklmnopqrstuvwxyz", 10, True),
        ("aa bb cc dd ee ff", 7, False),
        ("one two three four five six seven eight nine ten eleven", 35, False),
        ("abc", -1, False),
        ("abc", -1, True),
        ("x", 0, False),
        (" leading space", 0, False),
        ("a  b   c", 2, False),
        ("h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e \U0001f600 emoji", 9, False),
        ("h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e \U0001f600 emoji", 9, True),
    ]
    seeds = [text.encode() + tail_bytes(int(middle), 0, in_range(limit, -8)) for text, limit, middle in cases]
    seeds.append(b"\xff\xfe abc" + tail_bytes(0, 0, in_range(2, -8)))
    seeds.append(b"abc \xed\xa0\x80" + tail_bytes(1, 0, in_range(2, -8)))
    return seeds


def py_literals():
    return [
        "0",
        "-0",
        "+12",
        "1_000",
        "1__0",
        "_1",
        "1_",
        "0x_ff",
        "0XFF",
        " \t42\n",
        "\u00a07\u3000",
        "\x1c5\x1f",
        "1.5",
        ".5",
        "5.",
        "1e5",
        "1E-5",
        "1_0.2_5e1_0",
        "inf",
        "-Infinity",
        "nAn",
        "1e400",
        "-1e-400",
        "4.9e-324",
        "0.1",
        "12.5",
        "",
        "  ",
        "+",
        "e5",
        "1e",
        "\u0661",
        "max",
        "100000 100000",
        "\xff".encode("latin-1"),
        b"\xc2\x85",
        b"\xe0\x80\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
    ]


def cgroup():
    # `first` is a random-length string: FuzzedDataProvider ends it at a backslash
    # followed by any byte other than a backslash ("\\\\" stands for one backslash).
    def pair(a, b):
        return a.replace("\\", "\\\\") + "\\n" + b

    return [
        pair("100000", "100000"),
        pair("max", "100000"),
        pair("50000", "100000"),
        pair("-1", "100000"),
        pair("100000 100000\n", ""),
        pair("max 100000\n", ""),
        pair("50000 0\n", ""),
        pair("50000 -100000\n", ""),
        pair("1e308 1e-308\n", ""),
        pair("8589934592\n", ""),
        pair("max\n", ""),
        pair("", ""),
        pair("12.5", ""),
        pair("9223372036854771712\n", ""),
        pair("99999999999999999999999\n", ""),
        pair("nan inf\n", ""),
        pair("0 0", "0"),
        pair("150000 100000\n", ""),
    ]


def proc_stat():
    seeds = []
    for pid in ("self", "1"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                seeds.append(f.read())
        except OSError:
            pass
    fields = " ".join(str(i) for i in range(4, 53))
    seeds += [
        f"1234 (a) Z (b) S {fields}\n",
        f"7 (sky async) R {fields}",
        f"9 (x) Z {fields}",
        "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551615",
        "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551616",
        "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0",
        "no parenthesis",
        ")",
        ") S",
        "()  ",
        "1 (x)S 2",
        f"1 (x) S  {fields}",
    ]
    return seeds


def tail():
    # Provider order (from the end): n selector, n, chunk selector, chunk, size shift,
    # cancel flag, fail flag; the rest is the file.
    def seed(text, n, chunk, shift=0):
        return text.encode() + tail_bytes(
            1, in_range(n, 0), 1, in_range(chunk, 1), in_range(shift, -64), 0, 0
        )

    return [
        seed("line1\nline2\nline3\n", 2, 8),
        seed("a\nb\n", 2, 1),
        seed("a\nb", 2, 3),
        seed("only one line\n", 5, 4),
        seed("\n", 1, 1),
        seed("\n\n", 5, 2),
        seed("x\n\ny\n", 2, 16),
        seed("a\rb\n", 1, 2),
        seed("a\r\nb\r\n", 1, 3),
        seed("no newline at all", 3, 5),
        seed("grew\nafter\nopen\n", 2, 4, -5),
        seed("truncated\nwhile\nreading\n", 2, 4, 20),
        seed("", 1, 1),
    ]


def ignore():
    # The first byte picks the mode (see ignore_fuzzer.cpp): 0 an index (0x80 set: SHA-256
    # names), 1 a glob and a path, 2 an ignore-file line and a path.
    def entry(name, mode=0o100644, version=2, strip=0):
        fixed = bytes(24) + struct.pack(">I", mode) + bytes(12) + bytes(20)  # stat data, name
        if version == 4:
            varint = bytes([strip]) if strip < 0x80 else bytes([0x80 | (strip >> 7) - 1, strip & 0x7F])
            return fixed + struct.pack(">H", len(name)) + varint + name + b"\0"
        body = fixed + struct.pack(">H", len(name)) + name
        return body + bytes(8 - len(body) % 8)  # 1 to 8 NULs

    def index(version, entries):
        return b"\0" + b"DIRC" + struct.pack(">II", version, len(entries)) + b"".join(entries)

    return [
        index(2, [entry(b"README"), entry(b"src/a.c"), entry(b"src/lib/b.c"), entry(b"sub", 0o160000)]),
        index(3, [entry(b"dir/file")]),
        index(4, [entry(b"src/a.c", version=4), entry(b"b.c", version=4, strip=3)]),
        index(2, [entry(b"sparse/", 0o040000), entry(b"z")]),
        b"\0DIRC" + struct.pack(">II", 2, 5) + entry(b"cut-short")[:30],
        b"\x01" + b"a*b?/ab*",
        b"\x01" + b"**/a*?" + b"ab/ab",
        b"\x02" + b"*.log\n" + b"dir/x.log",
        b"\x02" + b"!/build/\n" + b"build",
        b"\x02" + b"a/**/b" + b"a/x/y/b",
        b"\x02" + b"[!a-z][[:digit:]]\\ " + b"B1 ",
    ]


def main():
    for target, make in [
        ("base36", base36),
        ("format_float", format_float),
        ("truncate_long_string", truncate),
        ("py_literals", py_literals),
        ("cgroup", cgroup),
        ("proc_stat", proc_stat),
        ("tail", tail),
        ("ignore", ignore),
    ]:
        write(target, make())
    return 0


if __name__ == "__main__":
    sys.exit(main())
