"""The bulk price upsert: exact counts, untouched unchanged rows, no older data, rejects with reasons."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from pricegroups.upsert import PriceRow, upsert_prices
from tests.factories import T0, make_chain_with_stores, make_products

T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)


@pytest.fixture
def shop(conn):
    _, stores = make_chain_with_stores(conn, stores=2)
    products = make_products(conn, 10)
    return stores, products


def _prices(conn) -> dict[tuple[int, int], tuple]:
    rows = conn.execute(
        "SELECT product_id, store_id, price, was_price, on_special, scraped_at, run_id FROM prices"
    ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_mixed_batch_reports_exact_counts(conn, shop):
    (s1, s2), p = shop
    seed = [PriceRow(p[i], s1, Decimal("2.00"), T0) for i in range(6)]
    assert upsert_prices(conn, seed, "r0").created == 6
    batch = [
        PriceRow(p[0], s1, Decimal("2.00"), T1),  # unchanged
        PriceRow(p[1], s1, Decimal("2.00"), T1),  # unchanged
        PriceRow(p[2], s1, Decimal("2.50"), T1),  # updated
        PriceRow(p[3], s1, Decimal("1.50"), T1, Decimal("2.00"), on_special=True),  # updated: now a special
        PriceRow(p[4], s1, Decimal("9.99"), T0 - timedelta(days=1)),  # older than stored
        PriceRow(p[6], s1, Decimal("4.00"), T1),  # created
        PriceRow(p[6], s2, Decimal("4.10"), T1),  # created
        PriceRow(p[7], s2, Decimal("0.00"), T1),  # rejected: not positive
        PriceRow(999_999, s2, Decimal("1.00"), T1),  # rejected: unknown product
    ]
    result = upsert_prices(conn, batch, "r1")
    conn.commit()
    assert result.as_counts() == {"created": 2, "updated": 2, "unchanged": 2, "ignored_older": 1, "rejected": 2}
    assert result.total == len(batch)
    stored = _prices(conn)
    assert stored[(p[2], s1)][:1] == (Decimal("2.50"),)
    assert stored[(p[3], s1)][:3] == (Decimal("1.50"), Decimal("2.00"), True)
    assert stored[(p[4], s1)][0] == Decimal("2.00")
    assert len(stored) == 8


def test_unchanged_rows_are_not_rewritten(conn, shop):
    (s1, _), p = shop
    upsert_prices(conn, [PriceRow(p[0], s1, Decimal("3.00"), T0), PriceRow(p[1], s1, Decimal("3.00"), T0)], "r0")
    conn.commit()
    before = dict(conn.execute("SELECT product_id, xmin::text FROM prices").fetchall())
    result = upsert_prices(
        conn, [PriceRow(p[0], s1, Decimal("3.00"), T1), PriceRow(p[1], s1, Decimal("3.10"), T1)], "r1"
    )
    conn.commit()
    after = dict(conn.execute("SELECT product_id, xmin::text FROM prices").fetchall())
    assert (result.unchanged, result.updated) == (1, 1)
    assert after[p[0]] == before[p[0]]
    assert after[p[1]] != before[p[1]]
    # the store's freshness moved on although the unchanged row was left alone
    assert conn.execute("SELECT last_scraped_at FROM stores WHERE store_id = %s", (s1,)).fetchone()[0] == T1


def test_backfill_never_makes_a_price_older(conn, shop):
    (s1, _), p = shop
    upsert_prices(conn, [PriceRow(p[0], s1, Decimal("3.00"), T0)], "r0")
    # re-observed unchanged at T2: the row keeps T0 but the store was seen at T2
    upsert_prices(conn, [PriceRow(p[0], s1, Decimal("3.00"), T2)], "r2")
    # a backfill of T1 with another value, and of a product the store no longer had at T2
    result = upsert_prices(
        conn, [PriceRow(p[0], s1, Decimal("2.00"), T1), PriceRow(p[5], s1, Decimal("2.00"), T1)], "backfill"
    )
    conn.commit()
    assert result.ignored_older == 2
    assert _prices(conn) == {(p[0], s1): (Decimal("3.00"), None, False, T0, "r0")}


def test_rerunning_the_same_batch_changes_nothing(conn, shop):
    (s1, s2), p = shop
    batch = [PriceRow(p[i], s, Decimal("1.25") + i, T1) for i in range(5) for s in (s1, s2)]
    first = upsert_prices(conn, batch, "r1")
    conn.commit()
    snapshot = conn.execute("SELECT product_id, store_id, xmin::text FROM prices ORDER BY 1, 2").fetchall()
    second = upsert_prices(conn, batch, "r1")
    conn.commit()
    assert first.created == 10
    assert second.as_counts() == {"created": 0, "updated": 0, "unchanged": 10, "ignored_older": 0, "rejected": 0}
    assert conn.execute("SELECT product_id, store_id, xmin::text FROM prices ORDER BY 1, 2").fetchall() == snapshot


@pytest.mark.parametrize(
    "row, reason",
    [
        (lambda p, s: PriceRow(p, s, Decimal("-1.00"), T1), "not positive"),
        (lambda p, s: PriceRow(p, s, Decimal("0"), T1), "not positive"),
        (lambda p, s: PriceRow(p, s, Decimal("NaN"), T1), "is NaN"),
        (lambda p, s: PriceRow(p, s, Decimal("Infinity"), T1), "is Infinity"),
        (lambda p, s: PriceRow(p, s, float("nan"), T1), "NaN"),
        (lambda p, s: PriceRow(p, s, 2.5, T1), "must be a Decimal"),
        (lambda p, s: PriceRow(p, s, "3.50", T1), "must be a Decimal"),
        (lambda p, s: PriceRow(p, s, Decimal("250000.00"), T1), "above the ceiling"),
        (lambda p, s: PriceRow(p, s, Decimal("1.005"), T1), "fractions of a cent"),
        (lambda p, s: PriceRow(p, s, Decimal("3.00"), T1, Decimal("2.00"), on_special=True), "lower than price"),
        (lambda p, s: PriceRow(p, s, Decimal("3.00"), T1.replace(tzinfo=None)), "timezone-aware"),
        (lambda p, s: PriceRow(p, s, Decimal("3.00"), "2026-11-02"), "timezone-aware"),
        (lambda p, s: PriceRow(str(p), s, Decimal("3.00"), T1), "must be integers"),
        (lambda p, s: PriceRow(p, s, Decimal("3.00"), T1, on_special="yes"), "on_special must be a bool"),
        (lambda p, s: PriceRow(p, s, Decimal("3.00"), T1, promo_text="a\x00b"), "NUL"),
        (lambda p, s: PriceRow(p, 2**40, Decimal("3.00"), T1), "out of range"),
        (lambda p, s: (p, s, Decimal("3.00")), "not a price row"),
        (lambda p, s: None, "not a price row"),
        (lambda p, s: PriceRow(p, 999_999, Decimal("3.00"), T1), "unknown store"),
        (lambda p, s: PriceRow(999_999, s, Decimal("3.00"), T1), "unknown product"),
    ],
)
def test_bad_rows_are_rejected_with_a_reason_and_the_good_rows_land(conn, shop, row, reason):
    (s1, _), p = shop
    good = [PriceRow(p[1], s1, Decimal("1.00"), T1), PriceRow(p[2], s1, Decimal("1.00"), T1)]
    result = upsert_prices(conn, [good[0], row(p[0], s1), good[1]], "r1")
    conn.commit()
    assert result.created == 2
    assert [(r.index, reason in r.reason) for r in result.rejections] == [(1, True)]
    recorded = conn.execute("SELECT stage, reason FROM rejected_items WHERE run_id = 'r1'").fetchall()
    assert len(recorded) == 1 and recorded[0][0] == "upsert" and reason in recorded[0][1]


def test_duplicate_keys_in_a_batch_keep_the_newest(conn, shop):
    (s1, _), p = shop
    result = upsert_prices(
        conn,
        [PriceRow(p[0], s1, Decimal("1.00"), T0), PriceRow(p[0], s1, Decimal("1.20"), T1)],
        "r1",
    )
    conn.commit()
    assert result.created == 1
    assert [r.index for r in result.rejections] == [0]
    assert "duplicate" in result.rejections[0].reason
    assert _prices(conn)[(p[0], s1)][0] == Decimal("1.20")


def test_integer_prices_and_trailing_zeros_are_accepted(conn, shop):
    (s1, _), p = shop
    result = upsert_prices(
        conn, [PriceRow(p[0], s1, 3, T1), PriceRow(p[1], s1, Decimal("2.500"), T1)], "r1"
    )
    conn.commit()
    assert result.created == 2 and result.rejected == 0
    assert _prices(conn)[(p[1], s1)][0] == Decimal("2.50")


def test_empty_batch_is_a_no_op(conn, shop):
    assert upsert_prices(conn, [], "r1").as_counts() == dict.fromkeys(
        ["created", "updated", "unchanged", "ignored_older", "rejected"], 0
    )


def test_concurrent_overlapping_upserts_end_consistent_without_deadlock(db_url, conn, shop):
    (s1, s2), p = shop
    # two writers each see prices for both stores, interleaved keys, different times
    newer = [PriceRow(pid, s, Decimal("5.00"), T2) for pid in p for s in (s1, s2)]
    older = [PriceRow(pid, s, Decimal("4.00"), T1) for pid in reversed(p) for s in (s2, s1)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(rows, run_id):
        try:
            with psycopg.connect(db_url) as c:
                for _ in range(5):
                    barrier.wait(timeout=10)
                    upsert_prices(c, rows, run_id)
                    c.commit()
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(newer, "new")), threading.Thread(target=write, args=(older, "old"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    stored = _prices(conn)
    assert len(stored) == 2 * len(p)
    assert {v[0] for v in stored.values()} == {Decimal("5.00")}
    assert {v[3] for v in stored.values()} == {T2}


def test_two_batches_in_one_transaction(conn, shop):
    (s1, s2), p = shop
    with conn.transaction():
        first = upsert_prices(conn, [PriceRow(p[0], s1, Decimal("1.00"), T1)], "r1")
        second = upsert_prices(conn, [PriceRow(p[0], s2, Decimal("1.00"), T1)], "r1")
    assert (first.created, second.created) == (1, 1)


def test_scraped_items_of_a_run_are_upserted_set_based(conn, shop):
    (s1, s2), p = shop
    chain = conn.execute("SELECT chain_id FROM stores WHERE store_id = %s", (s1,)).fetchone()[0]
    conn.execute(
        """INSERT INTO scraped_items (run_id, store_id, chain_id, sku, name, price, was_price, on_special,
                                      scraped_at, product_id)
           VALUES ('r1', %(s1)s, %(c)s, 'a', 'A', 2.00, NULL, false, %(t)s, %(p0)s),
                  ('r1', %(s1)s, %(c)s, 'b', 'B', 1.50, 2.00, true, %(t)s, %(p1)s),
                  ('r1', %(s2)s, %(c)s, 'a', 'A', 2.10, NULL, false, %(t)s, %(p0)s),
                  ('r1', %(s2)s, %(c)s, 'z', 'Unresolved', 9.99, NULL, false, %(t)s, NULL),
                  ('r0', %(s2)s, %(c)s, 'a', 'Other run', 3.00, NULL, false, %(t)s, %(p0)s)""",
        {"s1": s1, "s2": s2, "c": chain, "t": T1, "p0": p[0], "p1": p[1]},
    )
    from pricegroups.upsert import upsert_scraped_items

    result = upsert_scraped_items(conn, "r1")
    again = upsert_scraped_items(conn, "r1")
    only_s2 = upsert_scraped_items(conn, "r1", store_ids=[s2])
    conn.commit()
    assert result.as_counts() == {"created": 3, "updated": 0, "unchanged": 0, "ignored_older": 0, "rejected": 0}
    assert again.unchanged == 3 and again.created == 0
    assert only_s2.unchanged == 1
    assert _prices(conn)[(p[1], s1)][:3] == (Decimal("1.50"), Decimal("2.00"), True)
    assert _prices(conn)[(p[0], s2)][0] == Decimal("2.10")
