"""Spot checks on a real PostgreSQL: a member's page against what is served for it, after the anchors are in."""

from __future__ import annotations

import json
from decimal import Decimal

from pricegroups.grouping.spotcheck import judge_spot_checks, members_to_spot_check, spot_summary
from tests.integration.grouping.test_scenarios import maintain
from tests.integration.grouping.world import World, day, groups_of


def _listings(world: World) -> None:
    """SKU -> product for the world's chain, as the catalogue resolver would have recorded it."""
    world.conn.execute(
        """INSERT INTO listings (chain_id, sku, product_id, first_seen_at, last_seen_at)
           SELECT %s, 'SKU-' || p, p, %s, %s FROM unnest(%s::bigint[]) p ON CONFLICT DO NOTHING""",
        (world.chain_id, day(0), day(0), world.products),
    )


def _spot(world: World, run_id: str, store: int, when, products: list[int]) -> None:
    """What scrape/spot.py records: the store's true prices of some products."""
    world.conn.execute(
        "INSERT INTO spot_checks (run_id, store_id, chain_id, checked_at, pages, items) VALUES (%s, %s, %s, %s, 1, %s)",
        (run_id, store, world.chain_id, when, len(products)),
    )
    with world.conn.cursor().copy(
        "COPY spot_check_items (run_id, store_id, sku, price, was_price, on_special) FROM STDIN"
    ) as copy:
        for p in products:
            copy.write_row((run_id, store, f"SKU-{p}", world.true_price(store, p), None, False))
    world.conn.commit()


def _grouped(conn) -> World:
    world = World.build(conn, ["A", "A", "A", "B", "B"])
    world.derive_zone("B", "A", 0.3)
    _listings(world)
    world.scrape(world.stores, day(0))
    maintain(conn, 0)
    return world


def test_members_not_scraped_are_spot_checked_anchors_and_planned_stores_are_not(conn):
    world = _grouped(conn)
    groups = groups_of(conn)
    members = sorted(s for anchor, stores in groups.items() for s in stores if s != anchor)
    assert len(members) == 3, groups
    found = members_to_spot_check(conn, None, planned=[members[0]])
    assert found == {"acme": members[1:]}


def test_a_member_that_moved_zone_is_suspect_one_in_its_zone_is_not(conn):
    world = _grouped(conn)
    anchor_a = next(a for a, stores in groups_of(conn).items() if world.stores[0] in stores)
    stay, move = [s for s in world.stores[:3] if s != anchor_a]
    world.zone_of[move] = "B"  # moves on day 1; nobody has scraped it since
    world.scrape([a for a in groups_of(conn)], day(1), run_id="run-1")  # the anchors of day 1
    page = world.products[:40]
    _spot(world, "run-1", stay, day(1), page)
    _spot(world, "run-1", move, day(1), page)

    assert judge_spot_checks(conn, "run-1", world_settings()) == [move]
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT store_id, compared, mismatched, suspect, evidence FROM spot_checks WHERE run_id = 'run-1'")}
    differing = sum(1 for p in page if world.zones["A"][p] != world.zones["B"][p])
    assert rows[stay][:3] == (40, 0, False)
    assert rows[move][:3] == (40, differing, True) and differing >= 2
    evidence = rows[move][3] if isinstance(rows[move][3], dict) else json.loads(rows[move][3])
    assert {e["sku"] for e in evidence["examples"]} <= {f"SKU-{p}" for p in page}
    assert spot_summary(conn, "run-1") == {"stores": 2, "failed": 0, "pages": 2, "suspects": 1}


def test_a_difference_on_a_price_the_anchor_just_changed_is_timing(conn):
    world = _grouped(conn)
    anchor_a = next(a for a, stores in groups_of(conn).items() if world.stores[0] in stores)
    late = next(s for s in world.stores[:3] if s != anchor_a)
    page = world.products[:40]
    changed = page[:3]
    for p in changed:  # the anchor shows the chain's new price on day 1; the late store still the old one
        world.overrides.setdefault(anchor_a, {})[p] = world.zones["A"][p] + Decimal("0.30")
    world.scrape([anchor_a], day(1), run_id="run-1")
    _spot(world, "run-1", late, day(1), page)
    assert judge_spot_checks(conn, "run-1", world_settings()) == []
    row = conn.execute("SELECT mismatched, timing FROM spot_checks WHERE store_id = %s", (late,)).fetchone()
    assert row == (0, 3)


def world_settings():
    from tests.integration.grouping.world import SETTINGS

    return SETTINGS


