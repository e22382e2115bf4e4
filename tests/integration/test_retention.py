"""Retention on the story's states: what each setting keeps stays, what is older goes, the invariants hold."""

from __future__ import annotations

from datetime import timedelta
from typing import Iterator

import psycopg
import pytest

from pricegroups import pipeline
from pricegroups.errors import ConfigError
from pricegroups.invariants import check_invariants
from pricegroups.pipeline import RunContext
from pricegroups.retention import RULES, prune_run_records
from pricegroups.settings import Settings
from tests.pipeline_harness import run_day
from tests.story import FAST_RETRIES, Story, logical_date

PER_RUN = ("scraped_items", "spot_check_items", "spot_checks", "store_lateness", "rejected_items", "scrape_log",
           "verified_members")


def counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = {rule.table for rule in RULES} | {"prices", "group_events", "catalogue_merges", "listings"}
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in sorted(tables)}


@pytest.fixture
def state(story: Story) -> Iterator[tuple[psycopg.Connection, dict]]:
    """The state after the spot-move chapter (day 6, every kind of per-run row written), a copy of our own."""
    with story.clone("spot_move") as (url, facts), psycopg.connect(url) as conn:
        yield conn, facts


def test_a_prune_long_after_the_last_run_keeps_the_invariants_the_audit_and_each_last_measurement(state, story):
    conn, facts = state
    before = counts(conn)
    measured = dict(conn.execute(
        """SELECT DISTINCT ON (store_id) store_id, run_id FROM verifications WHERE checked IS NOT NULL
           ORDER BY store_id, measured_at DESC""").fetchall())
    assert all(before[t] > 0 for t in PER_RUN if t != "rejected_items"), before
    as_of = logical_date(story.scenario, 6) + timedelta(days=200)

    deleted = prune_run_records(conn, "a later run", as_of, Settings(retention_chunk_rows=7))  # many chunks

    after = counts(conn)
    assert {t: after[t] for t in PER_RUN + ("comparisons",)} == dict.fromkeys(PER_RUN + ("comparisons",), 0)
    assert deleted["scrape_log"] == before["scrape_log"] > 7
    # prices, listings and the audit trail are not run records; each store's last measurement stays
    for kept in ("prices", "listings", "group_events", "catalogue_merges"):
        assert after[kept] == before[kept], kept
    assert dict(conn.execute("SELECT store_id, run_id FROM verifications").fetchall()) == measured
    # the one run left is the newest daily one: the next run reads its change rates
    assert [r for (r,) in conn.execute("SELECT run_id FROM runs")] == [facts["run_id"]]
    conn.commit()
    assert [r.name for r in check_invariants(conn) if not r.ok] == []
    conn.rollback()
    assert sum(prune_run_records(conn, "a later run", as_of, Settings()).values()) == 0  # nothing more to do


def test_a_prune_keeps_every_row_within_its_setting(state, story):
    conn, _ = state
    day6 = logical_date(story.scenario, 6)
    runs = dict(conn.execute("SELECT run_id, logical_date FROM runs").fetchall())
    before = counts(conn)
    settings = Settings(spot_check_keep_days=2)

    deleted = prune_run_records(conn, "a later run", day6 + timedelta(days=1), settings)

    cutoff = day6 + timedelta(days=1) - timedelta(days=2)
    left = {runs[r] for (r,) in conn.execute("SELECT DISTINCT run_id FROM spot_checks")}
    assert left and min(left) >= cutoff
    assert deleted["spot_checks"] == before["spot_checks"] - counts(conn)["spot_checks"] > 0
    # everything else is well within its 30 or 90 days
    spot = ("spot_checks", "spot_check_items")
    assert {t: n for t, n in deleted.items() if t not in spot} == dict.fromkeys(
        [r.table for r in RULES if r.table not in spot], 0)


def test_a_day_records_the_storage_it_leaves_and_its_change(state, story, tmp_path, monkeypatch):
    conn, facts = state
    url = conn.info.dsn
    for name, value in {**FAST_RETRIES, "PRICEGROUPS_SNAPSHOT_ROOT": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    story.site.clear_events()
    story.site.set_day(7)
    conn.commit()

    run = run_day(url, "scheduled__retention_day7", logical_date(story.scenario, 7), {}, run_type="scheduled")

    storage, previous = run.summary["storage"], conn.execute(
        "SELECT summary #> '{steps,storage,all}' FROM runs WHERE run_id = %s", (facts["run_id"],)).fetchone()[0]
    assert storage["db_total_bytes"] == sum(storage[f"db_{g}_bytes"] for g in
                                            ("prices", "catalogue", "run_records", "audit", "other"))
    assert storage["db_total_bytes_change"] == storage["db_total_bytes"] - previous["db_total_bytes"]
    assert storage["snapshot_files"] > 0 and storage["snapshot_bytes"] > 0
    assert set(run.summary["retention"]) >= {"scrape_log", "runs", "snapshot_dates"}
    from pricegroups.ui import queries

    assert queries.newest_run(conn)["storage"] == conn.execute(
        "SELECT summary #> '{steps,storage,all}' FROM runs WHERE run_id = %s", (run.run_id,)).fetchone()[0]


def test_a_backfill_beyond_snapshot_retention_says_it_fetched_live_pages(story, monkeypatch):
    with story.clone("backfill") as (url, facts), psycopg.connect(url) as conn:
        context = RunContext(run_id=facts["run_id"], as_of=logical_date(story.scenario, 2).isoformat(), backfill=True)
        within = pipeline.backfill_snapshots(conn, context)
        monkeypatch.setenv("PRICEGROUPS_SNAPSHOT_KEEP_DAYS", "1")  # day 2 is two days before day 4's run
        beyond = pipeline.backfill_snapshots(conn, context)
    assert within["beyond_retention"] is False and "note" not in within
    assert beyond["beyond_retention"] is True and "fetched live" in beyond["note"]
    assert beyond["stores_replayed"] + beyond["stores_fetched_live"] > 0


def test_a_run_is_refused_at_start_when_retention_is_below_what_a_rule_reads(conn, monkeypatch):
    monkeypatch.setenv("PRICEGROUPS_LATENESS_KEEP_DAYS", "7")
    with pytest.raises(ConfigError, match="lateness_keep_days=7 .*lateness_days"):
        pipeline.start(conn, "manual__refused", logical_date_of_now(), {})


def logical_date_of_now():
    from datetime import datetime, timezone

    return datetime(2026, 3, 10, tzinfo=timezone.utc)
