"""Recording lateness (DESIGN.md §5): what members showed against their anchors' changes, in PostgreSQL.

The counting rules are rules/lateness.py's (`count`, `count_anchor`); the
offline book applies the same ones (book.py). This module reads the run's
observations set-based, applies them and keeps the per-run counts
(`store_lateness`) and each store's sums over `Settings.lateness_days`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable, Sequence

import psycopg

from pricegroups.grouping.rules.cadence import Cadence
from pricegroups.grouping.repository import rates_before
from pricegroups.grouping.rules.compare import changed_en_masse
from pricegroups.grouping.rules.lateness import MIN_LATE, Seen, count, count_anchor
from pricegroups.grouping.rules.serving import PriceRow
from pricegroups.settings import Settings


# -- reading and writing PostgreSQL -------------------------------------------

# Per group, the share of its anchor's rows that are regular-price changes first seen in its latest scrape,
# and the anchor's rows: rules/compare.changed_en_masse decides which groups' run is no evidence.
_REPRICED = """
SELECT g.group_id, g.chain_id,
       count(*) FILTER (WHERE ap.previous_price IS NOT NULL
                          AND ap.scraped_at >= a.last_scraped_at - %(fresh)s)::float8 / count(*) AS share,
       count(*)
FROM store_groups g JOIN stores a ON a.store_id = g.anchor_store_id
JOIN prices ap ON ap.store_id = a.store_id
WHERE %(chains)s::text[] IS NULL OR g.chain_id IN (SELECT chain_id FROM chains WHERE code = ANY(%(chains)s))
GROUP BY g.group_id, g.chain_id
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
# Every member's observation in the runs asked for, with its anchor's row for the product when that row
# is a regular-price change, not on a day of mass repricing. Both questions below read it.
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
    WHERE s.store_id <> a.store_id AND s.active AND NOT g.group_id = ANY(%(repriced)s)
      AND (%(chains)s::text[] IS NULL OR c.code = ANY(%(chains)s))
      AND ap.previous_price IS NOT NULL AND NOT ap.on_special
)
"""
_COLUMNS = "product_id, cents, on_special, observed_at, a_cents, a_previous, a_special, a_seen"

# One statement for both questions, over the observations of this run and of the day before:
# * members ("member"): what they showed this run, against their anchor's changes first seen within
#   the cadence's `fresh` of it;
# * anchors scraped in this run ("anchor"): what their members showed in the runs before (the cadence's
#   `runs_before`), against the anchor's changes first seen in this scrape.
_BOTH = _PAIRS + f"""
SELECT 'member' AS kind, member AS store, {_COLUMNS} FROM pairs
WHERE run_id = %(run)s AND a_seen BETWEEN observed_at - %(fresh)s AND observed_at + %(fresh)s
UNION ALL
SELECT 'anchor', anchor, {_COLUMNS} FROM pairs
WHERE run_id = ANY(%(earlier)s) AND a_last >= %(as_of)s - %(fresh)s AND a_seen >= a_last - %(fresh)s
  AND observed_at < a_seen - %(fresh)s AND observed_at >= a_seen - %(fresh)s - %(before)s
ORDER BY 1, 2, 3
"""

_RECOUNT = """
UPDATE stores s SET late_changes = coalesce(t.late, 0), timely_changes = coalesce(t.on_time, 0)
FROM (SELECT x.store_id, sum(l.late)::int AS late, sum(l.on_time)::int AS on_time
      FROM unnest(%(stores)s::int[]) AS x(store_id)
      LEFT JOIN store_lateness l ON l.store_id = x.store_id AND l.observed_at > %(since)s
      GROUP BY x.store_id) t
