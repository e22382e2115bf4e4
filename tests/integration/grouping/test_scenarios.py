"""Grouping over several simulated days on a real PostgreSQL, prices written through the upsert."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pricegroups.grouping.service import (
    anchors_of,
    candidate_pairs,
    compare_pairs,
    deduplicate_members,
    find_stale_anchors,
    health_check_groups,
    merge_groups,
)
from pricegroups.settings import Settings
from tests.integration.grouping.world import (
    World,
    assert_effective_prices_true,
    assert_group_invariants,
    day,
    groups_of,
    partition,
)

SETTINGS = Settings()


def all_group_ids(conn) -> list[int]:
    return [r[0] for r in conn.execute("SELECT group_id FROM store_groups ORDER BY 1")]


def maintain(conn, n: int, settings: Settings = SETTINGS, dry_run: bool = False) -> dict:
    """One run's group maintenance, in the DAG's order."""
    run = f"run-{n}"
    stale = find_stale_anchors(conn, day(n), settings, run_id=run, dry_run=dry_run)
    health = health_check_groups(conn, all_group_ids(conn), day(n), run, settings, dry_run=dry_run)
    merged = merge_groups(conn, day(n), run, settings, dry_run=dry_run)
    conn.commit()
    return {"stale": stale, "health": health, "merge": merged}


def event_count(conn, kind: str | None = None) -> int:
    return conn.execute(
        "SELECT count(*) FROM group_events WHERE %s::text IS NULL OR kind = %s", (kind, kind)
    ).fetchone()[0]


@pytest.fixture
def two_zones(conn) -> World:
    world = World.build(conn, ["A", "A", "B", "A", "B", "B", "A"])
    world.derive_zone("B", "A", 0.2)
    world.scrape(world.stores, day(0))
    maintain(conn, 0)
    return world


def truth(world: World) -> set[frozenset[int]]:
    zones: dict[str, set[int]] = {}
    for store, zone in world.zone_of.items():
        zones.setdefault(zone, set()).add(store)
    return {frozenset(s) for s in zones.values()}


def test_bootstrap_groups_the_stores_by_zone(conn, two_zones):
    assert partition(conn) == truth(two_zones)
    assert_group_invariants(conn)
    assert event_count(conn, "merged") == len(two_zones.stores) - 2
    evidence = conn.execute("SELECT evidence FROM group_events WHERE kind = 'merged' LIMIT 1").fetchone()[0]
    assert evidence["outcome"] == "match" and evidence["overlap"] >= 30 and evidence["rate"] >= 0.98


def test_merge_deduplicates_and_effective_prices_serve_the_truth(conn, two_zones):
    w = two_zones
    # a member with a store-specific price on one product (within max_member_deviation) keeps it as an override
    member = next(s for s in w.stores if s not in groups_of(conn))
    w.overrides[member] = {w.products[0]: w.zones[w.zone_of[member]][w.products[0]] + 1}
    w.scrape([member], day(1))
    w.scrape(list(groups_of(conn)), day(1))
    counts = maintain(conn, 1)
    assert counts["health"]["verified"] == 1
    rows = conn.execute("SELECT product_id FROM prices WHERE store_id = %s ORDER BY 1", (member,)).fetchall()
    assert [r[0] for r in rows] == sorted(w.overrides[member])
    assert_effective_prices_true(w)
    sources = dict(conn.execute(
        "SELECT source, count(*) FROM effective_prices WHERE store_id = %s GROUP BY 1", (member,)).fetchall())
    assert sources == {"override": 1, "inferred": len(w.products) - 1}


def test_zone_move_ejects_the_store_then_merges_it_into_its_new_zone(conn, two_zones):
    w = two_zones
    mover = next(s for s in w.stores if s not in groups_of(conn) and w.zone_of[s] == "A")
    w.zone_of[mover] = "B"
    w.scrape(list(groups_of(conn)) + [mover], day(1))
    counts = maintain(conn, 1)
    assert counts["health"]["ejected"] == 1
    assert counts["merge"]["merged"] == 1
    assert partition(conn) == truth(w)
    ejected = conn.execute("SELECT store_id, evidence FROM group_events WHERE kind = 'member_ejected'").fetchall()
    assert ejected[0][0] == mover and ejected[0][1]["outcome"] == "mismatch"
    assert_group_invariants(conn)
    assert_effective_prices_true(w)


def test_two_converging_zones_merge_smaller_into_larger(conn, two_zones):
    w = two_zones
    w.zones["B"] = dict(w.zones["A"])
    anchors = groups_of(conn)
    w.scrape(list(anchors), day(1))
    maintain(conn, 1)
    assert partition(conn) == {frozenset(w.stores)}
    larger = max(anchors, key=lambda a: (len(anchors[a]), -a))
    assert list(groups_of(conn)) == [larger]
    assert_group_invariants(conn)


def test_stale_anchor_blocks_decisions_until_rescraped(conn, two_zones):
    w = two_zones
    anchors = groups_of(conn)
    a_anchor = next(a for a in anchors if w.zone_of[a] == "A")
    mover = next(s for s in anchors[a_anchor] if s != a_anchor)
    w.zone_of[mover] = "B"
    # day 4: the mover is re-scraped but its anchor was last scraped on day 0 (> 72 h ago)
    w.scrape([mover], day(4))
    w.scrape([a for a in anchors if a != a_anchor], day(4))
    before = partition(conn)
    counts = maintain(conn, 4)
    group_of_a = conn.execute("SELECT group_id FROM stores WHERE store_id = %s", (a_anchor,)).fetchone()[0]
    assert counts["stale"] == [group_of_a]
    assert anchors_of(conn, counts["stale"]) == [a_anchor]
    assert counts["health"]["stale_anchors"] == 1 and counts["health"]["ejected"] == 0
    assert partition(conn) == before
    # the stale-anchor branch re-scrapes the anchor: now the mover is ejected
    w.scrape([a_anchor], day(4))
    counts = maintain(conn, 4)
    assert counts["stale"] == [] and counts["health"]["ejected"] == 1
    assert partition(conn) == truth(w)


def test_failed_scrape_changes_nothing(conn, two_zones):
    w = two_zones
    w.scrape(list(groups_of(conn)), day(1))
    maintain(conn, 1)
    snapshot = (partition(conn), conn.execute("SELECT count(*), sum(price) FROM prices").fetchone(), event_count(conn))
    members = [s for s in w.stores if s not in groups_of(conn)]
    for s in members:
        w.zone_of[s] = "B" if w.zone_of[s] == "A" else "A"  # would be ejected if it were observed
    w.fail_scrape(members, day(2))
    w.scrape(list(groups_of(conn)), day(2))
    counts = maintain(conn, 2)
    assert counts["health"]["checked"] == 0
    prices_now = conn.execute("SELECT count(*), sum(price) FROM prices").fetchone()
    assert (partition(conn), prices_now) == snapshot[:2]
    kinds = {k for (k,) in conn.execute("SELECT DISTINCT kind FROM group_events WHERE run_id = 'run-2'")}
    assert kinds <= {"verified"}


def test_anchor_that_moves_zone_is_replaced_not_followed(conn):
    w = World.build(conn, ["A", "A", "A", "A", "B", "B"])
    w.derive_zone("B", "A", 0.25)
    w.scrape(w.stores, day(0))
    maintain(conn, 0)
    anchors = groups_of(conn)
    a_anchor = next(a for a in anchors if w.zone_of[a] == "A")
    w.zone_of[a_anchor] = "B"
    w.scrape(list(anchors) + list(anchors[a_anchor] - {a_anchor}), day(1))
    counts = maintain(conn, 1)
    assert counts["health"]["anchors_replaced"] == 1
    assert partition(conn) == truth(w)
    new_groups = groups_of(conn)
    a_group = next(m for m in new_groups.values() if w.stores[1] in m)
    assert a_anchor not in a_group
    replaced = conn.execute("SELECT store_id, other_store_id, evidence FROM group_events WHERE kind = 'anchor_replaced'").fetchone()
    assert replaced[1] == a_anchor and replaced[2]["reason"] == "anchor_drift"
    assert_group_invariants(conn)
    assert_effective_prices_true(w)


def test_rerunning_the_same_day_changes_nothing_further(conn, two_zones):
    w = two_zones
    mover = next(s for s in w.stores if s not in groups_of(conn))
    w.zone_of[mover] = "B" if w.zone_of[mover] == "A" else "A"
    w.scrape(list(groups_of(conn)) + [mover], day(1))
    maintain(conn, 1)
    state = (partition(conn), event_count(conn), conn.execute("SELECT count(*) FROM prices").fetchone())
    again = maintain(conn, 1)
    assert (partition(conn), event_count(conn), conn.execute("SELECT count(*) FROM prices").fetchone()) == state
    assert again["merge"].get("merged", 0) == 0 and again["health"].get("ejected", 0) == 0


def test_dry_run_writes_nothing(conn, two_zones):
    w = two_zones
    mover = next(s for s in w.stores if s not in groups_of(conn))
    w.zone_of[mover] = "B" if w.zone_of[mover] == "A" else "A"
    w.scrape(list(groups_of(conn)) + [mover], day(1))
    state = (partition(conn), event_count(conn), conn.execute("SELECT count(*) FROM comparisons").fetchone())
    counts = maintain(conn, 1, dry_run=True)
    assert counts["health"]["decisions"] == 1
    assert (partition(conn), event_count(conn), conn.execute("SELECT count(*) FROM comparisons").fetchone()) == state


def test_anchor_failing_for_several_runs_hands_over_to_its_freshest_member(conn, two_zones):
    w = two_zones
    anchors = groups_of(conn)
    a_anchor = next(a for a in anchors if w.zone_of[a] == "A")
    members = sorted(anchors[a_anchor] - {a_anchor})
    w.scrape(members[:1], day(1))
    w.scrape(members[1:2], day(2))
    for n in (1, 2, 3):
        w.fail_scrape([a_anchor], day(n))
    stale = find_stale_anchors(conn, day(3), SETTINGS, run_id="run-3")
    conn.commit()
    group = conn.execute("SELECT group_id, anchor_store_id FROM store_groups WHERE anchor_store_id = %s", (members[1],)).fetchone()
    assert group is not None, "the freshest member did not become the anchor"
    assert group[0] not in stale  # re-scraped on day 2 after its deduplication: a full, current catalogue
    event = conn.execute("SELECT evidence FROM group_events WHERE kind = 'anchor_replaced'").fetchone()[0]
    assert event["reason"] == "anchor_failed" and event["anchor_failures"] == 3
    assert_group_invariants(conn)


def test_blocking_never_pairs_lists_too_far_apart_to_match(conn, two_zones):
    assert candidate_pairs(conn, day(0), SETTINGS) == []  # a fifth of the basket differs: no MATCH can


def test_recorded_comparisons_are_reused(conn):
    two_zones = World.build(conn, ["A", "A", "B", "A", "B", "B", "A"])
    two_zones.derive_zone("B", "A", 0.03)  # 3 of 120 products: a candidate pair, a different list
    two_zones.scrape(two_zones.stores, day(0))
    maintain(conn, 0)
    pairs = candidate_pairs(conn, day(0), SETTINGS)
    assert pairs, "the two zones share most prices: their anchors are candidates"
    # the merge pass stopped comparing the two zone anchors early ("no match"); now compare them fully
    first = compare_pairs(conn, pairs, day(0), "run-x", SETTINGS)
    assert (first["compared"], first["mismatch"]) == (len(pairs), len(pairs))
    again = compare_pairs(conn, pairs, day(0), "run-y", SETTINGS)
    assert (again["compared"], again["reused"]) == (0, len(pairs))
    merged = merge_groups(conn, day(0), "run-y", SETTINGS)
    conn.commit()
    assert merged["compared"] == 0 and merged["reused"] >= 1
    # a changed price on one side invalidates the remembered result
    anchor = pairs[0][0]
    conn.execute("UPDATE prices SET price = price + 1 WHERE store_id = %s AND product_id = %s",
                 (anchor, two_zones.products[0]))
    conn.commit()
    assert compare_pairs(conn, pairs, day(0), "run-z", SETTINGS)["compared"] == len(pairs)


def test_deduplication_can_run_as_its_own_batched_task(conn):
    w = World.build(conn, ["A", "A", "A", "B", "B"])
    w.derive_zone("B", "A", 0.2)
    w.scrape(w.stores, day(0))
    merge_groups(conn, day(0), "run-0", SETTINGS, deduplicate=False)
    conn.commit()
    rows = conn.execute("SELECT count(*) FROM prices").fetchone()[0]
    assert rows == len(w.stores) * len(w.products)  # decisions written, rows untouched
    assert_effective_prices_true(w)
    counts = deduplicate_members(conn, day(0), SETTINGS, batch_stores=1)
    conn.commit()
    assert counts == {"members": 3, "deduplicated": 3 * len(w.products)}
    assert_effective_prices_true(w)
    assert deduplicate_members(conn, day(0), SETTINGS)["deduplicated"] == 0  # idempotent


def test_members_of_merged_groups_are_never_judged_on_their_deduplicated_rows(conn):
    """After a merge, members keep only overrides and rows their old anchor lacked; a normal day
    (anchors scraped only) must not compare those leftovers with the new anchor."""
    w = World.build(conn, ["A", "A", "A", "B", "B", "B"], products=400)
    w.derive_zone("B", "A", 0.2)
    w.add_gaps(0.15)
    for s in w.stores[1:3] + w.stores[4:6]:  # about 0.6 % of the overlap store-specific: still a MATCH
        w.overrides[s] = {p: w.zones[w.zone_of[s]][p] + 1 for p in w.carried(s)[:2]}
    w.scrape(w.stores, day(0))
    maintain(conn, 0)
    assert partition(conn) == truth(w)
    w.zones["B"] = dict(w.zones["A"])  # the zones converge
    w.scrape(list(groups_of(conn)), day(1))
    maintain(conn, 1)
    assert partition(conn) == {frozenset(w.stores)}
    w.scrape(list(groups_of(conn)), day(2))
    counts = maintain(conn, 2)
    assert counts["health"].get("ejected", 0) == 0, counts
    assert partition(conn) == {frozenset(w.stores)}
    # (what the absorbed members are served until their next scrape is not checked here: rows
    # deduplicated against their old anchor are inferred from the new one; see docs/grouping.md)


def test_anchor_moving_on_a_normal_day_gets_its_old_members_reverified_and_regrouped(conn):
    """Only anchors are scraped on a normal day, so a moved anchor matches the other zone's anchor and
    the two groups merge; nobody knows yet which anchor moved, so every member not compared in that
    merge is planned for the next run, whatever the budget, and the next round puts it right."""
    from pricegroups.grouping.planning import plan_scrape

    w = World.build(conn, ["A", "A", "A", "B", "B", "B"])
    w.derive_zone("B", "A", 0.25)
    w.scrape(w.stores, day(0))
    maintain(conn, 0)
    assert partition(conn) == truth(w)
    anchors = groups_of(conn)
    a_anchor = next(a for a in anchors if w.zone_of[a] == "A")
    w.zone_of[a_anchor] = "B"
    w.scrape(list(anchors), day(1))
    maintain(conn, 1)
    assert len(partition(conn)) == 1  # the anchors matched: merged, as far as anyone can tell
    flagged = {r[0] for r in conn.execute("SELECT store_id FROM stores WHERE needs_verification")}
    assert flagged == set(w.stores) - set(anchors)
    no_budget = SETTINGS.with_overrides({"verify_budget_share": 0.0})
    planned = plan_scrape(conn, day(2), no_budget)
    assert flagged <= set(planned)
    w.scrape(planned, day(2))
    maintain(conn, 2, no_budget)
    assert partition(conn) == truth(w)
    assert conn.execute("SELECT count(*) FROM stores WHERE needs_verification").fetchone()[0] == 0
    assert_group_invariants(conn)
    assert_effective_prices_true(w)


def test_a_chain_wide_change_scrapes_the_members_that_cover_what_its_anchor_lacks(conn):
    from pricegroups.grouping.health import complement_members as cover
    from pricegroups.grouping.service import complement_members

    w = World.build(conn, ["A", "A", "A", "A", "B", "B", "B"])
    w.derive_zone("B", "A", 0.25)
    w.add_gaps(0.1)
    w.scrape(w.stores, day(0))
    maintain(conn, 0)
    anchors = groups_of(conn)
    w.scrape(list(anchors), day(1))
    assert complement_members(conn, day(1), SETTINGS) == []  # an ordinary day
    for zone in w.zones.values():  # a new week: a fifth of every list changes
        for p in w.products[::5]:
            zone[p] += Decimal("0.30")
    w.scrape(list(anchors), day(2))
    chosen = complement_members(conn, day(2), SETTINGS)
    expected = []  # per group, the cover of what its members carry and its anchor does not, from the truth
    for anchor, members in anchors.items():
        beyond = {m: set(w.carried(m)) - set(w.carried(anchor)) for m in members if m != anchor}
        beyond = {m: products for m, products in beyond.items() if products}
        allowed = max(1.0, SETTINGS.max_member_deviation * len(w.carried(anchor)))
        expected += cover(beyond, allowed) if beyond else []
    assert chosen == sorted(expected) and chosen
    w.scrape(chosen[:1], day(2))  # one of them was scraped in this run already: not again
    assert complement_members(conn, day(2), SETTINGS) == chosen[1:]


def test_an_anchor_that_jumps_to_another_list_gets_members_scraped_in_the_same_run(conn):
    from pricegroups.grouping.service import jumped_anchor_members

    w = World.build(conn, ["A", "A", "A", "A", "B", "B", "B"])
    w.derive_zone("B", "A", 0.25)
    w.scrape(w.stores, day(0))
    maintain(conn, 0)
    anchors = groups_of(conn)
    a_anchor = next(a for a in anchors if w.zone_of[a] == "A")
    assert jumped_anchor_members(conn, day(1), SETTINGS) == []  # nobody scraped at day 1 yet
    w.scrape(list(anchors), day(1))
    assert jumped_anchor_members(conn, day(1), SETTINGS) == []  # an ordinary day
    w.zone_of[a_anchor] = "B"
    w.scrape(list(anchors), day(2))
    members = [s for s in w.stores if w.zone_of[s] == "A"]
    assert jumped_anchor_members(conn, day(2), SETTINGS) == sorted(members)  # its 3 members, verified first
    w.scrape(members, day(2))
    maintain(conn, 2)
    assert partition(conn) == truth(w)  # the anchor drifted away; its old members keep their list
    assert_group_invariants(conn)


def test_risk_ordered_verification_catches_a_moved_member_within_a_round_of_the_budget(conn):
    """The budget goes round every member (staleness first), so a silent move is found in members/budget days."""
    from pricegroups.grouping.planning import plan_scrape

    w = World.build(conn, ["A"] * 9 + ["B"] * 3)
    w.derive_zone("B", "A", 0.25)
    w.scrape(w.stores, day(0))
    maintain(conn, 0)
    assert partition(conn) == truth(w)
    by_risk = SETTINGS.with_overrides({"verify_budget_share": 0.2, "verify_random_share": 0.0})  # 2 of 10 a day
    anchors = groups_of(conn)
    mover = max(s for s in w.stores if s not in anchors and w.zone_of[s] == "A")  # the last in id order
    w.zone_of[mover] = "B"
    caught = None
    for n in range(1, 8):
        planned = plan_scrape(conn, day(n), by_risk)
        w.scrape(planned, day(n))
        maintain(conn, n, by_risk)
        if partition(conn) == truth(w):
            caught = n
            break
    assert caught is not None and caught <= 5  # 10 members, 2 a day
    assert_group_invariants(conn)
