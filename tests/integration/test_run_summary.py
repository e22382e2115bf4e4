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


def test_the_summary_has_every_step_and_every_mapped_batch(conn, monkeypatch):
    from decimal import Decimal

    from pricegroups.scrape.fields import ScrapedItem
    from pricegroups.scrape.record import StoreOutcome, record_outcome
    from tests.factories import T0, make_chain_with_stores

    monkeypatch.setenv("PRICEGROUPS_MAP_MIN_PAIRS", "1")  # a batch per candidate pair, a batch per group
    monkeypatch.setenv("PRICEGROUPS_MAP_MIN_GROUPS", "1")
    chain, stores = make_chain_with_stores(conn, "acme", 5)
    codes = dict(conn.execute("SELECT store_id, code FROM stores").fetchall())
    conn.commit()
    run = pipeline.start(conn, "scheduled__1", T0, {}, "scheduled")
    items = [ScrapedItem(f"acme-{p}", f"Item {p} 500g", Decimal(100 + p) / 100) for p in range(40)]
    for store in stores:  # one price list: every pair of these new stores is a candidate, store 1 in several
        record_outcome(conn, run.run_id, T0, chain, StoreOutcome(store, codes[store], "ok", pages=1, items=items))
    for step in (pipeline.resolve, pipeline.reconcile, pipeline.enrich, pipeline.upsert, pipeline.post_process):
        step(conn, run)
    health_batches = pipeline.health_check_batches(conn, run)
    for groups in health_batches:
        pipeline.health_check(conn, run, groups)
    pair_batches = pipeline.candidate_pairs(conn, run)
    for pairs in pair_batches:
        pipeline.compare_pairs(conn, run, pairs)
    pipeline.merge_groups(conn, run)
    totals = pipeline.summary(conn, run)

    steps = conn.execute("SELECT summary->'steps' FROM runs WHERE run_id = %s", (run.run_id,)).fetchone()[0]
    assert set(steps) == {"resolve", "reconcile", "enrich", "upsert", "post_process", "catalogue", "retention",
                          "storage", "health", "compare", "merge"}
    assert len(pair_batches) == 10 and len(steps["compare"]) == 10, "no compare batch writes over another"
    assert totals["compare"]["pairs"] == 10
    assert len(steps["health"]) == len(health_batches) == 5
    assert totals["resolve"]["staged"] == 5 * 40 and totals["upsert"]["created"] == 5 * 40
    assert set(totals) >= set(steps)
