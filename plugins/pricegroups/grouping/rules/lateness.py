"""Lateness (DESIGN.md §5): counting a store's late and on-time price changes, and when it is usually late.

Some stores apply a regular-price change a day after the rest of their zone.
For such a store the anchor's price of a change first observed today is wrong
more often than the price it replaced, so the effective-prices rule serves
the replaced price (`prices.previous_price`, source "late") while the change
is *fresh*: first observed within `Cadence.fresh` of the chain's latest scrape.

Whether a store is late is measured, never assumed. Each run, every member
that was observed (scraped in full, or spot-checked) is compared with its
anchor on the products whose anchor price is a fresh regular-price change:
showing the replaced price counts as late, showing the new one as on time
(`count`; not on a day its anchor's list was repriced en masse). A store is
*usually late* (`usually_late`) once it was late at least `MIN_LATE` times
within the last `Settings.lateness_days`, and more often late than on time:
then the replaced price is the likelier one.
A change that is a day old is served as the anchor shows it: a late store
catches up within a day or two, and after a day it is more often on time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Hashable, Iterable, Mapping, NamedTuple

from pricegroups.grouping.rules.cadence import DAILY, Cadence
from pricegroups.grouping.rules.serving import PriceRow

MIN_LATE = 3  # the view's late_changes >= 3: fewer late changes are not a habit


class Lateness(NamedTuple):
    """Of a member's observed products whose anchor price had just changed: how many it showed late, on time."""

    late: int
    on_time: int


def usually_late(late: int, on_time: int) -> bool:
    """The replaced price is the likelier one: at least MIN_LATE late changes, and more late than on time."""
    return late >= MIN_LATE and late > on_time


class Seen(NamedTuple):
    """A member's price of one product as one scrape or spot check showed it (cents)."""

    price: int
    on_special: bool
    at: datetime


def often_late(late: int, on_time: int, cadence: Cadence = DAILY) -> bool:
    """Late with at least a third of its lagged changes (and MIN_LATE of them): never the anchor when a member is not.

    A lower bar than `usually_late`: a late anchor delays every change for its
    whole group, and a punctual member that represents the group as well costs
    nothing to prefer. On the demo an anchor late with 58 % of its changes was
    measured late on 11 of 28 (its members' own lateness hides some). The bar
    is on the store's habit, not on what one cadence shows of it: runs further
    apart than a day see only `Cadence.late_seen` of a late store's lagged
    changes as late, while what a late anchor costs its group in a run (the
    changes of its last day) stays the same.
    """
    return late >= MIN_LATE and 3 * late >= (late + on_time) * cadence.late_seen


def count(
    observed: Mapping[Hashable, Seen], anchor: Mapping[Hashable, PriceRow], fresh: timedelta = DAILY.fresh,
) -> Lateness:
    """Late and on-time changes in one run's observation of a member.

    Only the anchor's fresh regular-price changes count: a row with a previous
    price, not on special, first observed within `fresh` (`Cadence.fresh`) of
    the observation (before or after it: the two scrapes of one run). A product the member
    shows on special, or at a third price, says nothing about timing.
    """
    late = on_time = 0
    for product, seen in observed.items():
        row = anchor.get(product)
        if row is None or not row.previous_price or row.on_special or seen.on_special:
            continue
        if abs(row.first_observed - seen.at) > fresh:
            continue
        if seen.price == row.previous_price:
            late += 1
        elif seen.price == row.price:
            on_time += 1
    return Lateness(late, on_time)


def count_anchor(
    earlier: Mapping[Hashable, Iterable[Seen]], anchor: Mapping[Hashable, PriceRow], cadence: Cadence = DAILY,
    last_scraped: datetime | None = None,
) -> Lateness:
    """Late and on-time changes of an anchor, from what its members showed the run before its change.

    For each fresh regular-price change of the anchor (a previous price, not
    on special, first observed within `cadence.fresh` of its latest scrape
    `last_scraped`; None: every change counts), the members' observations in
    the runs before it was first seen (`before_change`): a member already
    showing the new price means the anchor showed it a day late; a member
    showing the replaced price means the change is the day's.
    """
    late = on_time = 0
    for product, seen in earlier.items():
        row = anchor.get(product)
        if row is None or not row.previous_price or row.on_special:
            continue
        if last_scraped is not None and row.first_observed < last_scraped - cadence.fresh:
            continue
        prices = {s.price for s in seen if not s.on_special and before_change(row, s.at, cadence)}
        if row.price in prices:
            late += 1
        elif row.previous_price in prices:
            on_time += 1
    return Lateness(late, on_time)


def before_change(row: PriceRow, at: datetime, cadence: Cadence = DAILY) -> bool:
    """An observation at `at` is from the runs before the anchor's change `row` (`Cadence.runs_before`)."""
    start, end = cadence.runs_before(row.first_observed)
    return start <= at < end
