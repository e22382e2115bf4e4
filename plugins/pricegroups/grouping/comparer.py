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
        self.computed: dict[tuple, tuple[int, int, Counts]] = {}
        self.reused = 0
        self._signatures: np.ndarray | None = None

    # -- signatures -------------------------------------------------------
    def signature(self, store: Hashable) -> int:
        if self._signatures is None:
            self._signatures = self.matrix.signatures()
        return int(self._signatures[self.matrix.row_of[store]].astype(np.int64))

    def is_current(self, store: Hashable) -> bool:
        return self.matrix.is_current(store, self.as_of, self.window)

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
            if cached is not None:
                results[i] = cached
            else:
                fresh.append(i)
        if fresh:
            for i, counts in zip(fresh, self._measure(a, [others[i] for i in fresh])):
                b = others[i]
                outcome, reason = judge(counts, self.settings)
                disagreeing = self.disagreeing(a, b) if examples and outcome is not Outcome.INCONCLUSIVE else ()
                results[i] = Comparison(a, b, outcome, counts, reason, disagreeing)
                self._remember(a, b, counts)
        return results  # type: ignore[return-value]

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
        entry = self.computed.get(key) or self.known.get(key)
        if entry is None:
            return None
        sig_first, sig_second, counts = entry
        first, second = key
        if sig_first != self.signature(first) or sig_second != self.signature(second):
            return None
        if flipped:
            counts = Counts(counts.overlap, counts.agreeing, counts.size_b, counts.size_a)
        if key not in self.computed:
            self.reused += 1
        outcome, reason = judge(counts, self.settings)
        return Comparison(a, b, outcome, counts, reason, reused=key not in self.computed)

    def _remember(self, a: Hashable, b: Hashable, counts: Counts) -> None:
        key, flipped = _pair_key(a, b)
        if flipped:
            counts = Counts(counts.overlap, counts.agreeing, counts.size_b, counts.size_a)
        self.computed[key] = (self.signature(key[0]), self.signature(key[1]), counts)


def _pair_key(a: Hashable, b: Hashable) -> tuple[tuple, bool]:
    """Pairs are stored once, smaller store first."""
    return ((a, b), False) if (type(a).__name__, a) <= (type(b).__name__, b) else ((b, a), True)


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
