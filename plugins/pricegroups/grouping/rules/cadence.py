"""The run cadence (DESIGN.md §3, §5, §9): every time window of the grouping rules, derived from one interval.

The rules ask three questions of time, and each answer depends on how often
the DAG runs as well as on how stores behave:

* is a row *fresh*, first seen by the chain's latest run? A late store serves
  the price a fresh change replaced (serving.py, lateness.py);
* is a difference *timing*, close enough to a change of the anchor's that the
  store may simply not have applied it yet? Then it is no evidence (a stale
  override, a spot check's difference);
* which runs came *before* a change, where an anchor's lateness shows?

A late store applies a change `LAG` after its zone (a day: stores reprice
overnight). So a change is fresh while a late store may still lag it, and at
least for half an interval (the latest run); a difference is timing within
`LAG` and one interval of observation; the runs before a change are those of
the `LAG`, or the previous run when runs are further apart. At a daily cadence
this gives 12 hours, 48 hours and a day: the windows the rules had when every
run was assumed daily.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, NamedTuple

LAG = timedelta(days=1)  # how far a late store is behind its zone: stores apply price changes overnight


@dataclass(frozen=True)
class Cadence:
    """How often the DAG runs (`interval`), and the windows the rules derive from it."""

    interval: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ValueError(f"the run interval must be positive, got {self.interval}")

    @classmethod
    def of_hours(cls, hours: float) -> "Cadence":
        return cls(timedelta(hours=hours))

    @property
    def fresh(self) -> timedelta:
        """A row first observed within this of the chain's latest scrape is a fresh change."""
        return max(self.interval / 2, LAG - self.interval / 2)

    @property
    def horizon(self) -> timedelta:
        """A difference this close to (or since) a change of the anchor's may be timing."""
        return LAG + self.interval

    @property
    def before(self) -> timedelta:
        """How far back of a change's freshness window the runs before it are looked for."""
        return max(LAG, self.interval)

    @property
    def late_seen(self) -> float:
        """The share of a late store's lagged changes that a run sees as late.

        A store `LAG` behind applies a change by the next day. When runs are
        further apart than `LAG`, a change made more than `LAG` before a run
        has been applied by then, late store or not: only the changes of the
        last `LAG` of each interval can show as late (a half at 48 hours).
        """
        return min(1.0, LAG / self.interval)

    def fresh_since(self, latest: datetime | None) -> datetime | None:
        """The oldest first observation that is fresh, given the chain's latest scrape (None: never scraped)."""
        return latest - self.fresh if latest is not None else None

    def runs_before(self, changed_at: datetime) -> tuple[datetime, datetime]:
        """[start, end) of the logical dates of the runs before a change first seen at `changed_at`."""
        return changed_at - self.fresh - self.before, changed_at - self.fresh


DAILY = Cadence()


def changes_per_day(
    changed: int, total: int, first_scraped: datetime, last_scraped: datetime, cadence: Cadence,
) -> float | None:
    """An anchor's share of prices changed per day, from its rows first observed in its last `cadence.before`.

    `changed` counts the anchor's rows first observed after its first scrape
    and within `cadence.before` before its last scrape: the changes of that
    span, min(`before`, last - first). None when the anchor has no earlier run
    to compare with (first scraped within `fresh` of its last scrape) or no
    rows. `anchor_change_share` counts `changed` (`is_change`) for both storages.
    """
    span = min(cadence.before, last_scraped - first_scraped)
    if total <= 0 or span <= cadence.fresh:
        return None
    return changed / total * (timedelta(days=1) / span)


class RowsAt(NamedTuple):
    """An anchor's rows first observed at one time: a bar of the histogram the storages hand the rules.

    `previous`: whether these rows replaced a regular price (`prices.previous_price` set).
    A storage may read every row first observed at or before `last_scraped - cadence.before`
    as one bar at the newest such time: no criterion of an anchor's rows (`is_change`,
    `is_fresh_change`) holds that far back, so the bar decides as its rows would.
    """

    at: datetime
    previous: bool
    rows: int


def is_change(at: datetime, first_scraped: datetime, last_scraped: datetime, cadence: Cadence) -> bool:
    """A row first observed at `at` is a change for the change rate: after the anchor's first scrape
    (not a price it had from the start) and within `cadence.before` of its last scrape."""
    return at > first_scraped and at > last_scraped - cadence.before


def is_fresh_change(at: datetime, previous: bool, last_scraped: datetime, cadence: Cadence) -> bool:
    """A row is a fresh regular-price change of its anchor's latest scrape: it replaced a regular price
    and was first observed within `cadence.fresh` of that scrape (the mass-repricing share counts these)."""
    return previous and at >= last_scraped - cadence.fresh


def anchor_change_share(
    rows: Iterable[RowsAt], first_scraped: datetime | None, last_scraped: datetime | None, cadence: Cadence,
) -> float | None:
    """An anchor's share of prices changed per day (`changes_per_day` of its `is_change` rows), from its
    histogram; None without two scrapes far enough apart, or without rows."""
    if first_scraped is None or last_scraped is None:
        return None
    rows = list(rows)
    changed = sum(r.rows for r in rows if is_change(r.at, first_scraped, last_scraped, cadence))
    return changes_per_day(changed, sum(r.rows for r in rows), first_scraped, last_scraped, cadence)
