"""Synthetic price data for the pure grouping tests (no database)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from pricegroups.grouping.book import GroupBook
from pricegroups.grouping.pricing import PriceMatrix

T = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)


def zone_prices(rnd: random.Random, products: int, zones: int, differ: float) -> list[dict[int, int]]:
    base = {p: rnd.randint(100, 2000) for p in range(products)}
    out = [base]
    for _ in range(zones - 1):
        prices = dict(base)
        for p in rnd.sample(range(products), max(1, int(products * differ))):
            prices[p] += rnd.randint(1, 50)
        out.append(prices)
    return out


def make_stores(seed: int, stores: int, zones: int, products: int = 120, carry: float = 0.9,
                noise: float = 0.0, differ: float = 0.2) -> tuple[dict, dict]:
    """{store: {product: (cents, was, special)}} and {store: zone} for `stores` stores over `zones` zones."""
    rnd = random.Random(seed)
    lists = zone_prices(rnd, products, zones, differ)
    prices, zone_of = {}, {}
    for s in range(stores):
        zone = rnd.randrange(zones)
        rows = {}
        for p, cents in lists[zone].items():
            if rnd.random() < carry:
                rows[p] = (cents + (1 if rnd.random() < noise else 0), 0, False)
        prices[s] = rows
        zone_of[s] = zone
    return prices, zone_of


def book_and_matrix(prices: dict, order: list | None = None, at: datetime = T) -> tuple[GroupBook, PriceMatrix]:
    stores = order or sorted(prices)
    book = GroupBook.ungrouped({s: "c" for s in stores}, at - timedelta(days=1))
    book.with_freshness({s: at for s in stores})
    matrix = PriceMatrix.from_prices({s: prices[s] for s in stores}, {s: at for s in stores})
    return book, matrix
