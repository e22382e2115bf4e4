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
    reasons: dict = {}
    assert plan_scrape(conn, day(0), SETTINGS, reasons=reasons) == sorted(w.stores)
    assert reasons == dict.fromkeys(w.stores, "bootstrap")


def members_of(conn, world: World) -> list[int]:
    return sorted(set(world.stores) - set(groups_of(conn)))


def test_plan_spends_the_verification_budget_every_run_part_at_random(conn, grouped):
    anchors = sorted(groups_of(conn))
    members = members_of(conn, grouped)
    reasons: dict = {}
    # everyone was verified on day 0: nobody is "due", the budget is spent all the same
    plan = plan_scrape(conn, day(1), SETTINGS, reasons=reasons)
    assert set(anchors) <= set(plan)
    assert sorted(set(plan) - set(anchors)) == sorted(reasons) and set(reasons) <= set(members)
    assert sorted(reasons.values()) == ["random", "risk"]  # ceil(10% of 18 members), half at random
    again: dict = {}
    assert plan_scrape(conn, day(1), SETTINGS, reasons=again) == plan and again == reasons  # a re-run draws the same
    drawn = set()
    for n in range(1, 11):
        daily: dict = {}
        plan_scrape(conn, day(n), SETTINGS, reasons=daily)
        assert len(daily) == 2
        drawn |= {s for s, r in daily.items() if r == "random"}
    assert len(drawn) > 2  # the seed is the run's logical date: other days, other draws


def test_plan_risk_part_takes_never_verified_then_long_unverified_members(conn, grouped):
    by_risk = SETTINGS.with_overrides({"verify_random_share": 0.0})
    members = members_of(conn, grouped)
    conn.execute("UPDATE stores SET last_verified_at = NULL WHERE store_id = %s", (members[7],))
    conn.execute("UPDATE stores SET last_verified_at = %s WHERE store_id = %s", (day(-5), members[12]))
    conn.commit()
    reasons: dict = {}
    plan_scrape(conn, day(1), by_risk, reasons=reasons)
    assert reasons == {members[7]: "risk", members[12]: "risk"}


def test_plan_risk_counts_recent_group_changes_and_overrides(conn, grouped):
    by_risk = SETTINGS.with_overrides({"verify_random_share": 0.0})
    as_of = day(8)  # the day-0 merges are older than verify_interval_days by now
    groups = [sorted(m - {a}) for a, m in groups_of(conn).items()]
    low, high = sorted(groups)  # `low` has the lowest member id
    group_of = dict(conn.execute("SELECT store_id, group_id FROM stores").fetchall())

    def event(store: int, at, kind: str = "member_ejected") -> None:
        conn.execute(
            """INSERT INTO group_events (run_id, chain_id, kind, group_id, store_id, created_at)
               VALUES ('x', %s, %s, %s, %s, %s)""",
            (grouped.chain_id, kind, group_of[store], store, at),
        )
        conn.commit()

    reasons: dict = {}
    plan_scrape(conn, as_of, by_risk, reasons=reasons)
    assert reasons == {low[0]: "risk", low[1]: "risk"}  # equal risk: ties by store id
    event(high[0], as_of - timedelta(hours=1))
    plan_scrape(conn, as_of, by_risk, reasons=reasons)
    assert reasons == {high[0]: "risk", high[1]: "risk"}  # a group that just changed goes first
    event(low[0], as_of - timedelta(days=SETTINGS.verify_interval_days, hours=1), "merged")
    plan_scrape(conn, as_of, by_risk, reasons=reasons)
    assert reasons == {high[0]: "risk", high[1]: "risk"}  # a change before the interval does not count
    # a member of `low` keeps 3 overrides (3 of at most 1% of 120 anchor prices): as risky as a group change
    anchor = conn.execute(
        "SELECT anchor_store_id FROM store_groups WHERE group_id = %s", (group_of[low[-1]],)
    ).fetchone()[0]
    conn.execute(
        """INSERT INTO prices (product_id, store_id, price, scraped_at, run_id)
           SELECT product_id, %s, price + 0.01, scraped_at, 'x' FROM prices
           WHERE store_id = %s ORDER BY product_id LIMIT 3""",
        (low[-1], anchor),
    )
    conn.commit()
    enough = by_risk.with_overrides({"verify_budget_share": (len(high) + 1) / (len(low) + len(high))})
    plan_scrape(conn, as_of, enough, reasons=reasons)
    assert reasons == {**dict.fromkeys(high, "risk"), low[-1]: "risk"}  # ahead of low's other members


def test_plan_forced_members_come_on_top_of_the_budget(conn, grouped):
    anchors = sorted(groups_of(conn))
    members = members_of(conn, grouped)
    forced = members[:3]
    conn.execute("UPDATE stores SET needs_verification = true WHERE store_id = ANY(%s)", (forced,))
    conn.commit()
    reasons: dict = {}
    plan = plan_scrape(conn, day(1), SETTINGS, reasons=reasons)
    assert {s for s, r in reasons.items() if r == "forced"} == set(forced)
    assert len([r for r in reasons.values() if r != "forced"]) == 2
    no_budget = SETTINGS.with_overrides({"verify_budget_share": 0.0})
    assert plan_scrape(conn, day(1), no_budget, reasons=reasons) == sorted(anchors + forced)
    assert reasons == dict.fromkeys(forced, "forced")


