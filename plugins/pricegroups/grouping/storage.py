"""The storage interface: what the change-rate, lateness and deduplication rules read, from either storage.

Two implementations gather the same plain data: `pgstorage.PostgresStorage`
(PostgreSQL, set-based, aggregated in SQL) and `book.BookStorage` (the offline
GroupBook in memory). Neither decides anything: every criterion is a pure
function of grouping/rules/, applied here once for both:

* which anchor rows are changes for the change rate: `rules/cadence.is_change`
  (`anchor_change_share`, then `rules/compare.chain_change_rate`);
* which anchor rows are fresh regular-price changes, and when they are a mass
  repricing (no lateness evidence): `rules/compare.repriced_en_masse`;
* which observations count as late or on time: `rules/lateness.count` (a
  member against its anchor) and `count_anchor` (an anchor against what its
  members showed before);
* what makes two rows the same price for deduplication:
  `rules/serving.SAME_PRICE_FIELDS` (`PriceRow.same_price`; the database's SQL
  is built from it and `SAME_PRICE_DB_COLUMNS`).

A storage may narrow what it reads (a SQL WHERE) only to a superset of what
the criterion keeps: the criterion is applied to what it hands over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Collection, Hashable, Mapping, NamedTuple, Protocol, Sequence

from pricegroups.grouping.rules.cadence import Cadence, RowsAt, anchor_change_share
from pricegroups.grouping.rules.compare import chain_change_rate, repriced_en_masse
from pricegroups.grouping.rules.lateness import Lateness, Seen, count, count_anchor
from pricegroups.grouping.rules.serving import PriceRow
from pricegroups.settings import Settings


@dataclass(frozen=True)
class AnchorHistory:
    """One group's anchor: its chain, first and last scrape, and a histogram of when its rows were first observed."""

    group: Hashable
    chain: Hashable
    first_scraped_at: datetime | None
    last_scraped_at: datetime | None
    rows: tuple[RowsAt, ...]


class MemberSeen(NamedTuple):
    """A member observed in this run (scraped or spot-checked), with its anchor's rows for the products seen."""

    store: Hashable
    at: datetime  # when it was observed
    seen: Mapping[Hashable, Seen]
    anchor: Mapping[Hashable, PriceRow]


class AnchorSeen(NamedTuple):
    """An anchor scraped in this run, with what its active members showed, per product, in the runs before."""

    store: Hashable
    at: datetime  # its earliest change among the rows handed over
    last_scraped_at: datetime
    earlier: Mapping[Hashable, list[Seen]]
    rows: Mapping[Hashable, PriceRow]


class Storage(Protocol):
    """Where groups' prices live; gathers the rules' inputs at one `cadence`, decides nothing."""

    cadence: Cadence

    def anchor_histories(self) -> list[AnchorHistory]:
        """Every group's anchor with its histogram (rows first observed at or before last - `cadence.before`
        may come as one bar: `RowsAt`)."""
        ...

    def observations(self, skip_groups: Collection[Hashable]) -> tuple[list[MemberSeen], list[AnchorSeen]]:
        """This run's lateness evidence outside `skip_groups`: its observed members, and its scraped anchors
        with their members' earlier observations (at least every row and observation the criteria keep)."""
        ...

    def deduplicate(self, pairs: Sequence[tuple[Hashable, Hashable]]) -> dict[Hashable, int]:
        """Drop each (member, anchor) pair's member rows that are the same price as the anchor's; {member: dropped}."""
        ...


def change_rates(storage: Storage) -> dict[Hashable, float]:
    """Each chain's observed daily rate of price changes: the median share of its anchors with an earlier run.

    Chains without such an anchor are left out (the `daily_change_rate` prior applies).
    """
    shares: dict[Hashable, list[float]] = {}
    for anchor in storage.anchor_histories():
        share = anchor_change_share(anchor.rows, anchor.first_scraped_at, anchor.last_scraped_at, storage.cadence)
        if share is not None:
            shares.setdefault(anchor.chain, []).append(share)
    return {chain: chain_change_rate(values) for chain, values in shares.items()}


def repriced_groups(storage: Storage, rates: Mapping[Hashable, float], settings: Settings) -> set[Hashable]:
    """Groups whose anchor's latest scrape repriced its list en masse, judged against the chains' `rates`
    measured before the run (a chain without one: the `daily_change_rate` prior)."""
    return {a.group for a in storage.anchor_histories() if repriced_en_masse(
        a.rows, a.last_scraped_at, rates.get(a.chain, settings.daily_change_rate), storage.cadence, settings)}


def count_lateness(
    storage: Storage, rates: Mapping[Hashable, float], settings: Settings,
) -> dict[Hashable, tuple[Lateness, datetime]]:
    """{store: (its late and on-time changes, when)} for this run's observed members and scraped anchors.

    A group repriced en masse is no evidence. A store is a member or an anchor of a run, never both: a
    member's own count comes first.
    """
    members, anchors = storage.observations(repriced_groups(storage, rates, settings))
    fresh = storage.cadence.fresh
    counts = {m.store: (count(m.seen, m.anchor, fresh), m.at) for m in members}
    for a in anchors:
        if a.store not in counts:
            counts[a.store] = (count_anchor(a.earlier, a.rows, storage.cadence, a.last_scraped_at), a.at)
    return counts
