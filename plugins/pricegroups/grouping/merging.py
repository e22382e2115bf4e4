"""Inter-group comparison: which groups merge, decided deterministically from comparisons.

The rule (one pass, a fixpoint): groups are taken in rank order (larger first,
then the more representative anchor - fewer prices that no other anchor
charges, then fewer off the chain's most common ones - then older, then
smaller id). Each group is compared with the *sinks* ranked above it - groups
that did not merge themselves - and merges into the sink whose anchor it
MATCHes with the fewest disagreeing products (ties: the higher-ranked); if
none matches, it becomes a sink. A single store then goes to the nearest
matching sink of the final set (the first stores of a near-twin list meet
only the other twin's sink during the pass); sinks never change, so the pass
stays a fixpoint. So a group only
ever merges into an anchor it matched directly, the smaller (or younger) group
merges into the larger, near-twin lists go each to their own twin, and no two
sinks left at the end match each other. A noisy store ranks after the clean
stores of its zone, so it joins their sink instead of becoming one that its
zone-mates' own noise keeps them from matching. The result depends only on the
comparison outcomes and the ranks, never on the order of the input or of any
batches.

Blocking restricts the sinks a group is compared with to its candidates; a
matching sink is always a candidate (blocking.py proves it), so the result is
exactly the exhaustive one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np

from pricegroups.grouping.blocking import Blocking, build
from pricegroups.grouping.comparer import Comparer, Comparison
from pricegroups.grouping.model import GroupState, Merge
from pricegroups.grouping.pricing import PriceMatrix, column_mode, sort_key
from pricegroups.settings import Settings

PASS_BATCH = 64  # groups whose comparisons with the sinks are scanned together (only the order of work)


@dataclass(frozen=True)
class MergePlan:
    merges: tuple[Merge, ...]
    eligible: int  # groups whose anchor has current pricing
    sinks: int  # groups left that did not merge
    blocked: bool  # whether blocking was used


def plan_merges(
    groups: Sequence[GroupState], comparer: Comparer, settings: Settings, exhaustive: bool = False
) -> MergePlan:
    """Decide the merges of one chain's groups (their anchors' pricing is in comparer.matrix)."""
    order = ranked([g for g in groups if comparer.is_current(g.anchor)], comparer.matrix)
    rows = np.fromiter((comparer.matrix.row_of[g.anchor] for g in order), dtype=np.int64, count=len(order))
    blocking = None
    if not exhaustive and order:
        supported = any(g.anchor in comparer.supports for g in order)
        blocking = build(comparer.matrix, rows, settings, supported, comparer.change_rate)
    scope = _Pass(order, rows, blocking, comparer)
    sinks: list[GroupState] = []
    sink_index = np.zeros(len(order), dtype=np.int64)  # position in `order` of each sink
    targets: dict[int, tuple] = {}  # position in `order` -> (the sink it merges into, that comparison)
    for start in range(0, len(order), PASS_BATCH):
        batch = list(range(start, min(start + PASS_BATCH, len(order))))
        before = len(sinks)
        found = scope.best_matches(batch, [0] * len(batch), before, sinks, sink_index)
        for i, target in zip(batch, found):
            if len(sinks) > before:  # sinks made within this batch rank above i but come after the others
                target = _nearer(target, scope.best_matches([i], [before], len(sinks), sinks, sink_index)[0])
            if target is not None:
                targets[i] = target
                continue
            sink_index[len(sinks)] = i
            sinks.append(order[i])
    _nearest_final_sinks(scope, targets, sinks, sink_index[:len(sinks)])
    chosen = sorted(targets.items())
    explained = comparer.explain([comparison for _, (_, comparison) in chosen])
    merges = [Merge(order[i].group, sink.group, order[i].anchor, sink.anchor, comparison)
              for (i, (sink, _)), comparison in zip(chosen, explained)]
    blocked = blocking is not None
    return MergePlan(tuple(merges), len(order), len(sinks), blocked)


def _nearer(target: tuple | None, later: tuple | None) -> tuple | None:
    """The nearer of a target and one among sinks ranked after it: the later one only with fewer disagreements."""
    if later is not None and (target is None or later[1].counts.disagreeing < target[1].counts.disagreeing):
        return later
    return target


def _nearest_final_sinks(scope: "_Pass", targets: dict[int, tuple], sinks: list[GroupState],
                         sink_index: np.ndarray) -> None:
    """A single store goes to the nearest sink of the final set, not only of those ranked above it (in place).

    The first stores of a near-twin list meet only the other twin's sink
    during the pass. The sinks ranked above a store were all compared with it
    already and gave its target, which wins ties; so only the sinks that
    appeared after it are compared, and one of them takes the store only with
    fewer disagreeing products.
    """
    singles = [i for i in sorted(targets) if scope.order[i].size == 1]
    firsts = np.searchsorted(sink_index, singles).tolist()
    todo = [(i, first) for i, first in zip(singles, firsts) if first < len(sinks)]
    for start in range(0, len(todo), PASS_BATCH):
        part = todo[start:start + PASS_BATCH]
        found = scope.best_matches([i for i, _ in part], [f for _, f in part], len(sinks), sinks, sink_index)
        for (i, _), later in zip(part, found):
            targets[i] = _nearer(targets[i], later)


@dataclass(frozen=True, eq=False)
class _Pass:
    """One merge pass's groups in rank order, their anchors' matrix rows, blocking and comparer."""

    order: list[GroupState]
    rows: np.ndarray
    blocking: Blocking | None
    comparer: Comparer

    def best_matches(self, positions: list[int], firsts: list[int], count: int, sinks: list[GroupState],
                     sink_index: np.ndarray) -> list[tuple[GroupState, Comparison] | None]:
        """For each group at `positions`, its nearest matching sink among sinks[first:count] that blocking allows.

        All the groups' pairs are scanned together (Comparer.best_matches_of_rows).
        """
        among = sink_index[:count]
        if self.blocking is None:
            allowed = np.ones((len(positions), count), dtype=bool)
        else:
            allowed = self.blocking.candidates_of_many(np.asarray(positions, dtype=np.int64), among)
        allowed &= np.arange(count)[None, :] >= np.asarray(firsts)[:, None]
        query, sink = np.nonzero(allowed)
        found = self.comparer.best_matches_of_pairs(self.rows[positions], query, self.rows[among[sink]], sink)
        return [None if f is None else (sinks[f[0]], f[1]) for f in found]


def ranked(groups: Sequence[GroupState], matrix: PriceMatrix) -> list[GroupState]:
    """Merge precedence: larger group first, then the more representative anchor, then older, then smaller id.

    Representative: fewest prices nobody else charges (its own noise would be
    inherited by every member), then the largest catalogue (a product the
    anchor does not carry is served from a member's last observation), then
    fewest prices off the chain's most common ones.
    """
    rows = np.fromiter((matrix.row_of[g.anchor] for g in groups), dtype=np.int64, count=len(groups))
    alone, off = representativeness(matrix, rows)
    size = matrix.sizes[rows]
    score = {g.group: (int(a), -int(c), int(n)) for g, a, c, n in zip(groups, alone.tolist(), size.tolist(), off.tolist())}
    return sorted(groups, key=lambda g: (-g.size, score[g.group], g.created_at, sort_key(g.group)))


def unshared_prices(matrix: PriceMatrix, rows: np.ndarray) -> np.ndarray:
    """Per row, how many of its prices no other of `rows` charges for that product (its own deviations)."""
    return representativeness(matrix, rows)[0]


def off_consensus(matrix: PriceMatrix, rows: np.ndarray) -> np.ndarray:
    """Per row, how many of its prices differ from the most common price of their column."""
    return representativeness(matrix, rows)[1]


def representativeness(matrix: PriceMatrix, rows: np.ndarray, sample: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its prices no other of `rows` charges (unshared), and its prices off their column's common price.

    The common price is the most common one of an evenly spread sample of the
    rows (sorted, so it does not depend on their order); a store that shows
    scattered prices nobody else charges scores high on both. Prices at the
    common one are counted with one comparison per cell; only the others are
    hashed to find those that occur once. For the unshared count the common
    price only makes it fast: any value would give the same counts.
    """
    unshared = np.zeros(len(rows), dtype=np.int64)
    off = np.zeros(len(rows), dtype=np.int64)
    if len(rows) == 0:
        return unshared, off
    common, _ = column_mode(matrix.keys[_spread(rows, sample)])
    for start in range(0, matrix.keys.shape[1], 256):  # column blocks keep the work in cache
        keys = matrix.keys[rows, start:start + 256]
        mode = common[start:start + 256]
        at_common = keys == mode
        lone = at_common & (np.count_nonzero(at_common, axis=0) == 1) & (keys != 0)
        unshared += np.count_nonzero(lone, axis=1)
        elsewhere = ~at_common & (keys != 0)
        off += np.count_nonzero(elsewhere & (mode != 0), axis=1)
        row, col = np.divmod(np.flatnonzero(elsewhere), elsewhere.shape[1])  # faster than a 2-d nonzero
        codes = (col.astype(np.int64) << 32) | keys[row, col].astype(np.int64)
        unshared += np.bincount(row[_occurs_once(codes)], minlength=len(rows))
    return unshared, off


def _occurs_once(codes: np.ndarray) -> np.ndarray:
    """Whether each code occurs exactly once among `codes` (exact; hash buckets, sorting only colliding ones)."""
    if len(codes) == 0:
        return np.zeros(0, dtype=bool)
    bits = max(4, int(2 * len(codes)).bit_length())  # at least twice as many buckets as codes
    with np.errstate(over="ignore"):
        bucket = ((codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits)).astype(np.intp)
    count = np.bincount(bucket, minlength=1 << bits)
    some = np.empty(1 << bits, dtype=np.int64)
    some[bucket] = codes  # one code of each bucket (whichever): a bucket is pure when all its codes equal it
    mixed = np.zeros(1 << bits, dtype=bool)
    mixed[bucket[codes != some[bucket]]] = True
    once = count[bucket] == 1
    collided = np.flatnonzero(mixed[bucket])  # every copy of a code is in its bucket: count them among these
    if len(collided):
        order = np.argsort(codes[collided])
        ordered = codes[collided][order]
        same = ordered[1:] == ordered[:-1]
        alone = np.ones(len(ordered), dtype=bool)
        alone[1:] &= ~same
        alone[:-1] &= ~same
        once[collided[order]] = alone
    return once


def _spread(rows: np.ndarray, sample: int) -> np.ndarray:
    """An evenly spread sample of `rows`, taken in sorted order (so it does not depend on their order)."""
    ordered = np.sort(rows)
    return ordered[np.unique(np.linspace(0, len(ordered) - 1, min(sample, len(ordered))).astype(np.int64))]


def match_matrix_merges(
    groups: Sequence[GroupState], matches: Mapping[tuple, int], comparer: Comparer
) -> list[tuple]:
    """The same rule applied to precomputed matching anchor pairs {(a, b): disagreeing} (all-pairs baseline)."""
    order = ranked([g for g in groups if comparer.is_current(g.anchor)], comparer.matrix)

    def nearest(group: GroupState, among: list[GroupState]) -> GroupState | None:
        found = [(d, i) for i, s in enumerate(among)
                 for d in [matches.get((group.anchor, s.anchor), matches.get((s.anchor, group.anchor)))]
                 if d is not None]
        return among[min(found)[1]] if found else None

    sinks: list[GroupState] = []
    targets: dict[Hashable, GroupState] = {}
    for group in order:
        target = nearest(group, sinks)
        if target is None:
            sinks.append(group)
        else:
            targets[group.group] = target
    for group in order:
        if group.group in targets and group.size == 1:
            targets[group.group] = nearest(group, sinks) or targets[group.group]
    return [(g.group, targets[g.group].group) for g in order if g.group in targets]


def needing_verification(merges: Sequence[Merge], groups: Mapping) -> frozenset:
    """The stores these merges leave in need of verification (the integrity chain; docs/grouping.md).

    When a group with members merges into a group with members, two anchors
    matched but nobody can tell which one moved (a zone that converged looks
    the same). Every member of such a merged group that was not compared
    directly in a merge (its anchor and the absorbed anchors were) needs
    verification: it is scraped next, whatever the budget. `groups` are the
    states before the merges. The one rule for the database
    (repository.apply_decisions) and GroupBook.
    """
    flagged = {m.into for m in merges if groups[m.group].size > 1 and groups[m.into].size > 1}
    stores: set = set()
    for m in merges:
        if m.into in flagged:
            stores.update(groups[m.group].members)
    for into in flagged:
        stores.update(groups[into].members)
    return frozenset(stores - {m.store for m in merges})
