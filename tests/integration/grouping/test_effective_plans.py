"""The effective_prices view keeps index-driven plans for one store and for a whole chain (DESIGN.md §10).

The plan's shape is asserted, not its time: every read of the prices table
is bounded by an index condition (by store, or by product within a store),
never a read of the whole table, when the query asks for one store or for
one chain among others. A test database is small enough that a sequential
scan is sometimes the planner's honest choice, so the shape is checked with
sequential scans priced out (`enable_seqscan = off`): what remains unbounded
then is a view that cannot be read by index at all (as sql/0045's
materialised CTE could not for a chain); the one-member case is also
checked with the planner's own costs.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Iterator

import pytest

from tests.factories import T0, make_chain_with_stores

D = timedelta(days=1)
PRODUCTS = 2000


def _build(conn, code: str, stores: int, groups: int, every: int = 1) -> tuple[int, list[int]]:
    """A chain whose stores form `groups` groups: anchors carry every `every`-th product, members a few
    overrides, some members late with changes."""
    chain_id, ids = make_chain_with_stores(conn, code, stores)
    anchors = ids[:groups]
    for i, store in enumerate(ids[groups:]):
        anchor = anchors[i % groups]
        conn.execute(
            """UPDATE stores SET group_id = (SELECT group_id FROM stores WHERE store_id = %s),
                                 last_scraped_at = %s, last_verified_at = %s, first_scraped_at = %s,
                                 late_changes = %s
               WHERE store_id = %s""",
            (anchor, T0 - 2 * D, T0 - 2 * D, T0 - 20 * D, 4 if i % 5 == 0 else 0, store),
        )
        conn.execute(
            """INSERT INTO prices (product_id, store_id, price, on_special, scraped_at, run_id)
               SELECT p.product_id, %s, 2.50, false, %s, 'test'
               FROM products p WHERE p.product_id %% 97 = %s""",
            (store, T0 - 2 * D, i % 97),
        )
    conn.execute("DELETE FROM store_groups g WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.group_id = g.group_id)")
    conn.execute(
        """UPDATE stores SET last_scraped_at = %s, first_scraped_at = %s WHERE store_id = ANY(%s)""",
        (T0, T0 - 20 * D, anchors),
    )
    conn.execute(
        """INSERT INTO prices (product_id, store_id, price, on_special, scraped_at, run_id, previous_price)
           SELECT p.product_id, a, 1.00 + (p.product_id %% 50) / 10.0, p.product_id %% 13 = 0,
                  CASE WHEN p.product_id %% 17 = 0 THEN %s ELSE %s END, 'test',
                  CASE WHEN p.product_id %% 17 = 0 THEN 0.99 END
           FROM products p CROSS JOIN unnest(%s::int[]) AS a
           WHERE p.product_id %% %s = 0""",
        (T0, T0 - 10 * D, anchors, every),
    )
    return chain_id, ids


@pytest.fixture
def world(conn) -> Iterator[dict]:
    conn.execute(
        """INSERT INTO products (name, name_key)
           SELECT 'Product ' || g, 'product ' || g FROM generate_series(1, %s) g""",
        (PRODUCTS,),
    )
    big, big_ids = _build(conn, "big", 400, 40)
    small, small_ids = _build(conn, "small", 12, 2, every=10)  # one chain of several, as in production
    conn.commit()
    conn.execute("ANALYZE")
    yield {"big": big, "small": small, "member": small_ids[-1], "anchor": small_ids[0]}


def _prices_reads(plan: dict) -> list[dict]:
    """Every node of a JSON plan that reads the prices table."""
    found = [plan] if plan.get("Relation Name") == "prices" else []
    for child in plan.get("Plans", []):
        found += _prices_reads(child)
    return found


def _unbounded(conn, query: str, params: tuple, seqscan: bool = False) -> list[str]:
    """The prices reads of the query's plan that no index condition bounds (node type and alias)."""
    with conn.transaction():
        if not seqscan:
            conn.execute("SET LOCAL enable_seqscan = off")
        (raw,) = conn.execute("EXPLAIN (FORMAT JSON) " + query, params).fetchone()
    doc = raw if isinstance(raw, list) else json.loads(raw)
    reads = _prices_reads(doc[0]["Plan"])
    assert reads, "the plan does not read prices at all"
    return [f"{n['Node Type']} {n.get('Alias')}" for n in reads if not ("Index Cond" in n or "Recheck Cond" in n)]


@pytest.mark.parametrize("who", ["member", "anchor"])
def test_one_store_reads_prices_through_indexes(conn, world, who):
    assert _unbounded(conn, "SELECT * FROM effective_prices WHERE store_id = %s", (world[who],)) == []


def test_one_member_is_index_driven_with_the_planners_own_costs(conn, world):
    assert _unbounded(conn, "SELECT * FROM effective_prices WHERE store_id = %s", (world["member"],), True) == []


def test_one_chain_reads_prices_through_indexes(conn, world):
    assert _unbounded(conn, "SELECT * FROM effective_prices WHERE chain_id = %s", (world["small"],)) == []


def test_the_plans_serve_rows(conn, world):
    """The fixture is a real serving state: every source the plans above read is present."""
    sources = dict(conn.execute(
        "SELECT source, count(*) FROM effective_prices WHERE chain_id = %s GROUP BY source", (world["big"],)
    ).fetchall())
    assert sources.get("inferred", 0) > 100_000 and sources.get("override", 0) > 0 and sources.get("late", 0) > 0



