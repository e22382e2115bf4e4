"""The bulk price upsert: exact counts, untouched unchanged rows, no older data, rejects with reasons."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pricegroups import db
from pricegroups import upsert as upsert_module
from pricegroups.settings import Settings
from pricegroups.upsert import PriceRow, upsert_prices, upsert_scraped_items
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


def test_a_regular_price_change_keeps_the_price_it_replaced(conn, shop):
    """previous_price: what a store late with the change still charges (grouping/lateness.py)."""
    (s1, _), p = shop
    two = Decimal("2.00")
    upsert_prices(conn, [PriceRow(p[i], s1, two, T0) for i in range(4)]
                  + [PriceRow(p[4], s1, Decimal("1.50"), T0, two, on_special=True)], "r0")
    upsert_prices(conn, [
        PriceRow(p[0], s1, Decimal("2.20"), T1),  # a regular-price change
        PriceRow(p[1], s1, Decimal("1.80"), T1, two, on_special=True),  # a special starts
        PriceRow(p[2], s1, two, T1, unit_measure="1kg"),  # the same price, another field changed
        PriceRow(p[3], s1, two, T1),  # unchanged
        PriceRow(p[4], s1, Decimal("2.10"), T1),  # the special ends at another regular price
        PriceRow(p[5], s1, two, T1),  # new
    ], "r1")
    upsert_prices(conn, [PriceRow(p[0], s1, Decimal("2.20"), T2)], "r2")  # re-observed unchanged: kept
    conn.commit()
    previous = dict(conn.execute("SELECT product_id, previous_price FROM prices").fetchall())
    assert previous == {p[0]: two, p[1]: None, p[2]: None, p[3]: None, p[4]: None, p[5]: None}
    upsert_prices(conn, [PriceRow(p[0], s1, Decimal("2.40"), T2 + timedelta(hours=1))], "r3")
    conn.commit()
    assert conn.execute("SELECT previous_price FROM prices WHERE product_id = %s", (p[0],)).fetchone()[0] \
        == Decimal("2.20")


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
        (lambda p, s: PriceRow(p, s, Decimal("-Infinity"), T1), "is -Infinity"),
        (lambda p, s: PriceRow(p, s, Decimal("sNaN"), T1), "price is NaN"),
        (lambda p, s: PriceRow(p, s, Decimal("3.00"), T1, Decimal("-NaN")), "was_price is NaN"),
        (lambda p, s: PriceRow(p, s, Decimal("1E+999"), T1), "above the ceiling"),
        (lambda p, s: PriceRow(p, s, Decimal("1E+5000"), T1), "out of range"),
        (lambda p, s: PriceRow(p, s, Decimal("3.00"), T1, unit_price=Decimal("1E-5000")), "out of range"),
        (lambda p, s: PriceRow(p, s, 10**1200, T1), "out of range"),
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


def _wait_until_blocked(db_url: str, pid: int) -> None:
    """Return once backend pid waits for a lock (here: on another transaction's uncommitted key)."""
    with psycopg.connect(db_url, autocommit=True) as watcher:
        for _ in range(500):
            if watcher.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the upsert never waited for the other writer")


@pytest.mark.parametrize("in_caller_transaction", [False, True])
def test_a_key_inserted_under_the_chunk_is_updated_not_a_failure(db_url, conn, shop, in_caller_transaction):
    (s1, _), p = shop
    # the upsert classifies (p0, s1) as new; another writer (say a catalogue merge) holds the same key
    # uncommitted, so the upsert's insert waits for it, then finds the key taken when it commits
    other = psycopg.connect(db_url)
    other.execute(
        "INSERT INTO prices (product_id, store_id, price, scraped_at, run_id) VALUES (%s, %s, 1.00, %s, 'other')",
        (p[0], s1, T0),
    )
    outcome: dict[str, object] = {}

    def upsert() -> None:
        try:
            rows = [PriceRow(p[0], s1, Decimal("2.00"), T1), PriceRow(p[1], s1, Decimal("2.00"), T1)]
            if in_caller_transaction:
                with conn.transaction():
                    outcome["result"] = upsert_prices(conn, rows, "r1")
            else:
                outcome["result"] = upsert_prices(conn, rows, "r1")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            outcome["error"] = exc

    writer = threading.Thread(target=upsert)
    writer.start()
    _wait_until_blocked(db_url, conn.info.backend_pid)
    other.commit()
    other.close()
    writer.join(timeout=30)
    assert "error" not in outcome
    assert outcome["result"].as_counts() == {  # type: ignore[union-attr]
        "created": 1, "updated": 1, "unchanged": 0, "ignored_older": 0, "rejected": 0}
    assert _prices(conn)[(p[0], s1)][0] == Decimal("2.00")


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


# -- chunks of whole stores ---------------------------------------------------------------------------

TINY = Settings(upsert_batch_rows=7)  # smaller than most stores below: one store per chunk, or two small ones
HUGE = Settings(upsert_batch_rows=10**9)


@contextmanager
def _twin(server_url: str, db_url: str) -> Iterator[str]:
    """A copy of the test's database (no connection may be open on it), dropped afterwards."""
    source = conninfo_to_dict(db_url)["dbname"]
    name = f"{source}_twin"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(source))
        )
    try:
        yield db.with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _state(url: str) -> dict[str, list]:
    """Everything an upsert writes, in a comparable form."""
    with psycopg.connect(url) as c:
        return {
            "prices": c.execute("SELECT * FROM prices ORDER BY product_id, store_id").fetchall(),
            "stores": c.execute(
                "SELECT store_id, first_scraped_at, last_scraped_at FROM stores ORDER BY store_id"
            ).fetchall(),
            "rejected": sorted(
                c.execute(
                    "SELECT run_id, stage, store_id, product_id, reason, detail::text FROM rejected_items"
                ).fetchall(),
                key=repr,
            ),
        }


