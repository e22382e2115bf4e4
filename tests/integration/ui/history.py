"""A small recorded history for the operator's views: two groups, two daily runs and a backfill.

Groups come from the real merge on real prices; the run bookkeeping (runs,
scrape_log, verifications) is written as the pipeline writes it, with chosen
outcomes so the tests know every count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from pricegroups.grouping.service import merge_groups
from pricegroups.retention import prune_run_records
from pricegroups.settings import Settings
from tests.integration.grouping.world import SETTINGS, World, day, groups_of


@dataclass
class History:
    world: World
    codes: dict[int, str]  # store id -> code
    big_anchor: str  # the anchor of the 6-store group
    small_anchor: str
    drawn: str  # a member verified at random in run-1: 40 prices checked, 2 wrong
    risky: str  # a member verified by risk in run-1, at its second attempt: 40 checked, 0 wrong
    failed: str  # a member drawn at random in run-1 whose scrape failed: nothing measured


def build(conn: psycopg.Connection) -> History:
    w = World.build(conn, ["A"] * 6 + ["B"] * 4, products=40)
    w.derive_zone("B", "A", 0.2)
    w.scrape(w.stores, day(0), "run-0")
    merge_groups(conn, day(0), "run-0", SETTINGS)
    conn.commit()
    codes = dict(conn.execute("SELECT store_id, code FROM stores").fetchall())
    anchors = sorted(groups_of(conn).items(), key=lambda kv: -len(kv[1]))
    (big, big_stores), (small, _) = anchors
    members = sorted(big_stores - {big})
    drawn, risky, failed = members[:3]
    record = conn.execute
    for run_id, at, run_type, backfill, summary in (
        ("run-0", day(0), "scheduled", False, {}),
        ("run-1", day(1), "scheduled", False,
         {"totals": {"upsert": {"created": 0, "updated": 12, "unchanged": 148, "ignored_older": 0}}}),
        ("bf-1", day(1), "backfill", True, {}),
    ):
        record("INSERT INTO runs (run_id, logical_date, run_type, backfill, summary) VALUES (%s, %s, %s, %s, %s)",
               (run_id, at, run_type, backfill, json.dumps(summary)))
    log = """INSERT INTO scrape_log (run_id, store_id, attempt, status, pages, items, error, logical_date)
             VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""
    for s in w.stores:
        record(log, ("run-0", s, 1, "ok", 2, 40, None, day(0)))
    for s, attempt, status in ((big, 1, "ok"), (small, 1, "ok"), (drawn, 1, "ok"), (risky, 1, "failed"),
                               (risky, 2, "ok"), (failed, 1, "failed")):
        record(log, ("run-1", s, attempt, status, 2 if status == "ok" else 0, 40 if status == "ok" else 0,
                     None if status == "ok" else "HTTP 503", day(1)))
    record(log, ("bf-1", small, 1, "ok", 2, 40, None, day(1)))
    group = dict(conn.execute("SELECT store_id, group_id FROM stores").fetchall())
    verification = """INSERT INTO verifications (run_id, store_id, chain_id, reason, planned_at, baseline_taken,
                                                 group_id, anchor_store_id, checked, wrong, measured_at)
                       VALUES (%s, %s, %s, %s, %s, true, %s, %s, %s, %s, %s)"""
    for s, reason, checked, wrong in ((drawn, "random", 40, 2), (risky, "risk", 40, 0), (failed, "random", None, None)):
        record(verification, ("run-1", s, w.chain_id, reason, day(1), group[s], big, checked, wrong,
                              day(1) if checked is not None else None))
    conn.commit()
    return History(w, codes, codes[big], codes[small], codes[drawn], codes[risky], codes[failed])


def prune_run_0(conn: psycopg.Connection, settings: Settings = SETTINGS) -> None:
    """Retention as a daily run just over `run_keep_days` after day 0 applies it: run-0's `runs` row goes
    (run-1 and the backfill, a day later, stay) and its 8 merge events stay, as group_events always do."""
    as_of = day(0) + timedelta(days=settings.run_keep_days, hours=1)
    prune_run_records(conn, "run-later", as_of, settings, vacuum=False)
    assert conn.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall() == [("bf-1",), ("run-1",)]
