"""The scraper against the real demo site over loopback: layouts, politeness, failures, snapshots."""

from __future__ import annotations

import math

import psycopg
import pytest

from pricegroups.demo.model import Event
from pricegroups.scrape.profile import load_profile_file
from pricegroups.scrape.service import register_chain, scrape_chain, scrape_stores, sync_stores
from tests.integration.scrape.conftest import day_date, store_id

CHAINS = ["freshmart", "valueway", "greengrocer"]


def regular_store(site, chain: str, n: int) -> str:
    """The n-th store of a chain that is not independently priced (events in tests pick these)."""
    c = site.scenario.chain(chain)
    solo = {z.code for z in c.zones if z.independent}
    return [s for s in c.stores if s.zone not in solo][n].code


def scraped(conn: psycopg.Connection, run_id: str, sid: int) -> dict[str, tuple]:
    rows = conn.execute(
        """SELECT sku, name, brand, size_text, barcode, category, price, was_price, unit_price, unit_measure,
                  on_special, promo_text, multibuy_qty, multibuy_price, scraped_at
           FROM scraped_items WHERE run_id = %s AND store_id = %s""",
        (run_id, sid),
    ).fetchall()
    conn.commit()
    return {r[0]: r for r in rows}


def log_rows(conn: psycopg.Connection, run_id: str) -> list[tuple]:
    rows = conn.execute(
        """SELECT store_id, status, pages, items, dropped, http_errors, retries, from_snapshot, error
           FROM scrape_log WHERE run_id = %s ORDER BY scrape_id""",
        (run_id,),
    ).fetchall()
    conn.commit()
    return rows


def catalogue_requests(site, chain: str, store: str) -> int:
    """Catalogue requests for the store, however it was chosen (path, header or cookie)."""
    return site.stats()["by_store"].get(f"{chain}/{store}", 0)


@pytest.mark.parametrize("chain", CHAINS)
def test_each_layout_is_scraped_item_for_item_as_the_truth_says(conn, demo_site, demo_chains, scrape_settings, chain):
    store = regular_store(demo_site, chain, 0)
    sid = store_id(conn, chain, store)
    at = day_date(demo_site, 0)
    counts = scrape_stores(conn, "r1", at, chain, [sid], scrape_settings)
    truth = demo_site.scenario.items(chain, store, 0)
    page_size = demo_site.scenario.chain(chain).page_size
    assert counts["ok"] == 1 and counts["failed"] == counts["suspect"] == 0
    assert counts["items"] == len(truth)
    assert counts["pages"] == math.ceil(len(truth) / page_size)  # pagination complete, nothing fetched twice
    rows = scraped(conn, "r1", sid)
    assert set(rows) == {item.listing.sku for item in truth}
    for item in truth:
        lst, p = item.listing, item.price
        got = rows[lst.sku]
        assert got[1:6] == (lst.name, lst.brand, lst.size, lst.barcode.zfill(14) if lst.barcode else None,
                            lst.category)
        assert (got[6], got[7], got[10], got[11], got[12], got[13]) == (
            p.price, p.was_price, p.on_special, p.promo_text, p.multibuy_qty, p.multibuy_price)
        assert got[8] == p.unit_price and got[9] == (p.unit_measure.lower() if p.unit_measure else None)
        assert got[14] == at  # scraped_at is the run's logical date, never the wall clock
    last = conn.execute("SELECT last_scraped_at, consecutive_failures FROM stores WHERE store_id = %s",
                        (sid,)).fetchone()
    assert last == (at, 0)


def test_429_with_retry_after_is_waited_for(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "valueway", 1)
    sid = store_id(conn, "valueway", store)
    demo_site.add_event(Event("rate_limit", "valueway", day=0, store=store, count=2, retry_after=1))
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "valueway", [sid], scrape_settings)
    outcome = report.outcomes[0]
    assert outcome.status == "ok"
    assert outcome.retries == 2 and outcome.http_errors == 2
    assert outcome.duration_s >= 2.0  # Retry-After: 1, twice
    assert demo_site.stats()["by_status"]["429"] == 2
    assert len(outcome.items) == len(demo_site.scenario.items("valueway", store, 0))


