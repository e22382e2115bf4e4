"""A spot check reads a store's first catalogue page over loopback and keeps exactly what it showed."""

from __future__ import annotations

from pricegroups.scrape.spot import spot_check_stores
from tests.integration.scrape.conftest import day_date, store_id


def test_a_spot_check_records_the_first_page_as_the_site_shows_it(conn, demo_site, demo_chains, scrape_settings):
    ids = [store_id(conn, "greengrocer", "GG002"), store_id(conn, "greengrocer", "GG003")]
    counts = spot_check_stores(conn, "r_spot", day_date(demo_site, 0), "greengrocer", ids, scrape_settings)
    assert counts["spot_checked"] == 2 and counts["spot_failed"] == 0 and counts["spot_pages"] == 2
    rows = conn.execute(
        "SELECT sku, price FROM spot_check_items WHERE run_id = 'r_spot' AND store_id = %s ORDER BY sku", (ids[0],)
    ).fetchall()
    truth = demo_site.scenario.true_prices("greengrocer", "GG002", 0)
    assert 0 < len(rows) < len(truth), "one page, not the catalogue"
    assert all(truth[sku].price == price for sku, price in rows)
    assert conn.execute("SELECT count(*) FROM scraped_items WHERE run_id = 'r_spot'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM scrape_log WHERE run_id = 'r_spot'").fetchone()[0] == 0


def test_a_failed_spot_check_is_recorded_and_does_not_raise(conn, demo_site, demo_chains, scrape_settings):
    from pricegroups.demo.model import Event

    demo_site.add_event(Event("server_error", "greengrocer", store="GG002", count=None))
    sid = store_id(conn, "greengrocer", "GG002")
    settings = scrape_settings.with_overrides({"http_retries": 0})
    counts = spot_check_stores(conn, "r_spot2", day_date(demo_site, 0), "greengrocer", [sid], settings)
    assert (counts["spot_checked"], counts["spot_failed"]) == (0, 1)
    error = conn.execute("SELECT error FROM spot_checks WHERE run_id = 'r_spot2'").fetchone()[0]
    assert "500" in error or "503" in error
