"""PriceComparer (DESIGN.md §5): a pure, deterministic judgement of two stores' current pricing.

* overlap: products with a current price at both stores;
* a product agrees when the price is equal to the cent, the on-special flag is
  equal, and the was-price too when both have one;
* INCONCLUSIVE when either side is not current, or the overlap is below
  `min_overlap_products` or below `min_overlap_share` of the smaller catalogue;
* MATCH when agreeing / overlap >= `match_threshold`, else MISMATCH.

The outcome is a function of four counts (overlap, agreeing and the two
catalogue sizes), so a stored comparison can be re-judged under other
settings without touching prices again (see `judge`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.settings import Settings

EXAMPLES = 5  # disagreeing products kept as evidence
SCAN_BLOCK = 512  # columns scanned per step by first_match before dropping hopeless candidates


class Outcome(str, enum.Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Counts:
    """What a comparison measured; enough to re-judge it later."""

    overlap: int
    agreeing: int
    size_a: int
    size_b: int
    complete: bool = True  # False: stopped early, known only not to MATCH (see Comparer.first_match)


@dataclass(frozen=True)
class Comparison:
    """The comparer's verdict on stores a and b, with its evidence."""

    store_a: Hashable
    store_b: Hashable
    outcome: Outcome
    counts: Counts
    reason: str
    disagreeing: tuple = ()
    reused: bool = False

    @property
    def rate(self) -> float:
        return self.counts.agreeing / self.counts.overlap if self.counts.overlap else 0.0

    def evidence(self) -> dict[str, Any]:
        return {
            "stores": [_plain(self.store_a), _plain(self.store_b)],
            "outcome": self.outcome.value,
            "overlap": self.counts.overlap,
            "agreeing": self.counts.agreeing,
            "rate": round(self.rate, 4),
            "catalogues": [self.counts.size_a, self.counts.size_b],
            "reason": self.reason,
            "disagreeing": [_plain(p) for p in self.disagreeing],
            "reused": self.reused,
        }


def min_overlap(size_a: int, size_b: int, settings: Settings) -> int:
    return max(settings.min_overlap_products, math.ceil(settings.min_overlap_share * min(size_a, size_b)))


def judge(counts: Counts, settings: Settings) -> tuple[Outcome, str]:
    """The §5 rule on measured counts (both sides already known to be current)."""
    if not counts.complete:
        return Outcome.MISMATCH, "stopped early: more disagreeing products than a match allows"
    needed = min_overlap(counts.size_a, counts.size_b, settings)
    if counts.overlap < needed:
        return Outcome.INCONCLUSIVE, f"overlap {counts.overlap} below {needed}"
    # integer form of agreeing / overlap >= threshold, immune to float rounding at the edge
    if counts.agreeing >= _threshold_count(counts.overlap, settings.match_threshold):
        return Outcome.MATCH, "agreement at or above threshold"
    return Outcome.MISMATCH, "agreement below threshold"


def _threshold_count(overlap: int, threshold: float) -> int:
    needed = math.ceil(overlap * threshold - 1e-9)
    return max(needed, 0)


