"""Retention of what runs write, and the size of what is kept (docs/operations.md "What is kept").

Prices are latest-only, so their storage follows groups; everything a run
records around them (scrape log, spot checks, lateness counts, verifications,
rejects, comparisons, the runs themselves) grows with every run unless it is
pruned. Each of those tables has a `*_keep_days` setting, measured back from
the run's logical date (never the wall clock: a demo or a backfill lives in
its own time), and `Settings.validate` refuses one below what a rule reads.

Per-run tables are pruned by their run: the runs older than the table's
setting are read from `runs` (logical_date is indexed), and the table's rows
of those runs are deleted by its own primary key, which starts with run_id.
So `runs` must outlive every per-run row (`run_keep_days` is the largest),
and a row whose run is unknown is left alone. Deletes go in chunks of
`retention_chunk_rows`, each its own transaction: a first prune of a long
backlog holds its locks for one chunk at a time, and the daily runs around it
go on. Tables that lost rows are then vacuumed, so the next runs' rows reuse
the space instead of growing the files.

Kept in full, on purpose: group_events (the audit trail; the invariant
checker rebuilds every store's group from it), catalogue_merges (the
checker follows merged products through it) and catalogue_flags (one row per
distinct problem, not per run).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import psycopg
from psycopg import sql

from pricegroups.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """One table's retention: which setting, and the rows it may prune (a query of their ctids)."""

    table: str
    setting: str
    prunable: str  # SELECT ctid ...; %(runs)s: the run ids older than the setting, %(before)s: the cutoff


def _of_runs(table: str) -> str:
    return f"SELECT ctid FROM {table} WHERE run_id = ANY(%(runs)s)"


# in this order: children before their parents, runs last (they date every other row)
RULES: tuple[Rule, ...] = (
    # staged items and verification baselines: post-process deletes them by their own dates in its
    # transaction (catalogue/postprocess.py); by run here, so no row of a pruned run is left behind
    Rule("scraped_items", "staging_keep_days", _of_runs("scraped_items")),
    Rule("served_overrides", "staging_keep_days", _of_runs("served_overrides")),
    Rule("spot_check_items", "spot_check_keep_days", _of_runs("spot_check_items")),
    Rule("spot_checks", "spot_check_keep_days", _of_runs("spot_checks")),
    Rule("store_lateness", "lateness_keep_days", _of_runs("store_lateness")),
    # each store's last measured verification stays: `groups show` and the Price groups page show it
    Rule("verifications", "verification_keep_days", """
        SELECT v.ctid FROM verifications v WHERE v.run_id = ANY(%(runs)s)
          AND (v.checked IS NULL OR EXISTS (
              SELECT 1 FROM verifications n WHERE n.store_id = v.store_id AND n.checked IS NOT NULL
                AND n.measured_at > v.measured_at))"""),
    Rule("verified_members", "verification_keep_days", _of_runs("verified_members")),
    Rule("rejected_items", "rejected_keep_days", _of_runs("rejected_items")),
    Rule("scrape_log", "scrape_log_keep_days", _of_runs("scrape_log")),
    Rule("comparisons", "comparison_keep_days", "SELECT ctid FROM comparisons WHERE compared_at < %(before)s"),
    # never this run, nor the newest earlier daily run with change rates (lateness reads its rates)
    Rule("runs", "run_keep_days", """
        SELECT ctid FROM runs WHERE logical_date < %(before)s AND run_id <> %(run)s
          AND run_id IS DISTINCT FROM (SELECT run_id FROM runs WHERE logical_date < %(as_of)s AND NOT backfill
                                         AND summary ? 'change_rates' ORDER BY logical_date DESC LIMIT 1)"""),
)

# what the database's tables are for, as the run summary and the Price groups page report their size
TABLE_GROUPS: dict[str, tuple[str, ...]] = {
    "prices": ("prices", "listing_absences"),
    "catalogue": ("products", "brands", "brand_aliases", "listings", "catalogue_flags", "chains", "stores",
                  "store_groups"),
    "run_records": ("runs", "scrape_log", "scraped_items", "rejected_items", "spot_checks", "spot_check_items",
                    "store_lateness", "verifications", "verified_members", "served_overrides", "comparisons",
                    "run_cadence"),
    "audit": ("group_events", "catalogue_merges"),
}


