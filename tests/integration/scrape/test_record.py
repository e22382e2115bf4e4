"""Recording a store's outcome: ok writes items and rejects in one go; failed and suspect write nothing."""

from __future__ import annotations

from decimal import Decimal

from pricegroups.scrape.fields import Dropped, ScrapedItem
from pricegroups.scrape.record import StoreOutcome, last_ok_item_counts, record_outcome
from tests.factories import T0, make_chain_with_stores


def items(n: int) -> list[ScrapedItem]:
    return [ScrapedItem(f"sku{i}", f"Product {i}", Decimal("1.50") + i, multibuy_qty=2,
                        multibuy_price=Decimal("2.00") + 2 * i) for i in range(n)]


def test_an_ok_store_stages_its_items_and_its_rejects(conn):
    chain_id, (store, _, _) = make_chain_with_stores(conn)
    drops = [Dropped("bad1", "not an amount of money: 'free'", {"sku": "bad1", "price": "free"}),
             Dropped("sku0", "barcode dropped: wrong check digit", {"sku": "sku0"}, kept=True)]
    record_outcome(conn, "r1", T0, chain_id, StoreOutcome(store, "acme-000", "ok", pages=2, items=items(3),
                                                          dropped=drops))
    assert conn.execute("SELECT count(*), min(scraped_at), max(multibuy_qty) FROM scraped_items"
                        " WHERE run_id = 'r1' AND store_id = %s", (store,)).fetchone() == (3, T0, 2)
    rejects = conn.execute("SELECT stage, sku, reason, detail->'item_kept' FROM rejected_items ORDER BY sku").fetchall()
    assert rejects == [("parse", "bad1", "not an amount of money: 'free'", False),
                       ("parse", "sku0", "barcode dropped: wrong check digit", True)]
    log = conn.execute("SELECT status, pages, items, dropped, attempt, logical_date FROM scrape_log").fetchone()
    assert log == ("ok", 2, 3, 1, 1, T0)  # a dropped barcode does not count as a dropped item


def test_failed_and_suspect_stores_write_only_the_log(conn):
    chain_id, (a, b, _) = make_chain_with_stores(conn)
    record_outcome(conn, "r1", T0, chain_id, StoreOutcome(a, "acme-000", "failed", error="HTTP 500"))
    record_outcome(conn, "r1", T0, chain_id, StoreOutcome(b, "acme-001", "suspect", items=items(2)))
    assert conn.execute("SELECT count(*) FROM scraped_items").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM rejected_items").fetchone()[0] == 0
    stores = dict(conn.execute("SELECT store_id, consecutive_failures FROM stores WHERE store_id IN (%s, %s)",
                               (a, b)).fetchall())
    assert stores == {a: 1, b: 0}
    assert conn.execute("SELECT count(*) FROM stores WHERE last_scraped_at IS NOT NULL").fetchone()[0] == 0


def test_the_suspect_baseline_is_the_last_ok_scrape_up_to_the_logical_date(conn):
    from datetime import timedelta

    chain_id, (store, _, _) = make_chain_with_stores(conn)
    for run, day, n, status in [("r1", 0, 10, "ok"), ("r2", 2, 20, "ok"), ("r3", 3, 5, "suspect")]:
        record_outcome(conn, run, T0 + timedelta(days=day), chain_id,
                       StoreOutcome(store, "acme-000", status, items=items(n)))
    assert last_ok_item_counts(conn, [store], T0 + timedelta(days=1), "x") == {store: 10}  # a backfill
    assert last_ok_item_counts(conn, [store], T0 + timedelta(days=5), "x") == {store: 20}
    assert last_ok_item_counts(conn, [store], T0 + timedelta(days=5), "r2") == {store: 10}


def _failures(conn, store: int) -> int:
    return conn.execute("SELECT consecutive_failures FROM stores WHERE store_id = %s", (store,)).fetchone()[0]


def test_failures_count_runs_in_a_row_not_attempts(conn):
    chain_id, (store, _, _) = make_chain_with_stores(conn)
    failed = StoreOutcome(store, "acme-000", "failed", error="HTTP 404")
    # a retried task, a re-run of the run, the run's own stale-anchor re-scrape: still one run
    for _ in range(3):
        record_outcome(conn, "r1", T0, chain_id, failed)
    assert _failures(conn, store) == 1
    record_outcome(conn, "r2", T0, chain_id, failed)
    record_outcome(conn, "r2", T0, chain_id, failed)
    assert _failures(conn, store) == 2
    record_outcome(conn, "r3", T0, chain_id, StoreOutcome(store, "acme-000", "ok", items=items(2)))
    assert _failures(conn, store) == 0
    record_outcome(conn, "r3", T0, chain_id, failed)  # the same run failing after its success counts again
    assert _failures(conn, store) == 1
    assert conn.execute("SELECT count(*) FROM scrape_log WHERE store_id = %s", (store,)).fetchone()[0] == 7
