"""Health checks of one group: verify, eject, anchor drift, stale anchors, succession."""

from __future__ import annotations

from datetime import timedelta

from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.health import check_group
from pricegroups.grouping.rules.anchors import plan_succession
from pricegroups.grouping.model import Eject, GroupState, ReplaceAnchor, StoreState, Verify
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.settings import Settings
from tests.unit.grouping.synth import T

S = Settings()
A = {p: (100 + p, 0, False) for p in range(100)}
B = {p: (100 + p + (7 if p % 5 == 0 else 0), 0, False) for p in range(100)}  # 20% different


def setup(prices: dict, anchor, scraped=None, verified=None, failures=None):
    scraped = scraped or {}
    stores = {
        s: StoreState(s, "g", scraped.get(s, T), (verified or {}).get(s), (failures or {}).get(s, 0))
        for s in prices
    }
    group = GroupState("g", "c", anchor, tuple(sorted(s for s in prices if s != anchor)))
    matrix = PriceMatrix.from_prices(prices, {s: st.scraped_at for s, st in stores.items()})
    return group, stores, Comparer(matrix, S, T)


def test_matching_member_is_verified_and_mismatching_one_ejected():
    group, stores, comparer = setup({"a": A, "m1": A, "m2": A, "m3": B}, "a")
    report = check_group(group, stores, comparer)
    kinds = {(type(d).__name__, d.store) for d in report.decisions}
    assert kinds == {("Verify", "m1"), ("Verify", "m2"), ("Eject", "m3")}
    assert report.checked == 3


def test_inconclusive_member_is_left_alone():
    small = {p: A[p] for p in range(10)}
    group, stores, comparer = setup({"a": A, "m1": small}, "a")
    report = check_group(group, stores, comparer)
    assert report.decisions == () and report.inconclusive == 1


def test_member_not_rescraped_since_verification_is_not_checked():
    group, stores, comparer = setup({"a": A, "m1": B}, "a", scraped={"m1": T - timedelta(days=1)}, verified={"m1": T - timedelta(hours=1)})
    assert check_group(group, stores, comparer).checked == 0


def test_stale_anchor_blocks_every_decision():
    group, stores, comparer = setup({"a": A, "m1": B}, "a", scraped={"a": T - timedelta(hours=73)})
    report = check_group(group, stores, comparer)
    assert report.stale_anchor and report.decisions == ()


def test_anchor_that_moved_is_replaced_by_the_freshest_matching_member():
    scraped = {"m1": T - timedelta(hours=2), "m2": T - timedelta(hours=1), "m3": T - timedelta(hours=3)}
    group, stores, comparer = setup({"a": B, "m1": A, "m2": A, "m3": A}, "a", scraped=scraped)
    decisions = check_group(group, stores, comparer).decisions
    assert isinstance(decisions[0], ReplaceAnchor) and decisions[0].new_anchor == "m2"
    assert isinstance(decisions[1], Eject) and decisions[1].store == "a"
    assert {(type(d), d.store) for d in decisions[2:]} == {(Verify, "m1"), (Verify, "m3")}


def test_a_single_mismatching_member_is_ejected_not_made_anchor():
    group, stores, comparer = setup({"a": B, "m1": A}, "a")
    decisions = check_group(group, stores, comparer).decisions
    assert [(type(d), d.store) for d in decisions] == [(Eject, "m1")]


def test_succession_after_repeated_failures_picks_the_freshest_member():
    scraped = {"a": T - timedelta(days=2), "m1": T - timedelta(hours=5), "m2": T - timedelta(hours=1)}
    group, stores, _ = setup({"a": A, "m1": A, "m2": A}, "a", scraped=scraped, failures={"a": 3})
    decision = plan_succession(group, stores, T, S)
    assert decision.new_anchor == "m2" and decision.reason == "anchor_failed"
    group, stores, _ = setup({"a": A, "m1": A}, "a", failures={"a": 2})
    assert plan_succession(group, stores, T, S) is None


def with_support(prices: dict, anchor):
    from pricegroups.grouping.support import group_supports

    group, stores, comparer = setup(prices, anchor)
    supports = group_supports(comparer.matrix, {"g": group}, stores)
    return group, stores, Comparer(comparer.matrix, S, T, supports=supports)


