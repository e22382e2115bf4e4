"""Served prices for many stores at once (DESIGN.md §3, §10): rules/serving.py's rule over rows read set-based.

The `effective_prices` view is what the site reads, one store or one chain at
a time. A run's own consumers (spot-check judging first) need the served price
of a few products at hundreds of stores; asking the view store by store costs
a statement per store, and asking it for all of them at once gives plans that
depend on fresh statistics. So this module reads, in three statements
whatever the number of stores, the facts the rule needs (each store's
`Serving`, its own rows and its anchor's rows for the products asked, and for
products the anchor lacks the freshest group-mate's row) and applies
`serving.effective_prices` in Python: the one rule that
tests/integration/grouping/test_effective_rule.py holds equal to the view.
The time windows are the view's too: both read the `run_cadence` row.

`before` asks what would be served for a store had it not been scraped this
run: its own rows and its scrape and verification times as they were before
(verification.measure_served: the self-measured error checks the rule served),
and, when given, the group and anchor it is served from: the group it was
checked in, as the run's health decisions left it, even when its own scrape
moved it out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Collection, Mapping, NamedTuple

import psycopg

from pricegroups.grouping.rules.lateness import usually_late
from pricegroups.grouping.rules.serving import MateRow, PriceRow, Serving, effective_prices


class Served(NamedTuple):
    """One served price (cents; was_price 0 = none), its source, and the store whose row it is.

    `since`: when the served row was first observed (`prices.scraped_at`);
    `source_first_scraped`: that store's first scrape: a row observed then was
    not a change.
    """

    price: int
    was_price: int
    on_special: bool
    since: datetime
    source: str
    source_store: int
    source_first_scraped: datetime | None


class Before(NamedTuple):
    """A store as it was before this run scraped it: its own rows then, and its last scrape and verification.

    `group` and `anchor`, when set, are where it is served from instead of its
    current group and that group's anchor (the mates are that group's stores).
    """

    last_scraped_at: datetime | None
    last_verified_at: datetime | None
    rows: Mapping[int, PriceRow]
    group: int | None = None
    anchor: int | None = None


@dataclass(frozen=True)
class _Facts:
    serving: Serving
    anchor: int
    first_scraped_at: datetime | None
    anchor_first_scraped_at: datetime | None
    horizon: timedelta


# `placed`: stores served from another group or anchor than their own (`Before.group`, `Before.anchor`).
_FACTS = """
SELECT s.store_id, s.store_id = coalesce(o.anchor_id, g.anchor_store_id), s.active, s.last_scraped_at,
       s.last_verified_at, s.first_scraped_at, coalesce(o.anchor_id, g.anchor_store_id), a.first_scraped_at,
       s.late_changes, s.timely_changes, clock.latest, w.fresh, w.horizon
FROM stores s
CROSS JOIN run_cadence w
LEFT JOIN unnest(%(placed)s::int[], %(groups)s::bigint[], %(anchors)s::int[])
          AS o(store_id, group_id, anchor_id) ON o.store_id = s.store_id
JOIN store_groups g ON g.group_id = coalesce(o.group_id, s.group_id)
LEFT JOIN stores a ON a.store_id = coalesce(o.anchor_id, g.anchor_store_id)
LEFT JOIN (SELECT c.chain_id, max(c.last_scraped_at) AS latest FROM stores c
           WHERE c.chain_id IN (SELECT chain_id FROM stores WHERE store_id = ANY(%(stores)s))
           GROUP BY c.chain_id) clock ON clock.chain_id = s.chain_id
WHERE s.store_id = ANY(%(stores)s)
"""

# The store's own row and its anchor's row for each (store, product) asked; the anchor is the one _FACTS found
# (a placed store's too), so a store _FACTS does not know gets no anchor row and is left out after.
_ROWS = """
SELECT w.store_id, w.product_id,
       (p.price * 100)::bigint, coalesce((p.was_price * 100)::bigint, 0), p.on_special, p.scraped_at,
       coalesce((p.previous_price * 100)::bigint, 0),
       (ap.price * 100)::bigint, coalesce((ap.was_price * 100)::bigint, 0), ap.on_special, ap.scraped_at,
       coalesce((ap.previous_price * 100)::bigint, 0)
FROM unnest(%(stores)s::int[], %(products)s::int[], %(anchors)s::int[]) AS w(store_id, product_id, anchor_id)
LEFT JOIN prices p ON p.store_id = w.store_id AND p.product_id = w.product_id
LEFT JOIN prices ap ON ap.store_id = w.anchor_id AND ap.product_id = w.product_id AND w.anchor_id <> w.store_id
"""

# For an override the anchor does not carry: the row of the group's active store scraped most recently
# after the member (ties: the smallest store id), as the view's `fresher` part. `scraped` is the member's
# last scrape (before this run's, for a store asked `before`); the member itself is never its own mate.
_MATES = """
SELECT DISTINCT ON (w.store_id, w.product_id)
       w.store_id, w.product_id, o.store_id, o.last_scraped_at, o.first_scraped_at,
       (q.price * 100)::bigint, coalesce((q.was_price * 100)::bigint, 0), q.on_special, q.scraped_at,
       coalesce((q.previous_price * 100)::bigint, 0)