def _seed_world(url: str) -> tuple[list[int], list[int]]:
    """Six stores (one with a later observation), 40 products, prices at T0 for four stores."""
    with psycopg.connect(url) as c:
        _, stores = make_chain_with_stores(c, stores=6)
        products = make_products(c, 40)
        seed = [PriceRow(products[i], s, Decimal("2.00") + i, T0) for s in stores[:4] for i in range(20)]
        upsert_prices(c, seed, "r0", HUGE)
        c.execute("UPDATE stores SET last_scraped_at = %s WHERE store_id = %s", (T2, stores[4]))
        c.commit()
    return stores, products


def _mixed_batch(stores: list[int], p: list[int]) -> list:
    """Every outcome, bad rows of both kinds, duplicates, one store bigger than TINY, not store by store."""
    s0, s1, s2, s3, s4, s5 = stores
    rows: list = []
    rows += [PriceRow(p[i], s0, Decimal("2.00") + i, T1) for i in range(30)]  # 20 unchanged, 10 new
    rows += [PriceRow(p[i], s1, Decimal("9.00"), T1) for i in range(10)]  # changed
    rows += [PriceRow(p[i], s1, Decimal("2.00") + i, T1) for i in range(10, 15)]  # unchanged
    rows.append(PriceRow(p[15], s1, Decimal("1.00"), T0 - timedelta(days=1)))  # older than the stored row
    rows += [PriceRow(p[i], s2, Decimal("3.00"), T1) for i in range(20, 30)]
    rows += [PriceRow(p[5], s2, Decimal("0.00"), T1), PriceRow(p[7], s2, Decimal("1.005"), T1)]
    rows += [PriceRow(999_999, s2, Decimal("1.00"), T1), PriceRow(p[0], 999_999, Decimal("1.00"), T1)]
    rows += [PriceRow(p[3], s3, Decimal("4.00"), T1), PriceRow(p[3], s3, Decimal("4.50"), T0)]  # duplicate
    rows += [PriceRow(p[i], s4, Decimal("5.00"), T1) for i in range(8)]  # older than the store's observation
    rows += [PriceRow(p[i], s5, Decimal("6.00"), T1) for i in range(40)]  # bigger than a chunk
    rows += [None, PriceRow(p[9], s5, 2.5, T1)]  # rejected before COPY
    return sorted(rows, key=lambda r: (repr(r[0]), repr(r[1])) if r else ("", ""))  # products first


