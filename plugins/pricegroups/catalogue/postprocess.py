"""PostProcessor: retention, orphans, statistics and the run summary (DESIGN.md §4 step 7).

effective_prices and bargains stay plain views (sql/0003): always consistent
with prices and groups, so there is nothing to refresh (docs/catalogue.md).

Retention. prices.scraped_at is when a value was first observed, not when the
listing was last seen, so "last seen" is kept as its complement: a
listing_absences row for each price whose product was missing from an ok
scrape of its store, with the time it went missing. A store is judged only from
its own newest ok scrape in this run: a store not scraped was not "unseen", and
a failed or suspect scrape, or a backfill older than the store's newest
observation, judges nothing (DESIGN.md §6, invariant 3). A price absent from
every ok scrape of its store for retention_days leaves current prices.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

import psycopg

from pricegroups.catalogue.resolve import CATALOGUE_LOCK
from pricegroups.runlog import record_step, step_totals
from pricegroups.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class PostProcessResult:
    stores_judged: int = 0
    absences_opened: int = 0
    absences_closed: int = 0
    prices_retired: int = 0
    orphans_removed: int = 0
    staging_rows_deleted: int = 0
    baselines_deleted: int = 0
    analyzed: list[str] = field(default_factory=list)

    def as_counts(self) -> dict[str, int]:
        counts = asdict(self)
        counts["tables_analyzed"] = len(counts.pop("analyzed"))
        return counts


_JUDGED = """
CREATE TEMP TABLE _judged ON COMMIT DROP AS
WITH last_attempt AS (
    SELECT DISTINCT ON (store_id) store_id, status
    FROM scrape_log WHERE run_id = %(run)s ORDER BY store_id, attempt DESC
),
scraped AS (
    SELECT store_id, max(scraped_at) AS seen_at FROM scraped_items WHERE run_id = %(run)s GROUP BY store_id
)
SELECT sc.store_id, sc.seen_at
FROM scraped sc
JOIN last_attempt la ON la.store_id = sc.store_id AND la.status = 'ok'
JOIN stores s ON s.store_id = sc.store_id
WHERE sc.seen_at >= coalesce(s.last_scraped_at, sc.seen_at)
"""

_OPEN_ABSENCES = """
INSERT INTO listing_absences (store_id, product_id, missing_since, run_id)
SELECT p.store_id, p.product_id, j.seen_at, %(run)s
FROM prices p JOIN _judged j ON j.store_id = p.store_id
WHERE p.scraped_at <= j.seen_at
  AND NOT EXISTS (SELECT 1 FROM scraped_items si
                  WHERE si.run_id = %(run)s AND si.store_id = p.store_id AND si.product_id = p.product_id)
ON CONFLICT (store_id, product_id) DO NOTHING
"""

_CLOSE_SEEN = """
DELETE FROM listing_absences a
USING scraped_items si, _judged j
WHERE si.run_id = %(run)s AND j.store_id = a.store_id
  AND si.store_id = a.store_id AND si.product_id = a.product_id
"""

_CLOSE_GONE = """
DELETE FROM listing_absences a
WHERE NOT EXISTS (SELECT 1 FROM prices p WHERE p.store_id = a.store_id AND p.product_id = a.product_id)
"""

# judged against the store's own scrape time, so days the store was not scraped never count alone
_RETIRE = """
WITH expired AS (
    DELETE FROM listing_absences a USING _judged j
    WHERE a.store_id = j.store_id AND a.missing_since <= j.seen_at - make_interval(days => %(days)s)
    RETURNING a.store_id, a.product_id
)
DELETE FROM prices p USING expired e WHERE p.store_id = e.store_id AND p.product_id = e.product_id
"""

_ORPHANS = """
DELETE FROM products p
WHERE NOT EXISTS (SELECT 1 FROM listings l WHERE l.product_id = p.product_id)
  AND NOT EXISTS (SELECT 1 FROM prices pr WHERE pr.product_id = p.product_id)
