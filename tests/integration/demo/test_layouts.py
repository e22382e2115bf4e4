"""Every layout, fetched over HTTP and parsed with plain lxml, is exactly the scenario's truth."""

from __future__ import annotations

import math
import re
import urllib.robotparser

import lxml.html
import pytest
import requests

from pricegroups.demo.model import STANDING_EVENTS, Event
from tests.integration.demo.scraping import catalogue_url, fetch_catalogue
from tests.unit.demo.parsers import expected_rows, parse_grid, parse_jsonld, parse_table

LAYOUTS = {"freshmart": "grid", "valueway": "table", "greengrocer": "jsonld"}


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("chain", LAYOUTS)
@pytest.mark.parametrize("day", [0, 7])
def test_each_layout_parses_into_exactly_the_truth(demo_site, session, chain, day):
    demo_site.set_day(day)
    scenario = demo_site.scenario
    for store in [s.code for s in scenario.stores(chain)][:2]:
        rows, pages = fetch_catalogue(session, demo_site.base_url, LAYOUTS[chain], chain, store)
        expected = expected_rows(scenario, chain, store, day)
        assert rows == expected
        assert pages == math.ceil(len(expected) / scenario.chain(chain).page_size)


def shown(price) -> tuple:
    """A TruePrice as the parsers read it back from a page."""
    return (price.price, price.was_price, price.promo_text, price.on_special, price.unit_price, price.unit_measure)


@pytest.mark.parametrize("chain", LAYOUTS)
def test_stores_with_own_and_late_prices_serve_exactly_their_true_prices(demo_site, session, chain):
    scenario = demo_site.scenario
    stores = scenario.chain(chain).stores
    own = next(s.code for s in stores if s.own_share)
    late = next(s.code for s in stores if s.lag_share)
    quiet = [d for d in range(1, 14) if all(e.kind in STANDING_EVENTS for e in scenario.events_on(d, chain))
             and scenario.is_open(chain, own, d) and scenario.is_open(chain, late, d)]
    day = max(quiet, key=lambda d: len(scenario.deviations(chain, late, d)))  # no HTTP event that day
    demo_site.set_day(day)
    for store, cause in ((own, "own"), (late, "lag")):
        rows, _ = fetch_catalogue(session, demo_site.base_url, LAYOUTS[chain], chain, store)
        served = {r["sku"]: (r["price"], r["was_price"], r["promo_text"], r["on_special"], r["unit_price"],
                             r["unit_measure"]) for r in rows}
        truth = scenario.true_prices(chain, store, day)
        assert served == {sku: shown(p) for sku, p in truth.items()}
        deviations = scenario.deviations(chain, store, day)
        assert deviations and set(deviations.values()) == {cause}
        table = scenario.zone_prices(chain, scenario.zone_of(chain, store, day), day)
        assert all(served[sku] != shown(table[sku]) for sku in deviations), "the page shows the store's own price"
        assert all(served[sku] == shown(table[sku]) for sku in served.keys() - deviations.keys())


@pytest.mark.parametrize("chain", LAYOUTS)
def test_pagination_covers_every_item_exactly_once(demo_site, session, chain):
    store = demo_site.scenario.stores(chain)[-1].code
    rows, _ = fetch_catalogue(session, demo_site.base_url, LAYOUTS[chain], chain, store)
    skus = [r["sku"] for r in rows]
    assert len(skus) == len(set(skus))
    assert skus == [lst.sku for lst in demo_site.scenario.assortment(chain, store)]


def test_pages_hold_40_to_100_items_and_a_page_past_the_end_is_empty(demo_site, session):
    base = demo_site.base_url
    store = "FM001"
    page1, meta = parse_grid(session.get(f"{base}/freshmart/store/{store}/products").content)
    assert 40 <= len(page1) <= 100
    past, meta_past = parse_grid(session.get(f"{base}/freshmart/store/{store}/products?page={meta['pages'] + 1}").content)
    assert past == [] and meta_past["count"] == 0 and meta_past["total"] == meta["total"]
    rows, info, _ = parse_jsonld(session.get(f"{base}/greengrocer/shop/GG001?p=999").content)
    assert rows == [] and info["count"] == 0
    rows, nxt = parse_table(session.get(f"{base}/valueway/catalogue/VW001").content)
    assert 40 <= len(rows) <= 100 and nxt == "/valueway/catalogue/VW001?offset=80"


