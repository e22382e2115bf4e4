"""The effective_prices view (sql/0040) and effective.effective_prices (the offline CLI's rule) serve the same rows."""

from __future__ import annotations

import random

import pytest
from datetime import datetime, timedelta

from pricegroups.grouping.rules.serving import freshest_rows, SOURCES, PriceRow, Serving, effective_prices
from pricegroups.grouping.repository import record_cadence
from pricegroups.grouping.rules.cadence import DAILY, Cadence
from pricegroups.grouping.rules.lateness import usually_late
from pricegroups.grouping.served import served_prices
from tests.factories import T0, make_chain_with_stores, make_products

H = timedelta(hours=1)
D = timedelta(days=1)


def build(conn, stores: dict[str, dict], groups: dict[str, list[str]], products: int) -> tuple[int, dict, list[int]]:
    """Stores by name with their times and rows, grouped as `groups` ({anchor: [members]}); returns (chain, ids, products).

    A store's spec: scraped / verified / first (first_scraped_at) / active / late
    ((late, on time) changes), and rows {product index: (cents, was cents or 0,
    special, first observed[, previous cents])}.
    """
    names = sorted(stores)
    chain_id, ids = make_chain_with_stores(conn, "acme", len(names))
    store_id = dict(zip(names, ids))
    product_ids = make_products(conn, products)
    for anchor, members in groups.items():
        conn.execute(
            """UPDATE stores SET group_id = (SELECT group_id FROM stores WHERE store_id = %s)
               WHERE store_id = ANY(%s)""",
            (store_id[anchor], [store_id[m] for m in members]),
        )
    conn.execute("DELETE FROM store_groups g WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.group_id = g.group_id)")
    for name, spec in stores.items():
        conn.execute(
            """UPDATE stores SET last_scraped_at = %s, last_verified_at = %s, first_scraped_at = %s, active = %s,
                                  late_changes = %s, timely_changes = %s
               WHERE store_id = %s""",
            (spec.get("scraped"), spec.get("verified"), spec.get("first"), spec.get("active", True),
             *spec.get("late", (0, 0)), store_id[name]),
        )
        for p, (cents, was, special, seen, *previous) in spec.get("rows", {}).items():
            conn.execute(
                """INSERT INTO prices (product_id, store_id, price, was_price, unit_price, on_special, scraped_at,
                                     run_id, previous_price)
                   VALUES (%s, %s, %s / 100.0, %s / 100.0, %s / 1000.0, %s, %s, 'test', %s / 100.0)""",
                (product_ids[p], store_id[name], cents, was or None, cents, special, seen, previous[0] if previous else None),
            )
    conn.commit()
    return chain_id, store_id, product_ids


def from_view(conn, chain_id: int) -> dict[tuple[int, int], tuple]:
    rows = conn.execute(
        """SELECT store_id, product_id, (price * 100)::int, coalesce((was_price * 100)::int, 0), on_special,
                  scraped_at, source, source_store_id
           FROM effective_prices WHERE chain_id = %s""",
        (chain_id,),
    ).fetchall()
    out = {(s, p): rest for s, p, *rest in rows}
    assert len(out) == len(rows), "the view served two rows for one (store, product)"
    return {k: tuple(v) for k, v in out.items()}


def from_rule(conn, chain_id: int, cadence: Cadence = DAILY) -> dict[tuple[int, int], tuple]:
    """The same database state read as plain data and served by rules/serving.effective_prices."""
    stores = conn.execute(
        """SELECT s.store_id, s.active, s.last_scraped_at, s.last_verified_at, g.anchor_store_id, a.first_scraped_at,
                  s.late_changes, s.timely_changes
           FROM stores s JOIN store_groups g ON g.group_id = s.group_id JOIN stores a ON a.store_id = g.anchor_store_id
           WHERE s.chain_id = %s""",
        (chain_id,),
    ).fetchall()
    latest = conn.execute("SELECT max(last_scraped_at) FROM stores WHERE chain_id = %s", (chain_id,)).fetchone()[0]
    rows: dict[int, dict[int, PriceRow]] = {}
    for store, product, price, was, special, seen, previous in conn.execute(
        "SELECT store_id, product_id, price, was_price, on_special, scraped_at, previous_price FROM prices"
    ):
        rows.setdefault(store, {})[product] = PriceRow(int(price * 100), int(was * 100) if was else 0, special, seen,
                                                       int(previous * 100) if previous else 0)
    groups: dict[int, list] = {}
    for store, active, scraped, verified, anchor, anchor_first, *_ in stores:
        if active:
            groups.setdefault(anchor, []).append((store, scraped))
    freshest = {anchor: freshest_rows({s: rows.get(s, {}) for s, _ in mates}, dict(mates))
                for anchor, mates in groups.items()}
    out = {}
    for store, active, scraped, verified, anchor, anchor_first, late, on_time in stores:
        serving = Serving(store == anchor, scraped, verified, anchor_first, active, usually_late(late, on_time),
                          cadence.fresh_since(latest))
        served = effective_prices(serving, rows.get(store, {}), rows.get(anchor, {}), cadence.horizon,
                                  freshest=freshest.get(anchor))
        for product, e in served.items():
            source_store = anchor if e.from_anchor else e.from_store if e.from_store is not None else store
            out[(store, product)] = (e.row.price, e.row.was_price, e.row.on_special, e.row.first_observed, e.source,
                                     source_store)
    return out