def test_a_burst_of_500s_is_retried_then_succeeds(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "freshmart", 5)
    sid = store_id(conn, "freshmart", store)
    demo_site.add_event(Event("server_error", "freshmart", day=0, store=store, count=2))
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "freshmart", [sid], scrape_settings)
    outcome = report.outcomes[0]
    assert (outcome.status, outcome.retries, outcome.http_errors) == ("ok", 2, 2)
    assert len(scraped(conn, "r1", sid)) == len(demo_site.scenario.items("freshmart", store, 0))


def test_a_permanent_500_fails_that_store_and_writes_nothing(conn, demo_site, demo_chains, scrape_settings):
    bad, good = regular_store(demo_site, "valueway", 6), regular_store(demo_site, "valueway", 7)
    bad_id, good_id = store_id(conn, "valueway", bad), store_id(conn, "valueway", good)
    demo_site.add_event(Event("server_error", "valueway", day=0, store=bad, count=None))
    counts = scrape_stores(conn, "r1", day_date(demo_site, 0), "valueway", [bad_id, good_id], scrape_settings)
    assert (counts["ok"], counts["failed"], counts["failed_store_ids"]) == (1, 1, [bad_id])
    assert counts["gone_store_ids"] == []  # a server error is not a closed store
    assert scraped(conn, "r1", bad_id) == {} and scraped(conn, "r1", good_id)
    status = {r[0]: r[1:] for r in conn.execute(
        "SELECT store_id, last_scraped_at IS NULL, consecutive_failures FROM stores WHERE store_id = ANY(%s)",
        ([bad_id, good_id],)).fetchall()}
    assert status[bad_id] == (True, 1) and status[good_id] == (False, 0)
    log = {r[0]: r for r in log_rows(conn, "r1")}
    assert log[bad_id][1] == "failed" and "500" in log[bad_id][8]
    assert log[bad_id][6] == scrape_settings.http_retries  # retried, then gave up
    assert conn.execute("SELECT count(*) FROM rejected_items WHERE store_id = %s", (bad_id,)).fetchone()[0] == 0


@pytest.mark.parametrize("chain,page", [("greengrocer", 1), ("freshmart", 2), ("valueway", 1)])
def test_a_malformed_page_fails_only_its_store_with_a_parse_error(conn, demo_site, demo_chains,
                                                                  scrape_settings, chain, page):
    bad, good = regular_store(demo_site, chain, 2), regular_store(demo_site, chain, 3)
    ids = [store_id(conn, chain, bad), store_id(conn, chain, good)]
    demo_site.add_event(Event("malformed", chain, day=0, store=bad, page=page))
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), chain, ids, scrape_settings)
    outcomes = {o.code: o for o in report.outcomes}
    assert outcomes[bad].status == "failed" and outcomes[good].status == "ok"
    assert any(why in outcomes[bad].error for why in ("cut off", "malformed JSON-LD", "is not JSON"))
    assert outcomes[bad].retries == 0  # a parse error is not retried
    assert scraped(conn, "r1", ids[0]) == {}


def test_a_truncated_catalogue_is_suspect_and_changes_nothing(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "valueway", 3)
    sid = store_id(conn, "valueway", store)
    day0, day1 = day_date(demo_site, 0), day_date(demo_site, 1)
    assert scrape_stores(conn, "r0", day0, "valueway", [sid], scrape_settings)["ok"] == 1
    demo_site.set_day(1)
    demo_site.add_event(Event("truncated", "valueway", day=1, store=store, fraction=0.4))
    counts = scrape_stores(conn, "r1", day1, "valueway", [sid], scrape_settings)
    assert (counts["ok"], counts["suspect"], counts["suspect_store_ids"]) == (0, 1, [sid])
    assert scraped(conn, "r1", sid) == {}
    assert conn.execute("SELECT last_scraped_at, consecutive_failures FROM stores WHERE store_id = %s",
                        (sid,)).fetchone() == (day0, 0)
    status, error = conn.execute("SELECT status, error FROM scrape_log WHERE run_id = 'r1'").fetchone()
    assert status == "suspect" and "below 70%" in error


