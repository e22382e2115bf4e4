"""JSON API and embedded-state chains against the demo site's apps over loopback, into PostgreSQL.

ValueWay's app is a JSON API (the store by the X-Store-Id header, offset
pages); Greengrocer's embeds its state in pages (the store by a cookie, cursor
pages). Each store context and pagination kind is scraped item for item; each
bad input fails only its chain's stores, writing nothing for them.
"""

from __future__ import annotations

import copy
import json
import math

import psycopg
import pytest

from pricegroups.scrape.profile import load_profile_file
from pricegroups.scrape.service import register_chain, scrape_chain, sync_stores
from tests.integration.scrape.conftest import day_date, store_id
from tests.integration.scrape.test_scrape_demo import catalogue_requests, regular_store, scraped


def api_profile(**catalogue) -> dict:
    spec = copy.deepcopy(load_profile_file("api"))
    spec["catalogue"].update(catalogue)
    return spec


def prices(conn: psycopg.Connection, run_id: str, sid: int) -> dict[str, object]:
    return {sku: row[6] for sku, row in scraped(conn, run_id, sid).items()}


def truth(site, chain: str, store: str) -> dict[str, object]:
    return {i.listing.sku: i.price.price for i in site.scenario.items(chain, store, site.day)}


def use_profile(conn: psycopg.Connection, site, profile: dict, code: str = "valueway") -> None:
    register_chain(conn, code, code.title(), site.base_url, profile, 0)
    conn.commit()


def scrape(conn, site, settings, chain: str, stores: list[str], run_id: str = "r1", **kwargs):
    ids = [store_id(conn, chain, s) for s in stores]
    return scrape_chain(conn, run_id, day_date(site, 0), chain, ids, settings, **kwargs), ids


# ---- the store's context: header, cookie, query; each store gets its own catalogue ----


@pytest.mark.parametrize("chain", ["valueway", "greengrocer"])
def test_a_store_chosen_by_header_or_cookie_gets_its_own_catalogue_from_one_url(
        conn, demo_site, demo_chains, scrape_settings, chain):
    stores = [regular_store(demo_site, chain, 0), regular_store(demo_site, chain, 5)]
    assert truth(demo_site, chain, stores[0]) != truth(demo_site, chain, stores[1])
    report, ids = scrape(conn, demo_site, scrape_settings, chain, stores)
    assert [o.status for o in report.outcomes] == ["ok", "ok"]
    for store, sid in zip(stores, ids):
        assert prices(conn, "r1", sid) == truth(demo_site, chain, store)
        assert catalogue_requests(demo_site, chain, store) == report.outcomes[ids.index(sid)].pages


def test_a_store_chosen_by_a_query_parameter(conn, demo_site, demo_chains, scrape_settings):
    profile = api_profile(url_template="/valueway/api/v1/products?store={store_code}")
    del profile["request"]["headers"]["X-Store-Id"]
    use_profile(conn, demo_site, profile)
    store = regular_store(demo_site, "valueway", 2)
    report, (sid,) = scrape(conn, demo_site, scrape_settings, "valueway", [store])
    assert report.outcomes[0].status == "ok"
    assert prices(conn, "r1", sid) == truth(demo_site, "valueway", store)
    assert catalogue_requests(demo_site, "valueway", store) == report.outcomes[0].pages


def test_a_header_chosen_store_replays_from_its_snapshot_without_a_request(
        conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "valueway", 1)
    first, (sid,) = scrape(conn, demo_site, scrape_settings, "valueway", [store], run_id="r1")
    demo_site.reset()
    again, _ = scrape(conn, demo_site, scrape_settings, "valueway", [store], run_id="r2")
    assert again.outcomes[0].from_snapshot and again.outcomes[0].http_requests == 0
    assert demo_site.stats()["total"] == 0
    assert prices(conn, "r2", sid) == prices(conn, "r1", sid) == truth(demo_site, "valueway", store)


# ---- every pagination kind over HTTP ----


