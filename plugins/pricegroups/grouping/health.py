"""Health check of one group (DESIGN.md §4 step 8): is every member still priced like its anchor?

Which store becomes anchor when the check finds a better one (drift,
election, succession) is rules/anchors.py's; this module decides when to ask.

Only members re-scraped since their last verification are checked: after a
MATCH a member keeps just its override rows (deduplication), so its rows are a
full catalogue again only once a new scrape has brought them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Collection, Hashable, Mapping

import numpy as np

from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.model import Decision, GroupState, StoreState
from pricegroups.grouping.pricing import sort_key
from pricegroups.grouping.rules.anchors import anchor_drift, elect_anchor, verdict
from pricegroups.grouping.rules.compare import Outcome, mass_change_share
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


def anchor_stale(anchor: StoreState, as_of: datetime, settings: Settings) -> bool:
    """The integrity chain is broken until the anchor is re-scraped: no current pricing, or not a full catalogue
    (the stale-anchor branch's test; `anchor_ready` asks the same of a comparer's pricing)."""
    return not (settings.is_current(anchor.scraped_at, as_of) and full_catalogue(anchor))


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
        drift = anchor_drift(group, stores, comparer, due, results)
        if drift is not None:
            return HealthReport(group.group, drift, checked=len(due), inconclusive=inconclusive)
    election = elect_anchor(group, stores, comparer, [c.store_b for c in matched])
    if election is not None:
        return HealthReport(group.group, election, checked=len(due), inconclusive=inconclusive)
    decisions = [verdict(group.group, c.store_b, group.anchor, c) for c in results]
    return HealthReport(
        group.group, tuple(d for d in decisions if d is not None), checked=len(due), inconclusive=inconclusive
    )


def jumped_anchors(fresh: Mapping[Hashable, tuple[Hashable, float]], settings: Settings) -> list[Hashable]:
    """Groups whose anchor's prices just changed far more than its chain's did: {group: (chain, share)}.

    `share` is the share of the anchor's prices first seen in this run. An
    anchor that moved to another list, or whose list changed, has a share above
    its chain's median share (a chain-wide change such as a new week's specials
    moves the median, not one anchor) by more than rules/compare.mass_change_share.
    Nothing says which it was, so its members' inferred prices are unjustified
    until some are compared with it (the integrity chain): the stale-anchor
    branch scrapes a few of them in the same run.
    """
    median = _median_shares(fresh)
    margin = mass_change_share(settings)
    return sorted((g for g, (chain, share) in fresh.items() if share > median[chain] + margin), key=sort_key)


def turnover_chains(fresh: Mapping[Hashable, tuple[Hashable, float]], settings: Settings) -> list[Hashable]:
    """Chains whose anchors' prices changed en masse in this run: {group: (chain, share)} as `jumped_anchors`.

    When the median anchor of a chain shows more than
    rules/compare.mass_change_share of its prices first seen in this run (a new
    week's specials, a price round), the products the anchors do not carry
    changed too, and their only rows are members' older observations. The
    members that cover them are scraped in the same run to refresh them
    (`complement_members`). Unlike the lateness filter, the bar is not raised
    to the chain's own change rate: a chain changing 2-4 % of its prices a day
    needs those refreshes every day (docs/sensitivity.md).
    """
    bar = mass_change_share(settings)
    return sorted((c for c, median in _median_shares(fresh).items() if median > bar), key=sort_key)


def _median_shares(fresh: Mapping[Hashable, tuple[Hashable, float]]) -> dict[Hashable, float]:
    """{chain: the median of its anchors' shares} from {group: (chain, share)}."""
    by_chain: dict[Hashable, list[float]] = {}
    for chain, share in fresh.values():
        by_chain.setdefault(chain, []).append(share)
    return {chain: float(np.median(shares)) for chain, shares in by_chain.items()}


def complement_members(
    beyond_anchor: Mapping[Hashable, Collection[Hashable]], allowed: float,
) -> list[Hashable]:
    """The members whose scrape refreshes what a group is served beyond its anchor ({member: its products the
    anchor does not carry}), most first; ties: smallest key.

    A member's row for such a product is served to every store of the group
    that carries it (the freshest row wins), so a member is worth the group's
    rows of the products it carries that no member chosen before it does.
    Greedy: the first is the one worth most; the next ones while they are
    worth more than `allowed` rows (the caller: the deviations a member may
    keep, `max_member_deviation` x its anchor's rows), below which what is
    left stale is the size of the differences the grouping tolerates anyway.
    """
    carriers: dict[Hashable, int] = {}
    for products in beyond_anchor.values():
        for product in products:
            carriers[product] = carriers.get(product, 0) + 1
    covered: set[Hashable] = set()
    chosen: list[Hashable] = []
    left = dict(beyond_anchor)
    while left:
        worth = {m: sum(carriers[p] for p in products if p not in covered) for m, products in left.items()}
        best = min(worth, key=lambda m: (-worth[m], sort_key(m)))
        if worth[best] <= 0 or (chosen and worth[best] <= allowed):
            break
        chosen.append(best)
        covered.update(left.pop(best))
    return chosen
