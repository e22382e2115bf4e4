"""PostgresStorage: the storage interface read set-based from PostgreSQL (an anchor's histogram is a few bars,
whatever its history; deduplication by the one same-price rule)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from pricegroups.grouping import storage
from pricegroups.grouping.pgstorage import PostgresStorage
from pricegroups.grouping.rules.cadence import DAILY, RowsAt, anchor_change_share
from pricegroups.upsert import PriceRow, upsert_prices
from tests.factories import T0, make_chain_with_stores, make_products

D = timedelta(days=1)


def test_an_anchors_history_is_a_few_bars_and_reads_as_its_rows_would(conn):
    """Ten days, product i changing on day i: older rows come as one bar, the rate is unchanged."""
    chain_id, (anchor,) = make_chain_with_stores(conn, "acme", 1)
    p = make_products(conn, 100)
    for n in range(10):
        upsert_prices(conn, [PriceRow(p[i], anchor, Decimal(i + 1) + (1 if 0 < i <= n else 0), T0 + n * D)
                             for i in range(100)], f"r{n}")
    conn.commit()
    (history,) = PostgresStorage(conn, DAILY).anchor_histories()
    assert len(history.rows) == 3  # older rows with and without a previous price, the last scrape's change
    assert sum(r.rows for r in history.rows) == 100
    every_row = [RowsAt(at, previous is not None, 1) for at, previous in conn.execute(
        "SELECT scraped_at, previous_price FROM prices WHERE store_id = %s", (anchor,))]
    first, last = history.first_scraped_at, history.last_scraped_at
    assert anchor_change_share(history.rows, first, last, DAILY) == pytest.approx(
        anchor_change_share(every_row, first, last, DAILY))
    assert storage.change_rates(PostgresStorage(conn, DAILY, chain_ids=[chain_id])) == {
        chain_id: pytest.approx(0.01)}  # product 9 changed in the last scrape: 1 of 100 in a day
    assert storage.change_rates(PostgresStorage(conn, DAILY, chain_ids=[])) == {}


def test_deduplication_keeps_a_row_that_differs_in_anything_the_same_price_rule_names(conn):
    chain_id, (anchor, member) = make_chain_with_stores(conn, "acme", 2)
    p = make_products(conn, 5)
    rows = [PriceRow(p[i], anchor, Decimal("2.00"), T0, promo_text="2 for 3") for i in range(5)]
    own = [rows[0]._replace(store_id=member), rows[1]._replace(store_id=member, price=Decimal("2.10")),
           rows[2]._replace(store_id=member, promo_text=None), rows[3]._replace(store_id=member, on_special=True),
           rows[4]._replace(store_id=member, scraped_at=T0 + D)]  # observed later, the same price
    upsert_prices(conn, rows + own[:4], "r0")
    upsert_prices(conn, own[4:], "r1")
    assert PostgresStorage(conn).deduplicate([(member, anchor)]) == {member: 2}
    kept = {product for (product,) in conn.execute("SELECT product_id FROM prices WHERE store_id = %s", (member,))}
    assert kept == {p[1], p[2], p[3]}
