"""PriceComparer (DESIGN.md §5): is a pricing difference a different price list, or noise?

* overlap: products with a current price at both stores; a product agrees when
  the price is equal to the cent, the on-special flag is equal, and the
  was-price too when both have one;
* each disagreeing product is classified by who else charges the two prices
  (support.py): *shared* when other stores stand behind both prices (evidence
  of two price lists), else the *own deviation* of the side nobody else backs
  (a store's idiosyncratic price, or a scrape caught mid-change);
* *timing* explains up to a Poisson upper bound of the changes the chain's
  observed daily change rate predicts between the two scrapes' times; such a
  change is seen by the later scrape only, so nobody backs it yet: timing
  widens the own-deviation allowance, never the shared one;
* INCONCLUSIVE when either side is not current, or the overlap is below
  `min_overlap_products` or below `min_overlap_share` of the smaller catalogue;
* MISMATCH when more products are shared disagreements than
  `shared_deviation_tolerance` allows (at least SHARED_FLOOR): a different list; or when
  either store's own deviations exceed `max_member_deviation` (+ timing);
* else MATCH: the differences are the stores' own, kept as overrides.

Without any other store to ask (two ungrouped stores), every disagreement is
both stores' own, so the rule is "at most max_member_deviation of the overlap
differs". The outcome is a function of the stored counts, so a remembered
comparison can be re-judged under other settings (see `judge`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.grouping.support import GroupSupport
from pricegroups.settings import Settings

EXAMPLES = 20  # disagreeing products kept as evidence
SHARED_FLOOR = 2  # shared disagreements any overlap tolerates (see allowed_shared)
SCAN_BLOCK = 512  # columns scanned per step by best_match before dropping hopeless candidates


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
    complete: bool = True  # False: stopped early, known only not to MATCH (see Comparer.best_match)
    shared: int = 0  # disagreements both of whose prices other stores charge too
    own_a: int = 0  # disagreements where nobody else charges a's price
    own_b: int = 0
    timing: int = 0  # disagreements the time between the two scrapes can explain

    @property
    def disagreeing(self) -> int:
        return self.overlap - self.agreeing

    def flipped(self) -> "Counts":
        return Counts(self.overlap, self.agreeing, self.size_b, self.size_a, self.complete, self.shared,
                      self.own_b, self.own_a, self.timing)


@dataclass(frozen=True)
class Comparison:
    """The comparer's verdict on stores a and b, with its evidence."""

    store_a: Hashable
    store_b: Hashable
    outcome: Outcome
    counts: Counts
    reason: str
    disagreeing: tuple = ()  # products that disagree (up to EXAMPLES)
    shared_with: tuple = ()  # for the shared ones among them: (product, stores backing a, stores backing b)
    reused: bool = False

    @property
    def rate(self) -> float:
        return self.counts.agreeing / self.counts.overlap if self.counts.overlap else 0.0

    def evidence(self) -> dict[str, Any]:
        c = self.counts
        return {
            "stores": [plain(self.store_a), plain(self.store_b)],
            "outcome": self.outcome.value,
            "overlap": c.overlap,
            "agreeing": c.agreeing,
            "rate": round(self.rate, 4),
            "catalogues": [c.size_a, c.size_b],
            "shared": c.shared,
            "own": [c.own_a, c.own_b],
            "timing": c.timing,
            "reason": self.reason,
            "disagreeing": [plain(p) for p in self.disagreeing],
            "shared_with": [[plain(p), int(na), int(nb)] for p, na, nb in self.shared_with],
            "reused": self.reused,
        }


def min_overlap(size_a: int, size_b: int, settings: Settings) -> int:
    return max(settings.min_overlap_products, math.ceil(settings.min_overlap_share * min(size_a, size_b)))


def allowed_own(overlap: int, settings: Settings) -> int:
    """The most own deviations one store may have against the other (excluding timing)."""
    return int(math.floor(settings.max_member_deviation * overlap + 1e-9))


