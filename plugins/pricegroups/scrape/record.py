"""Write one store's scrape outcome to PostgreSQL, in one transaction.

ok: the items go to scraped_items (COPY), dropped items to rejected_items,
the store's freshness advances and its failure count resets. failed: only the
failure count grows, once per run (it counts runs in a row, not attempts).
suspect: nothing but the log. Every outcome gets its scrape_log row.
Re-recording a store in the same run replaces that run's items for the
store, so a retried task is idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

import psycopg

from pricegroups.scrape.fields import ITEM_FIELDS, Dropped, ScrapedItem

OK, FAILED, SUSPECT = "ok", "failed", "suspect"

_COPY_ITEMS = (
    f"COPY scraped_items (run_id, store_id, chain_id, scraped_at, {', '.join(ITEM_FIELDS)}) FROM STDIN"
)
_COPY_REJECTS = (
    "COPY rejected_items (run_id, stage, chain_id, store_id, sku, reason, detail) FROM STDIN"
)


@dataclass
class StoreOutcome:
    """What scraping one store gave: its status, its items (ok only) and the log figures."""

    store_id: int
    code: str
    status: str
    pages: int = 0
    items: list[ScrapedItem] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    http_requests: int = 0
    http_errors: int = 0
    retries: int = 0
    duration_s: float = 0.0
    from_snapshot: bool = False
    error: str | None = None
    baseline_items: int | None = None
    gone: bool = False  # unlisted by the locator, 404/410, or a "store closed" page: maybe closed

    @property
    def dropped_items(self) -> int:
        return sum(1 for d in self.dropped if not d.kept)

    def summary(self) -> dict:
        return {
            "store_id": self.store_id, "code": self.code, "status": self.status, "pages": self.pages,
            "items": len(self.items), "dropped": self.dropped_items, "http_requests": self.http_requests,
            "http_errors": self.http_errors, "retries": self.retries, "duration_s": round(self.duration_s, 3),
            "from_snapshot": self.from_snapshot, "error": self.error, "baseline_items": self.baseline_items,
            "gone": self.gone,
        }


def last_ok_item_counts(
    conn: psycopg.Connection, store_ids: Iterable[int], logical_date: datetime, run_id: str
) -> dict[int, int]:
    """Items of each store's latest ok scrape up to this logical date, from other runs (one query)."""
    rows = conn.execute(
        """SELECT DISTINCT ON (store_id) store_id, items
           FROM scrape_log
           WHERE store_id = ANY(%s) AND status = 'ok' AND run_id <> %s
             AND (logical_date IS NULL OR logical_date <= %s)
           ORDER BY store_id, logical_date DESC NULLS LAST, scrape_id DESC""",
        (list(store_ids), run_id, logical_date),
    ).fetchall()
    return dict(rows)


def record_outcome(
    conn: psycopg.Connection, run_id: str, logical_date: datetime, chain_id: int, outcome: StoreOutcome
) -> None:
    """Apply one store's outcome and log it; all or nothing (one transaction)."""
    with conn.transaction():
        if outcome.status == OK:
            _write_items(conn, run_id, logical_date, chain_id, outcome)
            conn.execute(
                """UPDATE stores SET last_scraped_at = greatest(last_scraped_at, %s), consecutive_failures = 0,
                          last_failed_run_id = NULL, first_scraped_at = least(first_scraped_at, %s)
                   WHERE store_id = %s""",
                (logical_date, logical_date, outcome.store_id),
            )
        elif outcome.status == FAILED:
            # once per run: a re-run, a retry or the run's stale-anchor re-scrape is not another run in a row
            conn.execute(
                """UPDATE stores SET consecutive_failures = consecutive_failures
                                                    + (last_failed_run_id IS DISTINCT FROM %s)::int,
                                  last_failed_run_id = %s
                   WHERE store_id = %s""",
                (run_id, run_id, outcome.store_id),
            )
        conn.execute(
            """INSERT INTO scrape_log (run_id, store_id, attempt, status, pages, items, dropped, http_errors,
                                       retries, from_snapshot, error, duration_s, logical_date)
               SELECT %(run)s, %(store)s, coalesce(max(attempt), 0) + 1, %(status)s, %(pages)s, %(items)s,
                      %(dropped)s, %(http_errors)s, %(retries)s, %(from_snapshot)s, %(error)s,
                      %(duration)s, %(logical_date)s
               FROM scrape_log WHERE run_id = %(run)s AND store_id = %(store)s""",
            {
                "run": run_id, "store": outcome.store_id, "status": outcome.status, "pages": outcome.pages,
                "items": len(outcome.items), "dropped": outcome.dropped_items,
                "http_errors": outcome.http_errors, "retries": outcome.retries,
                "from_snapshot": outcome.from_snapshot, "error": outcome.error,
                "duration": outcome.duration_s, "logical_date": logical_date,
            },
        )


def _write_items(
    conn: psycopg.Connection, run_id: str, logical_date: datetime, chain_id: int, outcome: StoreOutcome
) -> None:
    conn.execute("DELETE FROM scraped_items WHERE run_id = %s AND store_id = %s", (run_id, outcome.store_id))
    conn.execute(
        "DELETE FROM rejected_items WHERE run_id = %s AND store_id = %s AND stage = 'parse'",
        (run_id, outcome.store_id),
    )
    with conn.cursor() as cur:
        with cur.copy(_COPY_ITEMS) as copy:
            prefix = (run_id, outcome.store_id, chain_id, logical_date)
            for item in outcome.items:
                copy.write_row(prefix + item.as_row())
        if outcome.dropped:
            with cur.copy(_COPY_REJECTS) as copy:
                for drop in outcome.dropped:
                    detail = {"raw": drop.raw, "item_kept": drop.kept}
                    copy.write_row((run_id, "parse", chain_id, outcome.store_id, drop.sku, drop.reason,
                                    json.dumps(detail, default=str)))
