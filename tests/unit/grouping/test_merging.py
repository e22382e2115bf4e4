"""Inter-group merging: smaller into larger, only into an anchor matched directly, deterministic."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.merging import _occurs_once, plan_merges, unshared_prices
from pricegroups.grouping.model import GroupState
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.settings import Settings
from tests.unit.grouping.synth import T

S = Settings()
BASE = {p: (100 + p, 0, False) for p in range(100)}


def shifted(share_of_100: int) -> dict:
    """BASE with `share_of_100` products repriced (1.5 % steps keep neighbours matching)."""
    return {p: (v[0] + (1 if p < share_of_100 else 0), 0, False) for p, v in BASE.items()}


def run(prices: dict, groups: list[GroupState]) -> list[tuple]:
    matrix = PriceMatrix.from_prices(prices, {s: T for s in prices})
    plan = plan_merges(groups, Comparer(matrix, S, T), S)
    return sorted((m.group, m.into) for m in plan.merges)


def test_smaller_group_merges_into_larger_whose_anchor_stays():
    groups = [GroupState("small", "c", "x", (), T), GroupState("big", "c", "y", ("y2", "y3"), T + timedelta(days=1))]
    assert run({"x": BASE, "y": BASE}, groups) == [("small", "big")]


def test_equal_sizes_merge_the_younger_into_the_older():
    groups = [GroupState("young", "c", "x", (), T), GroupState("old", "c", "y", (), T - timedelta(days=1))]
    assert run({"x": BASE, "y": BASE}, groups) == [("young", "old")]


def test_a_group_only_merges_into_an_anchor_it_matched_directly():
    # a ~ b and b ~ c, but a !~ c (2 % apart): c may not follow b into a (a ranks first: it has a member)
    prices = {"a": BASE, "b": shifted(1), "c": shifted(2)}
    groups = [GroupState("a", "c", "a", ("a2",), T)] + [GroupState(g, "c", g, (), T) for g in "bc"]
    assert run(prices, groups) == [("b", "a")]


def test_a_group_joins_the_nearest_matching_sink_not_the_first_ranked():
    # over 200 products (2 own deviations allowed): z matches x (2 apart) and y (1 apart), x !~ y (3 apart)
    base = {p: (100 + p, 0, False) for p in range(200)}
    prices = {"x": {**base, 0: (1, 0, False), 1: (1, 0, False)}, "y": {**base, 2: (1, 0, False)}, "z": base}
    groups = [GroupState("x", "c", "x", ("x2", "x3"), T), GroupState("y", "c", "y", ("y2",), T),
              GroupState("z", "c", "z", (), T)]
    assert run(prices, groups) == [("z", "y")]


def test_a_single_store_moves_to_a_sink_ranked_below_it_only_when_nearer():
    # over 200 products (2 own deviations allowed): s matches x (2 apart, ranked first) and w (ranked after s)
    base = {p: (100 + p, 0, False) for p in range(200)}
    x = {**base, 0: (1, 0, False), 1: (1, 0, False)}
    groups = [GroupState("x", "c", "x", ("x2",), T), GroupState("s", "c", "s", (), T),
              GroupState("w", "c", "w", (), T)]
    nearer = {**base, 2: (1, 0, False)}  # 1 apart from s, 3 from x
    assert run({"x": x, "s": base, "w": nearer}, groups) == [("s", "w")]
    as_near = {**base, 2: (1, 0, False), 3: (1, 0, False)}  # 2 apart from s: the higher-ranked x keeps it
    assert run({"x": x, "s": base, "w": as_near}, groups) == [("s", "x")]


def test_the_most_representative_store_becomes_the_sink_among_equals():
    # three ungrouped stores of one list; "n" shows a scattered price nobody else charges
    noisy = {**BASE, 7: (999, 0, False)}
    prices = {"a": BASE, "b": BASE, "n": noisy}
    groups = [GroupState(g, "c", g, (), T - timedelta(hours=i)) for i, g in enumerate("nab")]  # n is oldest
    assert run(prices, groups) == [("a", "b"), ("n", "b")]


def test_groups_with_stale_anchors_take_no_part():
    prices = {"a": BASE, "b": BASE}
    matrix = PriceMatrix.from_prices(prices, {"a": T, "b": T - timedelta(days=4)})
    groups = [GroupState("a", "c", "a", (), T), GroupState("b", "c", "b", (), T)]
    plan = plan_merges(groups, Comparer(matrix, S, T), S)
    assert plan.merges == () and plan.eligible == 1


def test_unshared_prices_counts_each_price_no_other_given_row_charges():
    rng = np.random.default_rng(3)
    keys = (rng.integers(1, 6, (90, 300)) * 2).astype(np.int32)  # few prices per product: most are shared
    keys[rng.random(keys.shape) < 0.2] = 0  # not carried
    scattered = rng.random(keys.shape) < 0.03
    keys[scattered] = rng.integers(10, 10_000, int(scattered.sum())) * 2 + 1  # mostly nobody else's
    matrix = PriceMatrix(tuple(range(90)), np.arange(300), keys, np.zeros_like(keys), (T,) * 90)
    rows = rng.permutation(90)[:70]
    naive = [sum(1 for c in range(300) if keys[r, c] and np.count_nonzero(keys[rows, c] == keys[r, c]) == 1)
             for r in rows]
    assert unshared_prices(matrix, rows).tolist() == naive


def test_codes_occurring_once_are_found_exactly_whatever_the_hash_buckets_hold():
    rng = np.random.default_rng(8)
    for n in (0, 1, 2, 50, 40_000):  # with twice as many buckets as codes, many buckets mix codes
        codes = rng.integers(0, max(1, n // 3), n) * 7919 + (rng.integers(0, 4, n) << 40)
        _, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
        assert _occurs_once(codes).tolist() == (counts[inverse] == 1).tolist()
