"""record_lateness on PostgreSQL: members' full scrapes and spot checks against their anchor's fresh changes,
the stores' sums over the window, re-runs, and what the effective-prices view then serves."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pricegroups.grouping.lateness import record_lateness
from pricegroups.settings import Settings
from pricegroups.upsert import PriceRow, upsert_prices
from tests.factories import T0, make_chain_with_stores, make_products

D = timedelta(days=1)
SETTINGS = Settings(lateness_days=28)


def setup(conn, changed: int = 5):
    """Anchor A with members M (scraped in full) and N (spot-checked), and a loner L in a group of its own.

    Of 200 products, 0 to `changed` - 1 change regular price at the anchor on day 1 (1.00 -> 1.50,
    2.00 -> 2.50, ...); the rest do not. Five changes are an ordinary day (2.5 % of the list).
    """
    chain_id, (a, m, n, loner) = make_chain_with_stores(conn, "acme", 4)
    p = make_products(conn, 200)
    conn.execute("UPDATE stores SET group_id = (SELECT group_id FROM stores WHERE store_id = %s) WHERE store_id = ANY(%s)",
                 (a, [m, n]))
    conn.execute("DELETE FROM store_groups g WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.group_id = g.group_id)")
    conn.execute("INSERT INTO listings (chain_id, sku, product_id, first_seen_at, last_seen_at)"
                 " SELECT %s, 'sku' || i, (%s::bigint[])[i + 1], %s, %s FROM generate_series(0, 199) i",
                 (chain_id, p, T0, T0))
    upsert_prices(conn, [PriceRow(p[i], s, Decimal(i + 1), T0) for i in range(200) for s in (a, m, n, loner)], "r0")
    upsert_prices(conn, [PriceRow(p[i], a, Decimal(i + 1) + (Decimal("0.5") if i < changed else 0), T0 + D)
                         for i in range(200)], "r1")
    conn.commit()
    return chain_id, a, m, n, loner, p


def scrape(conn, run: str, chain_id: int, store: int, products: list[int], prices: list[str], at) -> None:
    for product, price in zip(products, prices):
        conn.execute(
            """INSERT INTO scraped_items (run_id, store_id, chain_id, sku, name, price, scraped_at, product_id)
               VALUES (%s, %s, %s, %s, 'x', %s, %s, %s)""",
            (run, store, chain_id, f"p{product}", Decimal(price), at, product),
        )


def spot_check(conn, run: str, chain_id: int, store: int, skus: dict[str, str], at) -> None:
    conn.execute("INSERT INTO spot_checks (run_id, store_id, chain_id, checked_at, pages, items) VALUES (%s, %s, %s, %s, 1, %s)",
                 (run, store, chain_id, at, len(skus)))
    for sku, price in skus.items():
        conn.execute("INSERT INTO spot_check_items (run_id, store_id, sku, price) VALUES (%s, %s, %s, %s)",
                     (run, store, sku, Decimal(price)))


def sums(conn, *stores: int) -> list[tuple[int, int]]:
    return [conn.execute("SELECT late_changes, timely_changes FROM stores WHERE store_id = %s", (s,)).fetchone()
            for s in stores]


def test_members_observed_in_a_run_are_counted_late_or_on_time(conn):
    chain_id, a, m, n, loner, p = setup(conn)
    # M shows the old price on 0-2, the new one on 3, a third price on 4; 5 did not change
    scrape(conn, "r1", chain_id, m, p, ["1.00", "2.00", "3.00", "4.50", "9.99", "6.00"], T0 + D)
    spot_check(conn, "r1", chain_id, n, {"sku0": "1.50", "sku1": "2.50", "sku2": "3.00"}, T0 + D)
    scrape(conn, "r1", chain_id, loner, p, ["1.00"] * 6, T0 + D)  # its own anchor: nothing to compare with
    conn.commit()
    counts = record_lateness(conn, "r1", T0 + D, SETTINGS)
    assert sums(conn, m, n, loner, a) == [(3, 1), (1, 2), (0, 0), (0, 0)]
    assert counts["late_changes"] == 4 and counts["timely_changes"] == 3 and counts["late_stores"] == 1
    # what the view serves M now: the replaced price where its anchor's change is fresh
    served = {product: (price, source) for product, price, source in conn.execute(
        "SELECT product_id, price, source FROM effective_prices WHERE store_id = %s", (m,))}
    assert served[p[0]] == (Decimal("1.00"), "observed")  # its own observation comes first
    conn.execute("DELETE FROM prices WHERE store_id = %s", (m,))  # as if deduplicated against the anchor
    served = {product: (price, source) for product, price, source in conn.execute(
        "SELECT product_id, price, source FROM effective_prices WHERE store_id = %s", (m,))}
    assert served[p[0]] == (Decimal("1.00"), "late") and served[p[3]] == (Decimal("4.00"), "late")
    assert served[p[5]] == (Decimal("6.00"), "inferred")


def test_a_rerun_counts_the_same_and_old_evidence_expires(conn):
    chain_id, a, m, n, loner, p = setup(conn)
    scrape(conn, "r1", chain_id, m, p, ["1.00", "2.00", "3.00", "4.00", "5.50", "6.00"], T0 + D)
    conn.commit()
    record_lateness(conn, "r1", T0 + D, SETTINGS)
    record_lateness(conn, "r1", T0 + D, SETTINGS)
    assert sums(conn, m) == [(4, 1)]
    assert conn.execute("SELECT count(*) FROM store_lateness").fetchone()[0] == 1
    # 29 days later, a run that observes nobody: the old evidence is out of the window
    record_lateness(conn, "r29", T0 + 30 * D, SETTINGS)
    assert sums(conn, m) == [(0, 0)]


def test_a_day_the_anchors_list_is_repriced_en_masse_is_no_evidence(conn):
    """A zone that moves or converges changes a large share of the list at once; stores apply it together."""
    chain_id, a, m, n, loner, p = setup(conn, changed=20)  # 10 % of the list: more than 3 x 1 %
    scrape(conn, "r1", chain_id, m, p[:20], [f"{i + 1}.00" for i in range(20)], T0 + D)  # all "late"
    conn.commit()
    counts = record_lateness(conn, "r1", T0 + D, SETTINGS)
    assert sums(conn, m) == [(0, 0)] and counts["late_observed"] == 0


def test_an_anchor_whose_members_showed_its_changes_a_day_earlier_is_counted_late(conn):
    chain_id, a, m, n, loner, p = setup(conn)
    conn.execute("INSERT INTO runs (run_id, logical_date) VALUES ('r0', %s), ('r1', %s)", (T0, T0 + D))
    # the day before the anchor's change, M already showed the new price of 0-2 and the old one of 3;
    # N's spot check showed the new price of 0 too
    scrape(conn, "r0", chain_id, m, p[:4], ["1.50", "2.50", "3.50", "4.00"], T0)
    spot_check(conn, "r0", chain_id, n, {"sku0": "1.50"}, T0)
    conn.commit()
    counts = record_lateness(conn, "r1", T0 + D, SETTINGS)
    assert sums(conn, a, m, n) == [(3, 1), (0, 0), (0, 0)] and counts["late_stores"] == 1
    record_lateness(conn, "r1", T0 + D, SETTINGS)  # a re-run counts the same
    assert sums(conn, a) == [(3, 1)]


def test_a_usually_late_anchor_has_two_punctual_members_scraped(conn):
    from pricegroups.grouping.service import late_anchor_members

    chain_id, a, m, n, loner, p = setup(conn)
    assert late_anchor_members(conn, T0 + D) == []
    conn.execute("UPDATE stores SET late_changes = 4, timely_changes = 1 WHERE store_id = %s", (a,))
    assert late_anchor_members(conn, T0 + D) == sorted([m, n])
    conn.execute("UPDATE stores SET last_scraped_at = %s WHERE store_id = %s", (T0 + D, m))
    assert late_anchor_members(conn, T0 + D) == [n]  # scraped in this run already
    conn.execute("UPDATE stores SET late_changes = 3 WHERE store_id = %s", (n,))  # late itself: one punctual left
    assert late_anchor_members(conn, T0 + D) == []
