"""One chain's outage: its scrape batch records every store's outcome, then fails; other chains go on."""

from __future__ import annotations

import pytest

from pricegroups import pipeline
from pricegroups.demo.model import Event
from pricegroups.errors import ChainDown
from tests.integration.scrape.conftest import day_date


def _context(conn, site, settings, run_id: str) -> pipeline.RunContext:
    context = pipeline.start(conn, run_id, day_date(site, 0), {}, "scheduled")
    return pipeline.RunContext(**{**context.__dict__, "settings": {**context.settings, **{
        "snapshot_root": settings.snapshot_root, "requests_per_second": 0, "retry_backoff_s": 0.001,
        "http_retries": 1, "http_timeout_s": 5}}})


def test_a_chain_whose_site_is_down_fails_its_batch_after_recording_every_store(conn, demo_site, demo_chains,
                                                                                 scrape_settings):
    context = _context(conn, demo_site, scrape_settings, "r_down")
    batches = pipeline.plan(conn, context)
    assert {b["chain"] for b in batches if b.get("sync")} == {"freshmart", "valueway", "greengrocer"}
    demo_site.add_event(Event("server_error", "valueway", count=None))  # the whole site, locator included
    down = next(b for b in batches if b["chain"] == "valueway")
    with pytest.raises(ChainDown, match="valueway: .* stores failed"):
        pipeline.scrape(conn, context, down)
    logged = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM scrape_log WHERE run_id = 'r_down'"
    ).fetchone()
    assert logged == (len(down["store_ids"]), len(down["store_ids"])), "every store's outcome is recorded"
    fine = next(b for b in batches if b["chain"] == "greengrocer")
    assert pipeline.scrape(conn, context, fine)["ok"] == len(fine["store_ids"])
    summary = pipeline.summary(conn, context, batches)
    assert summary["chains_down"] == ["valueway"]
    # freshmart's task never ran (as if it crashed): named, unlike valueway, which recorded itself down
    assert summary["batches_not_scraped"] == [pipeline.batch_key(b) for b in batches if b["chain"] == "freshmart"]


def test_a_new_chain_is_found_by_its_scrape_task_and_an_unreachable_locator_fails_it(conn, demo_site,
                                                                                     scrape_settings):
    from pricegroups.demo.chains import demo_profiles
    from pricegroups.scrape.service import register_chain

    for code, name, base_url, profile in demo_profiles(demo_site.base_url):
        register_chain(conn, code, name, base_url, profile)
    conn.commit()
    context = _context(conn, demo_site, scrape_settings, "r_new")
    batches = pipeline.plan(conn, context)
    assert all(b["store_ids"] == [] and b["sync"] for b in batches), "no stores known yet: one sync per chain"
    synced = next(b for b in batches if b["chain"] == "greengrocer")
    first = pipeline.scrape(conn, context, synced)
    assert first["new_stores"] == first["stores"] == first["ok"] > 0
    # recorded under the batch as planned (its sync), not under a store the sync found
    assert pipeline.summary(conn, context, [synced])["batches_not_scraped"] == []
    demo_site.add_event(Event("server_error", "freshmart", count=None))
    with pytest.raises(ChainDown, match="store locator unavailable"):
        pipeline.scrape(conn, context, next(b for b in batches if b["chain"] == "freshmart"))