def test_plan_full_scrape_named_stores_and_chains(conn, grouped):
    reasons: dict = {}
    assert plan_scrape(conn, day(1), SETTINGS, full_scrape=True, reasons=reasons) == sorted(grouped.stores)
    members = members_of(conn, grouped)
    assert sorted(reasons) == members  # the draw stands; every other member is scraped too
    assert sorted(reasons.values()).count("random") == 1 and list(reasons.values()).count("bootstrap") == 16
    member = members[0]
    anchor = next(a for a, m in groups_of(conn).items() if member in m)
    assert plan_scrape(conn, day(1), SETTINGS, stores=[member], reasons=reasons) == sorted({member, anchor})
    assert reasons == {member: "named"}
    by_chain = plan_scrape(conn, day(1), SETTINGS, chains=["acme"])
    assert set(groups_of(conn)) <= set(by_chain) and len(by_chain) == len(groups_of(conn)) + 2
    with pytest.raises(ConfigError):
        plan_scrape(conn, day(1), SETTINGS, chains=["nope"])


def test_reset_puts_every_store_alone_and_logs_it(conn, grouped):
    moved = reset_groups(conn, "acme", at=day(1), run_id="op")
    assert moved == len(grouped.stores) - 2
    assert all(len(m) == 1 for m in groups_of(conn).values()) and len(groups_of(conn)) == len(grouped.stores)
    assert conn.execute("SELECT count(*) FROM group_events WHERE kind = 'reset'").fetchone()[0] == moved
    assert_group_invariants(conn)
    assert plan_scrape(conn, day(1), SETTINGS) == sorted(grouped.stores)  # bootstrap again


def measured(conn, world: World, samples: dict[int, tuple[int, int]], reason: str = "random") -> None:
    """Verifications as a run would have measured them on day 1."""
    for store, (checked, wrong) in samples.items():
        conn.execute(
            """INSERT INTO verifications (run_id, store_id, chain_id, reason, planned_at, baseline_taken,
                                          checked, wrong, measured_at)
               VALUES ('run-1', %s, %s, %s, %s, true, %s, %s, %s)""",
            (store, world.chain_id, reason, day(1), checked, wrong, day(1)),
        )
    conn.commit()


def test_show_lists_groups_with_members_and_verification(conn, grouped):
    members = members_of(conn, grouped)
    measured(conn, grouped, {members[0]: (120, 3)})
    views = show_groups(conn, "acme")
    assert sorted(1 + len(v.members) for v in views) == [8, 12]
    assert all(m.verified_at == day(0) for v in views for m in v.members)
    shown = {m.code: m for v in views for m in v.members}
    first = conn.execute("SELECT code FROM stores WHERE store_id = %s", (members[0],)).fetchone()[0]
    assert (shown[first].checked, shown[first].wrong, shown[first].measured_at) == (120, 3, day(1))
    assert sum(m.checked is not None for m in shown.values()) == 1
    assert all(m.overrides == 0 for m in shown.values())  # identical zones: nothing kept after deduplication


def test_groups_cli_show_and_reset(db_url, grouped, capsys):
    assert main(["groups", "show", "--chain", "acme", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert "2 group(s), 20 store(s)" in out
    assert "acme: served prices: no random verification measured" in out
    assert main(["groups", "reset", "--chain", "acme", "--database-url", db_url]) == 0
    assert "18 store(s) moved" in capsys.readouterr().out
    assert main(["groups", "show", "--chain", "nope", "--database-url", db_url]) == 2


def test_groups_cli_show_prints_the_estimated_wrong_share(db_url, conn, grouped, capsys):
    members = members_of(conn, grouped)
    measured(conn, grouped, {members[0]: (100, 1), members[1]: (100, 0), members[2]: (200, 1)})
    measured(conn, grouped, {members[3]: (100, 50)}, reason="risk")  # not part of the unbiased estimate
    assert main(["groups", "show", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    # r = 2/400; var = 3/2 * (0.5^2 + 0.5^2 + 0^2) / 400^2; r -+ 1.96 sqrt(var) = 0.08% .. 0.92%
    assert "acme: served prices 0.50% wrong (95% CI 0.08%-0.92%) from 3 store(s), 400 price(s)" in out
    assert "last check 50/100 wrong" in out


def test_a_run_measures_its_chains_change_rates_once(conn):
    """DESIGN §10: the rate every comparison of the run allows for is measured once and kept with the run."""
    from datetime import timedelta

    from pricegroups.grouping import repository as repo
    from pricegroups.settings import Settings
    from tests.factories import T0, make_chain_with_stores, make_products

    chain_id, (anchor,) = make_chain_with_stores(conn, "acme", 1)
    products = make_products(conn, 10)
    conn.execute("UPDATE stores SET first_scraped_at = %s, last_scraped_at = %s WHERE store_id = %s",
                 (T0 - timedelta(days=3), T0, anchor))
    conn.execute(
        """INSERT INTO prices (product_id, store_id, price, on_special, scraped_at, run_id)
           SELECT p, %s, 1.00, false, CASE WHEN p = ANY(%s) THEN %s ELSE %s END, 'test' FROM unnest(%s::bigint[]) p""",
        (anchor, products[:1], T0, T0 - timedelta(days=3), products),
    )
    conn.execute("INSERT INTO runs (run_id, logical_date) VALUES ('r1', %s)", (T0,))
    settings = Settings()
    assert repo.run_change_rates(conn, "r1", [chain_id], settings) == {chain_id: 0.1}  # 1 of 10 changed
    # the anchor's prices move on; the run keeps the rate it measured first, a run without a record does not
    conn.execute("UPDATE prices SET scraped_at = %s WHERE store_id = %s", (T0, anchor))
    assert repo.run_change_rates(conn, "r1", [chain_id], settings) == {chain_id: 0.1}
    assert repo.run_change_rates(conn, None, [chain_id], settings) == {chain_id: repo.change_rates(
        conn, [chain_id], settings)[chain_id]} != {chain_id: 0.1}
    summary = conn.execute("SELECT summary->'change_rates' FROM runs WHERE run_id = 'r1'").fetchone()[0]
    assert summary == {str(chain_id): 0.1}