@pytest.mark.parametrize("pagination, extra_pages", [
    ({"kind": "offset", "param": "offset", "limit_param": "limit", "limit": 80, "total_path": "total"}, 0),
    ({"kind": "offset", "param": "offset"}, 1),  # no total: the empty page after the last ends it
    ({"kind": "page_param", "param": "page", "limit_param": "limit", "limit": 80}, 1),
    ({"kind": "next_link", "path": "links.next"}, 0),
])
def test_each_pagination_kind_reads_the_whole_catalogue_once(
        conn, demo_site, demo_chains, scrape_settings, pagination, extra_pages):
    use_profile(conn, demo_site, api_profile(pagination=pagination))
    store = regular_store(demo_site, "valueway", 3)
    report, (sid,) = scrape(conn, demo_site, scrape_settings, "valueway", [store])
    expected = truth(demo_site, "valueway", store)
    assert report.outcomes[0].status == "ok" and prices(conn, "r1", sid) == expected
    assert report.outcomes[0].pages == math.ceil(len(expected) / 80) + extra_pages


def test_cursor_pagination_of_embedded_state(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "greengrocer", 2)
    report, (sid,) = scrape(conn, demo_site, scrape_settings, "greengrocer", [store])
    expected = truth(demo_site, "greengrocer", store)
    assert report.outcomes[0].pages == math.ceil(len(expected) / 48) > 1
    assert prices(conn, "r1", sid) == expected
    cursors = [p for p in demo_site.stats()["by_path"] if p.startswith("/greengrocer/app/shop")]
    assert cursors == ["/greengrocer/app/shop"]  # one path; the cursor is in the query


def test_max_pages_bounds_a_json_walk(conn, demo_site, demo_chains, scrape_settings):
    use_profile(conn, demo_site, api_profile(max_pages=2))
    report, (sid,) = scrape(conn, demo_site, scrape_settings, "valueway", [regular_store(demo_site, "valueway", 0)])
    assert report.outcomes[0].status == "failed" and "more than 2 catalogue pages" in report.outcomes[0].error
    assert scraped(conn, "r1", sid) == {}


def test_the_json_locator_is_read_over_all_its_pages(conn, demo_site, demo_chains, scrape_settings):
    synced = sync_stores(conn, "valueway", scrape_settings, day_date(demo_site, 0), force=True)
    stores = demo_site.scenario.stores("valueway", 0)
    assert synced["listed"] == len(stores) and synced["new"] == [] and synced["closed"] == []
    pages = [p for p in demo_site.stats()["by_path"] if p == "/valueway/api/v1/stores"]
    assert pages and demo_site.stats()["by_path"][pages[0]] == {"200": math.ceil(len(stores) / 25)}


# ---- secrets ----


def keyed_profile(secret: dict) -> dict:
    profile = api_profile()
    profile["request"]["headers"]["X-Api-Key"] = "{secret}"
    profile["request"]["secret"] = secret
    return profile


@pytest.fixture
def keyed_site(demo_site, demo_chains, monkeypatch):
    """The demo API answering only requests with X-Api-Key: k3y (the session's site, restored after)."""
    monkeypatch.setattr(demo_site.app, "api_key", "k3y")
    return demo_site


def test_a_secret_from_the_environment_opens_a_keyed_api(conn, keyed_site, demo_chains, scrape_settings, monkeypatch):
    monkeypatch.setenv("VALUEWAY_API_KEY", "k3y")
    use_profile(conn, keyed_site, keyed_profile({"env": "VALUEWAY_API_KEY"}))
    store = regular_store(keyed_site, "valueway", 0)
    report, (sid,) = scrape(conn, keyed_site, scrape_settings, "valueway", [store])
    assert report.outcomes[0].status == "ok" and prices(conn, "r1", sid) == truth(keyed_site, "valueway", store)


