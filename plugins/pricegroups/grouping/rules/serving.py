"""Serving: what the site serves for a store (DESIGN.md §3 and §5), as a pure function.

This is the rule of the `effective_prices` view (sql/0048_cadence.sql). The
site reads the view; everything else that needs a served price calls this
function: served.py for the run's own consumers (spot-check judging, the
self-measured error of verification.py), the offline CLI and the demo's
scoring. tests/integration/grouping/test_effective_rule.py holds the view and
this function equal row for row. The time windows (`horizon`, `fresh_since`)
come from the run cadence (cadence.py). The rule, for an active store S of a
group whose anchor is A:

* **S is the anchor**: its own rows, source ``observed``.
* **S is a member.** Its own rows are *observations* while it was never
  verified or was scraped after its last verification
  (``last_verified_at`` is NULL or ``last_scraped_at > last_verified_at``);
  after a verification (and until its next scrape) they are its *overrides*:
  the deviations that verification kept when it deduplicated the rest.
  Per product:

  - own row, no reason to doubt it: the own row, source ``observed`` or
    ``override`` (as just said); so is every own row of a member scraped at
    or after ``Serving.fresh_since`` (today): nothing it was seen charging
    today is stale;
  - an override is **stale** when the anchor's price for the product was
    first observed (i) after the anchor's first scrape (a *change*, not a
    price the anchor had from the start; a NULL first scrape counts as
    -infinity) and (ii) at most `horizon` (cadence.py: 48 hours at a daily
    cadence) before S's verification, or at any time since (`recent_change`). Then the difference the verification kept may be
    timing, or the anchor's price changed since: the anchor's row is served,
    source ``stale_override``. Observed rows are never stale;
  - an override for a product the anchor does not carry: when another store
    of the group (active) was scraped more recently and has a row for it, that
    store's row is served instead, source ``inferred`` (the group shares one
    price list, and the freshest observation of it wins; ties: the store's
    own row, then the smallest store id);
  - no own row: the anchor's row, source ``inferred``;
  - neither: nothing.
  - **a late store** (``Serving.late``: usually late with price changes,
    grouping/lateness.py): where the anchor's row would be served (source
    ``inferred`` or ``stale_override``) and it is a *fresh* regular-price
    change (``previous_price`` set, not on special, first observed at or
    after ``Serving.fresh_since``: `Cadence.fresh` before the chain's latest
    scrape, 12 hours at a daily cadence),
    the price the change replaced is served instead, source ``late``, with no
    was-price.

* Inactive stores get nothing; an inactive anchor's rows still serve its members.

A member verified but never scraped (``last_scraped_at`` NULL, which the
pipeline never produces) counts as scraped at -infinity: its rows are overrides.

Inputs are plain data: per store its `Serving` facts, its own rows and its
anchor's rows as {product: PriceRow}; `first_observed` is `prices.scraped_at`
(the upsert leaves an unchanged price's scraped_at alone, so it is when the
current price was first observed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Hashable, Mapping, NamedTuple

from pricegroups.grouping.rules.cadence import DAILY

OBSERVED = "observed"
OVERRIDE = "override"
STALE_OVERRIDE = "stale_override"
INFERRED = "inferred"
LATE = "late"
SOURCES = (OBSERVED, OVERRIDE, STALE_OVERRIDE, INFERRED, LATE)


# Deduplication's one rule (DESIGN.md §4): a member's row is the same price as its anchor's, and is dropped,
# when these are equal. PriceRow carries the first three; the database keeps the others too (a member
# whose promo text differs keeps its row as an override), and pgstorage.deduplicate's SQL is built from both.
SAME_PRICE_FIELDS = ("price", "was_price", "on_special")
SAME_PRICE_DB_COLUMNS = ("unit_price", "unit_measure", "promo_text")
_same_price_key = attrgetter(*SAME_PRICE_FIELDS)


class PriceRow(NamedTuple):
    """One price row of one store: amounts in cents (was_price 0 = none).

    `previous_price`: the regular price a regular-price change replaced (0 = none; `prices.previous_price`).
    """

    price: int
    was_price: int
    on_special: bool
    first_observed: datetime
    previous_price: int = 0

    def same_price(self, other: "PriceRow") -> bool:
        """Deduplication's rule on the fields a PriceRow has (SAME_PRICE_FIELDS): price, was-price, special flag."""
        return _same_price_key(self) == _same_price_key(other)


