"""Properties of the grouping core (DESIGN.md §6.5, §6.6), checked on generated price data."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from pricegroups.grouping import comparer as comparer_module, merging
from pricegroups.grouping.blocking import build, candidate_pairs
from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.rules.compare import Outcome
from pricegroups.grouping.model import GroupState
from pricegroups.grouping.pricing import PriceMatrix, encode_key
from pricegroups.settings import Settings
from tests.unit.grouping.synth import T, make_stores

BLOCKING = Settings()

worlds = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10_000),
        "stores": st.integers(2, 40),
        "zones": st.integers(1, 5),
        "products": st.integers(40, 160),
        "carry": st.floats(0.7, 1.0),
        "noise": st.sampled_from([0.0, 0.004, 0.008]),
        "differ": st.sampled_from([0.04, 0.05, 0.1, 0.25]),
    }
)


def matrix_in_order(prices: dict, order: list[int]) -> PriceMatrix:
    """A matrix whose rows follow `order` (so row order is part of the input)."""
    store_ids, product_ids, keys, was = [], [], [], []
    for s in order:
        for p, (cents, was_c, special) in prices[s].items():
            store_ids.append(s)
            product_ids.append(p + 1)
            keys.append(encode_key(cents, special))
            was.append(was_c)
    return PriceMatrix.from_long(
        np.array(store_ids, dtype=np.int64), np.array(product_ids, dtype=np.int64),
        np.array(keys, dtype=np.int32), np.array(was, dtype=np.int32),
        {s: T for s in order}, stores=order,
    )


def groups_for(order: list[int], sizes: dict[int, int] | None = None) -> list[GroupState]:
    sizes = sizes or {}
    return [GroupState(s, "c", s, tuple(range(1000 * (s + 1), 1000 * (s + 1) + sizes.get(s, 0))), T) for s in order]


def merges(prices, order, settings, exhaustive=False, known=None, sizes=None):
    comparer = Comparer(matrix_in_order(prices, order), settings, T, known)
    plan = merging.plan_merges(groups_for(order, sizes), comparer, settings, exhaustive)
    return sorted((m.group, m.into) for m in plan.merges)


@hsettings(max_examples=40, deadline=None)
@given(worlds, st.randoms(use_true_random=False))
def test_grouping_does_not_depend_on_the_order_of_stores(world, rnd):
    prices, _ = make_stores(world["seed"], world["stores"], world["zones"], world["products"],
                            world["carry"], world["noise"], world["differ"])
    sizes = {s: random.Random(world["seed"] + s).randint(0, 3) for s in prices}
    order = sorted(prices)
    shuffled = order[:]
    rnd.shuffle(shuffled)
    assert merges(prices, order, BLOCKING, sizes=sizes) == merges(prices, shuffled, BLOCKING, sizes=sizes)


@hsettings(max_examples=40, deadline=None)
@given(worlds, st.integers(1, 20), st.floats(0, 1), st.randoms(use_true_random=False))
def test_grouping_does_not_depend_on_batches_of_comparisons(world, chunk, share, rnd):
    """Comparisons done earlier in batches of any size, in any order, lead to the same merges."""
    prices, _ = make_stores(world["seed"], world["stores"], world["zones"], world["products"],
                            world["carry"], world["noise"], world["differ"])
    order = sorted(prices)
    reference = merges(prices, order, BLOCKING)
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1:]]
    rnd.shuffle(pairs)
    batch = Comparer(matrix_in_order(prices, order), BLOCKING, T)
    for a, b in pairs[: int(len(pairs) * share)]:
        batch.compare(a, b)
    original = comparer_module.SCAN_BLOCK
    comparer_module.SCAN_BLOCK = chunk
    try:
        assert merges(prices, order, BLOCKING, known=batch.signed_results()) == reference
    finally:
        comparer_module.SCAN_BLOCK = original


@hsettings(max_examples=int(os.environ.get("PRICEGROUPS_HYPOTHESIS_EXAMPLES", 60)), deadline=None)
@given(worlds)
def test_blocking_finds_exactly_the_merges_of_exhaustive_comparison(world):
    prices, _ = make_stores(world["seed"], world["stores"], world["zones"], world["products"],
                            world["carry"], world["noise"], world["differ"])
    order = sorted(prices)
    assert merges(prices, order, BLOCKING) == merges(prices, order, BLOCKING, exhaustive=True)


@hsettings(max_examples=int(os.environ.get("PRICEGROUPS_HYPOTHESIS_EXAMPLES", 60)), deadline=None)
@given(worlds)
def test_blocking_candidates_include_every_matching_pair(world):
    prices, _ = make_stores(world["seed"], world["stores"], world["zones"], world["products"],
                            world["carry"], world["noise"], world["differ"])
    order = sorted(prices)
    matrix = matrix_in_order(prices, order)
    comparer = Comparer(matrix, BLOCKING, T)
    matching = {
        (a, b) for i, a in enumerate(order) for b in order[i + 1:]
        if comparer.compare(a, b, examples=False).outcome is Outcome.MATCH
    }
    assert matching <= candidate_pairs(matrix, order, BLOCKING)


def test_zones_further_apart_than_the_threshold_never_merge():
    prices, zone_of = make_stores(11, 60, 4, 200, carry=0.85, noise=0.008, differ=0.04)
    order = sorted(prices)
    for group, into in merges(prices, order, BLOCKING):
        assert zone_of[group] == zone_of[into]


def test_blocking_prunes_independently_priced_stores_and_tiny_catalogues_that_disagree():
    rnd = random.Random(5)
    prices = {s: {p: (rnd.randint(100, 100_000), 0, False) for p in range(300)} for s in range(4)}
    prices[4] = {p: prices[0][p] for p in range(20)}  # a tiny catalogue priced like store 0
    prices[5] = {p: (p + 1, 0, False) for p in range(1)}  # one product: too few to rule anything out
    matrix = matrix_in_order(prices, sorted(prices))
    pairs = candidate_pairs(matrix, sorted(prices), BLOCKING)
    assert pairs == {(0, 4)} | {(s, 5) for s in range(5)}


@hsettings(max_examples=30, deadline=None)
@given(worlds)
def test_one_merge_pass_is_a_fixpoint(world):
    """After a pass no two remaining anchors match, so 'merge until nothing matches' is one pass."""
    from pricegroups.grouping.book import GroupBook

    prices, _ = make_stores(world["seed"], world["stores"], world["zones"], world["products"],
                            world["carry"], world["noise"], world["differ"])
    order = sorted(prices)
    matrix = matrix_in_order(prices, order)
    book = GroupBook.ungrouped({s: "c" for s in order}, T)
    book.with_freshness({s: T for s in order})
    book.maintenance_round(matrix, T, BLOCKING)
    again = merging.plan_merges(list(book.groups.values()), Comparer(matrix, BLOCKING, T), BLOCKING, exhaustive=True)
    assert again.merges == ()


@hsettings(max_examples=int(os.environ.get("PRICEGROUPS_HYPOTHESIS_EXAMPLES", 60)), deadline=None)
@given(worlds, st.integers(1, 4), st.lists(st.integers(0, 30), min_size=40, max_size=40), st.integers(4, 64))
def test_blocking_never_misses_a_match_under_the_new_rule(world, per_group, hours_ago, basket):
    """Anchors with members backing their prices (shared vs own), scraped hours apart (timing)."""
    from datetime import timedelta

    from pricegroups.grouping.model import StoreState
    from pricegroups.grouping.support import group_supports

    prices, zone_of = make_stores(world["seed"], world["stores"], world["zones"], world["products"],
                                  world["carry"], world["noise"], world["differ"])
    order = sorted(prices)
    anchors = order[:: per_group + 1]
    members = {a: tuple(s for s in order if s not in anchors and zone_of[s] == zone_of[a]
                        and order.index(s) // (per_group + 1) == order.index(a) // (per_group + 1)) for a in anchors}
    at = {s: T - timedelta(hours=hours_ago[i % len(hours_ago)]) for i, s in enumerate(order)}
    matrix = PriceMatrix.from_prices(prices, at)
    groups = {a: GroupState(a, "c", a, members[a]) for a in anchors}
    states = {s: StoreState(s, next((a for a in anchors if s == a or s in members[a]), s), at[s], T - timedelta(days=1))
              for s in order}
    supports = group_supports(matrix, groups, states)
    tight = Settings(blocking_basket=basket)  # a small basket makes the pigeonhole argument the only guard
    comparer = Comparer(matrix, tight, T, supports=supports, change_rate=0.05)
    matching = {
        (a, b) for i, a in enumerate(anchors) for b in anchors[i + 1:]
        if comparer.compare(a, b, examples=False).outcome is Outcome.MATCH
    }
    assert matching <= candidate_pairs(matrix, anchors, tight, supported=True, change_rate=0.05)


@pytest.mark.parametrize("supported", [False, True])
def test_blocking_compares_a_matching_pair_that_disagrees_on_every_basket_product(supported):
    """The pigeonhole bound at its edge: a MATCH whose every disagreement sits in the basket."""
    from pricegroups.grouping.model import StoreState
    from pricegroups.grouping.support import group_supports

    n, basket = 1000, 16
    base = {p: (100 + p, 0, False) for p in range(n)}
    a = {**base, **{p: (5000 + p, 0, False) for p in range(8)}} if supported else base
    b = {**base, **{p: (6000 + p, 0, False) for p in range(8 if supported else 0, basket if supported else 8)}}
    prices = {"a": a, "b": b, "a2": base, "b2": base}
    matrix = PriceMatrix.from_prices(prices, {s: T for s in prices})
    settings = Settings(blocking_basket=basket if supported else 8)
    supports = {}
    if supported:
        groups = {"A": GroupState("A", "c", "a", ("a2",)), "B": GroupState("B", "c", "b", ("b2",))}
        states = {s: StoreState(s, s.upper()[0], T, T) for s in prices}
        supports = group_supports(matrix, groups, states)
    comparer = Comparer(matrix, settings, T, supports=supports)
    assert comparer.compare("a", "b").outcome is Outcome.MATCH
    assert ("a", "b") in candidate_pairs(matrix, ["a", "b"], settings, supported=supported)


@hsettings(max_examples=int(os.environ.get("PRICEGROUPS_HYPOTHESIS_EXAMPLES", 60)), deadline=None)
@given(worlds, st.integers(0, 3), st.lists(st.integers(0, 90), min_size=40, max_size=40),
       st.sampled_from([0.0, 0.01, 0.05]))
def test_the_merge_pass_decides_as_comparing_every_pair_in_full_does(world, per_group, hours_ago, rate):
    """Early stopping (each pair's own scrape gap), batched scans and blocking change no merge and no evidence."""
    from datetime import timedelta

    from pricegroups.grouping.model import StoreState
    from pricegroups.grouping.support import group_supports

    prices, zone_of = make_stores(world["seed"], world["stores"], world["zones"], world["products"],
                                  world["carry"], world["noise"], world["differ"])
    order = sorted(prices)
    anchors = order[:: per_group + 1]
    members = {a: tuple(s for s in order[order.index(a) + 1: order.index(a) + 1 + per_group]
                        if s not in anchors and zone_of[s] == zone_of[a]) for a in anchors}
    at = {s: T - timedelta(hours=hours_ago[i % len(hours_ago)]) for i, s in enumerate(order)}
    matrix = PriceMatrix.from_prices(prices, at)
    groups = {a: GroupState(a, "c", a, members[a], T) for a in anchors}
    states = {s: StoreState(s, next((a for a in anchors if s == a or s in members[a]), s), at[s], T - timedelta(days=4))
              for s in order}
    supports = group_supports(matrix, groups, states)
    plan = merging.plan_merges(list(groups.values()), Comparer(matrix, BLOCKING, T, supports=supports,
                                                                change_rate=rate), BLOCKING)
    full = Comparer(matrix, BLOCKING, T, supports=supports, change_rate=rate)
    matches = {}
    for i, a in enumerate(anchors):
        for b in anchors[i + 1:]:
            comparison = full.compare(a, b, examples=False)
            if comparison.outcome is Outcome.MATCH:
                matches[(a, b)] = comparison.counts.disagreeing
    assert sorted((m.group, m.into) for m in plan.merges) == sorted(
        merging.match_matrix_merges(list(groups.values()), matches, full))
    for m in plan.merges:
        assert m.comparison.evidence() == full.compare(m.store, m.anchor, examples=True).evidence()


def test_blocking_candidates_of_many_rows_are_those_of_each_row():
    prices, _ = make_stores(4, 40, 3, 120, carry=0.8, noise=0.01, differ=0.3)
    prices[40] = {p: (p + 1, 0, False) for p in range(10)}  # a tiny catalogue: uncovered
    matrix = matrix_in_order(prices, sorted(prices))
    blocking = build(matrix, np.arange(41), Settings(blocking_basket=24))
    rows, among = np.array([0, 5, 40, 17]), np.arange(2, 41, 3)
    k, b = blocking.keys, blocking.bound
    naive = [[bool(((k[i] != k[j]) & (k[i] != 0) & (k[j] != 0)).sum() <= min(b[i], b[j])) for j in among]
             for i in rows]
    found = blocking.candidates_of_many(rows, among)
    assert found.tolist() == naive and found[2].all() and not found.all()  # row 40 is tiny: everyone's candidate
