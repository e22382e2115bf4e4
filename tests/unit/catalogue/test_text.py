"""Brand and name keys: one key for the variants of one brand or product name."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from pricegroups.catalogue.text import brand_key, canonical_brand_key, name_key


@pytest.mark.parametrize("variants", [
    ["Coca-Cola", "Coca Cola", "COCA-COLA", "coca cola", "CocaCola", "Coca-Cola™", "Coca‑Cola Pty Ltd"],
    ["Smith's", "Smiths", "SMITH’S", "Smith`s"],
    ["Arnott's Pty Ltd", "Arnotts", "ARNOTT'S PTY. LTD.", "Arnott's Limited"],
    ["Nestlé", "Nestle", "NESTLÉ"],
    ["Marks & Spencer", "Marks and Spencer", "MARKS + SPENCER"],
    ["Ben & Jerry's", "Ben and Jerrys"],
    ["The Natural Confectionery Co.", "Natural Confectionery Co", "natural confectionery company"],
    ["Müller", "Muller", "MÜLLER"],
])
def test_brand_variants_share_one_key(variants):
    assert len({brand_key(v) for v in variants}) == 1


def test_different_brands_keep_different_keys():
    assert brand_key("Smith's") != brand_key("Smith & Co's")
    assert brand_key("Coles") != brand_key("Cole")


def test_a_brand_that_is_only_a_suffix_or_symbols():
    assert brand_key("Ltd") == "ltd"
    assert brand_key("🥤") is None
    assert brand_key("") is None and brand_key(None) is None
    assert brand_key("明治") == "明治"


def test_aliases_are_followed_and_cycles_stop():
    aliases = {"coke": "cocacola", "a": "b", "b": "a"}
    assert canonical_brand_key("coke", aliases) == "cocacola"
    assert canonical_brand_key("cocacola", aliases) == "cocacola"
    assert canonical_brand_key("a", aliases) in ("a", "b")


def test_name_key_drops_brand_size_punctuation_and_word_order():
    a = name_key("Coca-Cola Classic Soft Drink 1.25L", "Coca-Cola")
    b = name_key("Soft Drink, Classic", "COCA COLA")
    assert a == b == "classic drink soft"


def test_a_name_that_is_only_the_brand_keeps_it():
    assert name_key("Coca-Cola", "Coca-Cola") == "coca cola"


def test_names_of_symbols_key_on_themselves():
    assert name_key("🍌🍌") == "🍌🍌"


NO_LONE_MARKS = st.characters(blacklist_categories=("Mn", "Cs"))  # a lone combining mark folds away


@given(st.text(NO_LONE_MARKS, min_size=1), st.one_of(st.none(), st.text()))
def test_keys_never_raise_and_are_case_blind(name, brand):
    assert name_key(name, brand) == name_key(name.upper(), brand) or name.upper().casefold() != name.casefold()
    key = brand_key(brand)
    assert key is None or key == key.casefold() or key.casefold() != key


@pytest.mark.parametrize(("a", "b"), [
    ("Avocado Hass each", "Hass Avocado"),
    ("Bananas Cavendish per kg", "Cavendish Bananas"),
    ("Pepsi Max 24 x 375mL", "Max Pepsi"),
    ("Eggs Free Range 12 Pack 700g", "Free Range Eggs"),
])
def test_sizes_in_names_do_not_change_the_name_key(a, b):
    assert name_key(a) == name_key(b)
