"""Inter-group comparison: which groups merge, decided deterministically from comparisons.

The rule (one pass, a fixpoint): groups are taken in rank order (larger first,
then the more representative anchor - fewer prices off the chain's most
common ones - then older, then smaller id). Each group is compared with the
*sinks* ranked above it - groups that did not merge themselves - and merges
into the sink whose anchor it MATCHes with the fewest disagreeing products
(ties: the higher-ranked); if none matches, it becomes a sink. So a group only
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
from typing import Mapping, Sequence

import numpy as np

from pricegroups.grouping.blocking import build
from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.model import GroupState, Merge
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.settings import Settings



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
    blocking = None
    if not exhaustive and order:
        rows = np.fromiter((comparer.matrix.row_of[g.anchor] for g in order), dtype=np.int64, count=len(order))
        supported = any(g.anchor in comparer.supports for g in order)
        blocking = build(comparer.matrix, rows, settings, supported, comparer.change_rate)
    sinks: list[GroupState] = []
    sink_index = np.zeros(len(order), dtype=np.int64)  # position in `order` of each sink
    merges: list[Merge] = []
    for i, group in enumerate(order):
        if blocking is None:
            candidates = sinks
        else:
            among = sink_index[: len(sinks)]
            candidates = [sinks[c] for c in np.flatnonzero(blocking.candidates_of(i, among))]
        target = _best_match(group, candidates, comparer)
        if target is not None:
            sink, comparison = target
            comparison = comparer.compare(group.anchor, sink.anchor, examples=True)
            merges.append(Merge(group.group, sink.group, group.anchor, sink.anchor, comparison))
            continue
        sink_index[len(sinks)] = i
        sinks.append(group)
    blocked = blocking is not None
    return MergePlan(tuple(merges), len(order), len(sinks), blocked)


def ranked(groups: Sequence[GroupState], matrix: PriceMatrix) -> list[GroupState]:
    """Merge precedence: larger first, then the more representative anchor, then older, then smaller id."""
    rows = np.fromiter((matrix.row_of[g.anchor] for g in groups), dtype=np.int64, count=len(groups))
    off = off_consensus(matrix, rows)
    score = {g.group: int(n) for g, n in zip(groups, off.tolist())}
    return sorted(groups, key=lambda g: (-g.size, score[g.group], g.created_at, _key(g.group)))


def off_consensus(matrix: PriceMatrix, rows: np.ndarray, sample: int = 64) -> np.ndarray:
    """Per row, how many of its prices differ from the most common price of their column.

    The most common price is taken over an evenly spread sample of the rows
    (sorted, so the result does not depend on their order); a store that shows
    scattered prices nobody else charges scores high.
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    ordered = np.sort(rows)
    picks = ordered[np.unique(np.linspace(0, len(ordered) - 1, min(sample, len(ordered))).astype(np.int64))]
    part = np.sort(matrix.keys[picks], axis=0)
    mode = _column_mode(part)
    out = np.empty(len(rows), dtype=np.int64)
    for start in range(0, len(rows), 512):
        block = matrix.keys[rows[start:start + 512]]
        out[start:start + 512] = np.count_nonzero((block != mode) & (block != 0) & (mode != 0), axis=1)
    return out


def _column_mode(part: np.ndarray) -> np.ndarray:
    """Most common non-zero value per column of a column-sorted array (ties: the smallest)."""
    mode = np.zeros(part.shape[1], dtype=part.dtype)
    best = np.zeros(part.shape[1], dtype=np.int64)
    run = np.zeros(part.shape[1], dtype=np.int64)
    for i in range(part.shape[0]):
        same = (part[i] == part[i - 1]) if i else np.zeros(part.shape[1], dtype=bool)
        run = np.where(same, run + 1, 1)
        better = (part[i] != 0) & (run > best)
        mode = np.where(better, part[i], mode)
        best = np.where(better, run, best)
    return mode


def _key(value) -> tuple:
    return (type(value).__name__, value)


def _best_match(group: GroupState, sinks: list[GroupState], comparer: Comparer):
    found = comparer.best_match(group.anchor, [s.anchor for s in sinks])
    if found is None:
        return None
    index, comparison = found
    return sinks[index], comparison


def match_matrix_merges(
    groups: Sequence[GroupState], matches: Mapping[tuple, int], comparer: Comparer
) -> list[tuple]:
    """The same rule applied to precomputed matching anchor pairs {(a, b): disagreeing} (all-pairs baseline)."""
    order = ranked([g for g in groups if comparer.is_current(g.anchor)], comparer.matrix)
    sinks: list[GroupState] = []
    result = []
    for group in order:
        found = [(d, i) for i, s in enumerate(sinks)
                 for d in [matches.get((group.anchor, s.anchor), matches.get((s.anchor, group.anchor)))]
                 if d is not None]
        if not found:
            sinks.append(group)
        else:
            result.append((group.group, sinks[min(found)[1]].group))
    return result


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