"""

_OLD_STAGING = "DELETE FROM scraped_items WHERE scraped_at < %(as_of)s - make_interval(days => %(keep)s)"

# verification baselines (served_overrides) are only read within their own run
_OLD_BASELINES = """
DELETE FROM served_overrides o USING verifications v
WHERE v.run_id = o.run_id AND v.store_id = o.store_id AND v.planned_at < %(as_of)s - make_interval(days => %(keep)s)
"""

_OVERVIEW = """
SELECT jsonb_build_object(
    'staged', (SELECT count(*) FROM scraped_items WHERE run_id = %(run)s),
    'resolved', (SELECT count(*) FROM scraped_items WHERE run_id = %(run)s AND product_id IS NOT NULL),
    'rejected', (SELECT coalesce(jsonb_object_agg(stage, n), '{}'::jsonb)
                 FROM (SELECT stage, count(*) AS n FROM rejected_items WHERE run_id = %(run)s GROUP BY stage) r),
    'new_flags', (SELECT coalesce(jsonb_object_agg(kind, n), '{}'::jsonb)
                  FROM (SELECT kind, count(*) AS n FROM catalogue_flags WHERE first_run_id = %(run)s
                        GROUP BY kind) f),
    'merges', (SELECT coalesce(jsonb_object_agg(entity, n), '{}'::jsonb)
               FROM (SELECT entity, count(*) AS n FROM catalogue_merges WHERE run_id = %(run)s
                     GROUP BY entity) m),
    'products', (SELECT count(*) FROM products),
    'listings', (SELECT count(*) FROM listings),
    'prices', (SELECT count(*) FROM prices)
)
"""


class PostProcessor:
    """Closes a run: retention, orphans, old staging rows, ANALYZE, summary."""

    def __init__(self, conn: psycopg.Connection, settings: Settings | None = None):
        self.conn = conn
        self.settings = settings or Settings()

    def post_process(self, run_id: str, as_of: datetime) -> PostProcessResult:
        result = PostProcessResult()
        params = {"run": run_id, "as_of": as_of, "days": self.settings.retention_days,
                  "keep": self.settings.staging_keep_days}
        with self.conn.transaction(), self.conn.cursor() as cur:
            # orphan removal must not race a resolve that is about to list an orphan again
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", CATALOGUE_LOCK)
            cur.execute("DROP TABLE IF EXISTS _judged")
            cur.execute(_JUDGED, params)
            cur.execute("SELECT count(*) FROM _judged")
            result.stores_judged = cur.fetchone()[0]
            cur.execute(_CLOSE_SEEN, params)
            result.absences_closed = cur.rowcount
            cur.execute(_CLOSE_GONE)
            result.absences_closed += cur.rowcount
            cur.execute(_OPEN_ABSENCES, params)
            result.absences_opened = cur.rowcount
            cur.execute(_RETIRE, params)
            result.prices_retired = cur.rowcount
            cur.execute(_ORPHANS)
            result.orphans_removed = cur.rowcount
            cur.execute(_OLD_STAGING, params)
            result.staging_rows_deleted = cur.rowcount
            cur.execute(_OLD_BASELINES, params)
            result.baselines_deleted = cur.rowcount
            cur.execute("SELECT summary FROM runs WHERE run_id = %s", (run_id,))
            row = cur.fetchone()
            result.analyzed = self._changed_tables(step_totals(row[0] if row else {}), result)
            for table in result.analyzed:
                cur.execute(f"ANALYZE {table}")  # names from a fixed list, never from input
            cur.execute(
                "INSERT INTO runs (run_id, logical_date) VALUES (%s, %s) ON CONFLICT (run_id) DO NOTHING",
                (run_id, as_of),
            )
            cur.execute(_OVERVIEW, params)
            overview = cur.fetchone()[0]
            if record_step(cur, run_id, "post_process", {**result.as_counts(), "analyzed": result.analyzed},
                           context=("stores_judged", "tables_analyzed", "analyzed")):
                record_step(cur, run_id, "catalogue", overview, context=())
        log.info("post-process %s: %s; %s", run_id, result.as_counts(), json.dumps(overview))
        return result

    @staticmethod
    def _changed_tables(totals: dict, result: PostProcessResult) -> list[str]:
        """The tables this run changed, from the steps' own counts (deterministic, unlike pg_stat)."""
        resolve = totals.get("resolve", {})
        reconcile = totals.get("reconcile", {})
        enrich = totals.get("enrich", {})
        staged = resolve.get("staged", 0) > 0
        changed = {
            "scraped_items": staged or result.staging_rows_deleted > 0,
            "prices": staged or result.prices_retired > 0 or reconcile.get("product_merged", 0) > 0,
            "listings": staged,
            "products": (resolve.get("created_products", 0) > 0 or reconcile.get("product_merged", 0) > 0
                         or result.orphans_removed > 0
                         or any(v for k, v in enrich.items() if k.endswith("_filled"))),
            "brands": resolve.get("created_brands", 0) > 0 or reconcile.get("brand_merged", 0) > 0,
            "listing_absences": result.absences_opened + result.absences_closed + result.prices_retired > 0,
        }
        return [table for table, did in changed.items() if did]


def post_process(conn: psycopg.Connection, run_id: str, as_of: datetime,
                 settings: Settings | None = None) -> dict[str, int]:
    """DAG service: retention, orphan products, old staging rows, ANALYZE, run summary; counts out.

    Writes listing_absences, prices (retired rows deleted), products (orphans deleted),
    scraped_items and served_overrides (rows older than staging_keep_days before as_of deleted), runs (row
    ensured; summary steps.post_process and steps.catalogue). Run it after the price
    upsert. Idempotent: a second call changes nothing further.
    """
    return PostProcessor(conn, settings).post_process(run_id, as_of).as_counts()