def test_members_sharing_differences_with_a_late_anchor_are_scraped_and_the_anchor_re_elected(conn):
    world = World.build(conn, ["A", "A", "A", "A", "B"])
    _listings(world)
    world.scrape(world.stores, day(0))
    maintain(conn, 0)
    anchor = next(a for a, stores in groups_of(conn).items() if world.stores[0] in stores)
    members = sorted(s for s in groups_of(conn)[anchor] if s != anchor)
    page = world.products[:40]
    for p in page[:3]:  # the zone changes three prices on day 1; the anchor is late with all three
        world.overrides.setdefault(anchor, {})[p] = world.zones["A"][p]
        world.zones["A"][p] += Decimal("0.40")
    world.scrape([anchor], day(1), run_id="run-1")
    for m in members:
        _spot(world, "run-1", m, day(1), page)

    witnesses = judge_spot_checks(conn, "run-1", world_settings())
    assert witnesses == members[:2], "two members that show the anchor's differences"
    evidence = conn.execute("SELECT evidence FROM spot_checks WHERE store_id = %s", (members[0],)).fetchone()[0]
    assert sorted(evidence["anchor_off"]) == sorted(f"SKU-{p}" for p in page[:3])
    world.scrape(witnesses, day(1), run_id="run-1")  # the stale-anchor branch scrapes them in full
    maintain(conn, 1)
    new_anchor = next(a for a, stores in groups_of(conn).items() if members[0] in stores)
    assert new_anchor in witnesses, "a member that agrees with the others now stands for the group"
    reason = conn.execute(
        "SELECT evidence->>'reason' FROM group_events WHERE kind = 'anchor_replaced' AND run_id = 'run-1'"
    ).fetchone()
    assert reason == ("anchor_drift",), "both members disagree with the anchor the same way: it is the one off"


class _Counting:
    """Counts the statements a connection's cursors send (executemany: one per parameter set)."""

    def __init__(self, conn) -> None:
        self.sent = 0
        outer = self

        class Cursor(conn.cursor_factory):
            def execute(self, query, params=None, **kwargs):
                outer.sent += 1
                return super().execute(query, params, **kwargs)

            def executemany(self, query, params_seq, **kwargs):
                params_seq = list(params_seq)
                outer.sent += len(params_seq)
                return super().executemany(query, params_seq, **kwargs)

        self._conn, self._factory = conn, conn.cursor_factory
        conn.cursor_factory = Cursor

    def __enter__(self) -> "_Counting":
        return self

    def __exit__(self, *exc) -> None:
        self._conn.cursor_factory = self._factory


def test_judging_sends_as_many_statements_for_many_members_as_for_few(conn):
    """DESIGN §10: the served prices of every member checked are read set-based, never a query per member."""
    sent = {}
    for n, run in ((2, "few"), (8, "many")):
        world = World.build(conn, ["A"] * 9) if n == 2 else world
        if n == 2:
            _listings(world)
            world.scrape(world.stores, day(0))
            maintain(conn, 0)
        members = [s for s in world.stores if s not in groups_of(conn)][:n]
        assert len(members) == n
        for store in members:
            _spot(world, run, store, day(1), world.products[:30])
        with _Counting(conn) as counting:
            judge_spot_checks(conn, run, world_settings())
        sent[n] = counting.sent
    assert sent[2] == sent[8] and sent[2] <= 8, sent


def test_a_member_whose_one_difference_repeats_at_its_next_check_is_suspect(conn):
    """A store that moved to a near-twin zone differs on one product of its page: tolerated once, suspect when
    its next check shows it again, unless a verification came between the two checks."""
    world = _grouped(conn)
    anchor_a = next(a for a, stores in groups_of(conn).items() if world.stores[0] in stores)
    stay, move = [s for s in world.stores[:3] if s != anchor_a]
    page = world.products[:40]
    world.overrides[move] = {page[5]: world.zones["A"][page[5]] + Decimal("0.20")}  # its new zone: one price
    world.scrape(list(groups_of(conn)), day(1), run_id="run-1")
    for store in (stay, move):
        _spot(world, "run-1", store, day(1), page)
    assert judge_spot_checks(conn, "run-1", world_settings()) == []
    world.scrape(list(groups_of(conn)), day(2), run_id="run-2")
    for store in (stay, move):
        _spot(world, "run-2", store, day(2), page)
    assert judge_spot_checks(conn, "run-2", world_settings()) == [move]
    evidence = conn.execute(
        "SELECT evidence FROM spot_checks WHERE run_id = 'run-2' AND store_id = %s", (move,)).fetchone()[0]
    assert evidence["repeated"] == 1
    # verified in full after its second check: the two checks before it are no repetition any more
    conn.execute("UPDATE stores SET last_verified_at = %s WHERE store_id = %s", (day(2), move))
    world.scrape(list(groups_of(conn)), day(3), run_id="run-3")
    _spot(world, "run-3", move, day(3), page)
    assert judge_spot_checks(conn, "run-3", world_settings()) == []