@pytest.mark.parametrize(
    "chain, path, row_xpath, code_attr, link_xpath",
    [
        ("freshmart", "/freshmart/stores", '//li[@class="store"]', "data-store-code", './/a[@class="store-link"]'),
        ("valueway", "/valueway/store-locator", '//tr[@class="store-row"]', "data-store", './/a[@class="store-link"]'),
        ("greengrocer", "/greengrocer/locations", '//div[@class="location-card"]', "data-store-id",
         './/a[@class="shop-link"]'),
    ],
)
def test_store_locator_lists_every_open_store_with_a_working_catalogue_link(
    demo_site, session, chain, path, row_xpath, code_attr, link_xpath
):
    doc = lxml.html.fromstring(session.get(demo_site.base_url + path).content)
    rows = doc.xpath(row_xpath)
    stores = demo_site.scenario.stores(chain, 0)
    assert [r.get(code_attr) for r in rows] == [s.code for s in stores]
    texts = [r.text_content() for r in rows]
    assert all(s.name in t and s.address in t for s, t in zip(stores, texts))
    link = rows[0].xpath(link_xpath)[0].get("href")
    assert link == catalogue_url("", LAYOUTS[chain], chain, stores[0].code)
    assert session.get(demo_site.base_url + link).status_code == 200


def test_robots_txt_is_served_and_disallows_the_checkout_paths(demo_site, session):
    response = session.get(demo_site.base_url + "/robots.txt")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(response.text.splitlines())
    base = demo_site.base_url
    assert not robots.can_fetch("pricegroups-test", f"{base}/freshmart/checkout")
    assert not robots.can_fetch("pricegroups-test", f"{base}/valueway/cart")
    assert not robots.can_fetch("pricegroups-test", f"{base}/greengrocer/account")
    assert not robots.can_fetch("BadBot", f"{base}/freshmart/stores")
    assert robots.can_fetch("pricegroups-test", f"{base}/freshmart/store/FM001/products?page=2")
    assert robots.can_fetch("pricegroups-test", f"{base}/valueway/catalogue/VW001?offset=80")


def test_robots_disallow_event_adds_a_stores_catalogue(demo_site, session):
    demo_site.add_event(Event("robots_disallow", "freshmart", store="FM002"),
                        Event("robots_disallow", "greengrocer", store="GG003"))
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(session.get(demo_site.base_url + "/robots.txt").text.splitlines())
    base = demo_site.base_url
    assert not robots.can_fetch("x", f"{base}/freshmart/store/FM002/products?page=1")
    assert robots.can_fetch("x", f"{base}/freshmart/store/FM003/products?page=1")
    assert not robots.can_fetch("x", f"{base}/greengrocer/shop/GG003?p=2")


@pytest.mark.parametrize("chain", LAYOUTS)
def test_pages_link_off_host_and_to_the_disallowed_path(demo_site, session, chain):
    store = demo_site.scenario.stores(chain)[0].code
    html = session.get(catalogue_url(demo_site.base_url, LAYOUTS[chain], chain, store)).text
    hrefs = lxml.html.fromstring(html).xpath("//a/@href")
    assert any(h.startswith("http://ads.example.com/") for h in hrefs)
    assert any(h.startswith("https://social.example.org/") for h in hrefs)
    disallowed = demo_site.scenario.chain(chain).robots_disallow[0]
    assert disallowed in hrefs
    assert session.get(demo_site.base_url + disallowed).status_code == 200


def test_switching_the_day_changes_prices(demo_site, session):
    url = demo_site.base_url + "/valueway/catalogue/VW002"
    day0, _ = parse_table(session.get(url).content)
    response = session.post(demo_site.base_url + "/_admin/day", json={"day": 9})
    assert response.json() == {"day": 9} and demo_site.day == 9
    day9, _ = parse_table(session.get(url).content)
    assert day9 != day0
    assert day9 == expected_rows(demo_site.scenario, "valueway", "VW002", 9)[: len(day9)]
    assert session.get(demo_site.base_url + "/_admin/day").json() == {"day": 9}


def test_unknown_chain_store_or_path_is_404_and_a_bad_page_number_400(demo_site, session):
    base = demo_site.base_url
    assert session.get(base + "/nochain/stores").status_code == 404
    assert session.get(base + "/freshmart/store/FM999/products").status_code == 404
    assert session.get(base + "/valueway/nothing-here").status_code == 404
    assert session.get(base + "/freshmart/store/FM001/products?page=abc").status_code == 400
    assert session.get(base + "/").status_code == 200
    assert re.search(r'href="/freshmart/"', session.get(base + "/").text)
