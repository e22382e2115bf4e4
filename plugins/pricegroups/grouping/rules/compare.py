"""The comparison rule (DESIGN.md §5): is a pricing difference a different price list, or noise?

* overlap: products with a current price at both stores; a product agrees when
  the price is equal to the cent, the on-special flag is equal, and the
  was-price too when both have one;
* each disagreeing product is classified by who else charges the two prices
  (support.py): *shared* when other stores stand behind both prices (evidence
  of two price lists), else the *own deviation* of the side nobody else backs
  (a store's idiosyncratic price, or a scrape caught mid-change);
* *timing* explains up to a Poisson upper bound of the changes the chain's
  observed daily change rate predicts between the two scrapes' times; such a
  change is seen by the later scrape only, so nobody backs it yet: timing
  widens the own-deviation allowance, never the shared one;
* INCONCLUSIVE when either side is not current, or the overlap is below
  `min_overlap_products` or below `min_overlap_share` of the smaller catalogue;
* MISMATCH when more products are shared disagreements than
  `shared_deviation_tolerance` allows (at least SHARED_FLOOR): a different list; or when
  either store's own deviations exceed `max_member_deviation` (+ timing);
* else MATCH: the differences are the stores' own, kept as overrides.

Without any other store to ask (two ungrouped stores), every disagreement is
both stores' own, so the rule is "at most max_member_deviation of the overlap
differs". The outcome is a function of the stored counts, so a remembered
comparison can be re-judged under other settings (see `judge`).
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timedelta
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from pricegroups.grouping.rules.cadence import Cadence, RowsAt, is_fresh_change
from pricegroups.settings import Settings

SHARED_FLOOR = 2  # shared disagreements any overlap tolerates (see allowed_shared)


class Outcome(str, enum.Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    INCONCLUSIVE = "inconclusive"


class Counts(NamedTuple):
    """What a comparison measured; enough to re-judge it later (a tuple: hundreds of thousands per run)."""

    overlap: int
    agreeing: int
    size_a: int
    size_b: int
    complete: bool = True  # False: stopped early, known only not to MATCH (see Comparer.best_matches)
    shared: int = 0  # disagreements both of whose prices other stores charge too
    own_a: int = 0  # disagreements where nobody else charges a's price
    own_b: int = 0
    timing: int = 0  # disagreements the time between the two scrapes can explain

    @property
    def disagreeing(self) -> int:
        return self.overlap - self.agreeing

    def flipped(self) -> "Counts":
        return Counts(self.overlap, self.agreeing, self.size_b, self.size_a, self.complete, self.shared,
                      self.own_b, self.own_a, self.timing)


def min_overlap(size_a: int, size_b: int, settings: Settings) -> int:
    return max(settings.min_overlap_products, math.ceil(settings.min_overlap_share * min(size_a, size_b)))


def allowed_own(overlap: int, settings: Settings) -> int:
    """The most own deviations one store may have against the other (excluding timing)."""
    return int(math.floor(settings.max_member_deviation * overlap + 1e-9))


def allowed_shared(overlap: int, settings: Settings) -> int:
    """The most shared disagreements a MATCH tolerates (coincidences), excluding timing.

    At least SHARED_FLOOR: after deduplication a member without a row for a
    product looks like it charges its anchor's price there even when it does
    not carry it, so a product or two can look shared by chance.
    """
    return max(SHARED_FLOOR, int(math.floor(settings.shared_deviation_tolerance * overlap + 1e-9)))


def timing_allowance(overlap: int, gap: timedelta, daily_rate: float) -> int:
    """An upper bound (mean + 3 sd of a Poisson count, + 1) of products whose price changed between two scrapes."""
    days = abs(gap.total_seconds()) / 86400
    if days < 1 / 24:
        return 0  # scraped within the same hour: nothing to explain
    expected = daily_rate * overlap * days
    return int(math.ceil(expected + 3 * math.sqrt(expected) + 1))


def timing_allowances(overlap: np.ndarray, gap_us: np.ndarray, daily_rate: float) -> np.ndarray:
    """timing_allowance of many pairs at once (gaps in microseconds); equal to it element by element."""
    days = np.abs(gap_us).astype(np.float64) / 1e6 / 86400
    expected = daily_rate * np.asarray(overlap, dtype=np.float64) * days
    bound = np.ceil(expected + 3 * np.sqrt(expected) + 1).astype(np.int64)
    return np.where(days < 1 / 24, 0, bound)


MAX_CHANGE_RATE = 0.2  # a store that moved list must not make timing explain a whole list


def chain_change_rate(shares: Sequence[float]) -> float:
    """A chain's daily rate of price changes from its anchors' shares of prices changed in their last day.

    The median (interpolated), so one anchor that moved list does not set it,
    capped at MAX_CHANGE_RATE. The database path and GroupBook both use it.
    """
    return min(MAX_CHANGE_RATE, float(np.median(shares)))


def max_disagreements(size: int, settings: Settings, timing: int = 0, supported: bool = True) -> int:
    """The most disagreeing products any MATCH of a store with `size` products can have.

    Without support on either side every disagreement is both stores' own, so
    the bound is the own allowance; with support it is both own allowances plus
    the shared one. Blocking and early stopping rely on this bound.
    """
    if not supported:
        return allowed_own(size, settings) + timing
    return 2 * (allowed_own(size, settings) + timing) + allowed_shared(size, settings)


def max_disagreements_of(sizes: np.ndarray, settings: Settings, timing: np.ndarray, supported: np.ndarray) -> np.ndarray:
    """max_disagreements of many (size, timing, supported) at once; equal to it element by element."""
    own = np.floor(settings.max_member_deviation * sizes.astype(np.float64) + 1e-9).astype(np.int64) + timing
    shared = np.maximum(SHARED_FLOOR, np.floor(settings.shared_deviation_tolerance * sizes.astype(np.float64) + 1e-9))
    return np.where(supported, 2 * own + shared.astype(np.int64), own)


def judge(counts: Counts, settings: Settings) -> tuple[Outcome, str]:
    """The §5 rule on measured counts (both sides already known to be current)."""
    if not counts.complete:
        return Outcome.MISMATCH, "stopped early: more disagreeing products than any match allows"
    needed = min_overlap(counts.size_a, counts.size_b, settings)
    if counts.overlap < needed:
        return Outcome.INCONCLUSIVE, f"overlap {counts.overlap} below {needed}"
    shared_cap = allowed_shared(counts.overlap, settings)  # a change seen by one scrape only is nobody else's yet
    if counts.shared > shared_cap:
        return Outcome.MISMATCH, f"{counts.shared} disagreements shared by other stores (at most {shared_cap}): a different price list"
    own_cap = allowed_own(counts.overlap, settings) + counts.timing
    worst = max(counts.own_a, counts.own_b)
    if worst > own_cap:
        return Outcome.MISMATCH, f"{worst} own deviations of one store (at most {own_cap})"
    return Outcome.MATCH, "differences within one store's own deviations"


MASS_CHANGE = 3  # times max_member_deviation: see mass_change_share


def mass_change_share(settings: Settings) -> float:
    """The share of an anchor's prices changed in one scrape that no member's own deviations explain.

    Three times the share of own deviations a member may have. Above it the
    list itself changed: one anchor far above its chain's median moved to
    another list (health.jumped_anchors); a chain whose median anchor is above
    it had a chain-wide change such as a new week's specials
    (health.turnover_chains); and such a day says nothing of a store's
    lateness, as a store applies it with its whole list (grouping/lateness.py).
    For the last, a chain whose ordinary runs change more than this has its
    own rate as the bar (`changed_en_masse`); docs/sensitivity.md shows where
    the factor holds.
    """
    return MASS_CHANGE * settings.max_member_deviation


def ordinary_change_share(rows: int, daily_rate: float, interval: timedelta) -> float:
    """The largest share of a list of `rows` prices that one ordinary run shows changed at the chain's daily
    change rate: `timing_allowance`'s Poisson upper bound over one run interval."""
    return timing_allowance(rows, interval, daily_rate) / rows if rows > 0 else 0.0


def changed_en_masse(share: float, rows: int, daily_rate: float, interval: timedelta, settings: Settings) -> bool:
    """A `share` of a list of `rows` changed in one run beyond both `mass_change_share` and what the chain's
    own change rate predicts for one run: a chain that reprices 4 % of its list every day has ordinary days.

    `daily_rate` must be measured before the run: this run's own rate would
    count a repricing of one of few anchors as ordinary.
    """
    if rows <= 0:
        return False
    return share > max(mass_change_share(settings), ordinary_change_share(rows, daily_rate, interval))


def repriced_en_masse(
    rows: Iterable[RowsAt], last_scraped: datetime | None, daily_rate: float, cadence: Cadence, settings: Settings,
) -> bool:
    """An anchor's latest scrape repriced its list en masse: the share of its rows that are fresh
    regular-price changes (cadence.is_fresh_change) is `changed_en_masse`. Such a day is no lateness evidence."""
    if last_scraped is None:
        return False
    rows = list(rows)
    total = sum(r.rows for r in rows)
    if total <= 0:
        return False
    changed = sum(r.rows for r in rows if is_fresh_change(r.at, r.previous, last_scraped, cadence))
    return changed_en_masse(changed / total, total, daily_rate, cadence.interval, settings)
