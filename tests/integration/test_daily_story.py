"""Grouping and run rules over several simulated days, checked on the states of the compact scenario's story.

The story (tests/story.py) is played once per session through the pipeline
harness, without Airflow; each test clones the chapters it reads and checks
one rule against what the runs recorded there. What only Airflow shows about
such runs is the DAG tier's (tests/dag/test_dag_runs.py), which starts its runs
from these chapters.
"""

from __future__ import annotations


from contextlib import ExitStack
from typing import Any, Callable, Iterator

import psycopg
import pytest

from pricegroups.grouping.rules.lateness import usually_late
from tests.story import NAMES, STORES, Story, ari, snapshot

pytestmark = pytest.mark.slow  # `make test` runs a file on one worker: the chapters are played in order there


class Copy:
    """A test's own copy of one chapter's state, and what its run recorded."""

    def __init__(self, story: Story, url: str, facts: dict[str, Any]) -> None:
        self.story, self.facts = story, facts
        self.conn = psycopg.connect(url, autocommit=True)
        self.run_id: str = facts["run_id"]

    def summary(self) -> dict[str, Any]:
        return self.conn.execute("SELECT summary FROM runs WHERE run_id = %s", (self.run_id,)).fetchone()[0]

    def scraped(self) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT s.code FROM scrape_log l JOIN stores s USING (store_id) WHERE l.run_id = %s", (self.run_id,))}

    def events(self) -> list[tuple[str, int, int | None]]:
        return self.conn.execute(
            "SELECT kind, store_id, other_store_id FROM group_events WHERE run_id = %s", (self.run_id,)).fetchall()

    def store_id(self, code: str) -> int:
        return self.conn.execute("SELECT store_id FROM stores WHERE code = %s", (code,)).fetchone()[0]

    def qualified(self, codes: set[str]) -> set[str]:
        chain_of = dict(self.conn.execute("SELECT s.code, c.code FROM stores s JOIN chains c USING (chain_id)").fetchall())
        return {f"{chain_of[c]}/{c}" for c in codes}

    def groups_by_code(self) -> dict[int, list[tuple[str, str]]]:
        """The active stores' groups as (chain, store code) lists."""
        groups: dict[int, list[tuple[str, str]]] = {}
        for group, chain, code in self.conn.execute(
            "SELECT s.group_id, c.code, s.code FROM stores s JOIN chains c USING (chain_id) WHERE s.active"
        ):
            groups.setdefault(group, []).append((chain, code))
        return groups

    def ari(self) -> float:
        return ari(self.conn, self.story.scenario, self.facts["day"])


@pytest.fixture
def chapter(story: Story) -> Iterator[Callable[[str], Copy]]:
    """`chapter("day1")`: a copy of that chapter's state of this test's own (dropped after the test)."""
    with ExitStack() as stack:
        def open_(name: str) -> Copy:
            url, facts = stack.enter_context(story.clone(name))
            copy = Copy(story, url, facts)
            stack.callback(copy.conn.close)
            return copy

        yield open_


def test_bootstrap_scrapes_every_store_and_finds_the_true_zones(chapter):
    day0 = chapter("day0")
    assert len(day0.scraped()) == STORES
    assert day0.ari() == pytest.approx(1.0)
    assert day0.summary()["totals"]["upsert"]["created"] > 20_000
    assert any(kind == "merged" for kind, _, _ in day0.events())


def test_a_normal_day_scrapes_about_one_store_per_group(chapter):
    day1 = chapter("day1")
    groups = day1.conn.execute("SELECT count(*) FROM store_groups").fetchone()[0]
    drawn = day1.conn.execute(
        """SELECT c.code, v.reason FROM verifications v JOIN chains c USING (chain_id)
           WHERE v.run_id = %s ORDER BY 1""",
        (day1.run_id,),
    ).fetchall()
    # anchors plus the verification budget, spent every run (DESIGN.md §9): ceil(10%) of each
    # chain's members, here one per chain, drawn at random (half the budget, rounded up)
    assert [chain for chain, _ in drawn] == sorted({chain for chain, _ in drawn}) and len(drawn) == 3
    assert {reason for _, reason in drawn} == {"random"}
    scraped = day1.scraped()
    assert len(scraped) <= groups + len(drawn)
    assert len(scraped) <= STORES / 2
    assert not day1.facts["rescraped"], "no anchor is stale yet: the branch goes to anchors_current"