def test_a_noisy_anchor_hands_over_to_the_member_that_represents_the_group():
    noisy = {**A, 3: (999, 0, False)}  # one price nobody else charges: within the anchor's own allowance
    group, stores, comparer = with_support({"a": noisy, "m1": A, "m2": A}, "a")
    decisions = check_group(group, stores, comparer).decisions
    replace = [d for d in decisions if isinstance(d, ReplaceAnchor)]
    assert len(replace) == 1 and (replace[0].new_anchor, replace[0].reason) == ("m1", "representative")
    assert replace[0].evidence["off_consensus"] == {"a": 1, "m1": 0, "m2": 0}
    # every check is redone against the new anchor; the old anchor stays as a verified member
    assert {(type(d).__name__, d.store, d.anchor) for d in decisions if not isinstance(d, ReplaceAnchor)} == {
        ("Verify", "a", "m1"), ("Verify", "m2", "m1")}


def test_a_clean_anchor_is_kept_over_a_noisy_member():
    noisy = {**A, 3: (999, 0, False)}
    group, stores, comparer = with_support({"a": A, "m1": noisy, "m2": A}, "a")
    decisions = check_group(group, stores, comparer).decisions
    assert not any(isinstance(d, ReplaceAnchor) for d in decisions)
    assert {(type(d).__name__, d.store) for d in decisions} == {("Verify", "m1"), ("Verify", "m2")}


def test_members_that_back_each_others_difference_are_a_different_list_and_leave():
    # m2 and m3 differ from the anchor on 3 of 300 products (1 %: a lone store would be kept with
    # overrides), but they charge the same other prices: a second list inside the group
    wide = {p: (100 + p, 0, False) for p in range(300)}
    twin = {**wide, 0: (555, 0, False), 1: (556, 0, False), 2: (557, 0, False)}
    group, stores, comparer = with_support({"a": wide, "m1": wide, "m2": twin, "m3": twin}, "a")
    decisions = check_group(group, stores, comparer).decisions
    assert {(type(d).__name__, d.store) for d in decisions} == {("Verify", "m1"), ("Eject", "m2"), ("Eject", "m3")}
    ejected = next(d for d in decisions if isinstance(d, Eject))
    assert ejected.comparison.counts.shared == 3 and "different price list" in ejected.comparison.reason


def test_a_lone_member_difference_is_its_own_deviation_and_kept():
    own = {**A, 0: (555, 0, False)}
    group, stores, comparer = with_support({"a": A, "m1": A, "m2": own}, "a")
    decisions = check_group(group, stores, comparer).decisions
    assert {(type(d).__name__, d.store) for d in decisions} == {("Verify", "m1"), ("Verify", "m2")}


def test_an_anchor_whose_prices_jumped_past_its_chains_median_is_flagged():
    from pricegroups.grouping.health import jumped_anchors

    # a new week's specials move every anchor of chain c (the median), g3 moved list on top of that
    fresh = {"g1": ("c", 0.16), "g2": ("c", 0.17), "g3": ("c", 0.40), "g4": ("d", 0.01), "g5": ("d", 0.035)}
    assert jumped_anchors(fresh, S) == ["g3"]  # g5: 0.035 is within 3 x 1 % of d's median (0.0225)
    assert jumped_anchors(fresh, Settings(max_member_deviation=0.1)) == []


def test_a_member_with_a_wider_catalogue_takes_over_when_no_noisier():
    """Products the anchor does not carry are served from older rows: the wider catalogue should anchor."""
    narrow = {p: A[p] for p in range(95)}  # the anchor lacks 5 of the group's products
    group, stores, comparer = with_support({"a": narrow, "m1": A, "m2": {p: A[p] for p in range(97)}}, "a")
    decisions = check_group(group, stores, comparer).decisions
    replace = [d for d in decisions if isinstance(d, ReplaceAnchor)]
    assert len(replace) == 1 and (replace[0].new_anchor, replace[0].reason) == ("m1", "coverage")
    assert replace[0].evidence["catalogue"] == {"a": 95, "m1": 100, "m2": 97}
    assert {(type(d).__name__, d.store, d.anchor) for d in decisions if not isinstance(d, ReplaceAnchor)} == {
        ("Verify", "a", "m1"), ("Verify", "m2", "m1")}


