"""A scenario's first days as the DAG would have lived them, worked out from the truth (pure, no I/O).

After a bootstrap day and a few normal days the DAG has one group per true
zone whose anchor is the store that best represents it (no prices of its
own, not late, the widest catalogue; a zone without such a store elects a
late or own-priced one, whose rows are then what it shows), every member
verified once or more (on day 0 by the merge, later by the verification
budget, spent every day as `verification.choose_members` spends it), each
member's rows cut down to what differs from its anchor on its verification
day (its overrides, plus products the anchor does not carry), and the late
stores' habits counted. This module says all that; demo/preload.py writes
it. The scenario must have no events before `days` (scaled_scenario has
none): zones are taken as on day 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterator, Mapping, NamedTuple

from pricegroups.demo.model import TruePrice
from pricegroups.demo.scenario import Scenario
from pricegroups.grouping.verification import MemberRisk, choose_members, risk_score
from pricegroups.settings import Settings


class Row(NamedTuple):
    """One `prices` row of a store at the end of the history: its price, the day it was first observed, and
    the regular price a regular-price change replaced (`prices.previous_price`)."""

    chain: str
    store: str
    sku: str
    price: TruePrice
    since: int
    previous: Decimal | None


@dataclass
class History:
    """What `days` daily runs (day 0 a bootstrap) leave behind; store codes per chain."""

    days: int
    anchors: dict[str, dict[str, str]]  # chain -> zone -> anchor store
    zone_of: dict[str, dict[str, str]]  # chain -> store -> zone
    verified: dict[tuple[str, str], int] = field(default_factory=dict)  # (chain, member) -> last verification day
    reasons: dict[tuple[int, str, str], str] = field(default_factory=dict)  # (day, chain, member) -> reason
    lateness: dict[tuple[int, str, str], tuple[int, int]] = field(default_factory=dict)  # -> (late, on time)
    carried: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)  # (chain, store) -> SKUs

    @property
    def last(self) -> int:
        return self.days - 1

    def members(self, chain: str) -> list[str]:
        anchors = set(self.anchors[chain].values())
        return [s for s in self.zone_of[chain] if s not in anchors]

    def anchor_of(self, chain: str, store: str) -> str:
        return self.anchors[chain][self.zone_of[chain][store]]


def choose_anchors(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Per chain and zone, the store the anchor election settles on: no own or late prices, widest catalogue."""
    anchors: dict[str, dict[str, str]] = {}
    for code, chain in scenario.chains.items():
        by_zone: dict[str, list] = {}
        for store in chain.stores:
            by_zone.setdefault(store.zone, []).append(store)
        anchors[code] = {
            zone: min(stores, key=lambda s: (bool(s.own_share or s.lag_share),
                                             -len(scenario.assortment(code, s.code)), s.code)).code
            for zone, stores in by_zone.items()
        }
    return anchors


def plan_history(
    scenario: Scenario, days: int, store_ids: Mapping[str, Mapping[str, int]], chain_ids: Mapping[str, int],
    settings: Settings,
) -> History:
    """The groups, verification days and late counts of `days` runs (day 0 bootstraps and merges every zone)."""
    history = History(days, choose_anchors(scenario),
                      {c: {s.code: s.zone for s in chain.stores} for c, chain in scenario.chains.items()})
    history.carried = {(c, s.code): frozenset(lst.sku for lst in scenario.assortment(c, s.code))
                       for c, chain in scenario.chains.items() for s in chain.stores}
    for chain in scenario.chains:
        for member in history.members(chain):
            history.verified[(chain, member)] = 0
        for day in range(1, days):
            for member, reason in _verifications(scenario, history, chain, day, store_ids[chain],
                                                 chain_ids[chain], settings).items():
                history.verified[(chain, member)] = day
                history.reasons[(day, chain, member)] = reason
            history.lateness.update(_lateness(scenario, history, chain, day))
    return history


def seed(scenario: Scenario, day: int) -> str:
    """The verification draw's seed as the pipeline makes it: the logical date's ISO form (06:00 UTC)."""
    return f"{scenario.date_of(day).isoformat()}T06:00:00+00:00"


def _verifications(scenario: Scenario, history: History, chain: str, day: int, ids: Mapping[str, int],
                   chain_id: int, settings: Settings) -> dict[str, str]:
    """{member: reason} the day's budget verifies (all merged on day 0: every group changed within the week)."""
    code_of = {ids[m]: m for m in history.members(chain)}
    risks = []
    for store_id, member in sorted(code_of.items()):
        anchor = history.anchor_of(chain, member)
        overrides = len(history.carried[(chain, member)] - history.carried[(chain, anchor)])
        risks.append(MemberRisk(store_id, risk=risk_score(
            day - history.verified[(chain, member)], settings.verify_interval_days, day < settings.verify_interval_days,
            overrides, len(history.carried[(chain, anchor)]), settings.max_member_deviation)))
    budget = math.ceil(settings.verify_budget_share * len(risks))
    chosen = choose_members(risks, budget, settings.verify_random_share, f"{seed(scenario, day)}/{chain_id}")
    return {code_of[store_id]: reason for store_id, reason in chosen.items()}