def test_a_failed_scrape_changes_nothing_about_that_store(chapter):
    day1, day0 = chapter("day1"), chapter("day0")
    failing = day1.store_id(day1.facts["failing"])
    before, after = snapshot(day0.conn), snapshot(day1.conn)
    prices = lambda snap: [r for r in snap["prices"] if r[1] == failing]  # noqa: E731
    assert day1.facts["failing"] in day1.scraped()
    assert prices(after) == prices(before)
    assert [e for e in day1.events() if failing in (e[1], e[2])] == []
    group_of = lambda snap: {r[0]: r[1] for r in snap["stores"]}[failing]  # noqa: E731
    assert group_of(after) == group_of(before)


def test_an_anchor_that_keeps_failing_hands_over_and_the_new_anchor_is_rescraped_the_same_day(chapter):
    day3 = chapter("day3")
    assert any(kind == "anchor_replaced" for kind, _, _ in day3.events())
    assert day3.facts["rescraped"]
    assert day3.summary()["totals"]["rescrape"]["ok"] >= 1


def test_a_run_restricted_to_some_stores_scrapes_only_them_and_their_anchors(chapter):
    moved = chapter("moved")
    scraped = moved.scraped()
    assert moved.facts["mover"] in scraped
    assert len(scraped) <= 2  # the named store and its group's anchor


def _cross_zone_pairs(copy: Copy) -> list[tuple[str, str]]:
    """Pairs of open stores grouped together although their true zones differ, as the run left them."""
    scenario, day = copy.story.scenario, copy.facts["day"]
    pairs = []
    for members in copy.groups_by_code().values():
        open_ = [(chain, code) for chain, code in members if scenario.is_open(chain, code, day)]
        zone = {code: scenario.zone_of(chain, code, day) for chain, code in open_}
        pairs += [(a, b) for _, a in open_ for _, b in open_ if a < b and zone[a] != zone[b]]
    return pairs


def test_after_a_zone_move_no_group_mixes_zones_once_members_are_reverified(chapter):
    day4 = chapter("day4")
    story = day4.conn.execute(
        """SELECT r.run_id, array_agg(DISTINCT e.kind || ' ' || s.code || ' ' || coalesce(o.code, ''))
                  FILTER (WHERE e.kind IS NOT NULL AND e.kind <> 'verified')
           FROM runs r LEFT JOIN group_events e USING (run_id) LEFT JOIN stores s ON s.store_id = e.store_id
           LEFT JOIN stores o ON o.store_id = e.other_store_id GROUP BY 1 ORDER BY 1""").fetchall()
    pairs = _cross_zone_pairs(day4)
    assert pairs == [], "\n".join(f"{run}: {events}" for run, events in story) + f"\n{pairs}"
    assert day4.ari() >= 0.9


def test_rerunning_the_same_date_and_inputs_changes_nothing_further(chapter):
    # The first run for the mover moved it into the group of its new zone, so the second one also
    # scrapes that group's anchor (a `stores` run scrapes the stores and their anchors): new data
    # for that date, nothing else. From then on the inputs are the same and nothing changes.
    moved, again, thrice = chapter("moved"), chapter("moved_again"), chapter("moved_thrice")
    first, second, third = snapshot(moved.conn), snapshot(again.conn), snapshot(thrice.conn)
    assert again.events() == [] and second["groups"] == first["groups"]
    for key in ("prices", "stores", "groups", "events", "products"):
        assert third[key] == second[key], key


def test_backfill_of_an_earlier_date_never_makes_a_price_older(chapter):
    day4, back = chapter("day4"), chapter("backfill")
    before = {(r[0], r[1]): r for r in snapshot(day4.conn)["prices"]}
    after_snapshot = snapshot(back.conn)
    after = {(r[0], r[1]): r for r in after_snapshot["prices"]}
    assert set(after) <= set(before)
    for key, row in after.items():
        assert row[:6] == before[key][:6], key
    # group decisions belong to the newest data: a backfill leaves the groups alone
    assert back.events() == []
    assert after_snapshot["groups"] == snapshot(day4.conn)["groups"]
    assert back.facts["mover"] in back.scraped()


def test_near_twin_price_lists_are_kept_apart(chapter, story):
    """fm-z1t and vw-z2t differ from their twins on about 1.2 % and 1.5 % of products: never one group."""
    twins = {z.code: z.twin_of for c in story.scenario.chains.values() for z in c.zones if z.twin_of}
    assert twins == {"fm-z1t": "fm-z1", "vw-z2t": "vw-z2"}
    for copy in (chapter("day0"), chapter("day2"), chapter("day4")):
        for members in copy.groups_by_code().values():
            zones = {story.scenario.zone_of(chain, code, copy.facts["day"]) for chain, code in members}
            for twin, parent in twins.items():
                assert not {twin, parent} <= zones, (copy.run_id, members)


