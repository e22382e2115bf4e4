"""Scrape planning, `groups reset` and `groups show` on a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pricegroups.cli import main
from pricegroups.errors import ConfigError
from pricegroups.grouping.admin import reset_groups, show_groups
from pricegroups.grouping.planning import plan_scrape
from pricegroups.grouping.service import merge_groups
from pricegroups.settings import Settings
from tests.integration.grouping.world import World, assert_group_invariants, day, groups_of

SETTINGS = Settings()


@pytest.fixture
def grouped(conn) -> World:
    w = World.build(conn, ["A"] * 12 + ["B"] * 8)
    w.derive_zone("B", "A", 0.2)
    w.scrape(w.stores, day(0))
    merge_groups(conn, day(0), "run-0", SETTINGS)
    conn.commit()
    return w


def test_bootstrap_plans_every_store_of_an_ungrouped_chain(conn):
    w = World.build(conn, ["A"] * 5)
    assert plan_scrape(conn, day(0), SETTINGS) == sorted(w.stores)


def test_plan_has_every_anchor_and_the_oldest_due_members_within_budget(conn, grouped):
    anchors = sorted(groups_of(conn))
    assert plan_scrape(conn, day(1), SETTINGS) == anchors  # everyone verified on day 0: nothing due
    later = day(0) + timedelta(days=SETTINGS.verify_interval_days)
    members = sorted(set(grouped.stores) - set(anchors))
    conn.execute("UPDATE stores SET last_verified_at = last_verified_at - interval '1 hour' WHERE store_id = %s",
                 (members[-1],))
    conn.commit()
    plan = plan_scrape(conn, later, SETTINGS)
    due = sorted(set(plan) - set(anchors))
    assert len(due) == 2  # ceil(10% of 18 members)
    assert members[-1] in due  # the oldest verification first


def test_plan_full_scrape_named_stores_and_chains(conn, grouped):
    assert plan_scrape(conn, day(1), SETTINGS, full_scrape=True) == sorted(grouped.stores)
    member = next(s for s in grouped.stores if s not in groups_of(conn))
    anchor = next(a for a, m in groups_of(conn).items() if member in m)
    assert plan_scrape(conn, day(1), SETTINGS, stores=[member]) == sorted({member, anchor})
    assert plan_scrape(conn, day(1), SETTINGS, chains=["acme"]) == sorted(groups_of(conn))
    with pytest.raises(ConfigError):
        plan_scrape(conn, day(1), SETTINGS, chains=["nope"])


def test_reset_puts_every_store_alone_and_logs_it(conn, grouped):
    moved = reset_groups(conn, "acme", at=day(1), run_id="op")
    assert moved == len(grouped.stores) - 2
    assert all(len(m) == 1 for m in groups_of(conn).values()) and len(groups_of(conn)) == len(grouped.stores)
    assert conn.execute("SELECT count(*) FROM group_events WHERE kind = 'reset'").fetchone()[0] == moved
    assert_group_invariants(conn)
    assert plan_scrape(conn, day(1), SETTINGS) == sorted(grouped.stores)  # bootstrap again


def test_show_lists_groups_with_members_and_verification(conn, grouped):
    views = show_groups(conn, "acme")
    assert sorted(1 + len(v.members) for v in views) == [8, 12]
    assert all(verified == day(0) for v in views for _, verified, _ in v.members)


def test_groups_cli_show_and_reset(db_url, grouped, capsys):
    assert main(["groups", "show", "--chain", "acme", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert "2 group(s), 20 store(s)" in out
    assert main(["groups", "reset", "--chain", "acme", "--database-url", db_url]) == 0
    assert "18 store(s) moved" in capsys.readouterr().out
    assert main(["groups", "show", "--chain", "nope", "--database-url", db_url]) == 2
