"""The json layout: items, markers, counts and every pagination kind read by JMESPath, on saved documents."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from pricegroups.errors import ParseError, TooManyDropped
from pricegroups.scrape.parse import first_page_url, parse_locator, parse_locator_page, parse_page
from pricegroups.scrape.profile import compile_profile

URL = "https://shop.example/api/products?limit=2"


def profile(pagination: dict | None = None, **items: Any) -> dict:
    return {
        "layout": "json",
        "request": {"headers": {"X-Store": "{store_code}"}},
        "catalogue": {"url_template": "/api/products",
                      "pagination": pagination or {"kind": "none"},
                      "page_marker": "type(data.items) == 'array'",
                      "closed_marker": "data.store.closed"},
        "items": {"path": "data.items", "count_path": "data.count",
                  "fields": {"sku": "id", "name": "title", "brand": "brand.name",
                             "price": {"path": "price.amount", "parser": "cents"},
                             "was_price": {"path": "price.was", "parser": "cents"},
                             "unit_price": {"path": "price.unit.amount", "parser": "cents"},
                             "unit_measure": {"path": "price.unit.per", "parser": "measure"},
                             "promo_text": {"path": "offer", "parser": "promo"},
                             "barcode": "gtin"},
                  **items},
    }


def product(sku: str, cents: Any = 350, **extra: Any) -> dict:
    return {"id": sku, "title": f"Milk {sku}", "brand": {"name": "Pauls"}, "price": {"amount": cents}, **extra}


def page(items: list, **top: Any) -> bytes:
    data = {"data": {"items": items, "count": len(items), "store": {"closed": False}}, **top}
    return json.dumps(data).encode()


def test_an_api_page_is_read_field_by_field_with_money_in_cents():
    body = page([
        product("1", 350, gtin="9300000000019"),
        product("2", 1234, price={"amount": 500, "was": 650, "unit": {"amount": 125, "per": "100mL"}},
                offer="2 for $9.00"),
    ])
    result = parse_page(body, URL, profile())
    first, second = result.items
    assert (first.sku, first.name, first.brand, first.price, first.barcode) == (
        "1", "Milk 1", "Pauls", Decimal("3.50"), "09300000000019")
    assert (second.price, second.was_price, second.unit_price, second.unit_measure) == (
        Decimal("5.00"), Decimal("6.50"), Decimal("1.25"), "100ml")
    assert (second.multibuy_qty, second.multibuy_price, second.on_special) == (2, Decimal("9.00"), True)
    assert result.next_url is None and result.dropped == () and result.note is None


def test_app_state_embedded_in_a_script_element_is_read_like_an_api():
    state = {"props": {"pageProps": {"data": {"items": [product("7", 199)], "count": 1}}}}
    html = ("<html><head><script id='__NEXT_DATA__' type='application/json'>"
            f"{json.dumps(state)}</script></head><body><div id='__next'></div></body></html>").encode()
    spec = profile(script="//script[@id='__NEXT_DATA__']", path="props.pageProps.data.items",
                   count_path="props.pageProps.data.count")
    spec["catalogue"]["page_marker"] = "props.pageProps.data != null"
    spec["catalogue"].pop("closed_marker")
    result = parse_page(html, "https://shop.example/shop", spec)
    assert [(i.sku, i.price) for i in result.items] == [("7", Decimal("1.99"))]


def test_a_bad_item_is_dropped_with_its_reason_and_raw_values():
    body = page([product("1"), product("2"), product("3", "3.5")])
    result = parse_page(body, URL, profile())
    assert [i.sku for i in result.items] == ["1", "2"]
    (drop,) = result.dropped
    assert drop.sku == "3" and "not a whole number of minor units" in drop.reason and drop.raw["price"] == "3.5"


def test_a_page_whose_items_mostly_fail_is_a_parse_error():
    with pytest.raises(TooManyDropped, match="2 of 3 items failed"):
        parse_page(page([product("1"), product("2", -5), product("3", None)]), URL, profile())


def test_a_closed_store_and_a_page_without_its_marker_are_told_apart():
    closed = json.dumps({"data": {"store": {"closed": True}, "items": []}}).encode()
    assert parse_page(closed, URL, profile()).closed
    with pytest.raises(ParseError, match="page marker missing"):
        parse_page(json.dumps({"data": {"results": []}}).encode(), URL, profile())


def test_a_page_that_says_it_holds_more_items_than_it_does_was_cut_off():
    body = json.dumps({"data": {"items": [product("1")], "count": 2}}).encode()
    with pytest.raises(ParseError, match="holds 2 items but 1 were found"):
        parse_page(body, URL, profile())


@pytest.mark.parametrize("body", [b"<html><body>Maintenance</body></html>", b'{"data": {"items": [', b""])
def test_a_response_that_is_not_json_is_refused_naming_the_url(body):
    with pytest.raises(ParseError, match=r"https://shop\.example/api/products\?limit=2: .*(not JSON|empty)"):
        parse_page(body, URL, profile())


def test_a_missing_or_broken_script_element_is_a_parse_error_naming_the_url():
    spec = profile(script="//script[@id='__NEXT_DATA__']")
    with pytest.raises(ParseError, match="shop.example/shop: no element matches items.script"):
        parse_page(b"<html><body><p>hello</p></body></html>", "https://shop.example/shop", spec)
    broken = b"<html><head><script id='__NEXT_DATA__'>{\"data\": </script></head></html>"
    with pytest.raises(ParseError, match="the element of items.script is not JSON"):
        parse_page(broken, "https://shop.example/shop", spec)


def test_an_items_path_that_matches_nothing_is_explained_with_the_top_level_keys():
    body = json.dumps({"results": [product("1")], "total": 1, "store": {}}).encode()
    spec = profile()
    spec["catalogue"].pop("page_marker")
    spec["items"].pop("count_path")
    result = parse_page(body, URL, spec)
    assert result.items == () and result.next_url is None
    assert result.note == ("the response was JSON but items.path 'data.items' matched nothing;"
                           " its top-level keys: results, total, store")


def test_an_items_path_giving_an_object_is_a_parse_error():
    spec = profile(path="data")
    spec["items"].pop("count_path")
    with pytest.raises(ParseError, match="items.path 'data' gives a dict, not a list"):
        parse_page(page([product("1")]), URL, spec)


# ---- pagination: every kind, each ending on an empty page and bounded by its own signal ----


def test_page_param_asks_for_the_next_page_until_has_next_is_false_or_a_page_is_empty():
    spec = profile({"kind": "page_param", "param": "p", "start": 1, "has_next_path": "meta.more"})
    assert parse_page(page([product("1")], meta={"more": True}), URL, spec).next_url == \
        "https://shop.example/api/products?limit=2&p=2"
    on_two = "https://shop.example/api/products?p=2&limit=2"
    assert parse_page(page([product("1")], meta={"more": True}), on_two, spec).next_url == \
        "https://shop.example/api/products?limit=2&p=3"
    assert parse_page(page([product("1")], meta={"more": False}), URL, spec).next_url is None
    assert parse_page(page([], meta={"more": True}), URL, spec).next_url is None


def test_offset_pagination_moves_by_the_items_read_and_stops_at_the_total_from_the_body():
    spec = profile({"kind": "offset", "param": "offset", "limit_param": "limit", "limit": 2, "total_path": "total"})
    assert first_page_url("https://shop.example/api/products", compile_profile(spec)) == URL
    two = [product("1"), product("2")]
    assert parse_page(page(two, total=5), URL, spec).next_url == \
        "https://shop.example/api/products?limit=2&offset=2"
    assert parse_page(page(two, total=5), URL + "&offset=2", spec).next_url == \
        "https://shop.example/api/products?limit=2&offset=4"
    assert parse_page(page([product("5")], total=5), URL + "&offset=4", spec).next_url is None
    assert parse_page(page([], total=9), URL + "&offset=4", spec).next_url is None
    with pytest.raises(ParseError, match="total_path matched nothing"):
        parse_page(page(two), URL, spec)


def test_offset_pagination_without_a_total_stops_on_an_empty_page():
    spec = profile({"kind": "offset"})
    assert parse_page(page([product("1")]), URL, spec).next_url == \
        "https://shop.example/api/products?limit=2&offset=1"
    assert parse_page(page([]), URL + "&offset=1", spec).next_url is None


def test_cursor_pagination_sets_the_cursor_from_the_body_until_there_is_none():
    spec = profile({"kind": "cursor", "param": "after", "path": "paging.next"})
    url = "https://shop.example/shop?after=abc"
    assert parse_page(page([product("1")], paging={"next": "def=="}), url, spec).next_url == \
        "https://shop.example/shop?after=def%3D%3D"
    assert parse_page(page([product("1")], paging={"next": None}), url, spec).next_url is None
    assert parse_page(page([], paging={"next": "ghi"}), url, spec).next_url is None


def test_next_link_pagination_follows_the_url_in_the_body_resolved_against_the_page():
    spec = profile({"kind": "next_link", "path": "links.next"})
    assert parse_page(page([product("1")], links={"next": "?offset=2&limit=2"}), URL, spec).next_url == \
        "https://shop.example/api/products?offset=2&limit=2"
    assert parse_page(page([product("1")], links={"next": "/v2/p?cursor=9"}), URL, spec).next_url == \
        "https://shop.example/v2/p?cursor=9"
    assert parse_page(page([product("1")], links={"next": None}), URL, spec).next_url is None


# ---- the locator from JSON ----


def locator(pagination: dict | None = None) -> dict:
    spec = profile()
    spec["locator"] = {"path": "/api/stores", "stores": "stores", "code": "id", "name": "name",
                       "address": "addr.line", "catalogue": "links.shop", "closed": "status == 'closed'",
                       **({"pagination": pagination} if pagination else {})}
    return spec


def test_a_json_locator_lists_every_store_closed_ones_marked_with_its_next_page():
    body = json.dumps({"stores": [
        {"id": "S1", "name": "One", "addr": {"line": "1 Main St"}, "links": {"shop": "/shop/S1"}, "status": "open"},
        {"id": "S2", "name": "Two", "status": "closed"},
    ], "total": 3}).encode()
    url = "https://shop.example/api/stores?limit=2"
    spec = locator({"kind": "offset", "limit_param": "limit", "limit": 2, "total_path": "total"})
    result = parse_locator_page(body, url, spec)
    one, two = result.stores
    assert (one.code, one.name, one.address, one.catalogue_url, one.closed) == (
        "S1", "One", "1 Main St", "https://shop.example/shop/S1", False)
    assert (two.code, two.closed) == ("S2", True)
    assert result.next_url == "https://shop.example/api/stores?limit=2&offset=2"
    assert [s.code for s in parse_locator(body, url, spec)] == ["S1", "S2"]


def test_a_json_locator_entry_without_a_code_and_an_empty_locator_are_parse_errors():
    with pytest.raises(ParseError, match="a store entry has no code"):
        parse_locator(json.dumps({"stores": [{"name": "x"}]}).encode(), "https://shop.example/s", locator())
    with pytest.raises(ParseError, match="lists no stores"):
        parse_locator(json.dumps({"stores": []}).encode(), "https://shop.example/s", locator())


def test_a_fix_item_hook_works_on_json_items_too():
    spec = profile(fields={"sku": "id", "name": "title", "price": {"path": "price.amount", "parser": "cents"}})
    spec["hook"] = "pricegroups.scrape.hooks.brand_in_name"
    body = page([{"id": "1", "title": "Pauls - Full Cream Milk", "price": {"amount": 350}},
                 {"id": "AD-9", "title": "Win a car", "price": {"amount": 1}}])
    (item,) = parse_page(body, URL, spec).items
    assert (item.brand, item.name, item.price) == ("Pauls", "Full Cream Milk", Decimal("3.50"))
