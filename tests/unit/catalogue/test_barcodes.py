"""Barcodes: digits only, check digit verified, every GTIN form compared as GTIN-14."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from pricegroups.catalogue.barcodes import check_digit, normalize_gtin, with_check_digit

COKE_EAN13 = "9300675024235"  # a real EAN-13 (check digit 5)


def test_a_real_ean13_is_padded_to_gtin14():
    assert normalize_gtin(COKE_EAN13) == ("0" + COKE_EAN13, None)


@pytest.mark.parametrize("form", [COKE_EAN13, "0" + COKE_EAN13, " 9300675 024235 ", "9300-675-024235"])
def test_forms_of_one_barcode_are_equal(form):
    assert normalize_gtin(form).gtin14 == "09300675024235"


def test_upc_a_and_its_ean13_form_are_one_barcode():
    upc = with_check_digit("04963406812")
    assert normalize_gtin(upc).gtin14 == normalize_gtin("0" + upc).gtin14 == "00" + upc


@pytest.mark.parametrize(("raw", "problem"), [
    ("9300675024236", "check digit"),
    ("93006750242", "digits"),
    ("930067502423A", "characters"),
    ("00000000000000", "zeros"),
    ("12345", "digits"),
    ("２３", "characters"),  # full-width digits are not ASCII digits
])
def test_unusable_barcodes_say_why(raw, problem):
    gtin = normalize_gtin(raw)
    assert gtin.gtin14 is None
    assert problem in gtin.problem


@pytest.mark.parametrize("body", ["200000012345", "021234567890"[:12], "041234567890"])
def test_restricted_circulation_numbers_are_not_identities(body):
    gtin = normalize_gtin(with_check_digit(body))
    assert gtin.gtin14 is None and "restricted" in gtin.problem


def test_empty_barcodes_are_simply_absent():
    assert normalize_gtin(None) == (None, None)
    assert normalize_gtin("  ") == (None, None)


@given(st.text(alphabet="13579", min_size=1, max_size=1).flatmap(
    lambda first: st.text(alphabet="0123456789", min_size=11, max_size=11).map(lambda rest: first + rest)))
def test_any_ean13_with_its_check_digit_is_accepted_and_one_wrong_digit_is_not(body):
    good = with_check_digit(body)
    assert normalize_gtin(good).gtin14 == good.zfill(14)
    wrong = body + str((check_digit(body) + 1) % 10)
    assert normalize_gtin(wrong).gtin14 is None