def test_a_wider_but_noisier_member_or_a_margin_too_small_keeps_the_anchor():
    narrow = {p: A[p] for p in range(95)}
    noisy_wide = {**A, 3: (999, 0, False)}
    group, stores, comparer = with_support({"a": narrow, "m1": noisy_wide, "m2": {p: A[p] for p in range(95)}}, "a")
    assert not any(isinstance(d, ReplaceAnchor) for d in check_group(group, stores, comparer).decisions)
    slightly = {p: A[p] for p in range(96)}  # 1 more product: within the 2 % margin (ceil(1.9) = 2)
    group, stores, comparer = with_support({"a": narrow, "m1": slightly, "m2": narrow}, "a")
    assert not any(isinstance(d, ReplaceAnchor) for d in check_group(group, stores, comparer).decisions)


def test_a_chain_whose_anchors_changed_en_masse_gets_a_complement_member_per_group():
    from pricegroups.grouping.health import complement_members, turnover_chains

    # chain c: a new week's specials move its median anchor by 16 %; chain d has an ordinary day,
    # one of its anchors jumped (that is jumped_anchors' case, not a turnover)
    fresh = {"g1": ("c", 0.16), "g2": ("c", 0.17), "g3": ("c", 0.02), "g4": ("d", 0.01), "g5": ("d", 0.40),
             "g6": ("d", 0.005)}
    assert turnover_chains(fresh, S) == ["c"]
    assert turnover_chains(fresh, Settings(max_member_deviation=0.1)) == []
    beyond = {"m1": set(range(12)), "m2": set(range(30)), "m3": set(range(30))}
    # most beyond the anchor; ties: smallest key; m3 adds nothing m2 does not cover
    assert complement_members(beyond, allowed=10) == ["m2"]
    assert complement_members({"m1": set()}, 10) == [] and complement_members({}, 10) == []


def test_complement_members_cover_the_group_rows_beyond_the_anchor_while_each_is_worth_more_than_noise():
    from pricegroups.grouping.health import complement_members

    # products 0-19 are carried by three members each (60 rows), 20-39 by m4 alone, 40-44 by m5 alone
    beyond = {"m1": set(range(20)), "m2": set(range(20)), "m3": set(range(20)),
              "m4": set(range(20, 40)), "m5": set(range(40, 45))}
    assert complement_members(beyond, allowed=10) == ["m1", "m4"]  # m5 refreshes 5 rows: within the noise
    assert complement_members(beyond, allowed=4) == ["m1", "m4", "m5"]
    assert complement_members(beyond, allowed=100) == ["m1"]  # the first is always taken


def test_a_late_anchor_hands_over_to_a_punctual_member_and_a_late_member_never_takes_the_role():
    from dataclasses import replace as with_fields

    group, stores, comparer = with_support({"a": A, "m1": A, "m2": A}, "a")
    assert not [d for d in check_group(group, stores, comparer).decisions if isinstance(d, ReplaceAnchor)]
    stores["a"] = with_fields(stores["a"], late=5, on_time=1)  # usually late with price changes
    decisions = check_group(group, stores, comparer).decisions
    replace = [d for d in decisions if isinstance(d, ReplaceAnchor)]
    assert len(replace) == 1 and (replace[0].new_anchor, replace[0].reason) == ("m1", "punctual")
    assert replace[0].evidence["often_late"] == ["a"]
    stores["m1"] = with_fields(stores["m1"], late=3, on_time=0)
    replace = [d for d in check_group(group, stores, comparer).decisions if isinstance(d, ReplaceAnchor)]
    assert [(d.new_anchor, d.reason) for d in replace] == [("m2", "punctual")]
    # a wider catalogue does not make a late member the anchor
    narrow = {p: A[p] for p in range(95)}
    group, stores, comparer = with_support({"a": narrow, "m1": A, "m2": {p: A[p] for p in range(96)}}, "a")
    stores["m1"] = with_fields(stores["m1"], late=4, on_time=0)
    assert not [d for d in check_group(group, stores, comparer).decisions if isinstance(d, ReplaceAnchor)]


def test_an_anchor_is_stale_without_current_pricing_or_after_its_rows_were_deduplicated():
    from pricegroups.grouping.health import anchor_stale

    settings = Settings()
    fresh = StoreState("a", "g", T, None)
    assert not anchor_stale(fresh, T, settings)
    assert anchor_stale(StoreState("a", "g", T - timedelta(hours=settings.window_hours + 1), None), T, settings)
    assert anchor_stale(StoreState("a", "g", None, None), T, settings)
    assert anchor_stale(StoreState("a", "g", T, T), T, settings)  # verified since its scrape: deduplicated rows
    assert not anchor_stale(StoreState("a", "g", T, T - timedelta(hours=1)), T, settings)
