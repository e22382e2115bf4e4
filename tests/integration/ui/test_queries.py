"""The operator's views read the groups, runs and measurements as recorded (real PostgreSQL)."""

from __future__ import annotations

import pytest

from pricegroups.ui import queries
from tests.integration.grouping.world import day
from tests.integration.ui.history import History, build, prune_run_0


@pytest.fixture
def history(conn) -> History:
    return build(conn)


def test_chains_count_active_stores_and_groups(conn, history):
    assert queries.chains(conn) == [
        {"code": "acme", "name": "Acme", "stores": 10, "groups": 2, "groups_with_members": 2}]


def test_groups_list_anchor_and_members_larger_group_first(conn, history):
    groups = queries.groups(conn, "acme")
    assert [g["size"] for g in groups] == [6, 4]
    assert [g["anchor"]["store"] for g in groups] == [history.big_anchor, history.small_anchor]
    assert groups[0]["anchor"]["scraped_at"] == day(0)
    members = {m["store"]: m for m in groups[0]["members"]}
    assert len(members) == 5 and history.big_anchor not in members
    merged = members[history.drawn]
    assert merged["verified_at"] == day(0)  # verified by the merge
    assert merged["deviations"] == 0  # identical to its anchor: every row deduplicated
    assert merged["last_check"] == {"checked": 40, "wrong": 2, "measured_at": day(1)}
    assert members[history.failed]["last_check"] is None


def test_an_unknown_chain_is_not_found_and_never_reaches_the_sql_as_text(conn, history):
    for code in ("nope", "acme' OR '1'='1"):
        with pytest.raises(queries.NotFound):
            queries.groups(conn, code)
    conn.rollback()
    assert queries.chains(conn)[0]["stores"] == 10


def test_runs_give_stores_scraped_against_all_stores_per_daily_run(conn, history):
    runs = queries.runs(conn, "acme")
    assert [r["run_id"] for r in runs] == ["run-0", "run-1"]  # oldest first; the backfill is left out
    first, second = runs
    assert (first["scraped"], first["failed"], first["stores"], first["saved"]) == (10, 0, 10, 0)
    # the second attempt of the risky member counts as scraped; the failed one as failed
    assert (second["scraped"], second["failed"], second["stores"], second["saved"]) == (4, 1, 10, 6)
    assert first["error"] is None
    assert second["error"]["checked"] == 40 and second["error"]["wrong"] == 2  # random draws only
    assert second["error"]["share"] == pytest.approx(0.05)
    assert second["error_window"] == second["error"]
    assert queries.runs(conn, "acme", limit=1)[0]["run_id"] == "run-1"


def test_served_error_is_the_chains_estimate_from_random_verifications(conn, history):
    error = queries.served_error(conn, "acme")
    assert (error["checked"], error["wrong"], error["samples"]) == (40, 2, 1)
    assert error["low"] == 0.0 and error["high"] == 1.0  # one store: no interval claimed
    assert error["until"] == day(1) and error["days"] == 14


def test_events_list_decisions_with_store_codes_and_evidence_newest_first(conn, history):
    merged = queries.events(conn, "acme")
    assert {e["kind"] for e in merged} == {"merged"}
    assert len(merged) == 8  # 5 + 3 members merged into the two anchors
    ids = [e["event_id"] for e in merged]
    assert ids == sorted(ids, reverse=True)
    into_big = [e for e in merged if e["other_store"] == history.big_anchor]
    assert len(into_big) == 5
    assert into_big[0]["evidence"]["outcome"] == "match" and into_big[0]["evidence"]["overlap"] == 40
    assert queries.events(conn, "acme", limit=3) == merged[:3]
    assert queries.events(conn, run_id="run-1") == []
    assert len(queries.events(conn, run_id="run-0", kinds=("created",))) == 0  # stores were created before


