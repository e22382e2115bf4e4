"""Site profiles are validated when compiled; hooks and JSON-LD paths do what the docs say."""

from __future__ import annotations

import copy
import re
from decimal import Decimal

import pytest

from pricegroups.errors import ConfigError, ParseError, TooManyDropped
from pricegroups.scrape.parse import parse_page
from pricegroups.scrape.profile import compile_profile, load_profile_file, parse_path

TILE_PROFILE = {
    "format": 1,
    "layout": "html",
    "catalogue": {"url_template": "/s/{store_code}", "pagination": {"kind": "none"}},
    "items": {
        "xpath": "//li[@class='p']",
        "fields": {"sku": "@id", "name": "b", "price": "i", "was_price": "s", "barcode": "@data-ean",
                   "saving": "u", "unit_price": "em"},
    },
}


def page(*tiles: str) -> bytes:
    return ("<html><body><ul>" + "".join(tiles) + "</ul></body></html>").encode()


@pytest.mark.parametrize("name", ["grid", "table", "jsonld"])
def test_shipped_profiles_compile(name):
    assert compile_profile(load_profile_file(name)).fields


@pytest.mark.parametrize("breakage,message", [
    (lambda p: p.update(layout="pdf"), "layout"),
    (lambda p: p["catalogue"].update(url_template="/s/all"), "store_code"),
    (lambda p: p["items"]["fields"].pop("price"), "lacks price"),
    (lambda p: p["items"]["fields"].update(colour="@c"), "unknown item field"),
    (lambda p: p["items"]["fields"].update(name={"xpath": "b", "parser": "nope"}), "unknown parser"),
    (lambda p: p["items"].update(xpath="//li[@class="), "invalid XPath"),
    (lambda p: p["catalogue"].update(pagination={"kind": "scroll"}), "pagination kind"),
    (lambda p: p.update(hook="os"), "hook"),
    (lambda p: p.update(format=2), "format"),
])
def test_a_broken_profile_is_refused_with_a_reason(breakage, message):
    profile = copy.deepcopy(TILE_PROFILE)
    breakage(profile)
    with pytest.raises(ConfigError, match=message):
        compile_profile(profile)


def test_items_failing_validation_are_dropped_with_reasons():
    result = parse_page(page(
        '<li class="p" id="1"><b>Milk</b><i>$2.00</i></li>',
        '<li class="p" id="2"><b>Bread</b><i>free</i></li>',
        '<li class="p" id="3"><b>Eggs</b><i>$5.00</i><s>$4.00</s></li>',
        '<li class="p" id="4"><b>Tea</b><i>$3.00</i><s>was $3.50</s></li>',
        '<li class="p" id="5"><i>$3.00</i></li>',
        '<li class="p" id="6"><b>Jam</b><i>$4.00</i></li>',
        '<li class="p" id="7"><b>Rice</b><i>$1.00</i></li>',
    ), "http://x/s/1", TILE_PROFILE)
    assert [i.sku for i in result.items] == ["1", "4", "6", "7"]
    reasons = {d.sku: d.reason for d in result.dropped}
    assert "not an amount" in reasons["2"] and "not above price" in reasons["3"] and "name" in reasons["5"]
    assert result.items[1].was_price == Decimal("3.50") and result.items[1].on_special


def test_most_items_failing_is_a_parse_error_not_a_quiet_loss():
    with pytest.raises(ParseError, match="failed validation"):
        parse_page(page(*(f'<li class="p" id="{i}"><b>X</b><i>?</i></li>' for i in range(5))),
                   "http://x/s/1", TILE_PROFILE)


def test_a_bad_barcode_costs_the_item_its_barcode_only():
    result = parse_page(page('<li class="p" id="1" data-ean="9312345000013"><b>Milk</b><i>$2.00</i></li>',
                             '<li class="p" id="2" data-ean="9312345000012"><b>Milk</b><i>$2.00</i></li>'),
                        "http://x/s/1", TILE_PROFILE)
    assert [(i.sku, i.barcode) for i in result.items] == [("1", None), ("2", "09312345000012")]
    assert [(d.sku, d.kept) for d in result.dropped] == [("1", True)]


def test_a_saving_gives_the_was_price_and_a_unit_price_its_measure():
    result = parse_page(page('<li class="p" id="1"><b>Oil</b><i>$3.50</i><u>Save $0.70</u>'
                             '<em>$0.18 / 100mL</em></li>'), "http://x/s/1", TILE_PROFILE)
    item = result.items[0]
    assert (item.was_price, item.on_special, item.unit_price, item.unit_measure) == (
        Decimal("4.20"), True, Decimal("0.18"), "100ml")


