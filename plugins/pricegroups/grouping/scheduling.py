"""Who is scraped in a run, and why (DESIGN.md §4 steps 1 and 8, §9): every reason in one ordered table.

A run scrapes twice: the plan, before the main scrape, and the re-scrape
branch after the upsert (`pipeline.find_stale_anchors`), when the anchors'
prices of the run are in and can be checked. Each reason below is decided by
one function; a store named by several reasons of one pass keeps the first in
the table's order, and that is the reason recorded with its verification
(`verifications.reason`; anchors are scraped as anchors, not verified).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Sequence

PLAN = "plan"
RESCRAPE = "rescrape"


@dataclass(frozen=True)
class Reason:
    """Why a store is scraped: in which pass, and which function decides it."""

    name: str
    scraped_in: str  # PLAN or RESCRAPE
    why: str
    decided_by: str  # module:function
    recorded: bool = True  # kept as the store's verification reason


REASONS: tuple[Reason, ...] = (
    Reason("anchor", PLAN, "every anchor, every run: its group's price list must be current",
           "planning:plan_scrape", recorded=False),
    Reason("bootstrap", PLAN, "its chain's stores are all still alone, or the run scrapes every store",
           "verification:plan_verification, planning:plan_scrape"),
    Reason("named", PLAN, "the run's params name it", "planning:plan_scrape"),
    Reason("forced", PLAN, "it needs verification: a merge of two groups with members placed it",
           "verification:choose_members"),
    Reason("random", PLAN, "the random share of its chain's verification budget: the unbiased error estimate",
           "verification:choose_members"),
    Reason("risk", PLAN, "the rest of the budget, riskiest first", "verification:choose_members, risk_score"),
    Reason("stale_anchor", RESCRAPE, "an anchor without current pricing after the main scrape",
           "service:find_stale_anchors", recorded=False),
    Reason("forced", RESCRAPE, "its anchor's prices jumped against its chain's, or its anchor is often late: "
           "compared in the same run so the health check can re-elect the anchor",
           "health:jumped_anchors, rules/anchors:punctual_witnesses"),
    Reason("complement", RESCRAPE, "its chain's anchors changed en masse and its rows cover what its group "
           "is served beyond the anchor", "health:turnover_chains, complement_members"),
    Reason("spot", RESCRAPE, "its spot check disagreed with what is served, beyond timing, or it witnesses its "
           "anchor's own differences", "spotcheck:judge, anchor_witnesses"),
)
RECORDED = tuple(dict.fromkeys(r.name for r in REASONS if r.recorded))  # the verification reasons


def first_reasons(
    scraped_in: str, named: Sequence[tuple[str, Iterable[int]]], allowed: Collection[int] | None = None,
) -> dict[int, str]:
    """{store: reason} for one pass: each store keeps the first reason that names it.

    `named` lists (reason, stores) in the table's order for that pass (an
    order that disagrees with REASONS is a programming error); `allowed`
    restricts the run to some stores (None: all).
    """
    order = [r.name for r in REASONS if r.scraped_in == scraped_in]
    positions = [order.index(name) for name, _ in named]
    if positions != sorted(positions):
        raise ValueError(f"reasons {[n for n, _ in named]} out of the table's order {order}")
    out: dict[int, str] = {}
    for name, stores in named:
        for store in stores:
            if store not in out and (allowed is None or store in allowed):
                out[store] = name
    return out