def from_served(conn, chain_id: int, share: float = 1.0, seed: int = 0) -> dict[tuple[int, int], tuple]:
    """served.served_prices asked for every (store, product) of the chain, or a random share of them."""
    rnd = random.Random(seed)
    stores = [s for (s,) in conn.execute("SELECT store_id FROM stores WHERE chain_id = %s", (chain_id,))]
    products = [p for (p,) in conn.execute("SELECT product_id FROM products")]
    wanted = {s: [p for p in products if rnd.random() < share] for s in stores}
    out = {}
    for store, served in served_prices(conn, wanted).items():
        for product, e in served.items():
            out[(store, product)] = (e.price, e.was_price, e.on_special, e.since, e.source, e.source_store)
    return out


def test_view_and_rule_agree_on_every_source(conn):
    verified = T0 - 2 * D
    anchor_rows = {
        0: (100, 0, False, T0 - 10 * D),  # the anchor's price since its first scrape
        1: (110, 0, False, T0 - 5 * D),  # changed 3 days before the members' verification
        2: (120, 150, True, T0 - D),  # changed after the verification
        3: (130, 0, False, T0 - 10 * D),
        4: (140, 0, False, verified - 48 * H),  # changed exactly 48 hours before the verification
        5: (150, 0, False, verified - 48 * H - H),  # changed 49 hours before
        6: (160, 0, False, T0 - 10 * D),  # inferred for every member without its own row
        7: (170, 0, False, T0, 165),  # a regular-price change first seen at the chain's latest scrape (fresh)
        8: (180, 0, False, T0 - D, 175),  # a change a day old
    }
    stores = {
        "anchor": {"scraped": T0, "first": T0 - 10 * D, "rows": anchor_rows},
        "valid": {"scraped": verified, "verified": verified, "first": T0 - 20 * D,
                  "rows": {1: (111, 0, False, T0 - 9 * D), 3: (131, 0, False, T0 - 9 * D),
                           5: (151, 0, False, T0 - 9 * D), 9: (990, 0, False, T0 - 9 * D)}},
        "stale": {"scraped": verified, "verified": verified, "first": T0 - 20 * D,
                  "rows": {2: (121, 0, False, T0 - 9 * D), 4: (141, 0, False, T0 - 9 * D)}},
        "unverified": {"scraped": T0 - 3 * D, "first": T0 - 3 * D,
                       "rows": {0: (101, 0, False, T0 - 3 * D), 2: (122, 0, True, T0 - 3 * D)}},
        "rescraped": {"scraped": T0 - D, "verified": T0 - 4 * D, "first": T0 - 20 * D,
                      "rows": {2: (123, 0, False, T0 - D), 9: (995, 0, False, T0 - D)}},
        "closed": {"scraped": verified, "verified": verified, "active": False,
                   "rows": {3: (132, 0, False, T0 - 9 * D)}},
        "never_scraped": {"verified": verified, "rows": {2: (124, 0, False, T0 - 9 * D), 3: (133, 0, False, T0 - 9 * D)}},
        "alone": {"scraped": T0, "first": T0, "rows": {0: (99, 0, False, T0)}},
        # usually late (3 late changes, 1 on time), verified while it still showed product 7's old price
        "late": {"scraped": verified, "verified": verified, "first": T0 - 20 * D, "late": (3, 1),
                 "rows": {7: (165, 0, False, T0 - 9 * D)}},
        "late_unverified": {"scraped": T0 - D, "first": T0 - 20 * D, "late": (5, 2)},
        "seldom_late": {"scraped": T0 - D, "first": T0 - 20 * D, "late": (2, 0)},  # too little evidence
        "as_often_on_time": {"scraped": T0 - D, "first": T0 - 20 * D, "late": (4, 4)},
    }
    members = ["valid", "stale", "unverified", "rescraped", "closed", "never_scraped", "late", "late_unverified",
               "seldom_late", "as_often_on_time"]
    chain_id, sid, pid = build(conn, stores, {"anchor": members}, 10)
    view = from_view(conn, chain_id)
    assert view == from_rule(conn, chain_id)
    assert view == from_served(conn, chain_id)

    def served(store: str, product: int) -> tuple | None:
        row = view.get((sid[store], pid[product]))
        return None if row is None else (row[0], row[4])

    assert served("anchor", 2) == (120, "observed")
    assert served("valid", 1) == (111, "override")  # the anchor's change is older than the 48-hour horizon
    assert served("valid", 3) == (131, "override")  # the anchor's price is the one of its first scrape
    assert served("valid", 5) == (151, "override")  # changed 49 hours before the verification
    # the anchor does not carry it: a group-mate scraped since has a fresher observation of the group's price
    assert served("valid", 9) == (995, "inferred")
    assert view[(sid["valid"], pid[9])][5] == sid["rescraped"]
    assert served("rescraped", 9) == (995, "observed")
    assert served("valid", 6) == (160, "inferred")
    assert served("stale", 2) == (120, "stale_override")  # the anchor changed after the verification
    assert served("stale", 4) == (140, "stale_override")  # exactly 48 hours before it
    assert view[(sid["stale"], pid[2])][5] == sid["anchor"]
    assert served("unverified", 0) == (101, "observed") and served("unverified", 2) == (122, "observed")
    assert served("unverified", 6) == (160, "inferred")
    assert served("rescraped", 2) == (123, "observed")  # scraped after its verification: observations
    assert not any(s == sid["closed"] for s, _ in view)
    assert served("never_scraped", 3) == (133, "override")
    assert served("never_scraped", 2) == (120, "stale_override")  # never scraped counts as scraped at -infinity
    assert served("alone", 0) == (99, "observed") and served("alone", 6) is None
    # a late store is served the price a fresh change replaced, in place of a stale override or an inference
    assert served("late", 7) == (165, "late") and served("late_unverified", 7) == (165, "late")
    assert view[(sid["late"], pid[7])][1:3] == (0, False)  # no was-price, not on special
    assert served("late", 8) == (180, "inferred")  # a day-old change: the anchor's price
    assert served("late", 2) == (120, "inferred")  # a special is never served late
    assert served("seldom_late", 7) == (170, "inferred") and served("as_often_on_time", 7) == (170, "inferred")
    assert served("valid", 7) == (170, "inferred")
    assert {row[4] for row in view.values()} == set(SOURCES)


