"""A small simulated chain for grouping scenarios: zones with price lists, scrapes written via the upsert."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg

from pricegroups.settings import Settings
from pricegroups.upsert import PriceRow, upsert_prices
from tests.factories import T0, make_chain_with_stores, make_products

SETTINGS = Settings()


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


@dataclass
class World:
    """Ground truth the pipeline never sees: each store's zone and each zone's price list."""

    conn: psycopg.Connection
    chain_id: int
    stores: list[int]
    products: list[int]
    zone_of: dict[int, str]
    zones: dict[str, dict[int, Decimal]] = field(default_factory=dict)
    overrides: dict[int, dict[int, Decimal]] = field(default_factory=dict)  # store-specific prices
    gaps: dict[int, set[int]] = field(default_factory=dict)  # products a store does not carry

    @classmethod
    def build(cls, conn, zone_of_index: list[str], products: int = 120, code: str = "acme", seed: int = 7) -> "World":
        chain_id, stores = make_chain_with_stores(conn, code, len(zone_of_index))
        product_ids = make_products(conn, products)
        rnd = random.Random(seed)
        world = cls(conn, chain_id, stores, product_ids, {s: z for s, z in zip(stores, zone_of_index)})
        for zone in sorted(set(zone_of_index)):
            world.zones[zone] = {p: Decimal(rnd.randint(100, 2000)) / 100 for p in product_ids}
        return world

    def derive_zone(self, name: str, base: str, changed_share: float, seed: int = 1) -> None:
        rnd = random.Random(seed)
        prices = dict(self.zones[base])
        for p in rnd.sample(self.products, int(len(self.products) * changed_share)):
            prices[p] = prices[p] + Decimal("0.50")
        self.zones[name] = prices

    def carried(self, store: int) -> list[int]:
        return [p for p in self.products if p not in self.gaps.get(store, ())]

    def add_gaps(self, share: float, seed: int = 2) -> None:
        """Each store stops carrying a random `share` of the products (assortment gaps)."""
        rnd = random.Random(seed)
        for s in self.stores:
            self.gaps[s] = set(rnd.sample(self.products, int(len(self.products) * share)))

    def true_price(self, store: int, product: int) -> Decimal:
        return self.overrides.get(store, {}).get(product, self.zones[self.zone_of[store]][product])

    def scrape(self, stores: list[int], when: datetime, run_id: str | None = None) -> None:
        """A successful scrape of each store: every product at its true price, via the real upsert."""
        rows = [PriceRow(p, s, self.true_price(s, p), when) for s in stores for p in self.carried(s)]
        upsert_prices(self.conn, rows, run_id or f"run-{when:%Y%m%d}", SETTINGS)
        self.conn.commit()

    def fail_scrape(self, stores: list[int], when: datetime, run_id: str | None = None) -> None:
        """A failed scrape: logged, failures counted, no prices written."""
        with self.conn.transaction():
            self.conn.execute(
                """INSERT INTO scrape_log (run_id, store_id, status, error, started_at)
                   SELECT %s, s, 'failed', 'HTTP 503', %s FROM unnest(%s::int[]) s""",
                (run_id or f"run-{when:%Y%m%d}", when, stores),
            )
            self.conn.execute(
                "UPDATE stores SET consecutive_failures = consecutive_failures + 1 WHERE store_id = ANY(%s)", (stores,)
            )
        self.conn.commit()


def groups_of(conn) -> dict[int, frozenset[int]]:
    """{anchor: frozenset of its group's stores}."""
    rows = conn.execute(
        """SELECT g.anchor_store_id, array_agg(s.store_id ORDER BY s.store_id)
           FROM store_groups g JOIN stores s ON s.group_id = g.group_id GROUP BY g.anchor_store_id"""
    ).fetchall()
    return {a: frozenset(m) for a, m in rows}


def partition(conn) -> set[frozenset[int]]:
    return set(groups_of(conn).values())


def assert_group_invariants(conn) -> None:
    """DESIGN.md §6.1: one group per active store, one anchor inside it, no empty group, one chain."""
    bad = conn.execute(
        """SELECT g.group_id FROM store_groups g
           LEFT JOIN stores a ON a.store_id = g.anchor_store_id
           WHERE a.store_id IS NULL OR a.group_id <> g.group_id OR a.chain_id <> g.chain_id"""
    ).fetchall()
    assert bad == [], f"groups whose anchor is not one of their stores: {bad}"
    empty = conn.execute(
        "SELECT group_id FROM store_groups g WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.group_id = g.group_id)"
    ).fetchall()
    assert empty == []
    spanning = conn.execute(
        "SELECT s.store_id FROM stores s JOIN store_groups g ON g.group_id = s.group_id WHERE s.chain_id <> g.chain_id"
    ).fetchall()
    assert spanning == []
    orphans = conn.execute(
        "SELECT store_id FROM stores s WHERE NOT EXISTS (SELECT 1 FROM store_groups g WHERE g.group_id = s.group_id)"
    ).fetchall()
    assert orphans == []


def assert_effective_prices_true(world: World) -> None:
    """What the site serves equals the truth for every store and product."""
    rows = world.conn.execute(
        "SELECT store_id, product_id, price FROM effective_prices WHERE chain_id = %s", (world.chain_id,)
    ).fetchall()
    served = {(s, p): price for s, p, price in rows}
    assert len(served) == len(rows), "effective_prices served two prices for one (store, product)"
    wrong = [
        (s, p, served.get((s, p)), world.true_price(s, p))
        for s in world.stores for p in world.carried(s)
        if served.get((s, p)) != world.true_price(s, p)
    ]
    assert wrong == [], f"{len(wrong)} wrong served prices, e.g. {wrong[:3]}"
