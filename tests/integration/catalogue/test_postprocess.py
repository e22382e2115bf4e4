"""PostProcessor over a few simulated days, checked against expectations computed by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from pricegroups.catalogue.enrich import enrich
from pricegroups.catalogue.postprocess import post_process
from pricegroups.catalogue.reconcile import reconcile
from pricegroups.catalogue.resolve import resolve_run
from pricegroups.settings import Settings
from pricegroups.upsert import upsert_scraped_items
from tests.factories import T0, make_chain_with_stores, make_products
from tests.integration.catalogue.staging import item, stage, state

SETTINGS = Settings(retention_days=2, staging_keep_days=2)
D = Decimal


def day(n: int):
    return T0 + timedelta(days=n)


def run_day(conn, run_id, items, at, suspect=()):
    """The catalogue steps and the upsert, in DAG order, for one run."""
    stage(conn, run_id, items, scraped_at=at)
    if suspect:
        conn.execute("UPDATE scrape_log SET status = 'suspect' WHERE run_id = %s AND store_id = ANY(%s)",
                     (run_id, list(suspect)))
        conn.commit()
    resolve_run(conn, run_id, SETTINGS)
    reconcile(conn, run_id, SETTINGS)
    enrich(conn, run_id, SETTINGS)
    upsert_scraped_items(conn, run_id, SETTINGS, store_ids=[s for s in {i["store_id"] for i in items}
                                                            if s not in suspect])
    conn.commit()
    return post_process(conn, run_id, at, SETTINGS)


@pytest.fixture
def shop(conn):
    """acme: stores A (anchor) and M (its member) in one group, C alone."""
    chain, (a, m, c) = make_chain_with_stores(conn, "acme", stores=3)
    group_a, group_m = (conn.execute("SELECT group_id FROM stores WHERE store_id = %s", (s,)).fetchone()[0]
                        for s in (a, m))
    conn.execute("UPDATE stores SET group_id = %s WHERE store_id = %s", (group_a, m))
    conn.execute("DELETE FROM store_groups WHERE group_id = %s", (group_m,))
    conn.commit()
    return chain, a, m, c


def _anchor_day(chain, a, with_tea=True):
    items = [item(a, chain, "P1", "Bread 700g", price=D("2.00")),
             item(a, chain, "P2", "Coffee 500g", price=D("3.00"), was_price=D("4.00"), on_special=True)]
    if with_tea:
        items.append(item(a, chain, "P3", "Tea 100 bags", price=D("1.00")))
    return items


def _prices(conn):
    return conn.execute(
        """SELECT s.code, l.sku, p.price FROM prices p JOIN stores s USING (store_id)
           JOIN listings l USING (product_id) ORDER BY 1, 2"""
    ).fetchall()


def test_retention_judges_each_store_only_from_its_own_ok_scrapes(conn, shop):
    chain, a, m, c = shop
    orphan = make_products(conn, 1)[0]
    day0 = run_day(conn, "d0", _anchor_day(chain, a) + [
        item(m, chain, "P1", "Bread 700g", price=D("2.20")),
        item(c, chain, "P1", "Bread 700g", price=D("2.50"))], day(0))
    assert day0["orphans_removed"] == 1 and day0["stores_judged"] == 3 and day0["absences_opened"] == 0
    assert conn.execute("SELECT count(*) FROM products WHERE product_id = %s", (orphan,)).fetchone() == (0,)

    # day 1: A lost the tea; M not scraped; C's scrape is suspect (and lacks the bread)
    day1 = run_day(conn, "d1", _anchor_day(chain, a, with_tea=False) + [
        item(c, chain, "P9", "Jam 250g", price=D("4.00"))], day(1), suspect=[c])
    assert (day1["stores_judged"], day1["absences_opened"], day1["prices_retired"]) == (1, 1, 0)
    assert conn.execute("SELECT store_id, missing_since FROM listing_absences").fetchall() == [(a, day(1))]

    # day 2: missing for 1 day (< 2): kept
    day2 = run_day(conn, "d2", _anchor_day(chain, a, with_tea=False), day(2))
    assert (day2["absences_opened"], day2["prices_retired"]) == (0, 0)

    # day 3: missing since day 1, judged at day 3: 2 days: retired; d0 staging rows (older than 2 days) go
    day3 = run_day(conn, "d3", _anchor_day(chain, a, with_tea=False), day(3))
    assert day3["prices_retired"] == 1 and day3["staging_rows_deleted"] == 5
    assert _prices(conn) == [
        ("acme-000", "P1", D("2.00")), ("acme-000", "P2", D("3.00")),
        ("acme-001", "P1", D("2.20")),  # M was never judged: its override stays
        ("acme-002", "P1", D("2.50")),  # C's only ok scrape had the bread
    ]
    assert conn.execute("SELECT count(*) FROM listing_absences").fetchone() == (0,)
    assert conn.execute("SELECT min(run_id) FROM scraped_items").fetchone() == ("d1",)

    # what the site serves, by hand: M sees its own bread and A's coffee; C only its bread
    served = conn.execute(
        """SELECT s.code, l.sku, e.price, e.source FROM effective_prices e JOIN stores s USING (store_id)
           JOIN listings l USING (product_id) ORDER BY 1, 2"""
    ).fetchall()
    assert served == [
        ("acme-000", "P1", D("2.00"), "observed"), ("acme-000", "P2", D("3.00"), "observed"),
        ("acme-001", "P1", D("2.20"), "observed"), ("acme-001", "P2", D("3.00"), "inferred"),
        ("acme-002", "P1", D("2.50"), "observed"),
    ]
    assert conn.execute("SELECT anchor_store_id, discount_pct FROM bargains").fetchall() == [(a, D("25.0"))]

    recorded = conn.execute("SELECT summary FROM runs WHERE run_id = 'd3'").fetchone()[0]
    summary = {step: parts["all"] for step, parts in recorded["steps"].items()}  # one part: one task each
    assert summary["catalogue"]["staged"] == 2 and summary["catalogue"]["resolved"] == 2
    assert summary["post_process"]["prices_retired"] == 1
    assert set(summary) >= {"resolve", "reconcile", "enrich", "post_process", "catalogue"}
    assert "prices" in summary["post_process"]["analyzed"]


def test_a_listing_seen_again_is_no_longer_absent(conn, shop):
    chain, a, _, _ = shop
    run_day(conn, "d0", _anchor_day(chain, a), day(0))
    run_day(conn, "d1", _anchor_day(chain, a, with_tea=False), day(1))
    back = run_day(conn, "d2", _anchor_day(chain, a), day(2))
    assert back["absences_closed"] == 1
    run_day(conn, "d3", _anchor_day(chain, a, with_tea=False), day(3))
    run_day(conn, "d4", _anchor_day(chain, a, with_tea=False), day(4))
    assert len(_prices(conn)) == 3  # missing since day 3 only: 1 day
    assert conn.execute("SELECT missing_since FROM listing_absences").fetchall() == [(day(3),)]


def test_a_backfill_older_than_the_stores_newest_scrape_judges_nothing(conn, shop):
    chain, a, _, _ = shop
    run_day(conn, "d5", _anchor_day(chain, a), day(5))
    old = run_day(conn, "d1", _anchor_day(chain, a, with_tea=False), day(1))
    assert old["stores_judged"] == 0 and old["absences_opened"] == 0
    assert len(_prices(conn)) == 3


def test_post_process_twice_changes_nothing(conn, shop):
    chain, a, m, _ = shop
    run_day(conn, "d0", _anchor_day(chain, a) + [item(m, chain, "P1", "Bread 700g", price=D("2.20"))], day(0))
    run_day(conn, "d1", _anchor_day(chain, a, with_tea=False), day(1))
    before = state(conn)
    again = post_process(conn, "d1", day(1), SETTINGS)
    assert state(conn) == before
    assert again["absences_opened"] == again["prices_retired"] == again["orphans_removed"] == 0


def test_a_whole_run_repeated_in_dag_order_changes_nothing(conn, shop):
    chain, a, m, c = shop
    items = _anchor_day(chain, a) + [item(m, chain, "P1", "Bread 700g", price=D("2.20")),
                                     item(c, chain, "P7", "Cola 6 x 375mL", price=D("9.00"), brand="Coca-Cola")]
    run_day(conn, "d0", items, day(0))
    run_day(conn, "d1", _anchor_day(chain, a, with_tea=False), day(1))
    before = state(conn)
    resolve_run(conn, "d1", SETTINGS)
    reconcile(conn, "d1", SETTINGS)
    enrich(conn, "d1", SETTINGS)
    upsert_scraped_items(conn, "d1", SETTINGS)
    conn.commit()
    post_process(conn, "d1", day(1), SETTINGS)
    assert state(conn) == before