@pytest.mark.parametrize("mode,expected", [("404", "HTTP 404"), ("page", "store closed")])
def test_a_closed_store_fails(conn, demo_site, demo_chains, scrape_settings, mode, expected):
    closing, other = regular_store(demo_site, "freshmart", 8), regular_store(demo_site, "freshmart", 9)
    at = day_date(demo_site, 0)
    # the locator is read (and snapshotted) while the store is still listed ...
    scrape_stores(conn, "r1", at, "freshmart", [store_id(conn, "freshmart", other)], scrape_settings)
    demo_site.add_event(Event("store_closes", "freshmart", day=0, store=closing, mode=mode))
    # ... so the catalogue itself must say the store is gone
    report = scrape_chain(conn, "r1", at, "freshmart", [store_id(conn, "freshmart", closing)], scrape_settings)
    assert report.outcomes[0].status == "failed" and expected in report.outcomes[0].error
    assert report.counts()["gone_store_ids"] == [report.outcomes[0].store_id]


def test_a_store_the_locator_no_longer_lists_fails_without_a_request(conn, demo_site, demo_chains,
                                                                      scrape_settings):
    closing = regular_store(demo_site, "valueway", 9)
    demo_site.add_event(Event("store_closes", "valueway", day=0, store=closing, mode="page"))
    sid = store_id(conn, "valueway", closing)
    # force: the locator snapshot of this date (taken by the fixture) still lists the store
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "valueway", [sid], scrape_settings, force=True)
    # valueway's JSON locator lists closed stores as closed: the same failure, no request either
    assert report.outcomes[0].status == "failed" and "lists it as closed" in report.outcomes[0].error
    assert report.counts()["gone_store_ids"] == [sid]
    assert catalogue_requests(demo_site, "valueway", closing) == 0
    synced = sync_stores(conn, "valueway", scrape_settings, day_date(demo_site, 0))
    assert synced["unlisted"] == [closing] and synced["closed"] == [closing]


def test_robots_txt_disallow_is_honoured(conn, demo_site, demo_chains, scrape_settings):
    # a store's own path: freshmart chooses the store by path (an app's store is in a header or cookie)
    store = regular_store(demo_site, "freshmart", 0)
    demo_site.add_event(Event("robots_disallow", "freshmart", day=0, store=store))
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "freshmart",
                          [store_id(conn, "freshmart", store)], scrape_settings)
    assert report.outcomes[0].status == "failed" and "robots.txt" in report.outcomes[0].error
    assert catalogue_requests(demo_site, "freshmart", store) == 0
    assert demo_site.stats()["by_path"]["/robots.txt"] == {"200": 1}


def test_only_the_profiles_host_is_ever_requested(conn, demo_site, demo_chains, scrape_settings):
    """A profile whose next link points off-host (the pages' ad links) fails the store, fetching nothing there."""
    profile = load_profile_file("table")
    profile["catalogue"]["pagination"] = {"kind": "next_link", "xpath": "//a[@class='ad']/@href"}
    register_chain(conn, "valueway", "ValueWay", demo_site.base_url, profile)
    conn.commit()
    store = regular_store(demo_site, "valueway", 0)
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "valueway",
                          [store_id(conn, "valueway", store)], scrape_settings)
    outcome = report.outcomes[0]
    assert outcome.status == "failed" and "ads.example.com" in outcome.error
    assert outcome.pages == 0 and outcome.http_requests == 2  # robots.txt and the first page only
    paths = set(demo_site.stats()["by_path"])
    assert not any(p.endswith(("/checkout", "/cart", "/account")) for p in paths)


