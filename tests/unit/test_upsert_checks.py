"""The per-row checks that run before COPY: a fast path for good rows, a reason for bad ones."""

from datetime import datetime, timezone
from decimal import Decimal

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricegroups.upsert import MAX_EXPONENT, PriceRow, check_row

T = datetime(2026, 11, 2, tzinfo=timezone.utc)


def test_a_good_row_passes_unchanged():
    row = PriceRow(1, 2, Decimal("3.50"), T, Decimal("4.00"), Decimal("0.35"), "100g", True, "Save $0.50")
    assert check_row(row) == (row, None)


def test_integer_amounts_become_decimals():
    clean, reason = check_row(PriceRow(1, 2, 3, T, 4))
    assert reason is None and clean[2] == Decimal(3) and type(clean[4]) is Decimal


@given(
    product_id=st.one_of(st.integers(), st.text(), st.none(), st.floats()),
    store_id=st.one_of(st.integers(), st.none()),
    price=st.one_of(st.decimals(allow_nan=True), st.floats(), st.integers(), st.text(), st.none()),
    on_special=st.one_of(st.booleans(), st.integers(), st.none()),
)
def test_any_row_either_passes_with_copyable_types_or_has_a_reason(product_id, store_id, price, on_special):
    clean, reason = check_row((product_id, store_id, price, T, None, None, None, on_special, None))
    assert (clean is None) != (reason is None)
    if clean is not None:
        assert type(clean[0]) is int and 0 < clean[0] < 2**63
        assert type(clean[1]) is int and 0 < clean[1] < 2**31
        assert type(clean[2]) is Decimal and type(clean[7]) is bool


@pytest.mark.parametrize("row", [None, 5, "row", (1, 2), PriceRow(1, 2, Decimal("1"), T)[:8]])
def test_malformed_rows_say_what_was_expected(row):
    assert check_row(row)[1].startswith("not a price row")


# what PostgreSQL's numeric input reads: amounts are sent as their text
NUMERIC_TEXT = re.compile(r"NaN|-?Infinity|-?\d+(\.\d+)?(E[+-](?P<exponent>\d+))?")


@given(amount=st.one_of(st.decimals(), st.integers()), slot=st.sampled_from([2, 4, 5]))
def test_an_accepted_amount_has_a_text_numeric_input_reads(amount, slot):
    row = [1, 2, Decimal("1.00"), T, None, None, None, False, None]
    row[slot] = amount
    clean, reason = check_row(tuple(row))
    if clean is not None:
        match = NUMERIC_TEXT.fullmatch(str(clean[slot]))
        assert match and int(match["exponent"] or 0) <= MAX_EXPONENT
    else:
        assert "out of range" in reason
