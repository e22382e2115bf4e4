"""The storage interface (storage.py) on PostgreSQL: one set-based statement per question, rules applied in Python.

The statements aggregate or narrow in SQL and hand the rules plain data;
where a WHERE narrows rows for speed it keeps at least what the Python
criterion keeps (said at each statement), and the criterion decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Collection, Iterable, Sequence

import psycopg

from pricegroups.grouping.rules.cadence import DAILY, Cadence, RowsAt
from pricegroups.grouping.rules.lateness import Seen
from pricegroups.grouping.rules.serving import SAME_PRICE_DB_COLUMNS, SAME_PRICE_FIELDS, PriceRow
from pricegroups.grouping.storage import AnchorHistory, AnchorSeen, MemberSeen

# Per group, its anchor's rows counted by when they were first observed and whether they replaced a
# regular price. Rows first observed at or before last_scraped_at - before are one bar at the newest
# such time (RowsAt: no criterion holds that far back), so an anchor is a few rows, not its catalogue.
_HISTOGRAMS = """
SELECT g.group_id, g.chain_id, a.first_scraped_at, a.last_scraped_at,
       max(p.scraped_at), p.previous_price IS NOT NULL, count(*)
FROM store_groups g JOIN stores a ON a.store_id = g.anchor_store_id
JOIN prices p ON p.store_id = a.store_id
WHERE a.last_scraped_at IS NOT NULL
  AND (%(chains)s::int[] IS NULL OR g.chain_id = ANY(%(chains)s))
  AND (%(codes)s::text[] IS NULL OR g.chain_id IN (SELECT chain_id FROM chains WHERE code = ANY(%(codes)s)))
GROUP BY g.group_id, a.store_id, greatest(p.scraped_at, a.last_scraped_at - %(before)s),
         p.previous_price IS NOT NULL
ORDER BY 1, 5
"""

# What members showed in some runs: their full scrape (scraped_items) or else their spot check.
_SEEN = """
WITH seen AS (
    SELECT i.run_id, i.store_id, i.product_id, i.price, i.on_special, i.scraped_at AS observed_at
    FROM scraped_items i
    WHERE i.run_id = ANY(%(runs)s) AND i.product_id IS NOT NULL
    UNION ALL
    SELECT i.run_id, i.store_id, l.product_id, i.price, i.on_special, k.checked_at
    FROM spot_check_items i
    JOIN spot_checks k ON k.run_id = i.run_id AND k.store_id = i.store_id
    JOIN listings l ON l.chain_id = k.chain_id AND l.sku = i.sku
    WHERE i.run_id = ANY(%(runs)s)
      AND NOT EXISTS (SELECT 1 FROM scraped_items f WHERE f.run_id = i.run_id AND f.store_id = i.store_id)
)
"""
# Every active member's observation in the runs asked for, with its anchor's row for the product, outside
# the skipped groups. Narrowed to anchor rows with a previous price, not on special: count and
# count_anchor count no other row (rules/lateness.py).
_PAIRS = _SEEN + """
, pairs AS (
    SELECT v.run_id, s.store_id AS member, a.store_id AS anchor, v.product_id,
           (v.price * 100)::bigint AS cents, v.on_special, v.observed_at,
           (ap.price * 100)::bigint AS a_cents, (ap.previous_price * 100)::bigint AS a_previous,
           ap.on_special AS a_special, ap.scraped_at AS a_seen, a.last_scraped_at AS a_last
    FROM seen v
    JOIN stores s ON s.store_id = v.store_id
    JOIN store_groups g ON g.group_id = s.group_id
    JOIN stores a ON a.store_id = g.anchor_store_id
    JOIN chains c ON c.chain_id = s.chain_id
    JOIN prices ap ON ap.store_id = a.store_id AND ap.product_id = v.product_id
    WHERE s.store_id <> a.store_id AND s.active AND NOT g.group_id = ANY(%(skip)s)
      AND (%(codes)s::text[] IS NULL OR c.code = ANY(%(codes)s))
      AND ap.previous_price IS NOT NULL AND NOT ap.on_special
)
"""
_COLUMNS = "product_id, cents, on_special, observed_at, a_cents, a_previous, a_special, a_seen, a_last"

# One statement for both questions, over the observations of this run and of the runs before:
# * members ("member"): what they showed this run; narrowed to anchor rows first observed within `fresh`
#   of the observation, which is count's own window;
# * anchors scraped in this run ("anchor"): what their members showed in the runs before; narrowed to the
#   anchor's changes first seen within `fresh` of its scrape and observations in the runs before each
#   change (`before_change`), which is count_anchor's own criterion.
# Both narrowings keep exactly the rows the criteria count: they are there for speed, the rules decide.
_BOTH = _PAIRS + f"""
SELECT 'member' AS kind, member AS store, {_COLUMNS} FROM pairs
WHERE run_id = %(run)s AND a_seen BETWEEN observed_at - %(fresh)s AND observed_at + %(fresh)s
UNION ALL
SELECT 'anchor', anchor, {_COLUMNS} FROM pairs
WHERE run_id = ANY(%(earlier)s) AND a_last >= %(as_of)s - %(fresh)s AND a_seen >= a_last - %(fresh)s
  AND observed_at < a_seen - %(fresh)s AND observed_at >= a_seen - %(fresh)s - %(before)s