def test_a_fix_item_hook_adjusts_and_skips_items():
    profile = {**TILE_PROFILE, "hook": "pricegroups.scrape.hooks.brand_in_name"}
    result = parse_page(page('<li class="p" id="1"><b>Acme - Rolled Oats</b><i>$2.00</i></li>',
                             '<li class="p" id="AD-9"><b>Buy a car</b><i>$9.00</i></li>'),
                        "http://x/s/1", profile)
    assert [(i.sku, i.brand, i.name) for i in result.items] == [("1", "Acme", "Rolled Oats")]
    assert result.dropped == ()


def test_jsonld_paths_pick_list_elements_by_field():
    steps = parse_path("offers.priceSpecification[priceType=https://schema.org/StrikethroughPrice].price|x", "t")
    assert [s.key for s in steps[0]] == ["offers", "priceSpecification", "price"]
    assert steps[0][1].where == "priceType" and steps[0][1].equals == "https://schema.org/StrikethroughPrice"
    assert [s.key for s in steps[1]] == ["x"]


def test_page_param_pagination_stops_on_an_empty_page():
    profile = copy.deepcopy(TILE_PROFILE)
    profile["catalogue"]["pagination"] = {"kind": "page_param", "param": "pg"}
    full = parse_page(page('<li class="p" id="1"><b>Milk</b><i>$2.00</i></li>'), "http://x/s/1?pg=4", profile)
    assert full.next_url == "http://x/s/1?pg=5"
    empty = parse_page(page(), "http://x/s/1?pg=5", profile)
    assert empty.items == () and empty.next_url is None


def test_a_page_without_a_declared_charset_is_read_as_utf8():
    result = parse_page(page('<li class="p" id="1"><b>Café Crème Brûlée</b><i>$2.00</i></li>'),
                        "http://x/s/1", TILE_PROFILE)
    assert result.items[0].name == "Café Crème Brûlée"


@pytest.mark.parametrize("breakage,message", [
    (lambda p: p["items"]["fields"].update(price={"xpath": 3}),
     "profile key 'items.fields.price.xpath': expected a non-empty XPath string, got 3"),
    (lambda p: p["items"]["fields"].update(price={"selector": "i"}),
     "profile key 'items.fields.price.selector': unknown key; expected one of xpath, parser"),
    (lambda p: p["catalogue"].update(paginaton={"kind": "none"}),
     "profile key 'catalogue.paginaton': unknown key; expected one of url_template, pagination"),
    (lambda p: p.update(catalogue="/s/{store_code}"), "profile key 'catalogue': expected an object, got '/s/"),
    (lambda p: p["catalogue"].update(max_pages="10"),
     "profile key 'catalogue.max_pages': expected an integer of at least 1, got '10'"),
    (lambda p: p["items"].update(price_ceiling="lots"), "profile key 'items.price_ceiling': expected a number"),
    (lambda p: p["items"].update(max_drop_share=2), "profile key 'items.max_drop_share': expected a share"),
    (lambda p: p.update(locator={"path": "/stores", "code": "@id"}),
     "profile key 'locator.stores': expected a non-empty XPath string (required)"),
    (lambda p: p["catalogue"].update(pagination={"kind": "page_param", "start": True}),
     "profile key 'catalogue.pagination.start': expected an integer of at least 0, got True"),
    (lambda p: p["catalogue"].update(pagination={"kind": "none", "xpath": "//a"}),
     "profile key 'catalogue.pagination.xpath': unknown key"),
    (lambda p: p.pop("items"), "profile key 'items': expected an object"),
])
def test_a_profile_error_names_the_key_and_what_was_expected(breakage, message):
    profile = copy.deepcopy(TILE_PROFILE)
    breakage(profile)
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        compile_profile(profile)


def test_keys_starting_with_an_underscore_are_notes():
    profile = copy.deepcopy(TILE_PROFILE)
    profile["_note"] = "written for the 2026 site"
    profile["items"]["fields"]["_price_was"] = "the old selector"
    assert sorted(r.name for r in compile_profile(profile).fields) == sorted(TILE_PROFILE["items"]["fields"])


def test_a_page_that_drops_most_items_carries_every_drop_for_inspection():
    with pytest.raises(TooManyDropped) as caught:
        parse_page(page('<li class="p" id="1"><b>Milk</b><i>$2.00</i></li>',
                        *(f'<li class="p" id="{i}"><b>X</b><i>?</i></li>' for i in range(2, 6))),
                   "http://x/s/1", TILE_PROFILE)
    assert [i.sku for i in caught.value.items] == ["1"]
    assert [d.sku for d in caught.value.dropped] == ["2", "3", "4", "5"]
