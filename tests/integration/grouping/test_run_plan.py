"""A re-run of a run plans what its first attempt planned (DESIGN §6.4), whatever that attempt changed."""

from __future__ import annotations

from pricegroups import pipeline
from pricegroups.grouping.service import merge_groups
from pricegroups.settings import Settings
from tests.integration.grouping.world import World, day, groups_of

SETTINGS = Settings()


def _grouped(conn) -> World:
    w = World.build(conn, ["A"] * 12 + ["B"] * 8)
    w.derive_zone("B", "A", 0.2)
    w.scrape(w.stores, day(0))
    merge_groups(conn, day(0), "run-0", SETTINGS)
    conn.commit()
    return w


def _start(conn, run_id: str, params: dict | None = None, run_type: str = "scheduled") -> pipeline.RunContext:
    conn.commit()  # start migrates: no transaction open
    return pipeline.start(conn, run_id, day(1), params or {}, run_type)


def _planned(batches: list[dict]) -> list[int]:
    return sorted(s for b in batches for s in b["store_ids"])


def _reasons(conn, run_id: str) -> dict[int, str]:
    return dict(conn.execute("SELECT store_id, reason FROM verifications WHERE run_id = %s", (run_id,)).fetchall())


def test_a_rerun_of_a_run_plans_the_same_stores_for_the_same_reasons(conn):
    w = _grouped(conn)
    run = _start(conn, "scheduled__d1")
    first = _planned(pipeline.plan(conn, run))
    reasons = _reasons(conn, run.run_id)
    members = sorted(set(w.stores) - set(groups_of(conn)))
    left_out = [m for m in members if m not in first]
    # what an earlier attempt of the run may leave behind: members placed by a merge are due
    conn.execute("UPDATE stores SET needs_verification = true WHERE store_id = ANY(%s)", (left_out[:3],))

    rerun = _start(conn, "scheduled__d1")
    assert _planned(pipeline.plan(conn, rerun)) == first
    assert _reasons(conn, run.run_id) == reasons
    # another run plans from the state as it is: the due members come on top
    other = _start(conn, "manual__d1", run_type="manual")
    assert set(left_out[:3]) <= set(_planned(pipeline.plan(conn, other)))


def test_a_run_with_other_restrictions_or_a_dry_run_plans_afresh(conn):
    w = _grouped(conn)
    run = _start(conn, "scheduled__d1")
    everything = _planned(pipeline.plan(conn, run))
    member = next(m for m in sorted(set(w.stores) - set(groups_of(conn))) if m not in everything)
    code = conn.execute("SELECT code FROM stores WHERE store_id = %s", (member,)).fetchone()[0]
    named = _start(conn, "scheduled__d1", {"stores": [code]})
    assert member in _planned(pipeline.plan(conn, named)) and len(_planned(pipeline.plan(conn, named))) == 2
    dry = _start(conn, "dry__d1", {"dry_run": True})
    pipeline.plan(conn, dry)
    assert conn.execute("SELECT count(*) FROM runs WHERE run_id = 'dry__d1'").fetchone()[0] == 0


def test_a_rerun_re_scrapes_what_the_first_attempt_re_scraped(conn):
    w = _grouped(conn)
    run = _start(conn, "scheduled__rescrape")
    pipeline.plan(conn, run)
    first = _planned(pipeline.find_stale_anchors(conn, run))
    # the state changes under the run (as its first attempt's re-scrape and health checks would change it):
    # every anchor goes stale, so a recomputed re-scrape would scrape all of them
    conn.execute("UPDATE stores SET last_scraped_at = last_scraped_at - interval '30 days'")
    conn.commit()
    again = _planned(pipeline.find_stale_anchors(conn, run))
    assert again == first
    other = _start(conn, "scheduled__other")
    pipeline.plan(conn, other)
    assert _planned(pipeline.find_stale_anchors(conn, other)) != first, "another run chooses afresh"