WHERE s.store_id = t.store_id
"""


def record_lateness(
    conn: psycopg.Connection, run_id: str, as_of: datetime, settings: Settings, chains: Sequence[str] | None = None,
) -> dict[str, int]:
    """Count, per member observed in `run_id` and per anchor scraped in it, its late and on-time changes
    (rules/lateness.py's `count`, `count_anchor`, at the settings' cadence); refresh the stores' sums.

    Idempotent: a re-run replaces the run's rows and recounts the same sums.
    Call it after the run's upserts and before its members are deduplicated
    (the merge step), while every member's observation is still in staging.
    """
    cadence = Cadence.of_hours(settings.run_interval_hours)
    # anchors: what their members showed in the runs before (this run excluded)
    start, end = cadence.runs_before(as_of)
    earlier = [r for (r,) in conn.execute(
        "SELECT run_id FROM runs WHERE logical_date < %s AND logical_date >= %s AND run_id <> %s",
        (end, start, run_id))]
    params = {"run": run_id, "earlier": earlier, "runs": [run_id, *earlier], "as_of": as_of,
              "chains": list(chains) if chains else None, "fresh": cadence.fresh, "before": cadence.before}
    shares = conn.execute(_REPRICED, params).fetchall()
    rates = rates_before(conn, as_of)
    params["repriced"] = [group for group, chain, share, rows in shares if changed_en_masse(
        share, rows, rates.get(chain, settings.daily_change_rate), cadence.interval, settings)]
    rows = conn.execute(_BOTH, params).fetchall()
    observed, anchors, times = _read(r[1:] for r in rows if r[0] == "member")
    counts = {store: count(observed[store], anchors[store], cadence.fresh) for store in observed}
    earlier_seen, own, anchor_times = _read((r[1:] for r in rows if r[0] == "anchor"), for_anchors=True)
    for anchor in earlier_seen:
        if anchor not in counts:  # a store is a member or an anchor of this run, never both
            counts[anchor] = count_anchor(earlier_seen[anchor], own[anchor], cadence.fresh)
            times[anchor] = anchor_times[anchor]
    with conn.transaction():
        conn.execute("DELETE FROM store_lateness WHERE run_id = %s AND NOT store_id = ANY(%s)", (run_id, list(counts)))
        stores = sorted(counts)
        conn.execute(
            """INSERT INTO store_lateness (run_id, store_id, observed_at, late, on_time)
               SELECT %s, * FROM unnest(%s::int[], %s::timestamptz[], %s::int[], %s::int[])
               ON CONFLICT (run_id, store_id) DO UPDATE
                   SET observed_at = EXCLUDED.observed_at, late = EXCLUDED.late, on_time = EXCLUDED.on_time""",
            (run_id, stores, [times[s] for s in stores], [counts[s].late for s in stores],
             [counts[s].on_time for s in stores]),
        )
        stale = [r[0] for r in conn.execute(
            "SELECT store_id FROM stores WHERE late_changes > 0 OR timely_changes > 0")]
        conn.execute(_RECOUNT, {"stores": sorted(set(counts) | set(stale)),
                                "since": as_of - timedelta(days=settings.lateness_days)})
    return {"late_observed": len(counts), "late_changes": sum(c.late for c in counts.values()),
            "timely_changes": sum(c.on_time for c in counts.values()),
            "late_stores": conn.execute(
                "SELECT count(*) FROM stores WHERE late_changes >= %s AND late_changes > timely_changes",
                (MIN_LATE,)).fetchone()[0]}


def _read(rows: Iterable[tuple], for_anchors: bool = False) -> tuple[dict, dict, dict]:
    """Rows of _BOTH (without their kind) as ({store: {product: Seen}}, {store: {product: anchor PriceRow}},
    {store: when}). For anchors, every member's observation is kept ({product: [Seen]}) and `when` is the
    anchor's scrape; for members, `when` is the member's observation."""
    observed: dict = {}
    anchors: dict[int, dict[int, PriceRow]] = {}
    times: dict[int, datetime] = {}
    for store, product, cents, special, at, a_cents, a_previous, a_special, a_seen in rows:
        seen = Seen(cents, special, at)
        if for_anchors:
            observed.setdefault(store, {}).setdefault(product, []).append(seen)
        else:
            observed.setdefault(store, {})[product] = seen
        anchors.setdefault(store, {})[product] = PriceRow(a_cents, 0, a_special, a_seen, a_previous)
        when = a_seen if for_anchors else at
        times[store] = min(times.get(store, when), when)
    return observed, anchors, times