def allowed_shared(overlap: int, settings: Settings) -> int:
    """The most shared disagreements a MATCH tolerates (coincidences), excluding timing.

    At least SHARED_FLOOR: after deduplication a member without a row for a
    product looks like it charges its anchor's price there even when it does
    not carry it, so a product or two can look shared by chance.
    """
    return max(SHARED_FLOOR, int(math.floor(settings.shared_deviation_tolerance * overlap + 1e-9)))


def timing_allowance(overlap: int, gap: timedelta, daily_rate: float) -> int:
    """An upper bound (mean + 3 sd of a Poisson count, + 1) of products whose price changed between two scrapes."""
    days = abs(gap.total_seconds()) / 86400
    if days < 1 / 24:
        return 0  # scraped within the same hour: nothing to explain
    expected = daily_rate * overlap * days
    return int(math.ceil(expected + 3 * math.sqrt(expected) + 1))


MAX_CHANGE_RATE = 0.2  # a store that moved list must not make timing explain a whole list


def chain_change_rate(shares: Sequence[float]) -> float:
    """A chain's daily rate of price changes from its anchors' shares of prices changed in their last day.

    The median (interpolated), so one anchor that moved list does not set it,
    capped at MAX_CHANGE_RATE. The database path and GroupBook both use it.
    """
    return min(MAX_CHANGE_RATE, float(np.median(shares)))


def max_disagreements(size: int, settings: Settings, timing: int = 0, supported: bool = True) -> int:
    """The most disagreeing products any MATCH of a store with `size` products can have.

    Without support on either side every disagreement is both stores' own, so
    the bound is the own allowance; with support it is both own allowances plus
    the shared one. Blocking and early stopping rely on this bound.
    """
    if not supported:
        return allowed_own(size, settings) + timing
    return 2 * (allowed_own(size, settings) + timing) + allowed_shared(size, settings)


def judge(counts: Counts, settings: Settings) -> tuple[Outcome, str]:
    """The §5 rule on measured counts (both sides already known to be current)."""
    if not counts.complete:
        return Outcome.MISMATCH, "stopped early: more disagreeing products than any match allows"
    needed = min_overlap(counts.size_a, counts.size_b, settings)
    if counts.overlap < needed:
        return Outcome.INCONCLUSIVE, f"overlap {counts.overlap} below {needed}"
    shared_cap = allowed_shared(counts.overlap, settings)  # a change seen by one scrape only is nobody else's yet
    if counts.shared > shared_cap:
        return Outcome.MISMATCH, f"{counts.shared} disagreements shared by other stores (at most {shared_cap}): a different price list"
    own_cap = allowed_own(counts.overlap, settings) + counts.timing
    worst = max(counts.own_a, counts.own_b)
    if worst > own_cap:
        return Outcome.MISMATCH, f"{worst} own deviations of one store (at most {own_cap})"
    return Outcome.MATCH, "differences within one store's own deviations"