def _clean_batch(stores: list[int], p: list[int]) -> list[PriceRow]:
    """A later scrape without duplicates (the unranked statement), again not store by store."""
    price = [Decimal("2.00") + i if i % 3 else Decimal("7.00") for i in range(25)]
    rows = [PriceRow(p[i], s, price[i], T2) for s in stores for i in range(25)]
    return sorted(rows, key=lambda r: (r.product_id, r.store_id))


def test_chunked_upsert_equals_the_one_shot_upsert(server_url, db_url):
    stores, products = _seed_world(db_url)
    batches = [(_mixed_batch(stores, products), 7), (_clean_batch(stores, products), 6)]  # (rows, chunks)
    with _twin(server_url, db_url) as twin_url:
        for batch, chunks in batches:
            with psycopg.connect(db_url) as c:
                chunked = upsert_prices(c, batch, "r1", TINY)
            with psycopg.connect(twin_url) as c:
                one_shot = upsert_prices(c, batch, "r1", HUGE)
            assert (chunked.chunks, one_shot.chunks) == (chunks, 1)
            assert chunked.as_counts() == one_shot.as_counts()
            assert chunked.rejections == one_shot.rejections
            assert _state(db_url) == _state(twin_url)
            assert chunked.total == len(batch)


def test_the_mixed_batch_has_every_outcome(db_url):
    stores, products = _seed_world(db_url)
    with psycopg.connect(db_url) as c:
        result = upsert_prices(c, _mixed_batch(stores, products), "r1", TINY)
    # s1's product 7 is re-observed at 9.00, its seeded price: unchanged, not changed
    expected = {"created": 60, "updated": 10, "unchanged": 26, "ignored_older": 9, "rejected": 7}
    assert result.as_counts() == expected
    assert sorted(r.reason.split(" ")[0] for r in result.rejections) == [
        "duplicate", "not", "price", "price", "price", "unknown", "unknown"]


def test_chunked_scraped_items_upsert_equals_the_one_shot_upsert(server_url, db_url):
    stores, products = _seed_world(db_url)
    with psycopg.connect(db_url) as c:
        chain = c.execute("SELECT chain_id FROM stores WHERE store_id = %s", (stores[0],)).fetchone()[0]
        c.execute(  # sku g and sku g + 30 resolve to one product: five duplicates per store
            """INSERT INTO scraped_items (run_id, store_id, chain_id, sku, name, price, was_price, on_special,
                                          scraped_at, product_id)
               SELECT 'r1', s, %(c)s, 'sku' || g, 'Item ' || g, 1.00 + g / 100.0, NULL, false, %(t)s,
                      (%(p)s::bigint[])[1 + g %% 30]
               FROM unnest(%(s)s::int[]) s, generate_series(0, 34) g""",
            {"c": chain, "t": T1, "p": products, "s": stores},
        )
        c.commit()
    with _twin(server_url, db_url) as twin_url:
        with psycopg.connect(db_url) as c:
            chunked = upsert_scraped_items(c, "r1", TINY)
        with psycopg.connect(twin_url) as c:
            one_shot = upsert_scraped_items(c, "r1", HUGE)
        assert (chunked.chunks, one_shot.chunks) == (6, 1)
        assert chunked.as_counts() == one_shot.as_counts()
        assert chunked.rejections == one_shot.rejections
        assert _state(db_url) == _state(twin_url)
    assert one_shot.rejected == 5 * len(stores)  # the duplicates