@dataclass(frozen=True)
class Serving:
    """What the rule needs to know about one store (stores, store_groups and the anchor's stores row)."""

    is_anchor: bool
    last_scraped_at: datetime | None
    last_verified_at: datetime | None
    anchor_first_scraped_at: datetime | None
    active: bool = True
    late: bool = False  # usually late with price changes (rules/lateness.usually_late); never for an anchor
    fresh_since: datetime | None = None  # the chain's latest scrape less Cadence.fresh

    @property
    def override_mode(self) -> bool:
        """A member verified and not scraped since: its own rows are the overrides its verification kept."""
        verified, scraped = self.last_verified_at, self.last_scraped_at
        return not self.is_anchor and verified is not None and (scraped is None or scraped <= verified)


class Effective(NamedTuple):
    """One served price: the row served, where it came from, and whether it is the anchor's row."""

    row: PriceRow
    source: str
    from_anchor: bool
    from_store: Hashable | None = None  # a group-mate whose fresher row is served (not the anchor)


class MateRow(NamedTuple):
    """The freshest row of a product among a group's active stores: its store and that store's last scrape."""

    row: PriceRow
    store: Hashable
    last_scraped_at: datetime | None


def effective_prices(
    store: Serving,
    own: Mapping[Hashable, PriceRow],
    anchor: Mapping[Hashable, PriceRow],
    horizon: timedelta = DAILY.horizon,
    freshest: Mapping[Hashable, MateRow] | None = None,
) -> dict[Hashable, Effective]:
    """{product: Effective} served for one store (`anchor` is ignored when the store is its group's anchor).

    `horizon`: the cadence's (`Cadence.horizon`). `freshest`: per product the
    anchor lacks, the freshest row among the group's active stores (`freshest_rows`).
    """
    if not store.active:
        return {}
    if store.is_anchor:
        return {p: Effective(row, OBSERVED, False) for p, row in own.items()}
    scraped = store.last_scraped_at
    override_mode = store.override_mode
    own_source = OVERRIDE if override_mode else OBSERVED
    out: dict[Hashable, Effective] = {}
    today = store.fresh_since is not None and scraped is not None and scraped >= store.fresh_since
    for product, row in own.items():
        if override_mode and not today and _changed(anchor.get(product), store, horizon):
            out[product] = _from_anchor(anchor[product], STALE_OVERRIDE, store)
            continue
        mate = (freshest or {}).get(product) if override_mode and product not in anchor else None
        if mate is not None and _fresher(mate.last_scraped_at, store.last_scraped_at):
            out[product] = Effective(mate.row, INFERRED, False, mate.store)
        else:
            out[product] = Effective(row, own_source, False)
    for product, row in anchor.items():
        if product not in own:
            out[product] = _from_anchor(row, INFERRED, store)
    return out


def _from_anchor(row: PriceRow, source: str, store: Serving) -> Effective:
    """The anchor's row, or for a late store the price a fresh change replaced (source LATE)."""
    fresh = store.fresh_since is not None and row.first_observed >= store.fresh_since
    if store.late and row.previous_price and not row.on_special and fresh:
        return Effective(PriceRow(row.previous_price, 0, False, row.first_observed), LATE, True)
    return Effective(row, source, True)


def freshest_rows(
    rows: Mapping[Hashable, Mapping[Hashable, PriceRow]], last_scraped: Mapping[Hashable, datetime | None],
) -> dict[Hashable, MateRow]:
    """Per product, the row of the group store scraped most recently (ties: the smallest store key).

    `rows` are the group's active stores' own rows. The view orders the same way.
    """
    out: dict[Hashable, MateRow] = {}
    for store in sorted(rows, key=lambda s: (-_stamp(last_scraped.get(s)), s)):
        for product, row in rows[store].items():
            out.setdefault(product, MateRow(row, store, last_scraped.get(store)))
    return out


def _stamp(value: datetime | None) -> float:
    return value.timestamp() if value is not None else float("-inf")


def _fresher(mate: datetime | None, own: datetime | None) -> bool:
    return _stamp(mate) > _stamp(own)


def _changed(row: PriceRow | None, store: Serving, horizon: timedelta) -> bool:
    """The anchor's price for the product changed close enough to the store's verification to be timing."""
    if row is None or store.last_verified_at is None:
        return False
    return recent_change(row.first_observed, store.anchor_first_scraped_at, store.last_verified_at - horizon)


def recent_change(first_observed: datetime, first_scraped: datetime | None, since: datetime) -> bool:
    """A price first observed at or after `since` that is a change: its store did not have it at its first scrape.

    A difference from such a price may be timing (the store has not applied it
    yet, or a scrape caught it half-way): the stale-override test here and the
    spot check's timing test (spotcheck.judge) both ask this. A NULL first
    scrape counts as -infinity.
    """
    return first_observed >= since and (first_scraped is None or first_observed > first_scraped)
