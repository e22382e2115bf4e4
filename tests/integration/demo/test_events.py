"""Events on the HTTP side behave as docs/demo-site.md says, whether scripted or switched on by a test."""

from __future__ import annotations

import json
import math
import time

import lxml.html
import pytest
import requests

from pricegroups.demo.model import Event
from tests.integration.demo.scraping import fetch_catalogue
from tests.unit.demo.parsers import expected_rows, parse_grid, parse_jsonld, parse_table


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


def statuses(session, url, n, **params):
    return [session.get(url, params=params, timeout=10).status_code for _ in range(n)]


def test_rate_limit_burst_answers_429_with_retry_after_then_recovers(demo_site, session):
    demo_site.add_event(Event("rate_limit", "valueway", day=0, store="VW003", count=3, retry_after=2))
    url = demo_site.base_url + "/valueway/catalogue/VW003"
    first = session.get(url)
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert statuses(session, url, 3) == [429, 429, 200]
    assert session.get(demo_site.base_url + "/valueway/catalogue/VW004").status_code == 200
    demo_site.set_day(1)
    assert session.get(url).status_code == 200, "the event holds on its own day only"


def test_a_chain_wide_rate_limit_covers_the_locator_too(demo_site, session):
    demo_site.add_event(Event("rate_limit", "freshmart", day=0, count=2))
    base = demo_site.base_url
    assert session.get(base + "/freshmart/stores").status_code == 429
    assert session.get(base + "/freshmart/store/FM001/products").status_code == 429
    assert session.get(base + "/freshmart/stores").status_code == 200
    assert session.get(base + "/valueway/store-locator").status_code == 200


def test_server_error_burst_then_ok(demo_site, session):
    demo_site.add_event(Event("server_error", "greengrocer", day=0, store="GG002", count=2))
    assert statuses(session, demo_site.base_url + "/greengrocer/shop/GG002", 3, p=1) == [500, 500, 200]


def test_permanent_server_error_never_recovers(demo_site, session):
    demo_site.add_event(Event("server_error", "freshmart", day=None, store="FM006"))
    url = demo_site.base_url + "/freshmart/store/FM006/products"
    assert statuses(session, url, 6) == [500] * 6
    assert statuses(session, url, 2, page=3) == [500] * 2
    demo_site.set_day(5)
    assert session.get(url).status_code == 500


def test_burst_counters_reset_with_admin_reset(demo_site, session):
    demo_site.add_event(Event("server_error", "freshmart", day=0, store="FM002", count=1))
    url = demo_site.base_url + "/freshmart/store/FM002/products"
    assert statuses(session, url, 2) == [500, 200]
    assert session.post(demo_site.base_url + "/_admin/reset").status_code == 200
    assert statuses(session, url, 2) == [500, 200]


def test_a_slow_page_answers_after_its_delay(demo_site, session):
    demo_site.add_event(Event("slow", "greengrocer", day=0, store="GG004", page=2, delay=1.0))
    url = demo_site.base_url + "/greengrocer/shop/GG004"
    start = time.perf_counter()
    assert session.get(url, params={"p": 1}).status_code == 200
    fast = time.perf_counter() - start
    start = time.perf_counter()
    assert session.get(url, params={"p": 2}).status_code == 200
    slow = time.perf_counter() - start
    assert slow >= 1.0 and fast < 0.8


def test_a_malformed_grid_page_is_cut_off(demo_site, session):
    demo_site.add_event(Event("malformed", "freshmart", day=0, store="FM004", page=1))
    url = demo_site.base_url + "/freshmart/store/FM004/products"
    response = session.get(url)
    assert response.status_code == 200
    assert not response.text.rstrip().endswith("</html>")
    doc = lxml.html.fromstring(response.content)
    grid = doc.xpath('//div[@class="product-grid"]')[0]
    assert len(grid.xpath('.//article[@class="product-tile"]')) < int(grid.get("data-count"))
    assert not doc.xpath('//nav[@class="pagination"]')
    rows, meta = parse_grid(session.get(url, params={"page": 2}).content)
    assert len(rows) == meta["count"], "only the named page is broken"


def test_a_malformed_table_page_is_cut_off(demo_site, session):
    demo_site.add_event(Event("malformed", "valueway", day=0, store="VW005"))
    response = session.get(demo_site.base_url + "/valueway/catalogue/VW005")
    doc = lxml.html.fromstring(response.content)
    table = doc.xpath('//table[@id="product-table"]')[0]
    assert len(table.xpath(".//tr[contains(@class, 'product-row')]")) < int(table.get("data-count"))
    assert not doc.xpath('//a[@rel="next"]')


