"""Health check of one group (DESIGN.md §4 step 8): is every member still priced like its anchor?

Only members re-scraped since their last verification are checked: after a
MATCH a member keeps just its override rows (deduplication), so its rows are a
full catalogue again only once a new scrape has brought them back.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from datetime import datetime
from typing import Hashable, Mapping

import numpy as np

from pricegroups.grouping.comparer import Comparer, Comparison, Outcome, plain
from pricegroups.grouping.rules.lateness import often_late
from pricegroups.grouping.model import Decision, Eject, GroupState, ReplaceAnchor, StoreState, Verify
from pricegroups.grouping.pricing import column_mode, sort_key
from pricegroups.settings import Settings


@dataclass(frozen=True)
class HealthReport:
    group: Hashable
    decisions: tuple[Decision, ...]
    stale_anchor: bool = False  # the integrity chain is broken: nothing was decided
    checked: int = 0
    inconclusive: int = 0


def due_for_check(state: StoreState) -> bool:
    """Scraped since it was last verified (so its rows are a full, fresh catalogue)."""
    if not state.active or state.scraped_at is None:
        return False
    return state.verified_at is None or state.scraped_at > state.verified_at


def full_catalogue(state: StoreState) -> bool:
    """An anchor's rows stand for the group only if none were deduplicated since its last scrape."""
    return state.verified_at is None or (state.scraped_at is not None and state.scraped_at > state.verified_at)


def anchor_ready(group: GroupState, stores: Mapping[Hashable, StoreState], comparer: Comparer) -> bool:
    """The integrity chain holds: the anchor has current pricing and a full catalogue."""
    return comparer.is_current(group.anchor) and full_catalogue(stores[group.anchor])


def check_group(group: GroupState, stores: Mapping[Hashable, StoreState], comparer: Comparer) -> HealthReport:
    """Compare the due members with the anchor; detect an anchor that moved away from its members."""
    due = [m for m in group.members if due_for_check(stores[m])]
    if not due:
        return HealthReport(group.group, ())
    if not anchor_ready(group, stores, comparer):
        return HealthReport(group.group, (), stale_anchor=True)
    due = [m for m in due if comparer.is_current(m)]
    if not due:
        return HealthReport(group.group, ())
    results = comparer.compare_many(group.anchor, due, examples=True)
    matched = [c for c in results if c.outcome is Outcome.MATCH]
    mismatched = [c for c in results if c.outcome is Outcome.MISMATCH]
    inconclusive = len(results) - len(matched) - len(mismatched)
    if len(mismatched) >= 2 and len(mismatched) > len(matched):
        drift = _anchor_drift(group, stores, comparer, due, results)
        if drift is not None:
            return HealthReport(group.group, drift, checked=len(due), inconclusive=inconclusive)
    election = elect_anchor(group, stores, comparer, [c.store_b for c in matched])
    if election is not None:
        return HealthReport(group.group, election, checked=len(due), inconclusive=inconclusive)
    decisions = [_verdict(group.group, c.store_b, group.anchor, c) for c in results]
    return HealthReport(
        group.group, tuple(d for d in decisions if d is not None), checked=len(due), inconclusive=inconclusive
    )


def _verdict(group: Hashable, store: Hashable, anchor: Hashable, comparison: Comparison) -> Decision | None:
    if comparison.outcome is Outcome.MATCH:
        return Verify(group, store, anchor, comparison)
    if comparison.outcome is Outcome.MISMATCH:
        return Eject(group, store, anchor, comparison)
    return None


def _anchor_drift(
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
    mismatching.sort(key=lambda s: (-_ts(stores[s].scraped_at), (type(s).__name__, s)))
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
            verdict = _verdict(group.group, comparison.store_b, candidate, comparison)
            if verdict is not None:
                decisions.append(verdict)
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
    late = [often_late(stores[s].late, stores[s].on_time) for s in candidates]
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
        verdict = _verdict(group.group, comparison.store_b, new, comparison)
        if verdict is not None:
            decisions.append(verdict)
    return tuple(decisions)


def off_majority(keys: np.ndarray) -> np.ndarray:
    """Per row, how many of its prices differ from a price a strict majority of the carrying rows charge."""
    mode, best = column_mode(keys)
    carried = np.count_nonzero(keys, axis=0)
    decided = best * 2 > carried
    return np.count_nonzero((keys != mode) & (keys != 0) & decided, axis=1)



def jumped_anchors(fresh: Mapping[Hashable, tuple[Hashable, float]], settings: Settings) -> list[Hashable]:
    """Groups whose anchor's prices just changed far more than its chain's did: {group: (chain, share)}.

    `share` is the share of the anchor's prices first seen in this run. An
    anchor that moved to another list, or whose list changed, has a share above
    its chain's median share (a chain-wide change such as a new week's specials
    moves the median, not one anchor) by more than 3 x max_member_deviation.
    Nothing says which it was, so its members' inferred prices are unjustified
    until some are compared with it (the integrity chain): the stale-anchor
    branch scrapes a few of them in the same run.
    """
    median = _median_shares(fresh)
    margin = 3 * settings.max_member_deviation
    return sorted((g for g, (chain, share) in fresh.items() if share > median[chain] + margin), key=sort_key)


def turnover_chains(fresh: Mapping[Hashable, tuple[Hashable, float]], settings: Settings) -> list[Hashable]:
    """Chains whose anchors' prices changed en masse in this run: {group: (chain, share)} as `jumped_anchors`.

    When the median anchor of a chain shows more than 3 x max_member_deviation
    of its prices first seen in this run (a new week's specials, a price
    round), the products the anchors do not carry changed too, and their only
    rows are members' older observations. One member per group is scraped in
    the same run to refresh them (`complement_member`).
    """
    margin = 3 * settings.max_member_deviation
    return sorted((c for c, median in _median_shares(fresh).items() if median > margin), key=sort_key)


def _median_shares(fresh: Mapping[Hashable, tuple[Hashable, float]]) -> dict[Hashable, float]:
    """{chain: the median of its anchors' shares} from {group: (chain, share)}."""
    by_chain: dict[Hashable, list[float]] = {}
    for chain, share in fresh.values():
        by_chain.setdefault(chain, []).append(share)
    return {chain: float(np.median(shares)) for chain, shares in by_chain.items()}


def complement_member(beyond_anchor: Mapping[Hashable, int]) -> Hashable | None:
    """The member whose rows cover most products its anchor does not carry ({member: count}); ties: smallest key."""
    ranked = sorted((m for m, n in beyond_anchor.items() if n > 0), key=lambda m: (-beyond_anchor[m], sort_key(m)))
    return ranked[0] if ranked else None


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
    new = min(candidates, key=lambda s: (-_ts(stores[s].scraped_at), (type(s).__name__, s)))
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
