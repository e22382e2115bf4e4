"""Recording lateness (DESIGN.md §5): what members showed against their anchors' changes, in PostgreSQL.

The counting is storage.count_lateness over `pgstorage.PostgresStorage` (the
offline book runs the same over its own storage, book.py): rules/lateness.py's
`count` and `count_anchor`, no evidence from a group repriced en masse. This
module keeps the per-run counts (`store_lateness`) and each store's sums over
`Settings.lateness_days`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import psycopg

from pricegroups.grouping.pgstorage import PostgresStorage
from pricegroups.grouping.repository import rates_before
from pricegroups.grouping.rules.cadence import Cadence
from pricegroups.grouping.rules.lateness import MIN_LATE
from pricegroups.grouping.storage import count_lateness
from pricegroups.settings import Settings


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
    storage = PostgresStorage(conn, cadence, chain_codes=list(chains) if chains else None, run_id=run_id,
                              as_of=as_of, earlier=earlier)
    found = count_lateness(storage, rates_before(conn, as_of), settings)
    counts = {store: lateness for store, (lateness, _) in found.items()}
    times = {store: at for store, (_, at) in found.items()}
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