@pytest.mark.parametrize("hours", [24, 12, 48])
def test_view_and_rule_agree_on_random_states(conn, hours):
    """Many members with times around every boundary (the horizon, the anchor's first scrape, freshness, NULLs),
    at the daily cadence and at runs every 12 and 48 hours: the view reads the windows the run recorded."""
    cadence = Cadence.of_hours(hours)
    record_cadence(conn, cadence)
    conn.commit()
    rnd = random.Random(11)
    products = 12
    base = T0 - 10 * D
    horizon, fresh = cadence.horizon, cadence.fresh

    def when() -> datetime | None:
        return rnd.choice([None, base, base + H, T0 - 3 * D, T0 - 2 * D, T0 - 2 * D - horizon,
                           T0 - 2 * D - horizon + H, T0 - 2 * D - horizon - H, T0 - D, T0 - fresh, T0 - fresh - H,
                           T0 - fresh + H, T0])

    def rows(share: float) -> dict:
        return {p: (rnd.randint(100, 110), rnd.choice([0, 0, 200]), rnd.random() < 0.2, when() or base,
                    rnd.choice([None, None, rnd.randint(90, 99)]))
                for p in range(products) if rnd.random() < share}

    stores: dict[str, dict] = {}
    groups: dict[str, list[str]] = {}
    for g in range(4):
        anchor = f"a{g}"
        stores[anchor] = {"scraped": T0, "first": rnd.choice([None, base, base + H]), "rows": rows(0.9)}
        groups[anchor] = []
        for m in range(12):
            name = f"m{g}_{m:02d}"
            stores[name] = {"scraped": when(), "verified": when(), "first": when(), "active": rnd.random() < 0.9,
                            "late": rnd.choice([(0, 0), (3, 2), (2, 0), (5, 5), (6, 1)]), "rows": rows(0.4)}
            groups[anchor].append(name)
    chain_id, _, _ = build(conn, stores, groups, products)
    view = from_view(conn, chain_id)
    assert len(view) > 300
    assert view == from_rule(conn, chain_id, cadence)
    assert view == from_served(conn, chain_id)
    # asked for some products only (a spot-checked page), each is served as in the whole store's answer
    some = from_served(conn, chain_id, share=0.3, seed=5)
    assert some and len(some) < len(view) and all(view[key] == row for key, row in some.items())
    assert {row[4] for row in view.values()} == set(SOURCES)