def test_run_view_has_what_the_run_scraped_decided_and_measured(conn, history):
    view = queries.run(conn, "run-1")
    assert view["run"]["logical_date"] == day(1) and view["run"]["run_type"] == "scheduled"
    (chain,) = view["scraped"]["chains"]
    assert (chain["chain"], chain["stores"], chain["scraped"], chain["ok"], chain["failed"]) == ("acme", 10, 5, 4, 1)
    assert chain["roles"]["anchor"] == 2 and chain["roles"]["random"] == 2 and chain["roles"]["risk"] == 1
    stores = {s["store"]: s for s in view["scraped"]["stores"]}
    assert stores[history.risky]["attempt"] == 2 and stores[history.risky]["status"] == "ok"
    assert stores[history.failed]["error"] == "HTTP 503"
    assert view["upsert"] == {"upsert": {"created": 0, "updated": 12, "unchanged": 148, "ignored_older": 0}}
    measured = view["measured"]
    assert (measured["checked"], measured["wrong"]) == (80, 2)
    assert measured["random"]["checked"] == 40 and measured["random_by_chain"]["acme"]["wrong"] == 2
    assert [v["store"] for v in measured["verifications"]] == sorted([history.drawn, history.risky, history.failed])
    decisions = queries.run(conn, "run-0")["decisions"]
    assert decisions["counts"] == {"merged": 8}
    assert len(decisions["events"]) == 8 and all(e["run_id"] == "run-0" for e in decisions["events"])


def test_an_unknown_run_is_not_found(conn, history):
    with pytest.raises(queries.NotFound):
        queries.run(conn, "manual__2026-01-01T00:00:00+00:00")


def test_a_pruned_run_with_kept_group_events_gives_its_decisions_and_says_it_was_pruned(conn, history):
    assert queries.run(conn, "run-0")["pruned"] is False
    prune_run_0(conn)
    view = queries.run(conn, "run-0", run_keep_days=90)
    assert view["pruned"] is True and view["pruned_by"] == {"setting": "run_keep_days", "days": 90}
    assert view["run"]["run_id"] == "run-0" and view["run"]["logical_date"] == day(0)
    assert "group_events.created_at" in view["run"]["logical_date_from"]
    assert view["decisions"]["counts"] == {"merged": 8}
    kept = view["decisions"]["events"]
    assert len(kept) == 8 and all(e["run_id"] == "run-0" for e in kept)
    assert view["scraped"]["chains"] == [] and view["scraped"]["stores"] == [] and view["scraped"]["note"]
    assert view["upsert"] == {"note": queries.PRUNED_NOTES["upsert"]}
    assert view["measured"]["verifications"] == [] and view["measured"]["random"] is None
    assert "verification_keep_days" in view["measured"]["note"]
    assert queries.run(conn, "run-1")["pruned"] is False  # a day younger: kept
    with pytest.raises(queries.NotFound, match="no pricegroups run"):
        queries.run(conn, "manual__2026-01-01T00:00:00+00:00")  # neither runs nor group_events know it


def test_overview_bundles_a_chains_page_and_newest_run_names_the_last_daily_run(conn, history):
    page = queries.overview(conn, "acme")
    assert page["chain"]["code"] == "acme" and len(page["groups"]) == 2 and len(page["runs"]) == 2
    assert page["error"]["checked"] == 40 and len(page["events"]) == 8
    assert queries.newest_run(conn) == {"run_id": "run-1", "logical_date": day(1), "events": {}}


def test_all_stores_of_a_run_are_those_first_seen_by_then_and_open_then(conn, history):
    from pricegroups.stores import StoreInfo, ensure_stores

    ensure_stores(conn, history.world.chain_id, [StoreInfo("acme-new")], at=day(1))  # opened on day 1
    conn.commit()
    assert [r["stores"] for r in queries.runs(conn, "acme")] == [10, 11]
    conn.execute("UPDATE stores SET active = false WHERE code = %s", (history.failed,))  # closed after day 0
    conn.commit()
    assert [r["stores"] for r in queries.runs(conn, "acme")] == [10, 10]  # day 0: 10 open; day 1: one in, one out
    assert [r["saved"] for r in queries.runs(conn, "acme")] == [0, 6]
