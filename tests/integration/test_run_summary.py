"""The run summary says which planned scrape batches did not scrape, so the DAG run can end failed."""

from __future__ import annotations

from datetime import datetime, timezone

from pricegroups import pipeline
from pricegroups.pipeline import record_step, run_failure

D1 = datetime(2026, 3, 3, 6, tzinfo=timezone.utc)
PLANNED = [
    {"chain": "freshmart", "store_ids": [1, 2], "sync": True},
    {"chain": "freshmart", "store_ids": [7, 9], "sync": False},
    {"chain": "valueway", "store_ids": [4], "sync": True},
    {"chain": "greengrocer", "store_ids": [], "sync": True},
]


def test_the_summary_names_batches_that_failed_or_recorded_nothing(conn):
    run = pipeline.start(conn, "scheduled__1", D1, {}, "scheduled")
    record_step(conn, run, "scrape", "freshmart:1", {"chain": "freshmart", "ok": 2, "down": False})
    record_step(conn, run, "scrape", "freshmart:7", {"chain": "freshmart", "ok": 2, "down": False})
    record_step(conn, run, "scrape", "valueway:4", {"chain": "valueway", "ok": 0, "down": True})
    # freshmart:7 recorded its outcome, then its task failed; greengrocer's task failed before recording
    summary = pipeline.summary(conn, run, PLANNED, failed=[1, 2])
    assert summary["chains_down"] == ["valueway"]
    assert summary["batches_not_scraped"] == ["freshmart:7", "greengrocer:sync"]
    stored = conn.execute("SELECT summary #> '{totals,batches_not_scraped}', finished_at IS NOT NULL FROM runs"
                          ).fetchone()
    assert stored == (["freshmart:7", "greengrocer:sync"], True)
    assert "freshmart:7, greengrocer:sync" in run_failure(summary)


def test_a_run_whose_planned_batches_all_recorded_their_scrape_does_not_fail(conn):
    run = pipeline.start(conn, "scheduled__1", D1, {}, "scheduled")
    for batch, key in zip(PLANNED, ("freshmart:1", "freshmart:7", "valueway:4", "greengrocer:sync")):
        record_step(conn, run, "scrape", key, {"chain": batch["chain"], "ok": 1, "down": False})
    summary = pipeline.summary(conn, run, PLANNED, failed=[])
    assert summary["batches_not_scraped"] == [] and run_failure(summary) is None
    dry = pipeline.start(conn, "dry__1", D1, {"dry_run": True}, "scheduled")
    assert pipeline.summary(conn, dry, PLANNED)["batches_not_scraped"] == [], "a dry run scrapes nothing by design"