class Comparer:
    """Compares rows of one PriceMatrix at one as-of time, re-using known results.

    `known` maps an ordered store pair to (signature_a, signature_b, Counts) from
    earlier runs; a pair whose two signatures are unchanged is not compared again.
    Every comparison computed here is collected in `computed` for the caller to
    record. Pure: no I/O, only in-memory bookkeeping.
    """

    def __init__(
        self,
        matrix: PriceMatrix,
        settings: Settings,
        as_of: datetime,
        known: Mapping[tuple, tuple[int, int, Counts]] | None = None,
    ) -> None:
        self.matrix = matrix
        self.settings = settings
        self.as_of = as_of
        self.window = timedelta(hours=settings.window_hours)
        self.known = dict(known or {})
        self._computed: dict[tuple, Counts] = {}  # this comparer's own results (same prices throughout)
        self._batches: list[tuple] = []  # first_match results not yet folded into _computed
        self.reused = 0
        self._signatures: list[int] | None = None
        self._has_was = np.count_nonzero(matrix.was, axis=1) > 0
        floor = as_of - self.window
        self._current = np.array(
            [t is not None and floor <= t for t in matrix.scraped_at], dtype=bool
        ) & (matrix.sizes > 0)
        self._cached_stores: set = {s for pair in self.known for s in pair}
        # first_match scans columns where stores differ most first, so hopeless pairs drop early
        order = _discriminating_order(matrix.keys)
        self._keys = _permuted(matrix.keys, order)
        self._was = _permuted(matrix.was, order) if self._has_was.any() else None

    @property
    def computed(self) -> dict[tuple, Counts]:
        """Every comparison made by this comparer, by ordered store pair."""
        for a, others, overlap, agreeing, complete, size_a, sizes in self._batches:
            for j in range(len(others)):
                self._remember(a, others[j], Counts(int(overlap[j]), int(agreeing[j]), size_a, int(sizes[j]),
                                                    bool(complete[j])))
        self._batches.clear()
        return self._computed

    # -- signatures -------------------------------------------------------
    def signature(self, store: Hashable) -> int:
        if self._signatures is None:
            self._signatures = self.matrix.signatures().view(np.int64).tolist()
        return self._signatures[self.matrix.row_of[store]]

    def is_current(self, store: Hashable) -> bool:
        row = self.matrix.row_of.get(store)
        return row is not None and bool(self._current[row])

    # -- comparisons ------------------------------------------------------
    def compare(self, a: Hashable, b: Hashable, examples: bool = True) -> Comparison:
        return self.compare_many(a, [b], examples=examples)[0]

    def compare_many(self, a: Hashable, others: Sequence[Hashable], examples: bool = False) -> list[Comparison]:
        """Compare store a with each of `others` (vectorised over the fresh ones)."""
        results: list[Comparison | None] = [None] * len(others)
        fresh: list[int] = []
        a_current = self.is_current(a)
        for i, b in enumerate(others):
            if not (a_current and self.is_current(b)):
                side = a if not a_current else b
                results[i] = Comparison(a, b, Outcome.INCONCLUSIVE, Counts(0, 0, 0, 0), f"store {side} not current")
                continue
            cached = self._cached(a, b)
            if cached is not None and cached.counts.complete:
                results[i] = cached
                self.reused += cached.reused
            else:
                fresh.append(i)  # an early-stopped result says "no match", not MISMATCH or INCONCLUSIVE
        if fresh:
            for i, counts in zip(fresh, self._measure(a, [others[i] for i in fresh])):
                b = others[i]
                outcome, reason = judge(counts, self.settings)
                disagreeing = self.disagreeing(a, b) if examples and outcome is not Outcome.INCONCLUSIVE else ()
                results[i] = Comparison(a, b, outcome, counts, reason, disagreeing)
                self._remember(a, b, counts)
                self._cached_stores.update((a, b))
        return results  # type: ignore[return-value]

    def first_match(self, a: Hashable, others: Sequence[Hashable]) -> tuple[int, Comparison] | None:
        """The first of `others`, in the order given, that MATCHes a (and that comparison), or None.

        Decides exactly as compare_many would, but cheaper: the columns are
        scanned in blocks for all candidates at once, and a candidate is dropped
        as soon as it has more disagreeing products than any MATCH allows
        ((1 - threshold) * the smaller catalogue). Only comparisons carried to
        the end are remembered for re-use.
        """
        if not self.is_current(a):
            return None
        found: dict[int, Comparison] = {}
        pending: list[int] = []
        row_of, current = self.matrix.row_of, self._current
        may_be_cached = a in self._cached_stores
        for i, b in enumerate(others):
            if not current[row_of[b]]:
                continue
            cached = self._cached(a, b) if may_be_cached else None
            if cached is None:
                pending.append(i)
                continue
            self.reused += cached.reused
            if cached.outcome is Outcome.MATCH:
                found[i] = cached
                break
        limit = min(found) if found else len(others)
        pending = [i for i in pending if i < limit]
        if pending:
            candidates = [others[i] for i in pending]
            measured, overlap, agreeing, complete, size_a, sizes = self._scan(a, candidates)
            if len(measured):
                self._batches.append((a, [candidates[j] for j in measured], overlap[measured],
                                      agreeing[measured], complete[measured], size_a, sizes[measured]))
                self._cached_stores.add(a)
                self._cached_stores.update(candidates)
            for j in measured[complete[measured]].tolist():
                counts = Counts(int(overlap[j]), int(agreeing[j]), size_a, int(sizes[j]))
                outcome, reason = judge(counts, self.settings)
                if outcome is Outcome.MATCH:
                    found[pending[j]] = Comparison(a, candidates[j], outcome, counts, reason)
        if not found:
            return None
        first = min(found)
        return first, found[first]

    def _scan(self, a: Hashable, others: Sequence[Hashable]):
        """Block-wise counts of a against each of `others`, dropping hopeless candidates early.

        Returns (measured, overlap, agreeing, complete, size_a, sizes): `measured`
        indexes the candidates that were scanned at all (a catalogue smaller than
        min_overlap_products can never be conclusive and is skipped); `complete`
        marks those scanned to the end, the others were stopped once they had
        more disagreeing products than any MATCH allows.
        """
        m = self.matrix
        ra = m.row_of[a]
        rows = np.fromiter((m.row_of[b] for b in others), dtype=np.int64, count=len(others))
        size_a = int(m.sizes[ra])
        sizes = m.sizes[rows]
        smaller = np.minimum(sizes, size_a)
        allowed = np.floor((1 - self.settings.match_threshold) * smaller + 1e-9)
        disagree = np.zeros(len(rows), dtype=np.int64)
        overlap = np.zeros(len(rows), dtype=np.int64)
        complete = np.zeros(len(rows), dtype=bool)
        measured = np.flatnonzero(smaller >= self.settings.min_overlap_products)
        alive = measured
        keys, was = self._keys, self._was
        use_was = was is not None and bool(self._has_was[ra]) and bool(self._has_was[rows].any())
        start, block, width = 0, SCAN_BLOCK, keys.shape[1]
        while start < width and len(alive):
            end = start + block
            ka = keys[ra, start:end]
            kb = keys[rows[alive], start:end]
            both = (kb != 0) & (ka != 0)
            differ = kb != ka
            if use_was:
                wa = was[ra, start:end]
                wb = was[rows[alive], start:end]
                differ |= (wa != 0) & (wb != 0) & (wa != wb)
            overlap[alive] += np.count_nonzero(both, axis=1)
            disagree[alive] += np.count_nonzero(both & differ, axis=1)
            alive = alive[disagree[alive] <= allowed[alive]]
            start, block = end, block * 2  # survivors are likely matches: finish them in few steps
        complete[alive] = True
        return measured, overlap, overlap - disagree, complete, size_a, sizes

    def disagreeing(self, a: Hashable, b: Hashable, limit: int = EXAMPLES) -> tuple:
        m = self.matrix
        ka, kb = m.keys[m.row_of[a]], m.keys[m.row_of[b]]
        wa, wb = m.was[m.row_of[a]], m.was[m.row_of[b]]
        both = (ka != 0) & (kb != 0)
        agree = (ka == kb) & ((wa == 0) | (wb == 0) | (wa == wb))
        cols = np.flatnonzero(both & ~agree)[:limit]
        return tuple(_plain(m.products[c]) for c in cols)

    def _measure(self, a: Hashable, others: Sequence[Hashable]) -> list[Counts]:
        m = self.matrix
        ra = m.row_of[a]
        rows = np.fromiter((m.row_of[b] for b in others), dtype=np.int64, count=len(others))
        ka, wa = m.keys[ra], m.was[ra]
        kb, wb = m.keys[rows], m.was[rows]
        both = (kb != 0) & (ka != 0)
        overlap = np.count_nonzero(both, axis=1)
        agree = both & (kb == ka) & ((wb == 0) | (wa == 0) | (wb == wa))
        agreeing = np.count_nonzero(agree, axis=1)
        size_a = int(m.sizes[ra])
        return [Counts(int(o), int(g), size_a, int(m.sizes[r])) for o, g, r in zip(overlap, agreeing, rows)]

    def _cached(self, a: Hashable, b: Hashable) -> Comparison | None:
        key, flipped = _pair_key(a, b)
        counts = self.computed.get(key)
        reused = counts is None
        if counts is None:
            entry = self.known.get(key)
            if entry is None:
                return None
            sig_first, sig_second, counts = entry
            if sig_first != self.signature(key[0]) or sig_second != self.signature(key[1]):
                return None  # a side's prices changed since: compare again
        if flipped:
            counts = Counts(counts.overlap, counts.agreeing, counts.size_b, counts.size_a, counts.complete)
        outcome, reason = judge(counts, self.settings)
        return Comparison(a, b, outcome, counts, reason, reused=reused)

    def _remember(self, a: Hashable, b: Hashable, counts: Counts) -> None:
        key, flipped = _pair_key(a, b)
        if flipped:
            counts = Counts(counts.overlap, counts.agreeing, counts.size_b, counts.size_a, counts.complete)
        self._computed[key] = counts

    def signed_results(self) -> dict[tuple, tuple[int, int, Counts]]:
        """This comparer's results with both sides' price signatures, for recording and later re-use."""
        return {key: (self.signature(key[0]), self.signature(key[1]), c) for key, c in self.computed.items()}


