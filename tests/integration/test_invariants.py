"""pricegroups.invariants: a state built by two real runs passes; each invariant broken by SQL fails alone.

The clean state is built once per worker (two daily runs through the pipeline's
own steps: scrape outcomes recorded, resolve, reconcile, enrich, upsert,
post-process, health checks, comparisons, merges, summary) and cloned for each
test, which then breaks one thing and asserts that exactly one check reports it.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterator

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pricegroups import cli, db, pipeline
from pricegroups.invariants import InvariantResult, check_invariants, price_times, regressions
from pricegroups.scrape.fields import ScrapedItem
from pricegroups.scrape.record import StoreOutcome, record_outcome
from tests.databases import create_database, drop_database
from tests.factories import T0, make_chain_with_stores

NAMES = ["groups", "group_events", "half_applied", "lost_prices", "regressed", "effective_prices"]
PRODUCTS = 40
DAY0, DAY1 = T0, T0 + timedelta(days=1)
_clones = itertools.count()


@dataclass(frozen=True)
class Shop:
    """What the tests need to know about the clean state (ids are the same in every clone)."""

    acme: int
    beta: int
    stores: dict[str, int]  # code -> store_id
    anchor_a: int  # anchor of zone A's group
    member_a: int  # a verified member of zone A's group
    failed: int  # a member of zone A whose day-1 scrape failed
    group_a: int
    group_b: int


# -- the clean state ----------------------------------------------------------


def _price(zone: str, product: int, day: int) -> Decimal:
    base = Decimal(100 + (product * 37) % 900) / 100
    if zone == "B" and product % 5 == 0:
        base += Decimal("0.50")  # zone B: a fifth of the list differs
    if zone == "beta":
        base += Decimal("0.20")
    if zone == "A" and product == 0 and day == 1:
        base += Decimal("0.30")  # a price change on day 1, seen by every store of zone A
    return base


def _items(chain: str, zone: str, day: int, extra: tuple[ScrapedItem, ...] = ()) -> list[ScrapedItem]:
    listed = [ScrapedItem(f"{chain}-{p}", f"Item {p} 500g", _price(zone, p, day)) for p in range(PRODUCTS)]
    return listed + list(extra)


def _run_day(
    conn: psycopg.Connection, run_id: str, at: datetime, outcomes: list[tuple[int, StoreOutcome]]
) -> None:
    """One daily run in DAG order, scraping replaced by recorded outcomes."""
    conn.commit()  # start migrates, outside any transaction
    context = pipeline.start(conn, run_id, at, {}, "scheduled")
    for chain_id, outcome in outcomes:
        record_outcome(conn, run_id, at, chain_id, outcome)
    pipeline.resolve(conn, context)
    pipeline.reconcile(conn, context)
    pipeline.enrich(conn, context)
    pipeline.upsert(conn, context)
    pipeline.post_process(conn, context)
    for groups in pipeline.health_check_batches(conn, context):
        pipeline.health_check(conn, context, groups)
    for pairs in pipeline.candidate_pairs(conn, context):
        pipeline.compare_pairs(conn, context, pairs)
    pipeline.merge_groups(conn, context)
    pipeline.summary(conn, context)


def _build(conn: psycopg.Connection) -> Shop:
    acme, acme_ids = make_chain_with_stores(conn, "acme", 6)
    beta, beta_ids = make_chain_with_stores(conn, "beta", 2)
    zones = {s: "A" for s in acme_ids[:4]} | {s: "B" for s in acme_ids[4:]} | {s: "beta" for s in beta_ids}
    chain_of = {s: acme for s in acme_ids} | {s: beta for s in beta_ids}
    codes = dict(conn.execute("SELECT store_id, code FROM stores").fetchall())

    def ok(store: int, day: int, extra: tuple[ScrapedItem, ...] = ()) -> tuple[int, StoreOutcome]:
        chain = "beta" if chain_of[store] == beta else "acme"
        return chain_of[store], StoreOutcome(store, codes[store], "ok", pages=1,
                                             items=_items(chain, zones[store], day, extra))

    _run_day(conn, "day0", DAY0, [ok(s, 0) for s in acme_ids + beta_ids])
    anchor_a = conn.execute("SELECT anchor_store_id FROM store_groups g JOIN stores s USING (group_id)"
                            " WHERE s.store_id = %s", (acme_ids[0],)).fetchone()[0]
    failed = next(s for s in acme_ids[:4] if s != anchor_a)
    too_dear = (ScrapedItem("acme-dear", "Caviar 50g", Decimal("20000.00")),)  # above the price ceiling
    day1 = [ok(s, 1, too_dear if s == anchor_a else ()) for s in acme_ids + beta_ids if s != failed]
    day1.append((acme, StoreOutcome(failed, codes[failed], "failed", error="HTTP 503")))
    _run_day(conn, "day1", DAY1, day1)
    member_a = next(s for s in acme_ids[:4] if s not in (anchor_a, failed))
    group_of = dict(conn.execute("SELECT store_id, group_id FROM stores").fetchall())
    return Shop(acme, beta, {c: s for s, c in codes.items()}, anchor_a, member_a, failed,
                group_of[anchor_a], group_of[acme_ids[4]])


@pytest.fixture(scope="module")
def clean_database(server_url: str, template_database: str) -> Iterator[tuple[str, Shop]]:
    name = f"pgt_{os.getpid()}_invariants"
    with psycopg.connect(server_url, autocommit=True) as admin:
        create_database(admin, name, template_database)
    try:
        with psycopg.connect(db.with_database(server_url, name)) as conn:
            shop = _build(conn)
        yield name, shop
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            drop_database(admin, name)


@pytest.fixture
def state_url(server_url: str, clean_database: tuple[str, Shop]) -> Iterator[str]:
    """A clone of the clean state of this test's own."""
    name = f"{clean_database[0]}_{next(_clones)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        create_database(admin, name, clean_database[0])
    try:
        yield db.with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            drop_database(admin, name)