FROM unnest(%(stores)s::int[], %(products)s::int[], %(scraped)s::timestamptz[], %(groups)s::bigint[])
     AS w(store_id, product_id, scraped, group_id)
JOIN stores m ON m.store_id = w.store_id
JOIN stores o ON o.group_id = coalesce(w.group_id, m.group_id) AND o.active AND o.store_id <> w.store_id
JOIN prices q ON q.store_id = o.store_id AND q.product_id = w.product_id
WHERE coalesce(o.last_scraped_at, '-infinity') > coalesce(w.scraped, '-infinity')
ORDER BY w.store_id, w.product_id, o.last_scraped_at DESC, o.store_id
"""


def served_prices(
    conn: psycopg.Connection, wanted: Mapping[int, Collection[int]], before: Mapping[int, Before] | None = None,
) -> dict[int, dict[int, Served]]:
    """{store: {product: Served}} for the products asked of each store; a product served nothing is absent.

    Three statements for any number of stores. The rule sees only the products
    asked, which is enough: effective_prices decides each product from that
    product's rows and the store's facts alone. A store in `before` is served
    as it was before this run's scrape: its rows and times are taken from there.
    """
    before = before or {}
    pairs = [(s, p) for s, products in sorted(wanted.items()) for p in sorted(set(products))]
    if not pairs:
        return {}
    stores = sorted(wanted)
    facts = _facts(conn, stores, before)
    arrays = {"stores": [s for s, _ in pairs], "products": [p for _, p in pairs],
              "anchors": [facts[s].anchor if s in facts else None for s, _ in pairs]}  # placed stores' too
    own: dict[int, dict[int, PriceRow]] = {s: {} for s in stores}
    anchor: dict[int, dict[int, PriceRow]] = {s: {} for s in stores}
    for store, product, *cols in conn.execute(_ROWS, arrays):
        mine = before[store].rows.get(product) if store in before else _row(cols[:5])
        theirs = _row(cols[5:])
        if mine is not None:
            own[store][product] = mine
        if theirs is not None:
            anchor[store][product] = theirs
    # overrides the anchor lacks: a fresher group-mate may serve them (effective_prices asks only then)
    lacking = [(store, product) for store in stores if store in facts and facts[store].serving.active
               and facts[store].serving.override_mode
               for product in own[store] if product not in anchor[store]]
    mates: dict[int, dict[int, MateRow]] = {s: {} for s in stores}
    first_of: dict[int, datetime | None] = {}
    if lacking:
        rows = conn.execute(_MATES, {
            "stores": [s for s, _ in lacking], "products": [p for _, p in lacking],
            "scraped": [facts[s].serving.last_scraped_at for s, _ in lacking],
            "groups": [before[s].group if s in before else None for s, _ in lacking]})
        for store, product, mate, mate_scraped, mate_first, *cols in rows:
            mates[store][product] = MateRow(_row(cols), mate, mate_scraped)
            first_of[mate] = mate_first
    out: dict[int, dict[int, Served]] = {}
    for store in stores:
        if store not in facts:
            continue
        f = facts[store]
        first_of.setdefault(store, f.first_scraped_at)
        first_of.setdefault(f.anchor, f.anchor_first_scraped_at)
        served = effective_prices(f.serving, own[store], anchor[store], f.horizon, freshest=mates[store])
        out[store] = {}
        for product, e in served.items():
            source_store = f.anchor if e.from_anchor else (e.from_store if e.from_store is not None else store)
            out[store][product] = Served(e.row.price, e.row.was_price, e.row.on_special, e.row.first_observed,
                                         e.source, source_store, first_of.get(source_store))
    return out


def _facts(conn: psycopg.Connection, stores: list[int], before: Mapping[int, Before]) -> dict[int, _Facts]:
    out: dict[int, _Facts] = {}
    placed = sorted(s for s, b in before.items() if b.group is not None or b.anchor is not None)
    for (store, is_anchor, active, scraped, verified, first, anchor, anchor_first, late, timely,
         latest, fresh, horizon) in conn.execute(_FACTS, {
             "stores": stores, "placed": placed, "groups": [before[s].group for s in placed],
             "anchors": [before[s].anchor for s in placed]}):
        serving = Serving(
            is_anchor=is_anchor, last_scraped_at=scraped, last_verified_at=verified,
            anchor_first_scraped_at=anchor_first, active=active,
            late=not is_anchor and usually_late(late, timely),
            fresh_since=latest - fresh if latest is not None else None,
        )
        if store in before:
            serving = replace(serving, last_scraped_at=before[store].last_scraped_at,
                              last_verified_at=before[store].last_verified_at)
        out[store] = _Facts(serving, anchor, first, anchor_first, horizon)
    return out


def _row(cols) -> PriceRow | None:
    price, was, special, seen, previous = cols
    if price is None:
        return None
    return PriceRow(int(price), int(was), special, seen, int(previous))

