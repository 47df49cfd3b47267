"""The pure string helpers: SkyPilot's exact results (examples from the reference), and
properties checked against independent formulations on generated inputs."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sky_async._system.strings import base36_encode, format_float, truncate_long_string

# --- base36_encode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_str", "expected"),
    [("ff", "73"), ("0x10", "g"), ("100", "74"), ("23", "z"), ("24", "10"), ("0", "0"), ("de_ad", "17zh")],
)
def test_base36_encode_matches_skypilot_examples(hex_str: str, expected: str) -> None:
    assert base36_encode(hex_str) == expected


def test_base36_encode_accepts_what_int_accepts() -> None:
    assert base36_encode("  FF\n") == base36_encode("0XfF") == base36_encode("+ff") == "73"


def test_base36_encode_handles_values_wider_than_128_bits() -> None:
    sha256_hex = "f" * 64
    assert int(base36_encode(sha256_hex), 36) == int(sha256_hex, 16)


@pytest.mark.parametrize("bad", ["", "0x", "xyz", "1 2", "_1", "1__2", "g"])
def test_base36_encode_rejects_invalid_hex_with_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        base36_encode(bad)


def test_base36_encode_rejects_negative_values_instead_of_looping_forever() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        base36_encode("-ff")


@pytest.mark.parametrize("bad", [255, None, 2.5])
def test_base36_encode_rejects_non_strings_with_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        base36_encode(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=2**300))
def test_base36_encode_round_trips_and_is_canonical(value: int) -> None:
    encoded = base36_encode(format(value, "x"))
    assert int(encoded, 36) == value
    assert set(encoded) <= set("0123456789abcdefghijklmnopqrstuvwxyz")
    assert encoded == "0" or not encoded.startswith("0")


# --- format_float ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((4,), "4"),
        ((True,), "True"),
        ((2.0,), "2"),
        ((-0.0,), "-0"),
        ((1e20,), "100000000000000000000"),
        ((2.25,), "2.2"),
        ((2.35,), "2.4"),
        ((2.675, 2), "2.67"),
        ((2.5, 0), "2"),
        ((3.5, 0), "4"),
        ((0.96,), "1.0"),
        ((9.999, 2), "10.00"),
        ((1e-7, 2), "0.00"),
        ((-1e-7, 2), "-0.00"),
        ((0.5,), "0.5"),
        ((1234567.89, 2), "1234567.89"),
        ((math.inf,), "inf"),
        ((-math.inf,), "-inf"),
        ((math.nan,), "nan"),
        ((7, -3), "7"),
        ((7.0, -3), "7"),
    ],
)
def test_format_float_matches_skypilot_examples(args: tuple[float, ...], expected: str) -> None:
    assert format_float(*args) == expected


def test_format_float_rejects_objects_without_is_integer() -> None:
    with pytest.raises(AttributeError):
        format_float("1.5")  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", [-1, 1.5])
def test_format_float_rejects_bad_precision_for_non_integral_floats(precision: object) -> None:
    with pytest.raises(ValueError):
        format_float(1.25, precision)  # type: ignore[arg-type]


finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@given(finite_floats, st.integers(min_value=0, max_value=12))
@example(2.675, 2)
@example(0.5, 0)
def test_format_float_rounds_the_exact_binary_value_half_to_even(num: float, precision: int) -> None:
    result = format_float(num, precision)
    with localcontext() as context:
        context.prec = 1000  # room for every digit of a double
        _check_fixed_point(result, num, precision)


def _check_fixed_point(result: str, num: float, precision: int) -> None:
    if num.is_integer():
        assert result == str(Decimal(num).quantize(Decimal(1)))
        assert "." not in result and "e" not in result.lower()
    else:
        quantum = Decimal(1).scaleb(-precision)
        assert result == format(Decimal(num).quantize(quantum, rounding=ROUND_HALF_EVEN), "f")


# --- truncate_long_string ----------------------------------------------------------------------

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
ZONE = "us-west-2-availability-zone-1"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("short string", 15), "short string"),
        (("this is a very long string that needs truncation", 20), "this is a very long ..."),
        ((ZONE, 20, True), "us-west-2...y-zone-1"),
        ((ZONE, 15, True), "us-wes...zone-1"),
        ((ZONE, 3, True), "..."),
        (("", 10), ""),
        (("abcde", 5, True), "abcde"),
        (("abcde", 4, True), "a..."),
        ((ALPHABET, 10, True), "abcd...xyz"),
        ((ALPHABET, 11, True), "abcd...wxyz"),
        (("aa bb cc dd ee ff", 7), "aa bb cc..."),
        (
            ("one two three four five six seven eight nine ten eleven", 35),
            "one two three four five six seven eight...",
        ),
        (("abc", 0), "..."),
        (("abc", -1), "ab..."),
        (("abc", -1, True), "..."),
        (("élan vital ünïcode", 6), "élan v..."),  # code points, not bytes
    ],
)
def test_truncate_long_string_matches_skypilot_examples(args: tuple[object, ...], expected: str) -> None:
    assert truncate_long_string(*args) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, 12345, b"bytes"])
def test_truncate_long_string_rejects_non_strings(bad: object) -> None:
    with pytest.raises(TypeError):
        truncate_long_string(bad, 2)  # type: ignore[arg-type]


words = st.text(alphabet=st.sampled_from("ab é\t"), max_size=60)


@given(words, st.integers(min_value=0, max_value=70))
def test_truncate_end_mode_keeps_a_prefix_of_at_least_max_length(s: str, max_length: int) -> None:
    result = truncate_long_string(s, max_length)
    if len(s) <= max_length:
        assert result == s
        return
    assert result.endswith("...")
    kept = result[:-3]
    assert s.startswith(kept)
    assert len(kept) >= max_length


@given(words, st.integers(min_value=4, max_value=70))
def test_truncate_middle_mode_is_exactly_max_length(s: str, max_length: int) -> None:
    result = truncate_long_string(s, max_length, truncate_middle=True)
    if len(s) <= max_length:
        assert result == s
        return
    assert len(result) == max_length
    keep = max_length - 3
    assert result == s[: (keep + 1) // 2] + "..." + s[len(s) - keep // 2 :]
