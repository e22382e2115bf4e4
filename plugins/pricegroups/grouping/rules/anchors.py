"""Anchor choice (DESIGN.md §5): every rule that picks the store standing for a group, with named criteria.

An anchor's prices are served to every member, so the role goes to the store
that represents the group best. The criteria, each named where it is used:

* **punctual**: not often late with price changes (rules/lateness.often_late):
  a late anchor delays every change for its whole group;
* **representative**: the fewest prices off the group's consensus
  (`off_majority`), or for a merge's sink the fewest prices nobody else
  charges (merging.ranked);
* **coverage**: the larger catalogue: a product the anchor does not carry is
  served from an older row of a group-mate;
* **fresh**: the most recent scrape; **key**: the smallest store key, so that
  every choice is deterministic (`freshest_first`).

| choice | function | candidates | criteria, in order |
|---|---|---|---|
| election after a health check | `elect_anchor` | the anchor and the members it matched | punctual; representative by more than the shared tolerance; coverage by `anchor_coverage_margin`; fresh; key |
| drift | `anchor_drift` | members that mismatch the anchor and match a majority of the others | fresh; key |
| succession | `plan_succession` | active members, current ones first | fresh; key |
| merge sink | `merging.ranked` | groups of one chain | group size; representative; coverage; off the chain's common prices; older; key |
| witnesses of a late anchor | `punctual_witnesses` | members | punctual; most recently verified; key |
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Hashable, Mapping, Sequence

import numpy as np

from pricegroups.grouping.comparer import Comparer, Comparison, plain
from pricegroups.grouping.model import Decision, Eject, GroupState, ReplaceAnchor, StoreState, Verify
from pricegroups.grouping.pricing import column_mode, sort_key
from pricegroups.grouping.rules.compare import Outcome
from pricegroups.grouping.rules.cadence import DAILY, Cadence
from pricegroups.grouping.rules.lateness import often_late
from pricegroups.settings import Settings


def freshest_first(store: Hashable, stores: Mapping[Hashable, StoreState]) -> tuple:
    """Sort key of the criteria fresh, then key: the most recently scraped store first, ties by the smallest key."""
    return (-_ts(stores[store].scraped_at), (type(store).__name__, store))


def punctual_witnesses(
    anchor_late: tuple[int, int], members: Sequence[tuple[Hashable, int, int]], cadence: Cadence = DAILY,
) -> list[Hashable]:
    """Two members to compare with an often-late anchor, so that the health check can hand the role over.

    `anchor_late` is the anchor's (late, on time) changes; `members` its
    members as (store, late, on time), most recently verified first. The first
    two punctual ones, or none when the anchor is not often late or fewer than
    two members are punctual.
    """
    punctual = [store for store, late, on_time in members if not often_late(late, on_time, cadence)]
    if not often_late(*anchor_late, cadence) or len(punctual) < 2:
        return []
    return punctual[:2]


def verdict(group: Hashable, store: Hashable, anchor: Hashable, comparison: Comparison) -> Decision | None:
    """MATCH: the member is verified against `anchor`; MISMATCH: it leaves; INCONCLUSIVE: nothing."""
    if comparison.outcome is Outcome.MATCH:
        return Verify(group, store, anchor, comparison)
    if comparison.outcome is Outcome.MISMATCH:
        return Eject(group, store, anchor, comparison)
    return None


def anchor_drift(
    group: GroupState,
    stores: Mapping[Hashable, StoreState],
    comparer: Comparer,
    due: list[Hashable],
    results: list[Comparison],
) -> tuple[Decision, ...] | None:
    """Most checked members disagree with the anchor: the anchor is the one that moved.

    The new anchor is the freshest mismatching member that matches a strict
    majority of the other conclusive checks; every check is then redone against it.
    The old anchor leaves into a group of its own. None when no member qualifies.
    """
    mismatching = [c.store_b for c in results if c.outcome is Outcome.MISMATCH]
    mismatching.sort(key=lambda s: freshest_first(s, stores))
    for candidate in mismatching:
        others = [m for m in due if m != candidate]
        against = comparer.compare_many(candidate, others, examples=True)
        matches = sum(c.outcome is Outcome.MATCH for c in against)
        conclusive = sum(c.outcome is not Outcome.INCONCLUSIVE for c in against)
        if matches * 2 <= conclusive:
            continue
        old_vs_new = comparer.compare(candidate, group.anchor)
        evidence = {
            "checked": len(due),
            "mismatched_old_anchor": len(mismatching),
            "matched_new_anchor": matches,
            "conclusive": conclusive,
            "old_vs_new": old_vs_new.evidence(),
        }
        decisions: list[Decision] = [
            ReplaceAnchor(group.group, group.anchor, candidate, "anchor_drift", evidence),
            Eject(group.group, group.anchor, candidate, old_vs_new),
        ]
        for comparison in against:
            decided = verdict(group.group, comparison.store_b, candidate, comparison)
            if decided is not None:
                decisions.append(decided)
        return tuple(decisions)
    return None


def elect_anchor(
    group: GroupState, stores: Mapping[Hashable, StoreState], comparer: Comparer, matched: list[Hashable]
) -> tuple[Decision, ...] | None:
    """Re-elect the anchor when a member just verified represents the group better (DESIGN.md §5).

    A store often late with price changes (rules/lateness.often_late) never takes
    the role, and an anchor that is hands it to the member closest to the
    consensus when that member is no further off than the anchor plus the
    shared tolerance (reason "punctual"): a late anchor's members are served
    yesterday's prices on every change.

    The group's consensus is, per product, the price most of the stores scraped
    this round (the anchor and its matching members, at least three) charge.
    The store with the fewest prices off that consensus should stand for the
    group; when a member beats the anchor by more than the shared tolerance,
    it becomes anchor (reason "representative"). Else a member no further off
    the consensus than the anchor whose catalogue is larger by more than
    `anchor_coverage_margin` takes over (reason "coverage"): a product the
    anchor does not carry is served from an older row of a group-mate, the
    demo's largest cause of wrong served prices. The old anchor becomes a
    member and every check is redone against the new anchor. None when the
    anchor stays.
    """
    if len(matched) < 2:
        return None
    candidates = [group.anchor, *sorted(matched, key=sort_key)]
    rows = np.array([comparer.matrix.row_of[s] for s in candidates], dtype=np.int64)
    off = off_majority(comparer.matrix.keys[rows])
    size = int(comparer.matrix.sizes[rows[0]])
    margin = max(1, int(comparer.settings.shared_deviation_tolerance * size))
    sizes = comparer.matrix.sizes[rows]
    cadence = Cadence.of_hours(comparer.settings.run_interval_hours)
    late = [often_late(stores[s].late, stores[s].on_time, cadence) for s in candidates]
    eligible = [i for i in range(1, len(candidates)) if not late[i]]  # a late store never takes the role
    if not eligible:
        return None
    best = min(eligible, key=lambda i: (off[i], -int(sizes[i]), -_ts(stores[candidates[i]].scraped_at), i))
    reason = "representative"
    if late[0] and off[best] <= off[0] + margin:
        reason = "punctual"  # the anchor is often late with changes; a member as close to the consensus is not
    elif off[best] + margin > off[0]:
        wider = size + max(1, math.ceil(comparer.settings.anchor_coverage_margin * size))
        larger = [i for i in eligible if off[i] <= off[0] and int(sizes[i]) >= wider]
        if not larger:
            return None
        best = max(larger, key=lambda i: (int(sizes[i]), -off[i], _ts(stores[candidates[i]].scraped_at), -i))
        reason = "coverage"
    new = candidates[best]
    evidence = {
        "consensus_of": [plain(s) for s in candidates],
        "often_late": [plain(s) for s, is_late in zip(candidates, late) if is_late],
        "off_consensus": {str(plain(s)): int(n) for s, n in zip(candidates, off)},
        "catalogue": {str(plain(s)): int(n) for s, n in zip(candidates, sizes)},
        "margin": margin,
    }
    decisions: list[Decision] = [ReplaceAnchor(group.group, group.anchor, new, reason, evidence)]
    others = [s for s in candidates if s != new]
    for comparison in comparer.compare_many(new, others, examples=True):
        decided = verdict(group.group, comparison.store_b, new, comparison)
        if decided is not None:
            decisions.append(decided)
    return tuple(decisions)


def off_majority(keys: np.ndarray) -> np.ndarray:
    """Per row, how many of its prices differ from a price a strict majority of the carrying rows charge."""
    mode, best = column_mode(keys)
    carried = np.count_nonzero(keys, axis=0)
    decided = best * 2 > carried
    return np.count_nonzero((keys != mode) & (keys != 0) & decided, axis=1)



def plan_succession(
    group: GroupState, stores: Mapping[Hashable, StoreState], as_of: datetime, settings: Settings
) -> ReplaceAnchor | None:
    """An anchor that failed to scrape for several runs (or closed) hands over to its freshest member."""
    anchor = stores[group.anchor]
    if not group.members:
        return None
    if anchor.active and anchor.failures < settings.anchor_failures_before_succession:
        return None
    candidates = [m for m in group.members if stores[m].active and settings.is_current(stores[m].scraped_at, as_of)]
    if not candidates:
        candidates = [m for m in group.members if stores[m].active]
    if not candidates:
        return None
    new = min(candidates, key=lambda s: freshest_first(s, stores))
    evidence = {
        "anchor_failures": anchor.failures,
        "anchor_active": anchor.active,
        "new_anchor_scraped_at": _iso(stores[new].scraped_at),
    }
    return ReplaceAnchor(group.group, group.anchor, new, "anchor_failed", evidence)


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else float("-inf")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