def shown_prices(scenario: Scenario, history: History, chain: str, store: str, day: int) -> dict[str, TruePrice]:
    """{sku: price} the store shows on `day`: its zone's list, overlaid with its own and late prices.

    An anchor may be such a store (a zone whose every store deviates elects one),
    and the DAG keeps and compares what the anchor shows, not its zone's list.
    """
    zone = scenario.zone_prices(chain, history.zone_of[chain][store], day)
    if not scenario.deviations(chain, store, day):
        return zone
    return {**zone, **scenario.true_prices(chain, store, day)}


def fresh_changes(scenario: Scenario, history: History, chain: str, anchor: str, day: int
                  ) -> dict[str, tuple[TruePrice, TruePrice]]:
    """{sku: (before, after)}: the anchor's regular-price changes of `day` (neither side on special), the rows
    its upsert gives a previous price."""
    if day < 1:
        return {}
    before = shown_prices(scenario, history, chain, anchor, day - 1)
    after = shown_prices(scenario, history, chain, anchor, day)
    return {sku: (before[sku], now) for sku, now in after.items()
            if not now.on_special and not before[sku].on_special and now.price != before[sku].price}


def _lateness(scenario: Scenario, history: History, chain: str, day: int) -> Iterator[tuple[tuple, tuple[int, int]]]:
    """((day, chain, member), (late, on time)) for every member observed on `day` while its anchor's prices had
    just changed: in full when verified that day, else by its spot check of page one (lateness.count's rule)."""
    page_size = scenario.chain(chain).page_size
    by_zone = {z: fresh_changes(scenario, history, chain, a, day) for z, a in history.anchors[chain].items()}
    for member in history.members(chain):
        changes = by_zone[history.zone_of[chain][member]]
        if not changes:
            continue
        full = history.reasons.get((day, chain, member)) is not None
        listings = scenario.assortment(chain, member)
        seen = {lst.sku for lst in (listings if full else listings[:page_size])} & set(changes)
        if not seen:
            continue
        shown = shown_prices(scenario, history, chain, member, day)
        late = on_time = 0
        for sku in seen:
            before, after = changes[sku]
            price = shown[sku]
            if price.on_special:
                continue
            late += price.price == before.price
            on_time += price.price == after.price
        yield (day, chain, member), (late, on_time)


def anchor_rows(scenario: Scenario, history: History, chain: str, anchor: str) -> Iterator[Row]:
    """An anchor's rows: scraped every day, so each price is dated by the first day of its current run (of the
    prices it shows: a late or own-priced anchor's are not its zone's)."""
    tables = [shown_prices(scenario, history, chain, anchor, d) for d in range(history.days)]
    for sku in sorted(history.carried[(chain, anchor)]):
        since = history.last
        while since > 0 and tables[since - 1][sku] == tables[history.last][sku]:
            since -= 1
        yield Row(chain, anchor, sku, tables[history.last][sku], since,
                  _previous(tables[since - 1][sku], tables[since][sku]) if since else None)


def _previous(before: TruePrice, after: TruePrice) -> Decimal | None:
    """The upsert's previous_price: the replaced price of a change with no special before or after."""
    if before.on_special or after.on_special or before.price == after.price:
        return None
    return before.price


def member_rows(scenario: Scenario, history: History, chain: str, member: str) -> Iterator[Row]:
    """A member's rows after its last verification: what differed from its anchor that day (its own and late
    prices, and the products its anchor does not carry), dated by when the member first showed each."""
    day = history.verified[(chain, member)]
    now = _differing(scenario, history, chain, member, day)
    first = now if day == 0 else _differing(scenario, history, chain, member, 0)
    for sku, price in sorted(now.items()):
        kept = first.get(sku)  # the row the day-0 deduplication kept, re-observed since
        if kept == price:
            yield Row(chain, member, sku, price, 0, None)
        else:
            yield Row(chain, member, sku, price, day, None if kept is None else _previous(kept, price))


def _differing(scenario: Scenario, history: History, chain: str, member: str, day: int) -> dict[str, TruePrice]:
    """{sku: price} of the member's products that its anchor does not carry or shows otherwise on `day` (the
    rows deduplication against the anchor keeps)."""
    anchor = history.anchor_of(chain, member)
    shown = shown_prices(scenario, history, chain, member, day)
    theirs = shown_prices(scenario, history, chain, anchor, day)
    carried = history.carried[(chain, anchor)]
    return {sku: shown[sku] for sku in history.carried[(chain, member)]
            if sku not in carried or shown[sku] != theirs[sku]}


def spot_items(scenario: Scenario, history: History, chain: str, member: str, day: int) -> list[tuple[str, TruePrice]]:
    """(sku, price) of the member's first catalogue page on `day`: what its spot check read."""
    listings = scenario.assortment(chain, member)[: scenario.chain(chain).page_size]
    shown = shown_prices(scenario, history, chain, member, day)
    return [(lst.sku, shown[lst.sku]) for lst in listings]


def baseline_rows(scenario: Scenario, history: History, chain: str) -> Iterator[tuple[int, Row]]:
    """(day, row) of every verification on days 1..: the member's rows the upsert was about to overwrite, i.e.
    what its previous verification left (`served_overrides`, the baseline of that day's measurement)."""
    previous = {member: 0 for member in history.members(chain)}
    for (day, code, member) in sorted(history.reasons):
        if code != chain:
            continue
        before = previous[member]
        for sku, price in sorted(_differing(scenario, history, chain, member, before).items()):
            yield day, Row(chain, member, sku, price, before, None)
        previous[member] = day
