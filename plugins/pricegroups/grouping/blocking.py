"""Blocking: which anchors are worth comparing at all, with a guarantee never to miss a match.

The basket is the `blocking_basket` products carried by the most of a chain's
anchors (ties by column). Two stores are candidates when they have the same
(price, special) on at least one basket product both carry, or when either
store is *uncovered* (see below): an uncovered store is compared with every
other store, exhaustively.

Why no MATCH is missed (pigeonhole). Let k be the basket size, c_s the basket
products store s carries and b_s the most disagreeing products any MATCH of s
can have (comparer.max_disagreements: both stores' own-deviation allowances
max_member_deviation * n, the shared tolerance and the timing allowance, or
the own allowance alone when no store of the set has a group to back its
prices; non-decreasing in the catalogue size n_s and in the time between
scrapes, so it is computed with s's catalogue and the largest gap between s's
scrape and any other store's). A store is *covered* when 2 c_s - k > b_s + 1.
Both stores of a pair carry at least c_A + c_B - k basket products in common;
if both are covered that is more than (b_A + b_B) / 2 + 1 >= the pair's own
bound + 1 (the pair's overlap is at most min(n_A, n_B) and its gap at most
either store's largest gap), so at least one shared basket product agrees,
i.e. has equal keys, and the pair is a candidate. Every other pair involves an
uncovered store and is compared anyway.

With a real chain (and the benchmark) nearly every store is covered: a store
carrying 85% of the basket and 4,250 products, scraped with the others, has
2*218 - 256 = 180 > 2*42 + 8 + 1. Stores with tiny or odd catalogues, or
scraped long before the others, are uncovered and cost a full scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from pricegroups.grouping.comparer import max_disagreements_of, timing_allowances
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.settings import Settings


@dataclass(frozen=True, eq=False)
class Blocking:
    """Basket keys and coverage of some rows of a matrix, in the order given."""

    columns: np.ndarray  # basket columns of the matrix
    keys: np.ndarray  # (rows, basket) int32 keys, 0 = not carried
    covered: np.ndarray  # bool per row: the pigeonhole guarantee holds for it

    def candidates_of(self, i: int, among: np.ndarray) -> np.ndarray:
        """Which of the rows `among` are candidates for row i (bool array)."""
        return self.candidates_of_many(np.array([i]), among)[0]

    def candidates_of_many(self, rows: np.ndarray, among: np.ndarray) -> np.ndarray:
        """Which of the rows `among` are candidates for each of `rows` (bool, len(rows) x len(among))."""
        out = np.empty((len(rows), len(among)), dtype=bool)
        others = self.keys[among]
        step = max(1, (1 << 24) // max(1, others.size))  # bounds the (rows, among, basket) temporary
        for start in range(0, len(rows), step):
            keys = self.keys[rows[start:start + step]]
            out[start:start + step] = ((keys[:, None, :] == others[None, :, :]) & (keys != 0)[:, None, :]).any(axis=2)
        return out | ~self.covered[among][None, :] | ~self.covered[rows][:, None]


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
    """Basket and coverage of `rows`; `supported`: whether any of them has a group backing its prices."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = basket(matrix, rows, settings.blocking_basket)
    keys = matrix.keys[np.ix_(rows, cols)] if len(cols) else np.zeros((len(rows), 0), dtype=np.int32)
    carried = np.count_nonzero(keys, axis=1)
    sizes = matrix.sizes[rows]
    rate = settings.daily_change_rate if change_rate is None else change_rate
    us, known = matrix.scraped_us()
    us, known = us[rows], known[rows]
    low, high = (int(us[known].min()), int(us[known].max())) if known.any() else (0, 0)
    gap = np.where(known, np.maximum(high - us, us - low), 0)  # the largest gap to any other store's scrape
    bound = max_disagreements_of(sizes, settings, timing_allowances(sizes, gap, rate), np.full(len(rows), supported))
    covered = 2 * carried - len(cols) > bound + 1
    return Blocking(cols, keys, covered)


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