def _pair_key(a: Hashable, b: Hashable) -> tuple[tuple, bool]:
    """Pairs are stored once, smaller store first."""
    if type(a) is type(b):
        return ((a, b), False) if a <= b else ((b, a), True)
    return ((a, b), False) if (type(a).__name__, a) <= (type(b).__name__, b) else ((b, a), True)


def _permuted(values: np.ndarray, order: np.ndarray, chunk: int = 256) -> np.ndarray:
    """values[:, order], gathered a few rows at a time (cache-friendly for wide matrices)."""
    out = np.empty_like(values)
    for start in range(0, values.shape[0], chunk):
        out[start:start + chunk] = values[start:start + chunk][:, order]
    return out


def _discriminating_order(keys: np.ndarray, sample: int = 64) -> np.ndarray:
    """Columns by how many distinct prices a spread sample of rows shows, most first (ties by column).

    Only the order of work depends on it, never a result.
    """
    if keys.shape[0] == 0 or keys.shape[1] == 0:
        return np.arange(keys.shape[1])
    rows = np.unique(np.linspace(0, keys.shape[0] - 1, min(sample, keys.shape[0])).astype(np.int64))
    part = np.sort(keys[rows], axis=0)
    distinct = 1 + np.count_nonzero(part[1:] != part[:-1], axis=0)
    return np.lexsort((np.arange(keys.shape[1]), -distinct))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class StorePricing:
    """One store's current pricing, for comparing two stores without a matrix."""

    store: Hashable
    scraped_at: datetime | None
    prices: Mapping[Hashable, tuple[int, int, bool]] = field(default_factory=dict)  # product -> (cents, was cents, special)


class PriceComparer:
    """The §5 comparer on two stores' pricing: `PriceComparer(settings, as_of).compare(a, b)`."""

    def __init__(self, settings: Settings, as_of: datetime) -> None:
        self.settings = settings
        self.as_of = as_of

    def compare(self, a: StorePricing, b: StorePricing) -> Comparison:
        matrix = PriceMatrix.from_prices(
            {a.store: a.prices, b.store: b.prices}, {a.store: a.scraped_at, b.store: b.scraped_at}
        )
        return Comparer(matrix, self.settings, self.as_of).compare(a.store, b.store)