def test_replaying_a_snapshot_makes_no_http_request(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "greengrocer", 1)
    sid = store_id(conn, "greengrocer", store)
    at = day_date(demo_site, 0)
    first = scrape_chain(conn, "r1", at, "greengrocer", [sid], scrape_settings)
    demo_site.reset()
    demo_site.set_day(5)  # the site has moved on; the snapshot of day 0 has not
    again = scrape_chain(conn, "r2", at, "greengrocer", [sid], scrape_settings)
    assert demo_site.stats()["total"] == 0
    assert again.outcomes[0].from_snapshot and again.outcomes[0].status == "ok"
    assert again.outcomes[0].items == first.outcomes[0].items
    assert again.counts()["http_requests"] == 0
    forced = scrape_chain(conn, "r3", at, "greengrocer", [sid], scrape_settings, force=True)
    assert not forced.outcomes[0].from_snapshot and demo_site.stats()["total"] > 0
    assert log_rows(conn, "r2")[0][7] is True


def test_rescraping_a_store_in_the_same_run_replaces_its_items(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "freshmart", 0)
    sid = store_id(conn, "freshmart", store)
    at = day_date(demo_site, 0)
    scrape_stores(conn, "r1", at, "freshmart", [sid], scrape_settings)
    scrape_stores(conn, "r1", at, "freshmart", [sid], scrape_settings)
    assert len(scraped(conn, "r1", sid)) == len(demo_site.scenario.items("freshmart", store, 0))
    assert [r[1] for r in log_rows(conn, "r1")] == ["ok", "ok"]


def test_the_rate_limit_spaces_requests(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "greengrocer", 0)
    sid = store_id(conn, "greengrocer", store)
    slow = scrape_settings.with_overrides({"requests_per_second": 20})
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "greengrocer", [sid], slow)
    requests = report.counts()["http_requests"]
    assert requests >= 10
    assert report.outcomes[0].duration_s >= (report.outcomes[0].http_requests - 1) / 20


def test_sync_stores_adds_the_stores_the_locator_lists(conn, demo_site, scrape_settings):
    from pricegroups.demo.chains import demo_profiles

    code, name, base_url, profile = demo_profiles(demo_site.base_url)[2]
    register_chain(conn, code, name, base_url, profile)
    conn.commit()
    result = sync_stores(conn, code, scrape_settings, day_date(demo_site, 0))
    truth = [s.code for s in demo_site.scenario.stores(code, 0)]
    assert result["listed"] == len(truth) and result["new"] == sorted(truth) and result["unlisted"] == []
    assert sync_stores(conn, code, scrape_settings, day_date(demo_site, 0))["new"] == []


def test_a_page_slower_than_the_timeout_is_retried_then_fails_the_store(conn, demo_site, demo_chains,
                                                                       scrape_settings):
    store = regular_store(demo_site, "greengrocer", 1)
    demo_site.add_event(Event("slow", "greengrocer", day=0, store=store, page=2, delay=0.8))
    hasty = scrape_settings.with_overrides({"http_timeout_s": 0.3, "http_retries": 1})
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "greengrocer",
                          [store_id(conn, "greengrocer", store)], hasty)
    outcome = report.outcomes[0]
    assert outcome.status == "failed" and "Timeout" in outcome.error
    assert outcome.retries == 1 and outcome.http_errors == 2
    assert scraped(conn, "r1", outcome.store_id) == {}


def test_a_chain_wide_429_burst_is_waited_out(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "freshmart", 1)
    demo_site.add_event(Event("rate_limit", "freshmart", day=0, store=None, count=2, retry_after=1))
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "freshmart",
                          [store_id(conn, "freshmart", store)], scrape_settings, force=True)
    assert report.locator_error is None  # the locator itself was rate limited, and retried
    assert report.outcomes[0].status == "ok"
    assert demo_site.stats()["by_status"]["429"] == 2


def test_a_catalogue_longer_than_the_page_limit_fails_the_store(conn, demo_site, demo_chains, scrape_settings):
    store = regular_store(demo_site, "valueway", 0)
    capped = scrape_settings.with_overrides({"max_pages_per_store": 3})
    report = scrape_chain(conn, "r1", day_date(demo_site, 0), "valueway",
                          [store_id(conn, "valueway", store)], capped)
    outcome = report.outcomes[0]
    assert outcome.status == "failed" and "more than 3 catalogue pages" in outcome.error
    assert outcome.http_requests == 4  # robots.txt and three pages; the fourth is never asked for
    assert scraped(conn, "r1", outcome.store_id) == {}
