"""Blocking: which anchors are worth comparing at all, with a guarantee never to miss a match.

The basket is the `blocking_basket` products carried by the most of a chain's
anchors (ties by column). Two stores are candidates when they differ in
(price, special) on at most min(b_A, b_B) of the basket products both carry,
where b_s is the most disagreeing products any MATCH of store s can have.

Why no MATCH is missed. b_s is rules/compare.max_disagreements: both stores'
own-deviation allowances max_member_deviation * n, the shared tolerance and
the timing allowance, or the own allowance alone when no store of the set has
a group to back its prices; it is non-decreasing in the catalogue size and in
the time between scrapes, so it is computed with s's catalogue and the
largest gap between s's scrape and any other store's. A pair's overlap is at
most min(n_A, n_B) and its gap at most either store's largest gap, so a MATCH
of A and B disagrees on at most min(b_A, b_B) products, so on at most as many
of the basket products both carry (a was-price difference only makes the true
disagreements more). A pair above that cannot MATCH and is never compared.

This contains the pigeonhole argument of earlier versions (a store is
*covered* when 2 c_s - k > b_s + 1, k the basket size and c_s the basket
products it carries: two covered stores share C >= c_A + c_B - k > (b_A +
b_B) / 2 + 1 basket products, so they need at least one agreeing one) and
prunes far more: two stores carrying 85% of the basket share about 185 basket
products, and a MATCH of two 4,250-product stores scraped together disagrees
on at most 42 products (nobody backs either side) or 2*42 + 8 (backed), so
two lists more than about a quarter apart on the basket are never compared.
A store with a tiny catalogue shares few basket products with anyone, so it
is rarely ruled out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from pricegroups.grouping.rules.compare import max_disagreements_of, timing_allowances
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.settings import Settings


@dataclass(frozen=True, eq=False)
class Blocking:
    """Basket keys and match bounds of some rows of a matrix, in the order given."""

    columns: np.ndarray  # basket columns of the matrix
    keys: np.ndarray  # (rows, basket) int32 keys, 0 = not carried
    bound: np.ndarray  # int64 per row: the most disagreeing products any MATCH of it can have (b_s)

    def candidates_of(self, i: int, among: np.ndarray) -> np.ndarray:
        """Which of the rows `among` are candidates for row i (bool array)."""
        return self.candidates_of_many(np.array([i]), among)[0]

    def candidates_of_many(self, rows: np.ndarray, among: np.ndarray) -> np.ndarray:
        """Which of the rows `among` are candidates for each of `rows` (bool, len(rows) x len(among))."""
        rows, among = np.asarray(rows, dtype=np.int64), np.asarray(among, dtype=np.int64)
        others = self.keys[among]
        differing = np.empty((len(rows), len(among)), dtype=np.int64)
        step = max(1, (1 << 24) // max(1, others.size))  # bounds the (rows, among, basket) temporary
        for start in range(0, len(rows), step):
            keys = self.keys[rows[start:start + step]]
            differ = (keys[:, None, :] != others[None, :, :]) & (keys != 0)[:, None, :] & (others != 0)[None, :, :]
            differing[start:start + step] = differ.view(np.uint8).sum(axis=2, dtype=np.int32)
        return differing <= np.minimum(self.bound[rows][:, None], self.bound[among][None, :])


def basket(matrix: PriceMatrix, rows: np.ndarray, size: int) -> np.ndarray:
    """Columns carried by the most of `rows`, most carried first; ties by column."""
    coverage = np.zeros(matrix.keys.shape[1], dtype=np.int64)
    for start in range(0, len(rows), 512):  # row blocks: no copy of the whole matrix
        coverage += np.add.reduce(matrix.keys[rows[start:start + 512]] != 0, axis=0, dtype=np.int64)
    order = np.lexsort((np.arange(len(coverage)), -coverage))
    return np.sort(order[: min(size, int(np.count_nonzero(coverage)))])


def build(
    matrix: PriceMatrix, rows: np.ndarray, settings: Settings, supported: bool = True, change_rate: float | None = None
) -> Blocking:
    """Basket and match bounds of `rows`; `supported`: whether any of them has a group backing its prices."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = basket(matrix, rows, settings.blocking_basket)
    keys = matrix.keys[np.ix_(rows, cols)] if len(cols) else np.zeros((len(rows), 0), dtype=np.int32)
    sizes = matrix.sizes[rows]
    rate = settings.daily_change_rate if change_rate is None else change_rate
    us, known = matrix.scraped_us()
    us, known = us[rows], known[rows]
    low, high = (int(us[known].min()), int(us[known].max())) if known.any() else (0, 0)
    gap = np.where(known, np.maximum(high - us, us - low), 0)  # the largest gap to any other store's scrape
    bound = max_disagreements_of(sizes, settings, timing_allowances(sizes, gap, rate), np.full(len(rows), supported))
    return Blocking(cols, keys, bound)


def candidate_pairs(
    matrix: PriceMatrix, stores: Sequence[Hashable], settings: Settings, supported: bool = True,
    change_rate: float | None = None,
) -> set[tuple]:
    """Every candidate pair of `stores`, ordered by matrix row (for listing or splitting work)."""
    rows = np.array(sorted(matrix.row_of[s] for s in stores), dtype=np.int64)
    blocking = build(matrix, rows, settings, supported, change_rate)
    pairs: set[tuple] = set()
    for i in range(len(rows) - 1):
        later = np.arange(i + 1, len(rows))
        for j in later[blocking.candidates_of(i, later)]:
            pairs.add((matrix.stores[rows[i]], matrix.stores[rows[j]]))
    return pairs
