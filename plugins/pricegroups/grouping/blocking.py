"""Blocking: which anchors are worth comparing at all, from band signatures of their prices.

A basket of the chain's most widely carried products is split into
`blocking_bands` bands of `blocking_rows_per_band` products. A store's key
for a band hashes its (price, special) on those products; two stores are
candidates when they share the key of at least one band. Bands where a store
carries none of the products get no key.

Why this finds the matches: two stores that MATCH agree on at least 98% of
their overlap, so most bands whose products both carry are identical. A band
is missed only if, for every band, the stores differ in assortment or price
on one of its products. With p the probability that a band is identical for a
matching pair, the pair is missed with probability (1 - p)^bands; for two
stores each carrying a random 85% of the basket and 1.6% price noise between
them, p = 0.39 and the miss probability with 40 bands of 3 is about 3e-9.
Chains with fewer than `blocking_exhaustive_below` anchors skip blocking and
compare every pair, which is exact. docs/grouping.md has the measurements.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from pricegroups.grouping.pricing import PriceMatrix, _mix
from pricegroups.settings import Settings

NO_KEY = np.uint64(0)


def basket(matrix: PriceMatrix, rows: np.ndarray, size: int) -> np.ndarray:
    """Columns carried by the most of `rows`, most carried first; ties by column."""
    coverage = np.count_nonzero(matrix.keys[rows], axis=0)
    order = np.lexsort((np.arange(len(coverage)), -coverage))
    return order[: min(size, int(np.count_nonzero(coverage)))]


def band_keys(matrix: PriceMatrix, rows: np.ndarray, settings: Settings) -> np.ndarray:
    """(len(rows), bands) uint64 band keys; NO_KEY where a store carries none of a band."""
    bands, per_band = settings.blocking_bands, settings.blocking_rows_per_band
    cols = basket(matrix, rows, bands * per_band)
    bands = max(1, min(bands, len(cols) // per_band)) if len(cols) else 0
    out = np.zeros((len(rows), bands), dtype=np.uint64)
    keys = matrix.keys[rows]
    with np.errstate(over="ignore"):
        for band in range(bands):
            band_cols = cols[band::bands][:per_band]
            values = keys[:, band_cols]
            h = np.full(len(rows), band + 1, dtype=np.uint64)
            for c in range(values.shape[1]):
                h = _mix(h ^ (values[:, c].astype(np.uint64) + np.uint64(c << 40)))
            h[h == NO_KEY] = 1
            h[np.count_nonzero(values, axis=1) == 0] = NO_KEY
            out[:, band] = h
    return out


def candidate_pairs(matrix: PriceMatrix, stores: Sequence[Hashable], settings: Settings) -> set[tuple]:
    """Every pair of `stores` sharing a band key (or every pair, below the blocking threshold).

    Pairs come out ordered (row order of the matrix first). This is for
    inspection and for splitting comparisons over workers; the merge pass
    itself walks the same buckets lazily (see merging.plan_merges).
    """
    rows = np.array(sorted(matrix.row_of[s] for s in stores), dtype=np.int64)
    if len(rows) < settings.blocking_exhaustive_below:
        return {(matrix.stores[a], matrix.stores[b]) for i, a in enumerate(rows) for b in rows[i + 1:]}
    keys = band_keys(matrix, rows, settings)
    pairs: set[tuple] = set()
    for band in range(keys.shape[1]):
        column = keys[:, band]
        order = np.argsort(column, kind="stable")
        sorted_keys = column[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for start, end in zip(starts, ends):
            if end - start < 2 or sorted_keys[start] == NO_KEY:
                continue
            members = np.sort(rows[order[start:end]])
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    pairs.add((matrix.stores[a], matrix.stores[b]))
    return pairs
