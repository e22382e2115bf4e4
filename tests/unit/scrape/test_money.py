"""Money as sites write it parses to exact Decimals (property tests over many formats)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricegroups.errors import MoneyError
from pricegroups.scrape.money import (
    normalise_measure,
    parse_amount,
    parse_multibuy,
    parse_prefixed,
    parse_price_text,
    parse_unit_price,
)

cents = st.integers(min_value=1, max_value=99_999_999).map(lambda c: Decimal(c) / 100)
small_cents = st.integers(min_value=1, max_value=99_999).map(lambda c: Decimal(c) / 100)

AMOUNT_FORMATS = [
    "${:.2f}", "{:.2f}", "${:,.2f}", "$ {:,.2f}", "AUD {:.2f}", "{:.2f} AUD", "  ${:.2f}  ", "A${:.2f}",
    "\u00a0${:,.2f}\u00a0",
]


@given(cents, st.sampled_from(AMOUNT_FORMATS))
def test_every_amount_format_parses_to_the_exact_cent(amount, fmt):
    parsed = parse_amount(fmt.format(amount))
    assert parsed == amount
    assert isinstance(parsed, Decimal) and parsed.as_tuple().exponent == -2


@given(st.integers(min_value=1, max_value=999_999))
def test_whole_dollars_get_cents(dollars):
    assert parse_amount(f"${dollars}") == Decimal(dollars).quantize(Decimal("0.01"))


@given(st.integers(min_value=1, max_value=99), st.sampled_from(["{}c", "{}¢", "{} cents", "{}C"]))
def test_cents_amounts(c, fmt):
    assert parse_amount(fmt.format(c)) == Decimal(c) / 100


@given(st.integers(min_value=2, max_value=20), small_cents, st.sampled_from(
    ["{q} for ${t:.2f}", "{q} for {t:.2f}", "Any {q} for ${t:.2f}", "{q} FOR ${t:,.2f}", "{q}/${t:.2f}"]))
def test_multibuy_gives_quantity_total_and_the_price_of_one(qty, total, fmt):
    text = fmt.format(q=qty, t=total)
    offer = parse_multibuy(text)
    assert (offer.qty, offer.total) == (qty, total)
    assert offer.each == (total / qty).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    price = parse_price_text(text)
    assert price.price == offer.each and price.multibuy == offer


@given(cents, st.sampled_from(["was ${:.2f}", "Was: ${:,.2f}", "WAS {:.2f}", "${:.2f}"]))
def test_was_price(amount, fmt):
    assert parse_prefixed(fmt.format(amount), "was") == amount


@given(cents, st.sampled_from(["Save ${:.2f}", "save {:.2f}", "SAVE: ${:,.2f}"]))
def test_saving(amount, fmt):
    assert parse_prefixed(fmt.format(amount), "save") == amount


def test_a_saving_is_not_a_was_price():
    with pytest.raises(MoneyError):
        parse_prefixed("Save $0.70", "was")


@given(
    st.integers(min_value=1, max_value=9_999_999).map(lambda c: Decimal(c) / 10_000),
    st.sampled_from([
        ("{} / 100g", "100g"), ("{}/100mL", "100ml"), ("{} per 1kg", "1kg"), ("{} per 1L", "1l"),
        ("{} / kg", "1kg"), ("{} each", "each"), ("{}/ea", "each"), ("{} per 100 g", "100g"),
    ]),
)
def test_unit_price_amount_and_measure(amount, case):
    fmt, measure = case
    unit = parse_unit_price(fmt.format("$" + format(amount, "f")))
    assert unit.amount == amount and unit.measure == measure


@pytest.mark.parametrize("text", ["", "abc", "$", "$3.505", "3.50.1", "$-3.50", "1.234,56", "Save", "free", "$3.50!"])
def test_unreadable_amounts_raise(text):
    with pytest.raises(MoneyError):
        parse_amount(text)


@pytest.mark.parametrize("text", ["1 for $5.00", "0 for $5"])
def test_a_multibuy_needs_two_or_more(text):
    with pytest.raises(MoneyError):
        parse_multibuy(text)


def test_plain_price_is_not_a_multibuy():
    assert parse_multibuy("$3.50") is None
    assert parse_price_text("$3.50").multibuy is None


def test_decimal_comma():
    assert parse_amount("3,50") == Decimal("3.50")
    assert parse_amount("1,234") == Decimal("1234.00")


@pytest.mark.parametrize("text,expected", [("100 g", "100g"), ("Litre", "1l"), ("ea", "each"), ("1.5kg", "1.5kg")])
def test_measures_are_normalised(text, expected):
    assert normalise_measure(text) == expected


@given(st.text(alphabet="abcxyz!?#% ", max_size=12))
def test_text_without_digits_never_parses(text):
    with pytest.raises(MoneyError):
        parse_amount(text)
