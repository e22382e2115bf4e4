"""Current pricing of many stores as one dense matrix: the comparer's input.

A store's prices are encoded per product as two int32 values:

* key = price in cents * 2 + on_special (0 = no current price): two prices
  agree on price and special flag exactly when their keys are equal;
* was = was_price in cents (0 = none).

An optional third matrix, `observed`, holds when each price was first observed
(hours since the Unix epoch, 0 = unknown): a member that was verified after
its anchor's price was observed has seen that price itself (support.py).

Dense rows make one comparison a handful of vectorised passes over a few
thousand ints, and a 2,000-store chain with 5,000 products fits in 80 MB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Hashable, Mapping, Sequence

import numpy as np

from pricegroups.errors import BadData

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def cents(value: Decimal | int | str) -> int:
    """A money amount as whole cents; fractions of a cent are an input error."""
    amount = Decimal(value) * 100
    if amount != amount.to_integral_value():
        raise BadData(f"price {value} has fractions of a cent")
    return int(amount)


def encode_key(price_cents: int, on_special: bool) -> int:
    return price_cents * 2 + (1 if on_special else 0)


@dataclass(frozen=True, eq=False)
class PriceMatrix:
    """Current prices of `stores` (rows) for `products` (columns).

    `scraped_at[i]` is store i's freshness (its last successful scrape);
    whether that is *current* depends on the run's as-of time and window.
    """

    stores: tuple[Hashable, ...]
    products: np.ndarray  # int64 or object ids, one per column
    keys: np.ndarray  # int32 (stores, products)
    was: np.ndarray  # int32 (stores, products)
    scraped_at: tuple[datetime | None, ...]
    observed: np.ndarray | None = None  # int32 (stores, products): hours since epoch the price was first seen
    row_of: dict[Hashable, int] = field(init=False, repr=False)
    sizes: np.ndarray = field(init=False, repr=False)  # catalogue size per store
    _derived: dict = field(init=False, repr=False, default_factory=dict)  # built once, on first use

    def __post_init__(self) -> None:
        if self.keys.shape != self.was.shape or self.keys.shape != (len(self.stores), len(self.products)):
            raise BadData("price matrix shapes disagree")
        object.__setattr__(self, "row_of", {store: i for i, store in enumerate(self.stores)})
        object.__setattr__(self, "sizes", np.count_nonzero(self.keys, axis=1).astype(np.int64))
        if self.observed is not None and self.observed.shape != self.keys.shape:
            raise BadData("price matrix shapes disagree")
        self.keys.flags.writeable = False
        self.was.flags.writeable = False

    @classmethod
    def from_long(
        cls,
        store_ids: np.ndarray,
        product_ids: np.ndarray,
        keys: np.ndarray,
        was: np.ndarray | None,
        scraped_at: Mapping[Hashable, datetime | None],
        stores: Sequence[Hashable] | None = None,
        observed: np.ndarray | None = None,
        was_entries: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> "PriceMatrix":
        """Build from one row per (store, product) price, e.g. a COPY out of `prices`.

        Row order follows `stores` when given (stores without prices get empty
        rows), else sorted store ids; columns are sorted product ids. Was-prices
        come per price (`was`, 0 = none) or, when few prices have one, as
        `was_entries` (store ids, product ids, cents).
        """
        store_ids = np.asarray(store_ids, dtype=np.int64)
        product_ids = np.asarray(product_ids, dtype=np.int64)
        row_ids = np.asarray(sorted(scraped_at) if stores is None else list(stores), dtype=np.int64)
        columns = _dense_ids(product_ids)
        rows = _index_in(row_ids, store_ids)
        keep = rows >= 0
        everything = bool(keep.all())

        def kept(values: np.ndarray) -> np.ndarray:
            return values if everything else values[keep]

        cells = kept(rows) * len(columns) + _index_in(columns, kept(product_ids))  # one flat index per price

        def scattered(values: np.ndarray) -> np.ndarray:
            out = np.zeros((len(row_ids), len(columns)), dtype=np.int32)
            out.ravel()[cells] = kept(np.asarray(values, dtype=np.int32))
            return out

        key_matrix = scattered(keys)
        was_matrix = scattered(was) if was is not None else np.zeros_like(key_matrix)
        if was_entries is not None and len(was_entries[0]):
            at_rows = _index_in(row_ids, np.asarray(was_entries[0], dtype=np.int64))
            at_cols = _index_in(columns, np.asarray(was_entries[1], dtype=np.int64))
            known = (at_rows >= 0) & (at_cols >= 0)
            was_matrix.ravel()[at_rows[known] * len(columns) + at_cols[known]] = was_entries[2][known]
        observed_matrix = None if observed is None else scattered(observed)
        ids = tuple(int(s) for s in row_ids)
        return cls(ids, columns, key_matrix, was_matrix, tuple(scraped_at.get(s) for s in ids), observed_matrix)

    @classmethod
    def from_prices(
        cls,
        prices: Mapping[Hashable, Mapping[Hashable, tuple[int, int, bool]]],
        scraped_at: Mapping[Hashable, datetime | None],
    ) -> "PriceMatrix":
        """Build from {store: {product: (price_cents, was_cents or 0, on_special)}} (small inputs)."""
        stores = sorted(set(prices) | set(scraped_at), key=sort_key)
        products = sorted({p for rows in prices.values() for p in rows}, key=sort_key)
        col = {p: j for j, p in enumerate(products)}
        keys = np.zeros((len(stores), len(products)), dtype=np.int32)
        was = np.zeros_like(keys)
        for i, store in enumerate(stores):
            for product, (price_c, was_c, special) in prices.get(store, {}).items():
                keys[i, col[product]] = encode_key(price_c, special)
                was[i, col[product]] = was_c or 0
        product_array = np.empty(len(products), dtype=object)
        product_array[:] = products
        return cls(tuple(stores), product_array, keys, was, tuple(scraped_at.get(s) for s in stores))

    def scan_layout(self) -> tuple[np.ndarray, np.ndarray | None]:
        """keys and was (None when no store has a was-price) with the columns where prices vary most first.

        Comparer.best_match scans columns in this order so that hopeless pairs
        drop after a few blocks; built once per matrix, however many comparers
        use it. Only the order of work depends on it, never a result.
        """
        if "layout" not in self._derived:
            order = _discriminating_order(self.keys)
            was = np.take(self.was, order, axis=1) if self.has_was().any() else None
            self._derived["layout"] = (np.take(self.keys, order, axis=1), was)
        return self._derived["layout"]

    def has_was(self) -> np.ndarray:
        """Whether each row has any was-price (bool per row)."""
        if "has_was" not in self._derived:
            self._derived["has_was"] = np.count_nonzero(self.was, axis=1) > 0
        return self._derived["has_was"]

    def scraped_us(self) -> tuple[np.ndarray, np.ndarray]:
        """(microseconds since the first known scrape, whether known) per row: scrape gaps as array arithmetic."""
        if "scraped" not in self._derived:
            known = np.array([t is not None for t in self.scraped_at], dtype=bool)
            origin = next((t for t in self.scraped_at if t is not None), None)
            us = np.array([(t - origin) // timedelta(microseconds=1) if t is not None else 0
                           for t in self.scraped_at], dtype=np.int64)
            self._derived["scraped"] = (us, known)
        return self._derived["scraped"]

    def store_ranks(self) -> np.ndarray:
        """Each row's position among the stores in sort_key order (pairs are kept smaller store first)."""
        if "ranks" not in self._derived:
            order = sorted(range(len(self.stores)), key=lambda i: sort_key(self.stores[i]))
            ranks = np.empty(len(order), dtype=np.int64)
            ranks[order] = np.arange(len(order))
            self._derived["ranks"] = ranks
        return self._derived["ranks"]

    def signatures(self, rows: np.ndarray | None = None, chunk: int = 512) -> np.ndarray:
        """A 64-bit signature of each row's prices: equal prices, equal signature.

        Used to re-use a comparison whose two sides have not changed since.
        """
        rows = np.arange(len(self.stores)) if rows is None else np.asarray(rows)
        column_salt = _mix(_column_hash(self.products))
        out = np.zeros(len(rows), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for start in range(0, len(rows), chunk):
                part = rows[start:start + chunk]
                k = self.keys[part].astype(np.uint64)
                value = (k << np.uint64(32)) ^ self.was[part].astype(np.uint64) ^ column_salt
                value *= np.uint64(0xBF58476D1CE4E5B9)
                value ^= value >> np.uint64(31)
                value *= np.uint64(0x94D049BB133111EB)
                value ^= value >> np.uint64(29)
                value[k == 0] = 0
                out[start:start + chunk] = value.sum(axis=1, dtype=np.uint64)
        return out


def hours(value: datetime | None) -> int:
    """A time as whole hours since the Unix epoch (0 for None): the unit of PriceMatrix.observed."""
    return 0 if value is None else int(value.timestamp() // 3600)


def column_mode(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the most common non-zero key and how many rows have it (ties: the smallest key)."""
    part = np.sort(keys, axis=0)
    mode = np.zeros(keys.shape[1], dtype=keys.dtype)
    best = np.zeros(keys.shape[1], dtype=np.int64)
    run = np.ones(keys.shape[1], dtype=np.int64)
    for i in range(part.shape[0]):
        if i:
            run = np.where(part[i] == part[i - 1], run + 1, 1)
        better = (part[i] != 0) & (run > best)
        mode = np.where(better, part[i], mode)
        best = np.where(better, run, best)
    return mode, best


def _discriminating_order(keys: np.ndarray, sample: int = 64) -> np.ndarray:
    """Columns by how many distinct prices a spread sample of rows shows, most first (ties by column)."""
    if keys.shape[0] == 0 or keys.shape[1] == 0:
        return np.arange(keys.shape[1])
    rows = np.unique(np.linspace(0, keys.shape[0] - 1, min(sample, keys.shape[0])).astype(np.int64))
    part = np.sort(keys[rows], axis=0)
    distinct = 1 + np.count_nonzero(part[1:] != part[:-1], axis=0)
    return np.lexsort((np.arange(keys.shape[1]), -distinct))


def sort_key(value: Hashable) -> tuple:
    """A total order over mixed store / product / group keys (by type name, then value)."""
    return (type(value).__name__, value)


def _dense_ids(ids: np.ndarray) -> np.ndarray:
    """Sorted distinct ids, linear time when ids are small non-negative ints."""
    if len(ids) == 0:
        return ids.astype(np.int64)
    low, high = int(ids.min()), int(ids.max())
    if low >= 0 and high < 8 * len(ids) + 1_000_000:
        seen = np.zeros(high + 1, dtype=bool)
        seen[ids] = True
        return np.flatnonzero(seen).astype(np.int64)
    return np.unique(ids)


def _index_in(wanted: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in `wanted` (any order; the first when repeated), -1 when absent.

    Small non-negative ids (store and product ids) go through a lookup table:
    one gather instead of a binary search per value.
    """
    if len(wanted) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    if len(values) and min(int(wanted.min()), int(values.min())) >= 0:
        high = max(int(wanted.max()), int(values.max()))
        if high < 8 * (len(values) + len(wanted)) + 1_000_000:
            distinct, first = np.unique(wanted, return_index=True)
            table = np.full(high + 1, -1, dtype=np.int64)
            table[distinct] = first
            return table[values]
    order = np.argsort(wanted, kind="stable")
    sorted_ids = wanted[order]
    pos = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == values, order[pos], -1)


def _column_hash(products: np.ndarray) -> np.ndarray:
    if products.dtype == object:
        import hashlib

        return np.array(
            [int.from_bytes(hashlib.blake2b(repr(p).encode(), digest_size=8).digest(), "little") for p in products],
            dtype=np.uint64,
        )
    return products.astype(np.int64).view(np.uint64) if products.dtype == np.int64 else products.astype(np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole word."""
    with np.errstate(over="ignore"):
        x = np.asarray(x, dtype=np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