def prune_run_records(
    conn: psycopg.Connection, run_id: str, as_of: datetime, settings: Settings, vacuum: bool = True,
) -> dict[str, int]:
    """Delete what each table keeps no longer (RULES), in committed chunks; rows deleted per table.

    Call it outside a transaction (it commits), from a daily run: the cutoffs are
    `as_of` minus each table's setting, so a backfill of an old date would prune
    too little and is not meant to call it.
    """
    conn.commit()
    oldest_kept = {rule.setting: as_of - timedelta(days=getattr(settings, rule.setting)) for rule in RULES}
    old_runs = conn.execute("SELECT run_id, logical_date FROM runs WHERE logical_date < %s",
                            (max(oldest_kept.values()),)).fetchall()
    conn.commit()
    deleted: dict[str, int] = {}
    for rule in RULES:
        before = oldest_kept[rule.setting]
        params = {"runs": [r for r, at in old_runs if at < before], "before": before, "run": run_id,
                  "as_of": as_of, "limit": settings.retention_chunk_rows}
        deleted[rule.table] = _delete_in_chunks(conn, rule, params)
    if vacuum:
        vacuum_tables(conn, [table for table, n in deleted.items() if n])
    return deleted


def _delete_in_chunks(conn: psycopg.Connection, rule: Rule, params: Mapping[str, Any]) -> int:
    statement = sql.SQL("DELETE FROM {} WHERE ctid = ANY(ARRAY({} LIMIT %(limit)s))").format(
        sql.Identifier(rule.table), sql.SQL(rule.prunable))  # a fixed query of RULES, never input
    total = 0
    while True:
        started = time.perf_counter()
        with conn.transaction():
            n = conn.execute(statement, params).rowcount
        total += n
        if n:
            log.debug("retention: %d rows of %s in %.2f s", n, rule.table, time.perf_counter() - started)
        if n < params["limit"]:
            return total


def vacuum_tables(conn: psycopg.Connection, tables: list[str]) -> None:
    """VACUUM (not FULL: no exclusive lock) so that freed rows are reused rather than the files growing."""
    if not tables:
        return
    conn.commit()
    autocommit = conn.autocommit
    conn.autocommit = True  # VACUUM cannot run inside a transaction
    try:
        conn.execute(sql.SQL("VACUUM {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
    finally:
        conn.autocommit = autocommit


def table_sizes(conn: psycopg.Connection) -> dict[str, int]:
    """Bytes of each table of the schema, with its indexes and TOAST."""
    return dict(conn.execute(
        """SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname""").fetchall())


def group_sizes(tables: Mapping[str, int]) -> dict[str, int]:
    """Bytes by table group (TABLE_GROUPS; any other table under "other") and "total"."""
    grouped = {name: sum(tables.get(t, 0) for t in members) for name, members in TABLE_GROUPS.items()}
    known = {t for members in TABLE_GROUPS.values() for t in members}
    grouped["other"] = sum(size for table, size in tables.items() if table not in known)
    grouped["total"] = sum(tables.values())
    return grouped


def storage_counts(
    db: Mapping[str, int], snapshot_bytes: int | None, snapshot_files: int | None,
    previous: Mapping[str, Any] | None,
) -> dict[str, int]:
    """Flat counts for the run log: db_<group>_bytes, snapshot_bytes/files, and each one's change since
    `previous` (the last run's counts; none without one)."""
    counts = {f"db_{group}_bytes": size for group, size in db.items()}
    if snapshot_bytes is not None:
        counts["snapshot_bytes"] = snapshot_bytes
        counts["snapshot_files"] = snapshot_files or 0
    if previous:
        counts.update({f"{key}_change": value - previous[key] for key, value in list(counts.items())
                       if isinstance(previous.get(key), (int, float))})
    return counts


def previous_storage(conn: psycopg.Connection, run_id: str, as_of: datetime) -> dict[str, Any] | None:
    """The storage counts of the latest other run at or before `as_of` that recorded them."""
    row = conn.execute(
        """SELECT summary #> '{steps,storage,all}' FROM runs
           WHERE run_id <> %s AND logical_date <= %s AND summary #> '{steps,storage,all}' IS NOT NULL
           ORDER BY logical_date DESC, run_id DESC LIMIT 1""", (run_id, as_of)).fetchone()
    return row[0] if row else None
