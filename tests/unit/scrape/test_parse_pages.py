"""The parse engine on saved demo pages: every layout parsed item for item against the truth."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pricegroups.errors import ParseError
from pricegroups.scrape.fields import ITEM_FIELDS
from pricegroups.scrape.parse import parse_locator, parse_page
from pricegroups.scrape.profile import load_profile_file

PAGES = Path(__file__).parent / "pages"
BASE = "http://demo.test"
LAYOUTS = ["grid", "table", "jsonld"]
FIRST_URL = {
    "grid": BASE + "/freshmart/store/{store}/products",
    "table": BASE + "/valueway/catalogue/{store}",
    "jsonld": BASE + "/greengrocer/shop/{store}",
}
LAST_URL = {
    "grid": BASE + "/freshmart/store/{store}/products?page={pages}",
    "table": BASE + "/valueway/catalogue/{store}?offset={offset}",
    "jsonld": BASE + "/greengrocer/shop/{store}?p={pages}",
}


def meta(layout: str) -> dict:
    return json.loads((PAGES / f"{layout}_meta.json").read_text())


def page_bytes(layout: str, name: str) -> bytes:
    return (PAGES / f"{layout}_{name}.html").read_bytes()


MONEY_FIELDS = ("price", "was_price", "unit_price", "multibuy_price")


def as_dicts(items) -> list[dict]:
    return [dict(zip(ITEM_FIELDS, item.as_row())) for item in items]


def load_expected(layout: str, page: str) -> list[dict]:
    """The saved truth, amounts as Decimals (Decimal('0.47') == Decimal('0.4700'))."""
    rows = json.loads((PAGES / f"{layout}_{page}.json").read_text())
    return [{k: (Decimal(v) if k in MONEY_FIELDS and v is not None else v) for k, v in r.items()} for r in rows]


def url(layout: str, which: dict[str, str]) -> str:
    m = meta(layout)
    return which[layout].format(store=m["store"], pages=m["pages"], offset=(m["pages"] - 1) * m["page_size"])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("page", ["page1", "page_last"])
def test_each_layout_parses_exactly_the_items_the_site_shows(layout, page):
    expected = load_expected(layout, page)
    page_url = url(layout, FIRST_URL if page == "page1" else LAST_URL)
    result = parse_page(page_bytes(layout, page), page_url, load_profile_file(layout))
    assert result.dropped == ()
    assert as_dicts(result.items) == expected


@pytest.mark.parametrize("layout", LAYOUTS)
def test_first_page_points_to_the_second(layout):
    m = meta(layout)
    result = parse_page(page_bytes(layout, "page1"), url(layout, FIRST_URL), load_profile_file(layout))
    second = {
        "grid": f"{BASE}/freshmart/store/{m['store']}/products?page=2",
        "table": f"{BASE}/valueway/catalogue/{m['store']}?offset={m['page_size']}",
        "jsonld": f"{BASE}/greengrocer/shop/{m['store']}?p=2",
    }[layout]
    assert result.next_url == second


@pytest.mark.parametrize("layout", LAYOUTS)
def test_last_page_has_no_next_page(layout):
    result = parse_page(page_bytes(layout, "page_last"), url(layout, LAST_URL), load_profile_file(layout))
    assert result.items and result.next_url is None


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_cut_off_page_is_a_parse_error(layout):
    with pytest.raises(ParseError):
        parse_page(page_bytes(layout, "malformed"), url(layout, FIRST_URL), load_profile_file(layout))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_closed_store_page_says_closed(layout):
    result = parse_page(page_bytes(layout, "closed"), url(layout, FIRST_URL), load_profile_file(layout))
    assert result.closed and result.items == () and result.next_url is None


@pytest.mark.parametrize("layout", LAYOUTS)
def test_locator_lists_codes_names_addresses_and_absolute_catalogue_links(layout):
    chain = {"grid": "freshmart", "table": "valueway", "jsonld": "greengrocer"}[layout]
    stores = parse_locator(page_bytes(layout, "locator"), f"{BASE}/{chain}/x", load_profile_file(layout))
    assert len(stores) == 5
    first = stores[0]
    assert first.code == meta(layout)["store"]
    assert first.name and first.address
    assert first.catalogue_url == url(layout, FIRST_URL)


def test_a_page_that_is_not_a_catalogue_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_page(b"<html><body><p>Maintenance</p></body></html>", BASE + "/x", load_profile_file("grid"))


def test_an_empty_body_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_page(b"  ", BASE + "/x", load_profile_file("table"))