class Comparer:
    """Compares rows of one PriceMatrix at one as-of time, re-using known results.

    `supports` maps a store to its group's evidence (support.py); a store
    without one is alone (nobody backs its prices). `change_rate` is the
    chain's observed daily rate of price changes (timing). `known` maps an
    ordered store pair to (signature_a, signature_b, Counts) from earlier
    runs; a pair whose two signatures (prices and evidence) are unchanged is
    not compared again. Pure: no I/O, only in-memory bookkeeping.
    """

    def __init__(
        self,
        matrix: PriceMatrix,
        settings: Settings,
        as_of: datetime,
        known: Mapping[tuple, tuple[int, int, Counts]] | None = None,
        supports: Mapping[Hashable, GroupSupport] | None = None,
        change_rate: float | None = None,
    ) -> None:
        self.matrix = matrix
        self.settings = settings
        self.as_of = as_of
        self.window = settings.window
        self.known = dict(known or {})
        self.supports = dict(supports or {})
        self.change_rate = settings.daily_change_rate if change_rate is None else change_rate
        self._computed: dict[tuple, Counts] = {}
        self.reused = 0
        self._signatures: list[int] | None = None
        self._has_was = np.count_nonzero(matrix.was, axis=1) > 0
        floor = settings.current_since(as_of)
        self._current = np.array(
            [t is not None and floor <= t for t in matrix.scraped_at], dtype=bool
        ) & (matrix.sizes > 0)
        self._cached_stores: set = {s for pair in self.known for s in pair}
        # best_match scans columns where stores differ most first, so hopeless pairs drop early
        order = _discriminating_order(matrix.keys)
        self._keys = _permuted(matrix.keys, order)
        self._was = _permuted(matrix.was, order) if self._has_was.any() else None
        self._max_timing = timing_allowance(int(matrix.sizes.max(initial=0)), self.window, self.change_rate)

    @property
    def computed(self) -> dict[tuple, Counts]:
        """Every comparison made by this comparer, by ordered store pair."""
        return self._computed

    # -- signatures -------------------------------------------------------
    def signature(self, store: Hashable) -> int:
        """The store's price signature, combined with its group's evidence when it has any."""
        if self._signatures is None:
            self._signatures = self.matrix.signatures().view(np.int64).tolist()
        own = self._signatures[self.matrix.row_of[store]]
        support = self.supports.get(store)
        return own if support is None else own ^ support.signature

    def is_current(self, store: Hashable) -> bool:
        row = self.matrix.row_of.get(store)
        return row is not None and bool(self._current[row])

    # -- comparisons ------------------------------------------------------
    def compare(self, a: Hashable, b: Hashable, examples: bool = True) -> Comparison:
        return self.compare_many(a, [b], examples=examples)[0]

    def compare_many(self, a: Hashable, others: Sequence[Hashable], examples: bool = False) -> list[Comparison]:
        """Compare store a with each of `others`."""
        results: list[Comparison | None] = [None] * len(others)
        fresh: list[int] = []
        a_current = self.is_current(a)
        for i, b in enumerate(others):
            if not (a_current and self.is_current(b)):
                side = a if not a_current else b
                results[i] = Comparison(a, b, Outcome.INCONCLUSIVE, Counts(0, 0, 0, 0), f"store {side} not current")
                continue
            cached = self._cached(a, b)
            if cached is not None and cached.counts.complete and not examples:
                results[i] = cached
                self.reused += cached.reused
            else:
                fresh.append(i)  # an early-stopped result says "no match", not MISMATCH or INCONCLUSIVE
        plain = [i for i in fresh if not examples and a not in self.supports and others[i] not in self.supports]
        if plain:  # nobody backs either side: every disagreement is both stores' own (vectorised)
            for i, counts in zip(plain, self._measure_alone(a, [others[i] for i in plain])):
                outcome, reason = judge(counts, self.settings)
                results[i] = Comparison(a, others[i], outcome, counts, reason)
                self._remember(a, others[i], counts)
            fresh = [i for i in fresh if results[i] is None]
        for i in fresh:
            b = others[i]
            counts, disagreeing, shared_with = self._measure(a, b)
            outcome, reason = judge(counts, self.settings)
            if not examples or outcome is Outcome.INCONCLUSIVE:
                disagreeing, shared_with = (), ()
            results[i] = Comparison(a, b, outcome, counts, reason, disagreeing, shared_with)
            self._remember(a, b, counts)
        return results  # type: ignore[return-value]

    def best_match(self, a: Hashable, others: Sequence[Hashable]) -> tuple[int, Comparison] | None:
        """The one of `others` that MATCHes a with the fewest disagreeing products (ties: first given).

        Decides exactly as compare_many would, but cheaper: the columns are
        scanned in blocks for all candidates at once, and a candidate is dropped
        as soon as it has more disagreeing products than any MATCH allows
        (max_disagreements). Only comparisons carried to the end are judged.
        """
        if not self.is_current(a):
            return None
        best: tuple[int, int, Comparison] | None = None  # (disagreeing, index, comparison)
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
            if cached.outcome is Outcome.MATCH and (best is None or cached.counts.disagreeing < best[0]):
                best = (cached.counts.disagreeing, i, cached)
        if pending:
            candidates = [others[i] for i in pending]
            measured, overlap, agreeing, complete, size_a, sizes = self._scan(a, candidates)
            for j in measured[~complete[measured]].tolist():
                self._remember(a, candidates[j], Counts(int(overlap[j]), int(agreeing[j]), size_a, int(sizes[j]),
                                                        complete=False))
            for j in measured[complete[measured]].tolist():
                b = candidates[j]
                counts, examples, shared_with = self._measure(a, b)
                self._remember(a, b, counts)
                outcome, reason = judge(counts, self.settings)
                if outcome is Outcome.MATCH:
                    key = (counts.disagreeing, pending[j])
                    if best is None or key < best[:2]:
                        best = (*key, Comparison(a, b, outcome, counts, reason, examples, shared_with))
        if best is None:
            return None
        return best[1], best[2]

    def _scan(self, a: Hashable, others: Sequence[Hashable]):
        """Block-wise disagreement counts of a against each of `others`, dropping hopeless candidates early.

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
        a_supported = a in self.supports
        allowed = np.array([
            max_disagreements(int(n), self.settings, self._max_timing, a_supported or b in self.supports)
            for n, b in zip(smaller.tolist(), others)
        ], dtype=np.int64)
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

    def _disagreeing_columns(self, a: Hashable, b: Hashable) -> tuple[np.ndarray, int]:
        m = self.matrix
        ra, rb = m.row_of[a], m.row_of[b]
        ka, kb = m.keys[ra], m.keys[rb]
        wa, wb = m.was[ra], m.was[rb]
        both = (ka != 0) & (kb != 0)
        agree = (ka == kb) & ((wa == 0) | (wb == 0) | (wa == wb))
        return np.flatnonzero(both & ~agree), int(np.count_nonzero(both))

    def disagreeing(self, a: Hashable, b: Hashable, limit: int = EXAMPLES) -> tuple:
        cols, _ = self._disagreeing_columns(a, b)
        return tuple(plain(self.matrix.products[c]) for c in cols[:limit])

    def _measure(self, a: Hashable, b: Hashable) -> tuple[Counts, tuple, tuple]:
        """Full counts of a against b, every disagreement classified (shared / own) by the groups' evidence."""
        m = self.matrix
        ra, rb = m.row_of[a], m.row_of[b]
        cols, overlap = self._disagreeing_columns(a, b)
        ka, kb = m.keys[ra, cols], m.keys[rb, cols]
        back_a = self._backing(a, rb, cols, ka)
        back_b = self._backing(b, ra, cols, kb)
        is_shared = (back_a > 0) & (back_b > 0)
        gap = (m.scraped_at[ra] - m.scraped_at[rb]) if m.scraped_at[ra] and m.scraped_at[rb] else timedelta(0)
        counts = Counts(
            overlap=overlap,
            agreeing=overlap - len(cols),
            size_a=int(m.sizes[ra]),
            size_b=int(m.sizes[rb]),
            shared=int(np.count_nonzero(is_shared)),
            own_a=int(np.count_nonzero(back_a == 0)),
            own_b=int(np.count_nonzero(back_b == 0)),
            timing=timing_allowance(overlap, gap, self.change_rate),
        )
        products = m.products
        examples = tuple(plain(products[c]) for c in cols[:EXAMPLES])
        shared_cols = np.flatnonzero(is_shared)[:EXAMPLES]
        shared_with = tuple((plain(products[cols[i]]), int(back_a[i]), int(back_b[i])) for i in shared_cols)
        return counts, examples, shared_with

    def _measure_alone(self, a: Hashable, others: Sequence[Hashable]) -> list[Counts]:
        m = self.matrix
        ra = m.row_of[a]
        rows = np.fromiter((m.row_of[b] for b in others), dtype=np.int64, count=len(others))
        ka, wa = m.keys[ra], m.was[ra]
        kb, wb = m.keys[rows], m.was[rows]
        both = (kb != 0) & (ka != 0)
        overlap = np.count_nonzero(both, axis=1)
        agree = both & (kb == ka) & ((wb == 0) | (wa == 0) | (wb == wa))
        agreeing = np.count_nonzero(agree, axis=1)
        size_a, at_a = int(m.sizes[ra]), m.scraped_at[ra]
        out = []
        for o, g, r in zip(overlap.tolist(), agreeing.tolist(), rows.tolist()):
            gap = (at_a - m.scraped_at[r]) if at_a and m.scraped_at[r] else timedelta(0)
            out.append(Counts(o, g, size_a, int(m.sizes[r]), True, 0, o - g, o - g,
                              timing_allowance(o, gap, self.change_rate)))
        return out

    def _backing(self, store: Hashable, partner_row: int, cols: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """How many stores of `store`'s group, other than the two compared, charge `keys` at `cols`."""
        support = self.supports.get(store)
        if support is None or not len(cols):
            return np.zeros(len(cols), dtype=np.int64)
        return support.support(self.matrix, cols, keys, (self.matrix.row_of[store], partner_row))

    def _cached(self, a: Hashable, b: Hashable) -> Comparison | None:
        key, flipped = _pair_key(a, b)
        counts = self._computed.get(key)
        reused = counts is None
        if counts is None:
            entry = self.known.get(key)
            if entry is None:
                return None
            sig_first, sig_second, counts = entry
            if sig_first != self.signature(key[0]) or sig_second != self.signature(key[1]):
                return None  # a side's prices or evidence changed since: compare again
        if flipped:
            counts = counts.flipped()
        outcome, reason = judge(counts, self.settings)
        return Comparison(a, b, outcome, counts, reason, reused=reused)

    def _remember(self, a: Hashable, b: Hashable, counts: Counts) -> None:
        key, flipped = _pair_key(a, b)
        self._computed[key] = counts.flipped() if flipped else counts
        self._cached_stores.update((a, b))

    def signed_results(self) -> dict[tuple, tuple[int, int, Counts]]:
        """This comparer's results with both sides' signatures, for recording and later re-use."""
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


def plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class StorePricing:
    """One store's current pricing, for comparing two stores without a matrix."""

    store: Hashable
    scraped_at: datetime | None
    prices: Mapping[Hashable, tuple[int, int, bool]] = field(default_factory=dict)  # product -> (cents, was cents, special)


class PriceComparer:
    """The §5 comparer on two stores' pricing: `PriceComparer(settings, as_of).compare(a, b)`.

    `others` are further stores' pricing; `groups` says which of them stand
    with a and with b ({store: group key}; a and b included). Without them
    every disagreement is both stores' own.
    """

    def __init__(self, settings: Settings, as_of: datetime, change_rate: float | None = None) -> None:
        self.settings = settings
        self.as_of = as_of
        self.change_rate = change_rate

    def compare(
        self,
        a: StorePricing,
        b: StorePricing,
        others: Sequence[StorePricing] = (),
        groups: Mapping[Hashable, Hashable] | None = None,
    ) -> Comparison:
        from pricegroups.grouping.model import GroupState, StoreState
        from pricegroups.grouping.support import group_supports

        everyone = [a, b, *others]
        matrix = PriceMatrix.from_prices({s.store: s.prices for s in everyone},
                                         {s.store: s.scraped_at for s in everyone})
        supports = {}
        if groups:
            members: dict[Hashable, list] = {}
            for s in everyone:
                members.setdefault(groups.get(s.store, s.store), []).append(s.store)
            states = {s.store: StoreState(s.store, groups.get(s.store, s.store), s.scraped_at) for s in everyone}
            group_states = {}
            for g, stores in members.items():
                head = a.store if a.store in stores else b.store if b.store in stores else stores[0]
                group_states[g] = GroupState(g, "chain", head, tuple(s for s in stores if s != head))
            supports = group_supports(matrix, group_states, states)
        comparer = Comparer(matrix, self.settings, self.as_of, supports=supports, change_rate=self.change_rate)
        return comparer.compare(a.store, b.store)