def test_the_run_summary_estimates_its_own_error(chapter):
    """The summary's 14-day estimate is the ratio of the random verifications' wrong to checked prices,
    weighed by the served prices the runs left unverified, with an interval that says something (not the
    (0, 1) of no evidence) and a small error: the pipeline is right."""
    run = chapter("day4")
    estimate = run.summary()["totals"]["verification"]["estimate_14d"]
    samples = run.conn.execute(
        """SELECT v.checked, v.wrong FROM verifications v, runs r
           WHERE r.run_id = %s AND v.reason = 'random' AND v.checked > 0
             AND v.measured_at > r.logical_date - interval '14 days'""", (run.run_id,)).fetchall()
    assert estimate["samples"] == len(samples) >= 3
    assert (estimate["checked"], estimate["wrong"]) == (sum(c for c, _ in samples), sum(w for _, w in samples))
    assert estimate["checked"] > 1000
    verified, unverified = run.conn.execute(
        """SELECT sum(m.verified_prices)::bigint, sum(m.unverified_prices)::bigint
           FROM verified_members m, runs r
           WHERE r.run_id = %s AND m.measured_at > r.logical_date - interval '14 days'""", (run.run_id,)).fetchone()
    assert 0 < unverified < verified + unverified  # the runs verified some members, not all (day 0 verified all)
    assert estimate["unverified_share"] == pytest.approx(unverified / (verified + unverified), abs=1e-6)
    assert estimate["share"] == pytest.approx(  # kept to 6 places
        estimate["wrong"] / estimate["checked"] * estimate["unverified_share"], abs=1e-6)
    assert run.summary()["totals"]["verification"]["draws_14d"]["share"] == pytest.approx(
        estimate["wrong"] / estimate["checked"], abs=1e-6)
    assert 0 <= estimate["low"] <= estimate["share"] <= estimate["high"] < 0.05


def test_a_member_that_moved_zone_is_caught_by_its_spot_check_the_same_day(chapter, story):
    """Every member not scraped reads one catalogue page; the mover's page disagrees, so it is scraped and ejected."""
    run = chapter("spot_move")
    spot_mover, (old_zone, _) = run.facts["spot_mover"], run.facts["spot_zones"]
    assert run.facts["state"] == "success"
    spot = run.summary()["totals"]["spot_checks"]
    # a member whose page cannot be read (the scenario closes stores) is recorded as failed, not fatal
    assert spot["stores"] > 10 and spot["failed"] <= 2 and spot["pages"] == spot["stores"] - spot["failed"]
    suspects = {code for (code,) in run.conn.execute(
        """SELECT s.code FROM spot_checks k JOIN stores s USING (store_id)
           WHERE k.run_id = %s AND k.suspect AND NOT k.evidence ? 'anchor_off'""",  # witnesses of a late anchor aside
        (run.run_id,))}
    reasons = dict(run.conn.execute(
        "SELECT s.code, v.reason FROM verifications v JOIN stores s USING (store_id) WHERE v.run_id = %s",
        (run.run_id,)).fetchall())
    assert suspects == {spot_mover}, "only the store that moved disagrees beyond timing"
    assert reasons[spot_mover] == "spot"
    assert spot_mover in run.scraped(), "scraped in full in the same run"
    mover = run.store_id(spot_mover)
    assert ("member_ejected", mover) in {(k, s) for k, s, _ in run.events()}
    for group in run.groups_by_code().values():
        if ("greengrocer", spot_mover) in group:
            assert all(story.scenario.zone_of("greengrocer", code, 6) != old_zone
                       for chain, code in group if code != spot_mover), group


def _greengrocer_groups(copy: Copy) -> dict[int, list[tuple[str, str]]]:
    return {g: sorted(m) for g, m in copy.groups_by_code().items() if m[0][0] == "greengrocer"}


def test_a_chain_that_is_down_is_named_and_keeps_its_groups_while_the_others_are_grouped(chapter):
    before, down = chapter("spot_move"), chapter("chain_down")
    assert down.summary()["totals"]["chains_down"] == ["greengrocer"]
    assert {"freshmart", "valueway"} <= {code.split("/")[0] for code in down.qualified(down.scraped())}
    assert _greengrocer_groups(down) == _greengrocer_groups(before), "a chain not scraped keeps its groups"