def test_a_secret_from_a_named_connection_comes_through_the_callers_lookup(
        conn, keyed_site, demo_chains, scrape_settings):
    use_profile(conn, keyed_site, keyed_profile({"connection": "valueway_api"}))
    store = regular_store(keyed_site, "valueway", 0)
    report, _ = scrape(conn, keyed_site, scrape_settings, "valueway", [store],
                       connection_lookup={"valueway_api": "k3y"}.__getitem__)
    assert report.outcomes[0].status == "ok"


def test_a_missing_secret_fails_each_store_saying_so_and_writes_nothing(
        conn, keyed_site, demo_chains, scrape_settings, monkeypatch):
    monkeypatch.delenv("VALUEWAY_API_KEY", raising=False)
    use_profile(conn, keyed_site, keyed_profile({"env": "VALUEWAY_API_KEY"}))
    stores = [regular_store(keyed_site, "valueway", n) for n in (0, 1)]
    report, ids = scrape(conn, keyed_site, scrape_settings, "valueway", stores)
    assert [o.status for o in report.outcomes] == ["failed", "failed"]
    assert all("environment variable VALUEWAY_API_KEY is not set" in o.error for o in report.outcomes)
    assert all(scraped(conn, "r1", sid) == {} for sid in ids)
    assert all(catalogue_requests(keyed_site, "valueway", s) == 0 for s in stores)


def test_a_keyed_api_without_its_key_fails_the_store_with_the_http_status(
        conn, keyed_site, demo_chains, scrape_settings):
    report, (sid,) = scrape(conn, keyed_site, scrape_settings, "valueway", [regular_store(keyed_site, "valueway", 0)])
    assert report.outcomes[0].status == "failed" and "HTTP 401" in report.outcomes[0].error


# ---- bad input: refused naming the key or URL, nothing written for the store, the run goes on ----


def test_a_response_that_is_not_json_fails_the_store_naming_the_url_and_other_chains_go_on(
        conn, demo_site, demo_chains, scrape_settings):
    use_profile(conn, demo_site, api_profile(url_template="/valueway/catalogue/{store_code}"))
    store = regular_store(demo_site, "valueway", 0)
    report, (sid,) = scrape(conn, demo_site, scrape_settings, "valueway", [store])
    error = report.outcomes[0].error
    assert report.outcomes[0].status == "failed"
    assert f"{demo_site.base_url}/valueway/catalogue/{store}?limit=80: the response is not JSON" in error
    assert scraped(conn, "r1", sid) == {}
    other, (other_id,) = scrape(conn, demo_site, scrape_settings, "freshmart", [regular_store(demo_site, "freshmart", 0)])
    assert other.outcomes[0].status == "ok" and scraped(conn, "r1", other_id)


@pytest.mark.parametrize("path, value, key", [
    ("{catalogue,pagination,kind}", "scroll", "catalogue.pagination.kind"),
    ("{items,fields,price,path}", "price.[cents", "items.fields.price.path"),
    ("{request,headers,X-Store-Id}", "{store}", "request.headers.X-Store-Id"),
])
def test_a_stored_profile_gone_bad_fails_every_store_of_its_chain_naming_the_key(
        conn, demo_site, demo_chains, scrape_settings, path, value, key):
    conn.execute("UPDATE chains SET site_profile = jsonb_set(site_profile, %s, %s::jsonb) WHERE code = 'valueway'",
                 (path, json.dumps(value)))
    conn.commit()
    stores = [regular_store(demo_site, "valueway", n) for n in (0, 1)]
    report, ids = scrape(conn, demo_site, scrape_settings, "valueway", stores)
    assert [o.status for o in report.outcomes] == ["failed", "failed"]
    assert all(f"profile key {key!r}" in o.error for o in report.outcomes)
    assert all(scraped(conn, "r1", sid) == {} for sid in ids)
    logged = conn.execute("SELECT count(*) FROM scrape_log WHERE run_id = 'r1' AND status = 'failed'").fetchone()[0]
    assert logged == 2 and demo_site.stats()["total"] == 0
    other, _ = scrape(conn, demo_site, scrape_settings, "greengrocer", [regular_store(demo_site, "greengrocer", 0)])
    assert other.outcomes[0].status == "ok"
