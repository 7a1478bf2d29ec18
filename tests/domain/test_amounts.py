from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.amounts import AMOUNT_MAX, UNITS_PER_DEAL, format_amount, parse_amount
from domain.errors import InvalidAmount


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("0.1", 10_000_000),
        ("1000", 1000 * UNITS_PER_DEAL),
        ("0.00000001", 1),
        ("1.5", 150_000_000),
        ("0.10000000", 10_000_000),
        ("1000000000", AMOUNT_MAX),
    ],
)
def test_parses_exact_decimal_strings_into_base_units(text, units):
    assert parse_amount(text) == units


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0.000000001", "9 fractional digits"),
        ("0.100000000", "9 fractional digits"),
        ("0", "greater than zero"),
        ("0.00000000", "greater than zero"),
        ("-1", "negative"),
        ("-0.1", "negative"),
        ("+1", "sign"),
        ("NaN", "NaN"),
        ("nan", "NaN"),
        ("Infinity", "Infinity"),
        ("-inf", "NaN or Infinity"),
        ("1e3", "exponent"),
        ("1E-8", "exponent"),
        ("", "empty"),
        (" 1", "whitespace"),
        ("1 ", "whitespace"),
        ("\t1", "whitespace"),
        ("01", "leading zeros"),
        ("1.", "plain decimal"),
        (".5", "plain decimal"),
        ("1,5", "plain decimal"),
        ("0x10", "plain decimal"),
        ("１", "plain decimal"),
        ("1000000000.00000001", "single-amount limit"),
        ("99999999999999999999", "single-amount limit"),
        ("1" * 40, "longer than"),
        (1, "JSON number"),
        (0.1, "JSON number"),
        (True, "JSON number"),
        (None, "JSON number"),
        (Decimal("1"), "JSON number"),
    ],
)
def test_rejects_what_it_cannot_represent_exactly_and_says_why(value, reason):
    with pytest.raises(InvalidAmount, match=reason):
        parse_amount(value)


def test_zero_is_allowed_only_where_asked_for():
    assert parse_amount("0", allow_zero=True) == 0
    with pytest.raises(InvalidAmount):
        parse_amount("0")


@pytest.mark.parametrize(
    ("units", "text"),
    [(10_000_000, "0.1"), (1, "0.00000001"), (100 * UNITS_PER_DEAL, "100"), (0, "0"),
     (-150_000_000, "-1.5")],
)
def test_formats_the_shortest_exact_string(units, text):
    assert format_amount(units) == text


@given(st.integers(min_value=1, max_value=AMOUNT_MAX))
def test_format_then_parse_is_the_identity(units):
    assert parse_amount(format_amount(units)) == units


@given(st.integers(min_value=1, max_value=AMOUNT_MAX))
def test_formatted_amount_equals_the_exact_decimal_value(units):
    assert Decimal(format_amount(units)) == Decimal(units) / UNITS_PER_DEAL

