"""Continuous verification on a real PostgreSQL: record the plan, take the baseline, measure what was served.

A hand-built group (no comparer involved): one anchor and members whose own rows
are their overrides, as after a verification and deduplication on day 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from pricegroups import pipeline
from pricegroups.grouping.verification import (
    error_report,
    measure_served,
    record_plan,
    record_verified_members,
    take_baseline,
)
from tests.integration.grouping.world import World, day

RUN = "run-3"


def group_together(conn, anchor: int, members: list[int], verified: dict[int, object]) -> int:
    """Put members in the anchor's group, set their last verification, drop their rows equal to the anchor's."""
    group = conn.execute("SELECT group_id FROM stores WHERE store_id = %s", (anchor,)).fetchone()[0]
    with conn.transaction():
        conn.execute("UPDATE stores SET group_id = %s WHERE store_id = ANY(%s)", (group, members))
        conn.execute("DELETE FROM store_groups WHERE anchor_store_id = ANY(%s)", (members,))
        for store, at in verified.items():
            conn.execute("UPDATE stores SET last_verified_at = %s WHERE store_id = %s", (at, store))
        conn.execute(
            """DELETE FROM prices m USING prices a
               WHERE m.store_id = ANY(%s) AND a.store_id = %s AND a.product_id = m.product_id
                 AND m.price = a.price""",
            ([s for s, at in verified.items() if at is not None], anchor),
        )
    conn.commit()
    return group


@dataclass
class Setup:
    world: World
    group: int
    anchor: int
    ok: int  # its override is served and right
    stale: int  # its override went stale when the anchor's price changed: the anchor's is served, right
    wrong: int  # deviated from the anchor after its verification: the inferred price is wrong
    never: int  # never verified: its old observed rows are served, wrong where prices changed since
    changed: list[int]  # products whose list price changed on day 2


@pytest.fixture
def setup(conn) -> Setup:
    w = World.build(conn, ["A"] * 5, products=40)
    anchor, ok, stale, wrong, never = w.stores
    p = w.products
    w.overrides[ok] = {p[0]: w.zones["A"][p[0]] + Decimal("1.00")}
    w.overrides[stale] = {p[1]: w.zones["A"][p[1]] + Decimal("0.40")}
    w.scrape(w.stores, day(0))
    group = group_together(conn, anchor, [ok, stale, wrong, never],
                           {ok: day(0), stale: day(0), wrong: day(0), never: None})
    # day 2: the chain changes two list prices; the stale member now charges the list price too
    changed = [p[1], p[3]]
    for product in changed:
        w.zones["A"][product] += Decimal("0.30")
    del w.overrides[stale]
    w.scrape([anchor], day(2))
    # day 3: the "wrong" member starts charging its own price for one product
    w.overrides[wrong] = {p[5]: w.zones["A"][p[5]] - Decimal("0.25")}
    w.scrape([anchor], day(3), RUN)
    return Setup(w, group, anchor, ok, stale, wrong, never, changed)


def served_now(conn, stores: list[int]) -> dict[tuple[int, int], Decimal]:
    rows = conn.execute(
        "SELECT store_id, product_id, price FROM effective_prices WHERE store_id = ANY(%s)", (stores,)
    ).fetchall()
    return {(s, p): price for s, p, price in rows}


def test_measure_served_counts_what_was_served_against_what_is_charged(conn, setup):
    s = setup
    members = [s.ok, s.stale, s.wrong, s.never]
    assert record_plan(conn, RUN, day(3), {m: "random" for m in members}) == 4
    conn.commit()
    before = served_now(conn, members)  # what the site served for them just before their scrape
    sources = dict(conn.execute(
        "SELECT store_id::text || ':' || product_id, source FROM effective_prices WHERE store_id = ANY(%s)",
        (members,),
    ).fetchall())
    assert sources[f"{s.ok}:{s.world.products[0]}"] == "override"
    assert sources[f"{s.stale}:{s.world.products[1]}"] == "stale_override"

    assert take_baseline(conn, RUN) == {"baseline_members": 4, "baseline_rows": 1 + 1 + 0 + 40}
    conn.commit()
    s.world.scrape(members, day(3), RUN)
    verified_before = {s.ok: day(0), s.stale: day(0), s.wrong: day(0), s.never: None}
    result = measure_served(conn, RUN, day(3), [(m, s.group, s.anchor, verified_before[m]) for m in members])
    conn.commit()

    # the same count from the view's own answer, in Python
    charged = {(m, p): s.world.true_price(m, p) for m in members for p in s.world.products}
    expected = {m: (40, sum(before[(m, p)] != charged[(m, p)] for p in s.world.products)) for m in members}
    assert result == expected
    assert result == {s.ok: (40, 0), s.stale: (40, 0), s.wrong: (40, 1), s.never: (40, len(s.changed))}
    rows = conn.execute(
        "SELECT store_id, group_id, anchor_store_id, checked, wrong, measured_at FROM verifications WHERE run_id = %s",
        (RUN,),
    ).fetchall()
    assert {r[0]: r[1:] for r in rows} == {
        m: (s.group, s.anchor, *result[m], day(3)) for m in members
    }


def test_a_late_member_is_measured_against_the_replaced_price_the_site_serves_it(conn, setup):
    """The self-measured error applies the served rule itself: for a store usually late with changes the
    site serves the price a fresh change replaced (source "late"), and that is what is measured."""
    s = setup
    p = s.world.products
    conn.execute("UPDATE stores SET late_changes = 5, timely_changes = 0 WHERE store_id = %s", (s.ok,))
    conn.commit()
    old = s.world.zones["A"][p[7]]
    s.world.zones["A"][p[7]] = old + Decimal("0.50")  # today's change, first seen in this run's anchor scrape
    s.world.overrides[s.ok] = {**s.world.overrides[s.ok], p[7]: old}  # the late store has not applied it yet
    later = day(3) + timedelta(minutes=1)
    s.world.scrape([s.anchor], later, RUN)
    record_plan(conn, RUN, later, {s.ok: "random"})
    conn.commit()
    before = served_now(conn, [s.ok])
    source = conn.execute("SELECT source FROM effective_prices WHERE store_id = %s AND product_id = %s",
                          (s.ok, p[7])).fetchone()[0]
    assert (source, before[(s.ok, p[7])]) == ("late", old)
    take_baseline(conn, RUN)
    conn.commit()
    s.world.scrape([s.ok], later, RUN)
    result = measure_served(conn, RUN, later, [(s.ok, s.group, s.anchor, day(0))])
    charged = {p_: s.world.true_price(s.ok, p_) for p_ in p}
    assert result == {s.ok: (40, sum(before[(s.ok, p_)] != charged[p_] for p_ in p))} == {s.ok: (40, 0)}


def test_an_override_is_stale_only_when_the_anchor_changed_it_near_or_after_the_verification(conn, setup):
    s = setup
    # verified on day 5 instead: the anchor's day-2 change is more than 48 hours before it, so the
    # verification already saw it and the override stands (served, and now wrong: the store follows the list)
    record_plan(conn, RUN, day(3), {s.stale: "random"})
    conn.execute("UPDATE stores SET last_verified_at = %s WHERE store_id = %s", (day(5), s.stale))
    take_baseline(conn, RUN)
    conn.commit()
    s.world.scrape([s.stale], day(3), RUN)
    assert measure_served(conn, RUN, day(3), [(s.stale, s.group, s.anchor, day(5))]) == {s.stale: (40, 1)}


def test_baseline_is_taken_once_and_a_failed_scrape_or_second_call_measures_nothing(conn, setup):
    s = setup
    record_plan(conn, RUN, day(3), {s.ok: "random", s.wrong: "risk", s.anchor: "bootstrap"})
    assert record_plan(conn, RUN, day(3), {s.ok: "risk"}) == 0  # a re-run keeps the first draw
    assert take_baseline(conn, RUN, [s.ok]) == {"baseline_members": 1, "baseline_rows": 1}
    assert take_baseline(conn, RUN, [s.ok]) == {"baseline_members": 0, "baseline_rows": 0}  # a retried upsert
    # the anchor is not a member: nothing of its own to measure
    assert take_baseline(conn, RUN) == {"baseline_members": 1, "baseline_rows": 0}
    conn.commit()
    assert conn.execute("SELECT count(*) FROM served_overrides").fetchone()[0] == 1
    reasons = dict(conn.execute("SELECT store_id, reason FROM verifications WHERE run_id = %s", (RUN,)).fetchall())
    assert reasons == {s.ok: "random", s.wrong: "risk", s.anchor: "bootstrap"}
    s.world.scrape([s.ok], day(3), RUN)  # s.wrong's scrape failed: not re-scraped
    checks = [(s.ok, s.group, s.anchor, day(0)), (s.wrong, s.group, s.anchor, day(0))]
    assert measure_served(conn, RUN, day(3), checks) == {s.ok: (40, 0)}
    assert measure_served(conn, RUN, day(3), checks) == {}  # the first measurement of a run stands


def test_error_report_separates_random_draws_per_chain_and_group(conn, setup):
    s = setup
    members = [s.ok, s.stale, s.wrong, s.never]
    record_plan(conn, RUN, day(3), {s.ok: "random", s.wrong: "random", s.stale: "risk", s.never: "risk"})
    take_baseline(conn, RUN)
    conn.commit()
    s.world.scrape(members, day(3), RUN)
    measure_served(conn, RUN, day(3), [(m, s.group, s.anchor, None if m == s.never else day(0)) for m in members])
    conn.commit()
    report = error_report(conn, run_id=RUN)
    random = report["random"]["overall"]
    assert (random["samples"], random["checked"], random["wrong"]) == (2, 80, 1)
    assert random["share"] == pytest.approx(1 / 80) and random["low"] <= random["share"] <= random["high"]
    every = report["all"]["chains"]["acme"]
    assert (every["samples"], every["checked"], every["wrong"]) == (4, 160, 1 + len(s.changed))
    assert report["groups"] == {str(s.group): {"stores": 4, "checked": 160, "wrong": 1 + len(s.changed)}}
    assert error_report(conn, since=day(3))["random"]["overall"]["samples"] == 0  # measured at, not after, day 3
    assert "groups" not in error_report(conn)


def test_the_served_estimate_weighs_the_draws_by_the_members_the_run_left_unverified(conn, setup):
    s = setup
    record_plan(conn, RUN, day(3), {s.ok: "random", s.wrong: "random", s.stale: "risk", s.never: "risk"})
    take_baseline(conn, RUN)
    conn.commit()
    s.world.scrape([s.ok, s.wrong, s.stale], day(3), RUN)
    conn.execute("""INSERT INTO scrape_log (run_id, store_id, status, started_at)
                    SELECT %s, s, 'ok', %s FROM unnest(%s::int[]) s""",
                 (RUN, day(3), [s.ok, s.wrong, s.stale]))
    s.world.fail_scrape([s.never], day(3), RUN)  # not verified: it is served what it was
    measure_served(conn, RUN, day(3), [(m, s.group, s.anchor, day(0)) for m in (s.ok, s.wrong, s.stale)])
    assert record_verified_members(conn, RUN, day(3)) == 1
    assert record_verified_members(conn, RUN, day(3)) == 1  # a retried summary recounts, once per chain
    conn.commit()
    counted = conn.execute(
        "SELECT verified, unverified, verified_prices, unverified_prices FROM verified_members")
    assert counted.fetchall() == [(3, 1, 3 * 40, 40)]  # each member weighted by its anchor's 40 rows
    report = error_report(conn)
    served, draws = report["served"]["overall"], report["random"]["overall"]
    assert draws["share"] == pytest.approx(1 / 80)
    assert served["unverified_share"] == 0.25 and served["share"] == pytest.approx(0.25 / 80)
    assert report["served"]["chains"]["acme"] == served
    # a window without the run's record: nothing says what the run left served, the draws' share stands
    conn.execute("UPDATE verified_members SET measured_at = %s", (day(2),))
    assert error_report(conn, since=day(2))["served"]["overall"]["share"] == pytest.approx(1 / 80)


def test_pipeline_records_the_plan_takes_the_baseline_in_the_upsert_and_summarises(conn, setup):
    s = setup
    context = pipeline.RunContext(run_id=RUN, as_of=day(3).isoformat(), chains=["acme"], store_ids=[s.wrong])
    batches = pipeline.plan(conn, context)
    assert batches == [{"chain": "acme", "store_ids": sorted([s.anchor, s.wrong])}]
    assert conn.execute("SELECT store_id, reason FROM verifications").fetchall() == [(s.wrong, "named")]
    pipeline.upsert(conn, context)  # nothing staged for the run: only the baseline is taken
    pipeline.upsert(conn, context)
    assert conn.execute("SELECT count(*), bool_and(baseline_taken) FROM verifications").fetchone() == (1, True)
    assert conn.execute("SELECT count(*) FROM served_overrides").fetchone()[0] == 0  # s.wrong had no overrides
    s.world.scrape([s.wrong], day(3), RUN)
    measure_served(conn, RUN, day(3), [(s.wrong, s.group, s.anchor, day(0))])
    conn.commit()
    summary = pipeline.summary(conn, context)["verification"]
    assert summary["run"] == {"stores": 1, "checked": 40, "wrong": 1,
                              "groups": {str(s.group): {"stores": 1, "checked": 40, "wrong": 1}}}
    assert summary["estimate_14d"]["samples"] == 0  # a named store is no random draw

    dry = pipeline.RunContext(run_id="dry", as_of=day(4).isoformat(), chains=["acme"], store_ids=[s.ok], dry_run=True)
    pipeline.plan(conn, dry)
    assert conn.execute("SELECT count(*) FROM verifications WHERE run_id = 'dry'").fetchone()[0] == 0


def test_retention_drops_old_baselines(conn, setup):
    from pricegroups.catalogue.postprocess import post_process

    s = setup
    record_plan(conn, RUN, day(3), {s.ok: "random"})
    take_baseline(conn, RUN)
    conn.commit()
    assert post_process(conn, "later", day(3) + timedelta(days=13))["baselines_deleted"] == 0
    conn.commit()
    assert post_process(conn, "much-later", day(3) + timedelta(days=15))["baselines_deleted"] == 1
    conn.commit()
    assert conn.execute("SELECT count(*) FROM served_overrides").fetchone()[0] == 0


class _TruthOf:
    """The few Scenario methods the demo report reads, answered from a World."""

    def __init__(self, world: World, codes: dict[str, int]):
        self.world, self.codes = world, codes

    def is_open(self, chain: str, store: str, day: int) -> bool:
        return True

    def zone_of(self, chain: str, store: str, day: int) -> str:
        return "one zone"

    def deviations(self, chain: str, store: str, day: int) -> dict:
        return {}

    def true_prices(self, chain: str, store: str, day: int) -> dict:
        sid = self.codes[store]
        return {str(p): SimpleNamespace(price=self.world.true_price(sid, p)) for p in self.world.carried(sid)}


def test_demo_report_counts_every_served_not_observed_price_as_inferred(conn, setup):
    from pricegroups.demo.report import price_accuracy

    s = setup
    conn.execute(
        """INSERT INTO listings (chain_id, sku, product_id, first_seen_at, last_seen_at)
           SELECT %s, product_id::text, product_id, %s, %s FROM products""",
        (s.world.chain_id, day(0), day(0)),
    )
    codes = dict(conn.execute("SELECT code, store_id FROM stores").fetchall())
    accuracy = price_accuracy(conn, _TruthOf(s.world, codes), 3)
    inferred, wrong_inferred, observed, wrong_observed = (
        accuracy.inferred, accuracy.wrong_inferred, accuracy.observed, accuracy.wrong_observed)
    # members verified on day 0 serve 40 prices each not observed since (anchor's, override, stale override)
    assert (inferred, wrong_inferred) == (3 * 40, 1)
    assert sum(accuracy.causes.values()) == wrong_inferred
    # the anchor's own and the never-verified member's rows were observed; two of the latter are outdated
    assert (observed, wrong_observed) == (2 * 40, len(s.changed))


def test_demo_estimate_uses_random_draws_only(conn, setup):
    from pricegroups.demo.report import estimated_error

    s = setup
    members = [s.ok, s.stale, s.wrong, s.never]
    record_plan(conn, RUN, day(3), {s.ok: "random", s.wrong: "random", s.stale: "risk", s.never: "risk"})
    take_baseline(conn, RUN)
    conn.commit()
    s.world.scrape(members, day(3), RUN)
    measure_served(conn, RUN, day(3), [(m, s.group, s.anchor, None if m == s.never else day(0)) for m in members])
    conn.commit()
    e = estimated_error(conn)
    assert (e.stores, e.checked, e.wrong) == (2, 80, 1)
    assert estimated_error(conn, until=day(3) - timedelta(days=1)).stores == 0
    assert estimated_error(conn, until=day(20), days=14).stores == 0  # measured more than 14 days before


def test_the_measure_is_of_what_the_run_serves_after_its_health_decisions(conn):
    """A group whose anchor moved zone: the health check replaces the anchor in the same run, so the members
    drawn are measured against the new anchor (nothing wrong), not the moved one. A member that moved itself
    is measured in the group it was checked in: had it not been drawn it would still be served from there."""
    from pricegroups.grouping.service import health_check_groups
    from pricegroups.settings import Settings
    from tests.integration.grouping.test_scenarios import maintain
    from tests.integration.grouping.world import groups_of

    w = World.build(conn, ["A", "A", "A", "A", "A", "B", "B"])
    w.derive_zone("B", "A", 0.25)
    w.scrape(w.stores, day(0))
    maintain(conn, 0)
    a_anchor, members = next((a, sorted(m - {a})) for a, m in groups_of(conn).items() if w.zone_of[a] == "A")
    assert len(members) == 4
    mover = members[-1]
    w.zone_of[a_anchor] = w.zone_of[mover] = "B"
    run = "run-1"
    record_plan(conn, run, day(1), {m: "random" for m in members})
    take_baseline(conn, run)
    conn.commit()
    w.scrape(list(groups_of(conn)) + members, day(1), run)
    group = conn.execute("SELECT group_id FROM stores WHERE store_id = %s", (members[0],)).fetchone()[0]
    counts = health_check_groups(conn, [group], day(1), run, Settings())
    conn.commit()
    assert counts["anchors_replaced"] == 1 and counts["ejected"] >= 1
    new_anchor = conn.execute(
        "SELECT anchor_store_id FROM store_groups WHERE group_id = %s", (group,)).fetchone()[0]
    assert new_anchor in members and new_anchor != mover
    measured = conn.execute(
        "SELECT store_id, group_id, anchor_store_id, checked, wrong FROM verifications WHERE run_id = %s",
        (run,))
    rows = {store: (group_id, anchor, checked, wrong) for store, group_id, anchor, checked, wrong in measured}
    moved_apart = sum(w.zones["A"][p] != w.zones["B"][p] for p in w.products)
    assert moved_apart > 0
    for store in members:
        group_id, anchor, checked, wrong = rows[store]
        assert group_id == group and checked == len(w.products)
        if store == mover:  # measured in its old group, against the group's anchor after the run
            assert (anchor, wrong) == (new_anchor, moved_apart)
        elif store == new_anchor:  # had it not been scraped it would not be the anchor: its anchor then
            assert (anchor, wrong) == (a_anchor, moved_apart)
        else:
            assert (anchor, wrong) == (new_anchor, 0)