def test_a_chain_wide_change_has_complement_members_scraped_in_its_groups(chapter):
    """Day 7 starts a new week of specials: the anchors of the chains that are up change en masse."""
    run = chapter("chain_down")
    complement = run.conn.execute(
        """SELECT c.code, s.code, s.group_id FROM verifications v JOIN stores s USING (store_id)
           JOIN chains c ON c.chain_id = s.chain_id WHERE v.run_id = %s AND v.reason = 'complement'""",
        (run.run_id,)).fetchall()
    chains = {chain for chain, _, _ in complement}
    assert chains and "greengrocer" not in chains  # the chain that is down changed nothing
    scraped = run.scraped()
    assert all(code in scraped for _, code, _ in complement), "scraped in the same run"
    assert len({code for _, code, _ in complement}) == len(complement), "each scraped once"


def test_a_store_that_caught_prices_mid_change_is_not_kept_as_anchor_over_a_better_member(chapter, story):
    """A lagging store's prices nobody else charges make it rank after its clean zone-mates."""
    end = chapter(NAMES[-1])
    anchors = {code for (code,) in end.conn.execute(
        """SELECT a.code FROM store_groups g JOIN stores a ON a.store_id = g.anchor_store_id
           WHERE (SELECT count(*) FROM stores s WHERE s.group_id = g.group_id AND s.active) > 1""")}
    lagging = {s.code for c in story.scenario.chains.values() for s in c.stores if s.lag_share > 0}
    assert lagging and not anchors & lagging


def test_own_deviations_are_served_as_overrides_with_the_true_price(chapter, story):
    """A verified member's own prices (the store prices some products itself) are served, not its anchor's:
    every own deviation of every member serving its overrides, not just one of them."""
    scenario, end = story.scenario, chapter(NAMES[-1])
    day = end.facts["day"]
    served = {(chain, code, sku): (price, source) for chain, code, sku, price, source in end.conn.execute(
        """SELECT c.code, s.code, l.sku, e.price, e.source FROM effective_prices e
           JOIN stores s USING (store_id) JOIN chains c ON c.chain_id = s.chain_id
           JOIN listings l ON l.product_id = e.product_id AND l.chain_id = s.chain_id""")}
    overriding = end.conn.execute(  # members verified and not scraped since: their own rows are overrides
        """SELECT c.code, s.code FROM stores s JOIN store_groups g ON g.group_id = s.group_id
           JOIN chains c ON c.chain_id = s.chain_id
           WHERE s.active AND s.store_id <> g.anchor_store_id AND s.last_verified_at IS NOT NULL
             AND s.last_scraped_at <= s.last_verified_at""").fetchall()
    expected, wrong = 0, []
    for chain, code in overriding:
        truth = scenario.true_prices(chain, code, day)
        for sku, cause in scenario.deviations(chain, code, day).items():
            if cause != "own" or sku not in truth:
                continue
            expected += 1
            if served.get((chain, code, sku)) != (truth[sku].price, "override"):
                wrong.append((chain, code, sku, served.get((chain, code, sku)), truth[sku].price))
    assert expected >= 3, "the story has members with own prices serving their overrides"
    assert not wrong, wrong


def test_members_late_with_changes_are_measured_and_no_punctual_store_is_called_late(chapter, story):
    """store_lateness: late changes are seen mostly at the stores the scenario makes late (Store.lag_share);
    a punctual store may show one by coincidence (its price equals its anchor's old one), never a habit."""
    lagging = {(c.code, s.code) for c in story.scenario.chains.values() for s in c.stores if s.lag_share > 0}
    evidence = chapter(NAMES[-1]).conn.execute(
        """SELECT c.code, s.code, sum(l.late), sum(l.on_time) FROM store_lateness l
           JOIN stores s USING (store_id) JOIN chains c ON c.chain_id = s.chain_id
           GROUP BY c.code, s.code""").fetchall()
    late_at = {(chain, code): n for chain, code, n, _ in evidence}
    habit = {(chain, code) for chain, code, late, on_time in evidence if usually_late(late, on_time)}
    assert sum(on_time for *_, on_time in evidence) > 0, "punctual members were measured too"
    assert habit <= lagging, f"punctual stores called late: {sorted(habit - lagging)}"
    at_lagging = sum(n for store, n in late_at.items() if store in lagging)
    elsewhere = sum(n for store, n in late_at.items() if store not in lagging)
    assert at_lagging >= 3 and at_lagging >= 3 * elsewhere, (at_lagging, elsewhere)


def test_every_run_keeps_the_invariants_and_succeeds_but_the_one_with_a_chain_down(story):
    facts = {name: story.states.facts(f"story_{name}") for name in NAMES}
    assert {name: f["invariants"] for name, f in facts.items() if f["invariants"]} == {}
    assert {name: f["failure"] for name, f in facts.items() if name != "chain_down"} == dict.fromkeys(
        [n for n in NAMES if n != "chain_down"])
    assert facts["chain_down"]["state"] == "failed" and "greengrocer" in facts["chain_down"]["failure"]
