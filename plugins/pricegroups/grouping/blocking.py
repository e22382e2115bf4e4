"""Blocking: which anchors are worth comparing at all, with a guarantee never to miss a match.

The basket is the `blocking_basket` products carried by the most of a chain's
anchors (ties by column). Two stores are candidates when they have the same
(price, special) on at least one basket product both carry, or when either
store is *uncovered* (see below): an uncovered store is compared with every
other store, exhaustively.

Why no MATCH is missed (pigeonhole). Let k be the basket size, c_s the basket
products store s carries, n_s its catalogue size and t the match threshold.
Both stores of a pair carry at least c_A + c_B - k basket products in common,
and a MATCH has at most (1 - t) * overlap <= (1 - t) * min(n_A, n_B)
disagreeing products. A store is *covered* when 2 c_s - k > (1 - t) n_s + 1.
If both are covered, c_A + c_B - k > (1 - t) min(n_A, n_B) + 1, so more
basket products are shared than can possibly disagree: at least one shared
basket product agrees, i.e. has equal keys, and the pair is a candidate.
Every other pair involves an uncovered store and is compared anyway.

With a real chain (and the benchmark) nearly every store is covered:
a store carrying 85% of the basket and 4,250 products has 2*218 - 256 = 180 >
86. Stores with tiny or odd catalogues are uncovered and cost a full scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

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
        if not self.covered[i]:
            return np.ones(len(among), dtype=bool)
        row = self.keys[i]
        shares = ((self.keys[among] == row) & (row != 0)).any(axis=1)
        return shares | ~self.covered[among]


def basket(matrix: PriceMatrix, rows: np.ndarray, size: int) -> np.ndarray:
    """Columns carried by the most of `rows`, most carried first; ties by column."""
    coverage = np.count_nonzero(matrix.keys[rows], axis=0)
    order = np.lexsort((np.arange(len(coverage)), -coverage))
    return np.sort(order[: min(size, int(np.count_nonzero(coverage)))])


def build(matrix: PriceMatrix, rows: np.ndarray, settings: Settings) -> Blocking:
    rows = np.asarray(rows, dtype=np.int64)
    cols = basket(matrix, rows, settings.blocking_basket)
    keys = matrix.keys[np.ix_(rows, cols)] if len(cols) else np.zeros((len(rows), 0), dtype=np.int32)
    carried = np.count_nonzero(keys, axis=1)
    sizes = matrix.sizes[rows]
    covered = 2 * carried - len(cols) > (1 - settings.match_threshold) * sizes + 1
    return Blocking(cols, keys, covered)


def candidate_pairs(matrix: PriceMatrix, stores: Sequence[Hashable], settings: Settings) -> set[tuple]:
    """Every candidate pair of `stores`, ordered by matrix row (for listing or splitting work)."""
    rows = np.array(sorted(matrix.row_of[s] for s in stores), dtype=np.int64)
    blocking = build(matrix, rows, settings)
    pairs: set[tuple] = set()
    for i in range(len(rows) - 1):
        later = np.arange(i + 1, len(rows))
        for j in later[blocking.candidates_of(i, later)]:
            pairs.add((matrix.stores[rows[i]], matrix.stores[rows[j]]))
    return pairs