@pytest.fixture
def state(state_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(state_url) as conn:
        yield conn


@pytest.fixture
def shop(clean_database: tuple[str, Shop]) -> Shop:
    return clean_database[1]


def failing(conn: psycopg.Connection, **kwargs) -> dict[str, InvariantResult]:
    return {r.name: r for r in check_invariants(conn, **kwargs) if not r.ok}


def only(conn: psycopg.Connection, name: str, expected: str, **kwargs) -> InvariantResult:
    """Exactly invariant `name` fails, and one of its violations says `expected`."""
    failed = failing(conn, **kwargs)
    assert list(failed) == [name], {n: r.violations for n, r in failed.items()}
    assert any(expected in v for v in failed[name].violations), failed[name].violations
    return failed[name]


def bypassing_foreign_keys(conn: psycopg.Connection) -> None:
    """Let this transaction break what the deferred foreign keys guard (superuser only)."""
    if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
        pytest.skip("breaking the group constraints needs a superuser (session_replication_role)")
    conn.execute("SET LOCAL session_replication_role = replica")


def a_day1_product(conn: psycopg.Connection, store: int) -> tuple[int, str]:
    """The product (and sku) whose price changed on day 1, as the store's prices hold it."""
    return conn.execute(
        """SELECT p.product_id, l.sku FROM prices p JOIN listings l USING (product_id)
           WHERE p.store_id = %s AND p.run_id = 'day1' AND l.sku LIKE 'acme-%%' ORDER BY 1 LIMIT 1""",
        (store,),
    ).fetchone()


# -- the clean state passes ---------------------------------------------------


def test_two_real_runs_leave_a_state_where_every_invariant_holds(state, shop):
    results = check_invariants(state)
    assert [r.name for r in results] == NAMES
    assert {r.name: r.violations for r in results if not r.ok} == {}
    assert all(r.description for r in results)
    # the state is worth checking: merges, verifications (deduplication), a rejection, a failed scrape
    kinds = dict(state.execute("SELECT kind, count(*) FROM group_events GROUP BY kind").fetchall())
    assert kinds["merged"] >= 4 and kinds["verified"] >= 1
    assert state.execute("SELECT count(*) FROM rejected_items WHERE stage = 'upsert'").fetchone()[0] == 1
    assert state.execute("SELECT status FROM scrape_log WHERE run_id = 'day1' AND store_id = %s",
                         (shop.failed,)).fetchone() == ("failed",)
    rows = state.execute("SELECT count(*) FROM prices WHERE store_id = %s", (shop.member_a,)).fetchone()
    assert rows == (0,), "a verified member keeps only its overrides"
    assert state.execute("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL").fetchone()[0] == 2


def test_a_run_id_narrows_the_per_run_checks_and_still_passes(state, shop):
    results = check_invariants(state, run_id="day1")
    assert all(r.ok for r in results)
    assert any("this run's events only" in note for r in results for note in r.skipped)


def test_an_open_transaction_of_the_caller_is_checked_as_it_stands(state, shop):
    state.execute("DELETE FROM prices WHERE store_id = %s", (shop.anchor_a,))  # not committed
    assert "lost_prices" in failing(state)
    state.rollback()
    assert failing(state) == {}


# -- 1. groups ----------------------------------------------------------------


def test_a_store_in_a_group_that_does_not_exist_fails_groups(state, shop):
    with state.transaction():
        bypassing_foreign_keys(state)
        state.execute("UPDATE stores SET group_id = 999999 WHERE store_id = %s", (shop.member_a,))
    only(state, "groups", "is in group 999999, which does not exist")


def test_a_group_whose_anchor_is_no_store_fails_groups(state, shop):
    with state.transaction():
        bypassing_foreign_keys(state)
        state.execute("UPDATE store_groups SET anchor_store_id = 999999 WHERE group_id = %s", (shop.group_b,))
    only(state, "groups", f"group {shop.group_b}: its anchor 999999 is not a store")


def test_an_empty_group_fails_groups(state, shop):
    with state.transaction():
        bypassing_foreign_keys(state)
        state.execute("INSERT INTO store_groups (group_id, chain_id, anchor_store_id, created_at)"
                      " VALUES (888888, %s, 888888, now())", (shop.acme,))
    result = only(state, "groups", "group 888888 has no store")
    assert result.count == 2  # and its anchor is no store


def test_a_group_spanning_two_chains_fails_groups(state, shop):
    with state.transaction():
        bypassing_foreign_keys(state)
        state.execute("UPDATE stores SET chain_id = %s WHERE store_id = %s", (shop.beta, shop.member_a))
    only(state, "groups", "(chain acme) holds store acme-")


# -- 2. group changes and their evidence ----------------------------------------


def test_a_store_moved_without_an_event_fails_group_events(state, shop):
    state.execute("UPDATE stores SET group_id = %s WHERE store_id = %s", (shop.group_b, shop.member_a))
    state.commit()
    only(state, "group_events", f"is in group {shop.group_b}, but its events put it in group {shop.group_a}")


def test_an_anchor_replaced_without_an_event_fails_group_events(state, shop):
    state.execute("UPDATE store_groups SET anchor_store_id = %s WHERE group_id = %s",
                  (shop.member_a, shop.group_a))
    state.commit()
    only(state, "group_events", f"but its events name store {shop.anchor_a}")


def test_an_event_without_evidence_fails_group_events(state, shop):
    state.execute("""INSERT INTO group_events (run_id, chain_id, kind, group_id, store_id)
                     VALUES ('x', %s, 'verified', %s, %s)""", (shop.acme, shop.group_a, shop.member_a))
    state.commit()
    only(state, "group_events", "(verified, group")


def test_a_merge_without_a_matching_comparison_fails_group_events(state, shop):
    state.execute(
        """INSERT INTO group_events (run_id, chain_id, kind, group_id, store_id, other_store_id, evidence)
           VALUES ('x', %s, 'merged', %s, %s, %s, %s)""",
        (shop.acme, shop.group_a, shop.member_a, shop.anchor_a,
         Jsonb({"outcome": "inconclusive", "stores": [shop.member_a, shop.anchor_a]})),
    )
    state.commit()
    only(state, "group_events", "its comparison is not a match (inconclusive)")
    assert check_invariants(state, run_id="day1")[1].ok, "evidence of other runs is not this run's business"


# -- 3. no half-applied store ----------------------------------------------------


def test_an_ok_scrape_staged_only_in_part_fails_half_applied(state, shop):
    state.execute("DELETE FROM scraped_items WHERE run_id = 'day1' AND store_id = %s AND sku = 'acme-7'",
                  (shop.anchor_a,))
    state.commit()
    only(state, "half_applied", f"logged {PRODUCTS + 1} items but {PRODUCTS} are staged")


def test_items_staged_without_an_ok_scrape_fail_half_applied(state, shop):
    state.execute("UPDATE scrape_log SET status = 'suspect' WHERE run_id = 'day1' AND store_id = %s",
                  (shop.member_a,))
    state.commit()
    only(state, "half_applied", f"{PRODUCTS} items staged without an ok scrape")


def test_prices_written_for_a_failed_scrape_fail_half_applied(state, shop):
    state.execute("UPDATE prices SET run_id = 'day1' WHERE store_id = %s", (shop.anchor_a,))
    state.execute("UPDATE scrape_log SET status = 'failed' WHERE run_id = 'day1' AND store_id = %s",
                  (shop.anchor_a,))
    state.execute("DELETE FROM scraped_items WHERE run_id = 'day1' AND store_id = %s", (shop.anchor_a,))
    state.commit()
    only(state, "half_applied", f"no ok scrape, yet {PRODUCTS} prices were written by this run")


def test_an_absence_started_by_a_failed_scrape_fails_half_applied(state, shop):
    product = state.execute("SELECT min(product_id) FROM prices").fetchone()[0]
    state.execute("""INSERT INTO listing_absences (store_id, product_id, missing_since, run_id)
                     VALUES (%s, %s, %s, 'day1')""", (shop.failed, product, DAY1))
    state.commit()
    only(state, "half_applied", "no ok scrape, yet it started the absence of 1 prices")


def test_an_ok_scrape_that_did_not_advance_freshness_fails_half_applied(state, shop):
    state.execute("UPDATE stores SET last_scraped_at = %s WHERE store_id = %s", (DAY0, shop.member_a))
    state.commit()
    only(state, "half_applied", "ok scrape for 2026-11-02")


# -- 4. no observed price lost ---------------------------------------------------


def test_a_deleted_price_fails_lost_prices_unless_a_rejection_explains_it(state, shop):
    product, sku = a_day1_product(state, shop.anchor_a)
    state.execute("DELETE FROM prices WHERE store_id = %s AND product_id = %s", (shop.anchor_a, product))
    state.commit()
    only(state, "lost_prices", f"sku {sku} (product {product}, ")
    state.execute("""INSERT INTO rejected_items (run_id, stage, store_id, sku, reason)
                     VALUES ('day1', 'upsert', %s, %s, 'too dear')""", (shop.anchor_a, sku))
    state.commit()
    assert failing(state) == {}


def test_a_price_the_upsert_left_at_its_old_value_fails_lost_prices(state, shop):
    product, sku = a_day1_product(state, shop.anchor_a)
    state.execute("UPDATE prices SET price = price - 0.30, scraped_at = %s, run_id = 'day0'"
                  " WHERE store_id = %s AND product_id = %s", (DAY0, shop.anchor_a, product))
    state.commit()
    result = only(state, "lost_prices", "prices hold")
    assert result.count == 1


def test_an_unfinished_run_is_skipped_by_lost_prices_and_says_so(state, shop):
    product, _ = a_day1_product(state, shop.anchor_a)
    state.execute("DELETE FROM prices WHERE store_id = %s AND product_id = %s", (shop.anchor_a, product))
    state.execute("UPDATE runs SET finished_at = NULL WHERE run_id = 'day1'")
    state.commit()
    lost = {r.name: r for r in check_invariants(state)}["lost_prices"]
    assert lost.ok and any("1 run(s) not finished (day1)" in note for note in lost.skipped)


def test_examples_are_capped_but_the_count_is_whole(state, shop):
    state.execute("DELETE FROM prices WHERE store_id = %s", (shop.anchor_a,))
    state.commit()
    lost = failing(state, examples=3)["lost_prices"]
    assert len(lost.violations) == 3 and lost.count == PRODUCTS


# -- 5. none regressed ------------------------------------------------------------


def test_a_price_newer_than_its_store_fails_regressed(state, shop):
    product, _ = a_day1_product(state, shop.anchor_a)
    state.execute("UPDATE prices SET scraped_at = %s WHERE store_id = %s AND product_id = %s",
                  (DAY1 + timedelta(days=5), shop.anchor_a, product))
    state.commit()
    only(state, "regressed", "1 price(s) observed after its last scrape")


def test_price_times_show_a_price_or_a_store_that_got_older(state, shop):
    before = price_times(state)
    assert regressions(before, price_times(state)) == []
    product, _ = a_day1_product(state, shop.anchor_a)
    state.execute("UPDATE prices SET scraped_at = %s WHERE store_id = %s AND product_id = %s",
                  (DAY0, shop.anchor_a, product))
    state.execute("UPDATE stores SET last_scraped_at = %s WHERE store_id = %s", (DAY0, shop.member_a))
    state.execute("DELETE FROM prices WHERE store_id = %s AND product_id <> %s", (shop.anchor_a, product))
    found = regressions(before, price_times(state))
    assert len(found) == 2, found  # rows that left are not regressions
    assert f"product {product} at store {shop.anchor_a}" in found[0] and f"store {shop.member_a}" in found[1]


# -- 6. effective prices ----------------------------------------------------------


def _wrap_view(conn: psycopg.Connection, select: str) -> None:
    """Replace effective_prices by `select` over the real view, renamed to real_effective."""
    conn.execute("ALTER VIEW effective_prices RENAME TO real_effective")
    conn.execute(f"CREATE VIEW effective_prices AS {select}")
    conn.commit()


def test_two_rows_for_one_store_and_product_fail_effective_prices(state, shop):
    _wrap_view(state, f"""SELECT * FROM real_effective UNION ALL
                          (SELECT * FROM real_effective WHERE store_id = {shop.member_a} LIMIT 1)""")
    only(state, "effective_prices", "2 rows served")


def test_an_unknown_source_fails_effective_prices(state, shop):
    _wrap_view(state, f"""SELECT store_id, chain_id, product_id, price, was_price, unit_price, unit_measure,
                                 on_special, promo_text, scraped_at,
                                 CASE WHEN store_id = {shop.member_a} THEN 'guessed' ELSE source END
                                     AS source,
                                 source_store_id
                          FROM real_effective""")
    only(state, "effective_prices", "unknown source guessed")


def test_a_price_served_from_another_group_fails_effective_prices(state, shop):
    other = state.execute("SELECT anchor_store_id FROM store_groups WHERE group_id = %s",
                          (shop.group_b,)).fetchone()[0]
    _wrap_view(state, f"""SELECT store_id, chain_id, product_id, price, was_price, unit_price, unit_measure,
                                 on_special, promo_text, scraped_at, source,
                                 CASE WHEN store_id = {shop.member_a} THEN {other} ELSE source_store_id END
                                     AS source_store_id
                          FROM real_effective""")
    only(state, "effective_prices", f"served from store {other} of another group")


# -- the command ---------------------------------------------------------------------


def test_the_check_command_refuses_a_database_without_the_schema(empty_db_url, capsys):
    assert cli.main(["check", "--database-url", empty_db_url]) == 2
    assert "run `python -m pricegroups migrate`" in capsys.readouterr().err


def test_the_check_command_passes_a_clean_state(state_url, capsys):
    assert cli.main(["check", "--database-url", state_url]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if not line.startswith(" ")][:6] == ["PASS"] * 6
    assert "6 of 6 invariants hold" in out


def test_the_check_command_prints_violations_and_exits_1(state, state_url, shop, capsys):
    state.execute("DELETE FROM prices WHERE store_id = %s", (shop.anchor_a,))
    state.commit()
    assert cli.main(["check", "--database-url", state_url, "--examples", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAIL lost_prices" in out and f"{PRODUCTS} violation(s), e.g.:" in out
    assert out.count("    - run day1, store acme-") == 2 and f"... and {PRODUCTS - 2} more" in out
    assert "failed: lost_prices" in out
    # narrowed to the first run, the lost day-1 prices are not its business
    assert cli.main(["check", "--database-url", state_url, "--run", "day0"]) == 0
