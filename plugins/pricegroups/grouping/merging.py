"""Inter-group comparison: which groups merge, decided deterministically from comparisons.

The rule (one pass, a fixpoint): groups are taken in rank order (larger first,
then older, then smaller id). Each group is compared with the *sinks* ranked
above it - groups that did not merge themselves - and merges into the
highest-ranked sink whose anchor it MATCHes; if none matches, it becomes a
sink. So a group only ever merges into an anchor it matched directly, the
smaller (or younger) group merges into the larger, and no two sinks left at
the end match each other. The result depends only on the comparison outcomes
and the ranks, never on the order of the input or of any batches.

Blocking restricts the sinks a group is compared with to its candidates; a
matching sink is always a candidate (blocking.py proves it), so the result is
exactly the exhaustive one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pricegroups.grouping.blocking import build
from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.model import GroupState, Merge
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
    order = sorted((g for g in groups if comparer.is_current(g.anchor)), key=GroupState.rank)
    blocking = None
    if not exhaustive and order:
        rows = np.fromiter((comparer.matrix.row_of[g.anchor] for g in order), dtype=np.int64, count=len(order))
        blocking = build(comparer.matrix, rows, settings)
    sinks: list[GroupState] = []
    sink_index = np.zeros(len(order), dtype=np.int64)  # position in `order` of each sink
    merges: list[Merge] = []
    for i, group in enumerate(order):
        if blocking is None:
            candidates = sinks
        else:
            among = sink_index[: len(sinks)]
            candidates = [sinks[c] for c in np.flatnonzero(blocking.candidates_of(i, among))]
        target = _first_match(group, candidates, comparer)
        if target is not None:
            sink, comparison = target
            examples = comparer.disagreeing(group.anchor, sink.anchor)
            comparison = dataclasses.replace(comparison, disagreeing=examples)
            merges.append(Merge(group.group, sink.group, group.anchor, sink.anchor, comparison))
            continue
        sink_index[len(sinks)] = i
        sinks.append(group)
    blocked = blocking is not None
    return MergePlan(tuple(merges), len(order), len(sinks), blocked)


def _first_match(group: GroupState, sinks: list[GroupState], comparer: Comparer):
    found = comparer.first_match(group.anchor, [s.anchor for s in sinks])
    if found is None:
        return None
    index, comparison = found
    return sinks[index], comparison


def match_matrix_merges(groups: Sequence[GroupState], matches: set[tuple], comparer: Comparer) -> list[tuple]:
    """The same rule applied to a precomputed set of matching anchor pairs (all-pairs baseline)."""
    order = sorted((g for g in groups if comparer.is_current(g.anchor)), key=GroupState.rank)
    sinks: list[GroupState] = []
    result = []
    for group in order:
        target = next((s for s in sinks if (group.anchor, s.anchor) in matches or (s.anchor, group.anchor) in matches), None)
        if target is None:
            sinks.append(group)
        else:
            result.append((group.group, target.group))
    return result
