"""Tests of rewards.literals: exact, bounded parsing of plain number literals."""

from fractions import Fraction

import pytest

from rewards.literals import MAX_LITERAL_DIGITS, is_number_literal, literals_equal, parse_number_literal


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", Fraction(42)),
        ("-42", Fraction(-42)),
        ("+7", Fraction(7)),
        ("3.", Fraction(3)),
        (".5", Fraction(1, 2)),
        ("-0.125", Fraction(-1, 8)),
        ("007", Fraction(7)),
        ("7/2", Fraction(7, 2)),
        ("- 7 / 2", Fraction(-7, 2)),
        ("14/4", Fraction(7, 2)),
        (r"\frac{7}{2}", Fraction(7, 2)),
        (r"\dfrac{7}{2}", Fraction(7, 2)),
        (r"\tfrac{ 7 }{ 2 }", Fraction(7, 2)),
        (r"\cfrac{7}{2}", Fraction(7, 2)),
        (r"\frac72", Fraction(7, 2)),
        (r"-\frac{1}{3}", Fraction(-1, 3)),
        (" 12 ", Fraction(12)),
        ("-0", Fraction(0)),
    ],
)
def test_parse_number_literal(text, value):
    assert is_number_literal(text)
    assert parse_number_literal(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "x", "2x", "1e5", "1,000", "2^3", "1/2/3", "--1", r"\frac{1}{2}3", r"\frac123", r"\frac{-1}{2}",
     "\u0664\u0662", "\uff14\uff12", "4\u00b2", "0x10", "1_000", "nan", "inf", "1.2.3", ".", "/2", None, 42],
)
def test_not_a_literal(text):
    assert not is_number_literal(text)
    assert parse_number_literal(text) is None


def test_zero_denominator_and_digit_bound():
    assert is_number_literal("1/0") and parse_number_literal("1/0") is None
    assert parse_number_literal(r"\frac{0}{0}") is None
    assert parse_number_literal("9" * MAX_LITERAL_DIGITS) == 10**MAX_LITERAL_DIGITS - 1
    assert parse_number_literal("9" * (MAX_LITERAL_DIGITS + 1)) is None
    assert parse_number_literal("0." + "0" * MAX_LITERAL_DIGITS + "1") is None
    assert parse_number_literal("1" * 1_000_000) is None  # rejected by length before any regex work


def test_literals_equal():
    assert literals_equal("0.5", r"\frac{1}{2}") is True
    assert literals_equal("-0", "0") is True
    assert literals_equal("-0", "0") is True
    assert literals_equal("1/0", "1") is None
    assert literals_equal("x", "1") is None


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("1/3", "0.333333", True),  # six places: a repeating fraction written out
        ("1/3", "0.333333333333333333", True),
        (r"\frac{1}{12}", "0.0833333333333333", True),
        ("2/3", "0.666667", True),  # rounded
        ("2/3", "0.666666", True),  # cut
        ("1/3", "0.33333", False),  # five places are not enough
        ("1/3", "0.333334", False),  # off in the last place
        ("1/8", "0.1250001", False),  # 1/8 terminates: only 0.125 is 1/8
        ("1000000.5", "1000000.499999", False),
    ],
)
def test_repeating_fractions_match_long_decimals_only(a, b, equal):
    assert literals_equal(a, b) is equal
    assert literals_equal(b, a) is equal