ORDER BY 1, 2, 3
"""

# Deduplication, with the equality of rules/serving.py's SAME_PRICE_FIELDS and SAME_PRICE_DB_COLUMNS.
# The anchors' rows are read once into a hash table (MATERIALIZED): joining them straight from `prices`
# lets the planner hash the whole table for every batch.
_SAME_PRICE = SAME_PRICE_FIELDS + SAME_PRICE_DB_COLUMNS
_DEDUP = f"""
WITH pairs AS MATERIALIZED (SELECT * FROM unnest(%s::int[], %s::int[]) AS v(store_id, anchor_id)),
anchor_rows AS MATERIALIZED (
    SELECT a.store_id, a.product_id, {', '.join('a.' + c for c in _SAME_PRICE)}
    FROM prices a WHERE a.store_id = ANY(ARRAY(SELECT DISTINCT anchor_id FROM pairs))
),
gone AS (
    DELETE FROM prices m USING pairs v, anchor_rows a
    WHERE m.store_id = v.store_id AND a.store_id = v.anchor_id AND a.product_id = m.product_id
      AND ({', '.join('m.' + c for c in _SAME_PRICE)})
          IS NOT DISTINCT FROM ({', '.join('a.' + c for c in _SAME_PRICE)})
    RETURNING m.store_id
)
SELECT store_id, count(*) FROM gone GROUP BY store_id
"""


@dataclass
class PostgresStorage:
    """The storage interface over one connection, for some chains (ids or codes; None: every chain) and,
    for lateness, one run: `run_id` at `as_of`, with the `earlier` runs whose observations precede it."""

    conn: psycopg.Connection
    cadence: Cadence = DAILY
    chain_ids: Sequence[int] | None = None
    chain_codes: Sequence[str] | None = None
    run_id: str | None = None
    as_of: datetime | None = None
    earlier: Sequence[str] = field(default_factory=tuple)

    def anchor_histories(self) -> list[AnchorHistory]:
        rows = self.conn.execute(_HISTOGRAMS, {
            "chains": _list(self.chain_ids), "codes": _list(self.chain_codes), "before": self.cadence.before,
        }).fetchall()
        heads: dict[int, tuple] = {}
        bars: dict[int, list[RowsAt]] = {}
        for group, chain, first, last, at, previous, n in rows:
            heads[group] = (chain, first, last)
            bars.setdefault(group, []).append(RowsAt(at, previous, n))
        return [AnchorHistory(g, chain, first, last, tuple(bars[g])) for g, (chain, first, last) in heads.items()]

    def observations(self, skip_groups: Collection[int]) -> tuple[list[MemberSeen], list[AnchorSeen]]:
        rows = self.conn.execute(_BOTH, {
            "run": self.run_id, "earlier": list(self.earlier), "runs": [self.run_id, *self.earlier],
            "as_of": self.as_of, "codes": _list(self.chain_codes), "skip": sorted(skip_groups),
            "fresh": self.cadence.fresh, "before": self.cadence.before,
        }).fetchall()
        return (_members(r[1:] for r in rows if r[0] == "member"),
                _anchors(r[1:] for r in rows if r[0] == "anchor"))

    def deduplicate(self, pairs: Sequence[tuple[int, int]]) -> dict[int, int]:
        if not pairs:
            return {}
        return dict(self.conn.execute(_DEDUP, ([s for s, _ in pairs], [a for _, a in pairs])).fetchall())


def _list(values: Sequence | None) -> list | None:
    """A filter's values for SQL; None: no filter (an empty list keeps nothing)."""
    return list(values) if values is not None else None


def _members(rows: Iterable[tuple]) -> list[MemberSeen]:
    """_BOTH's member rows as one MemberSeen per member, observed at its earliest observation."""
    seen: dict[int, dict[int, Seen]] = {}
    anchor: dict[int, dict[int, PriceRow]] = {}
    at: dict[int, datetime] = {}
    for store, product, cents, special, observed, a_cents, a_previous, a_special, a_seen, _ in rows:
        seen.setdefault(store, {})[product] = Seen(cents, special, observed)
        anchor.setdefault(store, {})[product] = PriceRow(a_cents, 0, a_special, a_seen, a_previous)
        at[store] = min(at.get(store, observed), observed)
    return [MemberSeen(s, at[s], seen[s], anchor[s]) for s in seen]


def _anchors(rows: Iterable[tuple]) -> list[AnchorSeen]:
    """_BOTH's anchor rows as one AnchorSeen per anchor (every member's observation kept), at its earliest change."""
    earlier: dict[int, dict[int, list[Seen]]] = {}
    own: dict[int, dict[int, PriceRow]] = {}
    at: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    for store, product, cents, special, observed, a_cents, a_previous, a_special, a_seen, a_last in rows:
        earlier.setdefault(store, {}).setdefault(product, []).append(Seen(cents, special, observed))
        own.setdefault(store, {})[product] = PriceRow(a_cents, 0, a_special, a_seen, a_previous)
        at[store] = min(at.get(store, a_seen), a_seen)
        last[store] = a_last
    return [AnchorSeen(s, at[s], last[s], earlier[s], own[s]) for s in earlier]