def test_a_crash_between_chunks_leaves_whole_stores_and_a_rerun_converges(server_url, db_url, monkeypatch):
    stores, products = _seed_world(db_url)
    batch = _mixed_batch(stores, products)
    seeded = _state(db_url)
    with _twin(server_url, db_url) as twin_url:
        with psycopg.connect(twin_url) as c:
            reference = upsert_prices(c, batch, "r1", TINY)
        expected = _state(twin_url)
    applied: list[list[int]] = []
    apply_chunk = upsert_module._apply_chunk

    def crash_before_the_second_chunk(cur, statement, chunk_stores, run_id, settings):
        if applied:
            with psycopg.connect(db_url, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s, 10000)", (cur.connection.info.backend_pid,))
        applied.append(chunk_stores)
        return apply_chunk(cur, statement, chunk_stores, run_id, settings)

    monkeypatch.setattr(upsert_module, "_apply_chunk", crash_before_the_second_chunk)
    with pytest.raises(psycopg.OperationalError):
        with psycopg.connect(db_url) as c:
            upsert_prices(c, batch, "r1", TINY)
    monkeypatch.undo()

    done = set(applied[0])
    after_crash = _state(db_url)

    def of_stores(state, wanted):
        return [r for r in state["prices"] if r[1] in wanted], [r for r in state["stores"] if r[0] in wanted]

    others = set(stores) - done
    assert of_stores(after_crash, done) == of_stores(expected, done)  # whole stores applied
    assert of_stores(after_crash, others) == of_stores(seeded, others)  # the rest untouched
    with psycopg.connect(db_url) as c:
        rerun = upsert_prices(c, batch, "r1", TINY)
    after_rerun = _state(db_url)
    assert after_rerun["prices"] == expected["prices"] and after_rerun["stores"] == expected["stores"]
    assert rerun.total == reference.total and rerun.created < reference.created


def test_chunks_commit_on_an_idle_connection(conn, shop):
    (s1, s2), p = shop
    rows = [PriceRow(p[0], s, Decimal("1.00"), T1) for s in (s1, s2)]
    result = upsert_prices(conn, rows, "r1", Settings(upsert_batch_rows=1))
    conn.rollback()  # nothing left to roll back: each chunk committed
    assert result.chunks == 2 and len(_prices(conn)) == 2


def test_inside_a_caller_transaction_chunks_are_savepoints(conn, shop):
    (s1, s2), p = shop

    class Abort(Exception):
        pass

    rows = [PriceRow(p[0], s, Decimal("1.00"), T1) for s in (s1, s2)]
    with pytest.raises(Abort), conn.transaction():
        result = upsert_prices(conn, rows, "r1", Settings(upsert_batch_rows=1))
        assert result.chunks == 2 and len(_prices(conn)) == 2
        raise Abort
    assert _prices(conn) == {}
    assert conn.execute("SELECT count(*) FROM stores WHERE last_scraped_at > %s", (T0,)).fetchone()[0] == 0


def test_concurrent_chunked_upserts_one_in_a_caller_transaction_do_not_deadlock(db_url, conn):
    _, stores = make_chain_with_stores(conn, stores=6)
    p = make_products(conn, 5)
    newer = [PriceRow(pid, s, Decimal("5.00"), T2) for pid in p for s in stores]
    older = [PriceRow(pid, s, Decimal("4.00"), T1) for pid in reversed(p) for s in reversed(stores)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(rows, run_id, one_transaction):
        try:
            with psycopg.connect(db_url) as c:
                for _ in range(5):
                    barrier.wait(timeout=10)
                    if one_transaction:  # chunks are savepoints: every lock is held to the end
                        with c.transaction():
                            upsert_prices(c, rows, run_id, Settings(upsert_batch_rows=10))
                    else:
                        upsert_prices(c, rows, run_id, Settings(upsert_batch_rows=10))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(newer, "new", False)),
               threading.Thread(target=write, args=(older, "old", True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    stored = _prices(conn)
    assert len(stored) == len(newer)
    assert {(v[0], v[3]) for v in stored.values()} == {(Decimal("5.00"), T2)}
