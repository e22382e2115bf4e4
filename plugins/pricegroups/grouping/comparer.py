"""The comparer: rules/compare.py's rule (DESIGN.md §5) applied to stores of a price matrix.

`PriceComparer` compares two stores' pricings; `Comparer` compares rows of one
`PriceMatrix` at one as-of time, re-using earlier results whose prices and
evidence are unchanged, and finds each store's best matches with an
early-stopping, batched scan (the bound is rules/compare.max_disagreements).
The rule itself (what a difference means, the allowances, `judge`) lives in
rules/compare.py; this module measures the counts it judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.grouping.rules.compare import (  # the rule; this module applies it over a matrix
    Counts, Outcome, judge, max_disagreements_of, timing_allowance, timing_allowances,
)
from pricegroups.grouping.support import GroupSupport
from pricegroups.settings import Settings

EXAMPLES = 20  # disagreeing products kept as evidence
SCAN_BLOCK = 256  # columns scanned per step by best_match before dropping hopeless candidates


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


@dataclass(frozen=True, eq=False)
class _Scan:
    """What Comparer._scan measured of each pair (arrays in pair order)."""

    rows_a: np.ndarray
    rows_b: np.ndarray
    overlap: np.ndarray
    agreeing: np.ndarray
    stopped: np.ndarray  # pairs dropped early: more disagreeing products than any MATCH allows
    finished: np.ndarray  # pairs scanned to the end
    gaps: np.ndarray  # microseconds between the two scrapes


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
        self._signatures: dict[Hashable, int] | None = None
        self._has_was = matrix.has_was()
        floor = settings.current_since(as_of)
        self._current = np.array(
            [t is not None and floor <= t for t in matrix.scraped_at], dtype=bool
        ) & (matrix.sizes > 0)
        self._seen = np.zeros(len(matrix.stores), dtype=bool)  # rows of stores in a remembered pair
        self._seen[[matrix.row_of[s] for pair in self.known for s in pair if s in matrix.row_of]] = True
        self._supported = np.fromiter((s in self.supports for s in matrix.stores), dtype=bool,
                                      count=len(matrix.stores))

    @property
    def computed(self) -> dict[tuple, Counts]:
        """Every comparison made by this comparer, by ordered store pair."""
        return self._computed

    # -- signatures -------------------------------------------------------
    def signature(self, store: Hashable) -> int:
        """The store's price signature, combined with its group's evidence when it has any."""
        if self._signatures is None:
            own = self.matrix.signatures().view(np.int64).tolist()
            self._signatures = {s: own[r] if s not in self.supports else own[r] ^ self.supports[s].signature
                                for s, r in self.matrix.row_of.items()}
        return self._signatures[store]

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
        """The one of `others` that MATCHes a with the fewest disagreeing products (ties: first given)."""
        return self.best_matches([(a, others)])[0]

    def best_matches(
        self, queries: Sequence[tuple[Hashable, Sequence[Hashable]]]
    ) -> list[tuple[int, Comparison] | None]:
        """best_match of each (store, others): the index and comparison of its nearest MATCH, or None.

        Decides exactly as compare_many would, but cheaper: the columns of all
        the queries' pairs are scanned together, block by block, and a pair is
        dropped as soon as it has more disagreeing products than any MATCH of
        it allows (max_disagreements, with the pair's own scrape gap). Only
        pairs carried to the end are judged, and only those a group backs are
        classified product by product. The comparisons have no examples:
        `explain` adds them to the few that decide something.
        """
        row_of = self.matrix.row_of
        rows = [np.fromiter((row_of[b] for b in others), dtype=np.int64, count=len(others)) for _, others in queries]
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return self.best_matches_of_pairs(
            np.array([row_of[a] for a, _ in queries], dtype=np.int64),
            np.repeat(np.arange(len(queries)), [len(r) for r in rows]).astype(np.int64),
            flat,
            np.concatenate([np.arange(len(r)) for r in rows]).astype(np.int64) if rows else flat,
        )

    def best_matches_of_pairs(
        self, rows_a: np.ndarray, query: np.ndarray, rows_b: np.ndarray, index: np.ndarray
    ) -> list[tuple[int, Comparison] | None]:
        """best_matches on matrix rows: store rows_a[q] against each rows_b[p] whose query[p] is q.

        Returns per query the `index` of its nearest MATCH (ties: the smaller
        index) and that comparison, or None. A caller holding rows saves a
        lookup per pair.
        """
        best: list[tuple[int, int, Comparison] | None] = [None] * len(rows_a)  # (disagreeing, index, comparison)
        first = rows_a[query]
        keep = self._current[first] & self._current[rows_b]
        stores = self.matrix.stores
        for p in np.flatnonzero(keep & self._seen[first] & self._seen[rows_b]).tolist():
            # only a pair of two stores compared before can be remembered
            keep[p] = not self._offer(best, int(query[p]), int(index[p]), stores[int(first[p])], stores[int(rows_b[p])])
        query, index = query[keep], index[keep]
        for p, comparison in self._measure_pairs(first[keep], rows_b[keep]):
            self._offer(best, int(query[p]), int(index[p]), comparison=comparison)
        return [None if found is None else (found[1], found[2]) for found in best]

    def _offer(self, best: list, q: int, i: int, a: Hashable = None, b: Hashable = None,
               comparison: Comparison | None = None) -> bool:
        """Keep `comparison` (or the remembered one of a and b) as query q's best if it is a nearer MATCH.

        Returns whether there was a comparison at all (False: a and b must be measured).
        """
        if comparison is None:
            comparison = self._cached(a, b)
            if comparison is None:
                return False
            self.reused += comparison.reused
        if comparison.outcome is Outcome.MATCH:
            key = (comparison.counts.disagreeing, i)
            if best[q] is None or key < best[q][:2]:
                best[q] = (*key, comparison)
        return True

    def _measure_pairs(self, rows_a: np.ndarray, rows_b: np.ndarray, chunk: int = 8192) -> list[tuple[int, Comparison]]:
        """Scan pairs of rows (a few thousand at a time) and remember every result; judge those finished."""
        out: list[tuple[int, Comparison]] = []
        for start in range(0, len(rows_a), chunk):
            scan = self._scan(rows_a[start:start + chunk], rows_b[start:start + chunk])
            self._remember_stopped(scan)
            out.extend((start + p, comparison) for p, comparison in self._finish(scan))
        return out

    def _finish(self, scan: "_Scan") -> list[tuple[int, Comparison]]:
        """Counts and verdicts of the pairs a scan carried to the end (remembered)."""
        done = scan.finished
        timing = timing_allowances(scan.overlap[done], scan.gaps[done], self.change_rate)
        stores = self.matrix.stores
        out = []
        for p, o, g, t, ra, rb in zip(done.tolist(), scan.overlap[done].tolist(), scan.agreeing[done].tolist(),
                                      timing.tolist(), scan.rows_a[done].tolist(), scan.rows_b[done].tolist()):
            a, b = stores[ra], stores[rb]
            if self._supported[ra] or self._supported[rb]:
                counts = self._measure(a, b, examples=False)[0]
            else:  # nobody backs either side: every disagreement is both stores' own
                sizes = self.matrix.sizes
                counts = Counts(o, g, int(sizes[ra]), int(sizes[rb]), True, 0, o - g, o - g, t)
            self._remember(a, b, counts)
            outcome, reason = judge(counts, self.settings)
            out.append((p, Comparison(a, b, outcome, counts, reason)))
        return out

    def _remember_stopped(self, scan: "_Scan") -> None:
        """Remember the pairs a scan dropped early (incomplete: known only not to MATCH), in bulk.

        Their stores are not marked as seen: a pair measured again is stopped
        again at the same column with the same counts.
        """
        stopped = scan.stopped
        if not len(stopped):
            return
        ra, rb = scan.rows_a[stopped], scan.rows_b[stopped]
        flip = self.matrix.store_ranks()[ra] > self.matrix.store_ranks()[rb]  # smaller store first (_pair_key)
        first, second = np.where(flip, rb, ra), np.where(flip, ra, rb)
        sizes, stores = self.matrix.sizes, self.matrix.stores
        self._computed.update(
            ((stores[x], stores[y]), Counts(o, g, nx, ny, False))
            for x, y, o, g, nx, ny in zip(first.tolist(), second.tolist(), scan.overlap[stopped].tolist(),
                                          scan.agreeing[stopped].tolist(), sizes[first].tolist(), sizes[second].tolist())
        )

    def _scan(self, ra: np.ndarray, rb: np.ndarray) -> "_Scan":
        """Block-wise disagreement counts of each pair of rows (ra[i], rb[i]), dropping hopeless pairs early.

        A pair whose smaller catalogue is below min_overlap_products can never
        be conclusive and is not scanned at all; a pair is dropped once it has
        more disagreeing products than any MATCH of it allows.
        """
        m = self.matrix
        smaller = np.minimum(m.sizes[ra], m.sizes[rb])
        gaps = self._gaps(ra, rb)
        allowed = max_disagreements_of(smaller, self.settings, timing_allowances(smaller, gaps, self.change_rate),
                                       self._supported[ra] | self._supported[rb])
        disagree = np.zeros(len(ra), dtype=np.int64)
        overlap = np.zeros(len(ra), dtype=np.int64)
        measured = np.flatnonzero(smaller >= self.settings.min_overlap_products)
        alive = measured
        keys, was = m.scan_layout()
        use_was = was is not None and bool((self._has_was[ra] & self._has_was[rb]).any())
        start, block, width = 0, SCAN_BLOCK, keys.shape[1]
        while start < width and len(alive):
            end = start + block
            ka = keys[ra[alive], start:end]
            kb = keys[rb[alive], start:end]
            both = (kb != 0) & (ka != 0)
            differ = kb != ka
            if use_was:
                wa = was[ra[alive], start:end]
                wb = was[rb[alive], start:end]
                differ |= (wa != 0) & (wb != 0) & (wa != wb)
            overlap[alive] += np.count_nonzero(both, axis=1)
            disagree[alive] += np.count_nonzero(both & differ, axis=1)
            alive = alive[disagree[alive] <= allowed[alive]]
            start, block = end, block * 2  # survivors are likely matches: finish them in few steps
        complete = np.zeros(len(ra), dtype=bool)
        complete[alive] = True
        return _Scan(ra, rb, overlap, overlap - disagree, measured[~complete[measured]], alive, gaps)

    def _gaps(self, rows_a: np.ndarray | int, rows_b: np.ndarray) -> np.ndarray:
        """Microseconds between the scrapes of rows_a and rows_b (0 when either time is unknown)."""
        us, known = self.matrix.scraped_us()
        return np.where(known[rows_a] & known[rows_b], us[rows_a] - us[rows_b], 0)

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

    def explain(self, comparisons: Sequence[Comparison]) -> list[Comparison]:
        """The same comparisons with their evidence (disagreeing products, shared ones), for the few that decide.

        A remembered result, or one a group backs, is measured again as
        compare(examples=True) does; the others get their examples in one
        vectorised pass (nobody backs either side: nothing is shared).
        """
        out = list(comparisons)
        alone: list[int] = []
        for i, c in enumerate(out):
            if not c.counts.disagreeing or c.disagreeing:
                continue
            if c.reused or c.store_a in self.supports or c.store_b in self.supports:
                out[i] = self.compare(c.store_a, c.store_b, examples=True)
            else:
                alone.append(i)
        found = self._examples_alone([out[i].store_a for i in alone], [out[i].store_b for i in alone])
        for i, examples in zip(alone, found):
            out[i] = replace(out[i], disagreeing=examples)
        return out

    def _examples_alone(self, stores_a: Sequence[Hashable], stores_b: Sequence[Hashable], chunk: int = 256) -> list[tuple]:
        """The first EXAMPLES disagreeing products of each pair (a, b), many pairs per vectorised step."""
        m = self.matrix
        out: list[tuple] = []
        for start in range(0, len(stores_a), chunk):
            ra = np.fromiter((m.row_of[s] for s in stores_a[start:start + chunk]), dtype=np.int64)
            rb = np.fromiter((m.row_of[s] for s in stores_b[start:start + chunk]), dtype=np.int64)
            ka, kb, wa, wb = m.keys[ra], m.keys[rb], m.was[ra], m.was[rb]
            agree = (ka == kb) & ((wa == 0) | (wb == 0) | (wa == wb))
            pair, col = np.divmod(np.flatnonzero((ka != 0) & (kb != 0) & ~agree), ka.shape[1])
            bounds = np.searchsorted(pair, np.arange(len(ra) + 1))
            for first, last in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                out.append(tuple(plain(m.products[c]) for c in col[first:min(last, first + EXAMPLES)]))
        return out

    def _measure(self, a: Hashable, b: Hashable, examples: bool = True) -> tuple[Counts, tuple, tuple]:
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
        if not examples:
            return counts, (), ()
        products = m.products
        disagreeing = tuple(plain(products[c]) for c in cols[:EXAMPLES])
        shared_cols = np.flatnonzero(is_shared)[:EXAMPLES]
        shared_with = tuple((plain(products[cols[i]]), int(back_a[i]), int(back_b[i])) for i in shared_cols)
        return counts, disagreeing, shared_with

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
        timing = timing_allowances(overlap, self._gaps(ra, rows), self.change_rate)
        size_a = int(m.sizes[ra])
        return [Counts(o, g, size_a, n, True, 0, o - g, o - g, t)
                for o, g, n, t in zip(overlap.tolist(), agreeing.tolist(), m.sizes[rows].tolist(), timing.tolist())]

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
        self._seen[[self.matrix.row_of[a], self.matrix.row_of[b]]] = True

    def signed_results(self) -> dict[tuple, tuple[int, int, Counts]]:
        """This comparer's results with both sides' signatures, for recording and later re-use."""
        computed = self.computed
        if not computed:
            return {}
        self.signature(next(iter(computed))[0])  # builds the table
        signature = self._signatures
        return {key: (signature[key[0]], signature[key[1]], c) for key, c in computed.items()}


def _pair_key(a: Hashable, b: Hashable) -> tuple[tuple, bool]:
    """Pairs are stored once, smaller store first."""
    if type(a) is type(b):
        return ((a, b), False) if a <= b else ((b, a), True)
    return ((a, b), False) if (type(a).__name__, a) <= (type(b).__name__, b) else ((b, a), True)


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