def test_a_malformed_jsonld_page_has_invalid_json(demo_site, session):
    demo_site.add_event(Event("malformed", "greengrocer", day=0, store="GG005", page=1))
    response = session.get(demo_site.base_url + "/greengrocer/shop/GG005")
    assert response.status_code == 200
    script = lxml.html.fromstring(response.content).xpath('//script[@type="application/ld+json"]/text()')[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(script)
    rows, info, _ = parse_jsonld(session.get(demo_site.base_url + "/greengrocer/shop/GG005?p=2").content)
    assert len(rows) == info["count"] > 0


@pytest.mark.parametrize("chain, store, layout", [("valueway", "VW006", "table"), ("freshmart", "FM003", "grid"),
                                                  ("greengrocer", "GG006", "jsonld")])
def test_a_truncated_catalogue_silently_serves_a_fraction(demo_site, session, chain, store, layout):
    demo_site.add_event(Event("truncated", chain, day=0, store=store, fraction=0.4))
    rows, pages = fetch_catalogue(session, demo_site.base_url, layout, chain, store)
    full = expected_rows(demo_site.scenario, chain, store, 0)
    assert rows == full[: math.ceil(len(full) * 0.4)]
    assert demo_site.stats()["by_status"] == {"200": pages}


def test_a_closed_store_answers_404_and_leaves_the_locator(demo_site, session):
    demo_site.add_event(Event("store_closes", "freshmart", day=0, store="FM007", mode="404"))
    base = demo_site.base_url
    assert session.get(base + "/freshmart/store/FM007/products").status_code == 404
    locator = lxml.html.fromstring(session.get(base + "/freshmart/stores").content)
    assert "FM007" not in locator.xpath('//li[@class="store"]/@data-store-code')
    assert demo_site.scenario.true_prices("freshmart", "FM007", 0) == {}


def test_a_closed_store_page_mode_shows_a_notice_and_no_items(demo_site, session):
    demo_site.add_event(Event("store_closes", "valueway", day=0, store="VW008", mode="page"))
    response = session.get(demo_site.base_url + "/valueway/catalogue/VW008")
    assert response.status_code == 200
    rows, nxt = parse_table(response.content)
    assert rows == [] and nxt is None
    assert lxml.html.fromstring(response.content).xpath('//div[@class="store-closed"]')


def test_scripted_events_of_the_default_scenario_apply_on_their_day(demo_site, session):
    scenario = demo_site.scenario
    closes = next(e for e in scenario.events if e.kind == "store_closes" and e.mode == "404")
    url = f"{demo_site.base_url}/{closes.chain}/store/{closes.store}/products"
    demo_site.set_day(closes.day - 1)
    assert session.get(url).status_code == 200
    demo_site.set_day(closes.day)
    assert session.get(url).status_code == 404
    limit = next(e for e in scenario.events if e.kind == "rate_limit" and e.store)
    demo_site.set_day(limit.day)
    url = f"{demo_site.base_url}/{limit.chain}/catalogue/{limit.store}"
    assert statuses(session, url, limit.count + 1) == [429] * limit.count + [200]


def test_a_store_moving_zone_shows_the_new_prices_over_http(demo_site, session):
    scenario = demo_site.scenario
    zone = scenario.zone_of("valueway", "VW011", 0)
    other = next(z.code for z in scenario.chain("valueway").zones if z.code != zone and not z.independent)
    demo_site.add_event(Event("store_moves", "valueway", day=0, store="VW011", zone=other))
    assert demo_site.scenario.zone_of("valueway", "VW011", 0) == other
    rows, _ = fetch_catalogue(session, demo_site.base_url, "table", "valueway", "VW011")
    table = demo_site.scenario.zone_prices("valueway", other, 0)
    own = demo_site.scenario.deviations("valueway", "VW011", 0)  # a store's own prices move with it
    assert all(r["price"] == table[r["sku"]].price for r in rows if r["sku"] not in own)
    truth = demo_site.scenario.true_prices("valueway", "VW011", 0)
    assert all(r["price"] == truth[r["sku"]].price for r in rows)


def test_admin_events_endpoint_adds_lists_and_removes_events(demo_site, session):
    base = demo_site.base_url
    added = session.post(base + "/_admin/events", json=[
        {"kind": "server_error", "chain": "freshmart", "day": 0, "store": "FM009", "count": 1}])
    assert added.status_code == 200 and added.json()["added"][0]["store"] == "FM009"
    assert session.get(base + "/freshmart/store/FM009/products").status_code == 500
    assert session.delete(base + "/_admin/events").json()["added"] == []
    assert session.post(base + "/_admin/events", json={"kind": "quake", "chain": "freshmart"}).status_code == 400
    assert session.post(base + "/_admin/events", json={"kind": "truncated", "chain": "freshmart"}).status_code == 400


def test_stats_count_requests_by_path_and_status_but_not_admin_calls(demo_site, session):
    base = demo_site.base_url
    session.get(base + "/robots.txt")
    session.get(base + "/freshmart/store/FM001/products?page=1")
    session.get(base + "/freshmart/store/FM001/products?page=2")
    session.get(base + "/freshmart/store/NOPE/products")
    session.post(base + "/_admin/day", json={"day": 0})
    stats = session.get(base + "/_admin/stats").json()
    assert stats == demo_site.stats()
    assert stats["total"] == 4
    assert stats["by_path"]["/freshmart/store/FM001/products"] == {"200": 2}
    assert stats["by_status"] == {"200": 3, "404": 1}
    assert stats["by_chain"] == {"freshmart": 3}
    demo_site.reset()
    assert demo_site.stats()["total"] == 0


def test_a_chain_wide_server_error_covers_every_page_of_the_chain(demo_site, session):
    demo_site.add_event(Event("server_error", "greengrocer", day=0, count=2))
    base = demo_site.base_url
    assert session.get(base + "/greengrocer/locations").status_code == 500
    assert session.get(base + "/greengrocer/shop/GG001").status_code == 500
    assert session.get(base + "/greengrocer/shop/GG001").status_code == 200
