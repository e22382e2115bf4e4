"""PriceComparer: the rules of DESIGN.md §5."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from pricegroups.grouping.comparer import PriceComparer, StorePricing
from pricegroups.grouping.rules.compare import (Counts, Outcome, judge, max_disagreements, max_disagreements_of,
                                                timing_allowance, timing_allowances)
from pricegroups.settings import Settings
from tests.unit.grouping.synth import T

S = Settings()


def store(name, prices, at=T):
    return StorePricing(name, at, prices)


def catalogue(n, cents=199, special=False, was=0, start=0):
    return {p: (cents, was, special) for p in range(start, start + n)}


def compare(a, b, settings=S):
    return PriceComparer(settings, T).compare(a, b)


def test_identical_catalogues_match_with_evidence():
    c = compare(store("a", catalogue(50)), store("b", catalogue(50)))
    assert (c.outcome, c.counts.overlap, c.counts.agreeing, c.rate) == (Outcome.MATCH, 50, 50, 1.0)
    assert c.evidence()["disagreeing"] == []


def test_one_cent_difference_is_a_disagreement_and_listed_as_evidence():
    b = catalogue(100)
    b[7] = (200, 0, False)
    c = compare(store("a", catalogue(100)), store("b", b))
    assert c.counts.agreeing == 99 and c.outcome is Outcome.MATCH  # 1 of 100: max_member_deviation itself
    assert c.disagreeing == (7,)
    # nobody else to ask: the difference is both stores' own
    assert (c.counts.shared, c.counts.own_a, c.counts.own_b) == (0, 1, 1)


def test_own_deviation_limit_is_inclusive():
    b = catalogue(200)
    b[0] = b[1] = (999, 0, False)
    assert compare(store("a", catalogue(200)), store("b", b)).outcome is Outcome.MATCH  # 2 of 200 = 1 %
    b[2] = (999, 0, False)
    c = compare(store("a", catalogue(200)), store("b", b))
    assert c.outcome is Outcome.MISMATCH and "own deviations" in c.reason


def lists(differ: set[int], n: int = 100) -> tuple[dict, dict]:
    """Two price lists over n products that differ on `differ`."""
    one = catalogue(n)
    two = {p: ((500 + p, 0, False) if p in differ else v) for p, v in one.items()}
    return one, two


def test_a_difference_other_stores_share_is_a_different_list():
    # two lists 1 % apart: each store alone would match (3 of 300), but each side has a store backing it
    one, two = lists({0, 1, 2}, n=300)
    groups = {"a": "A", "a2": "A", "b": "B", "b2": "B"}
    c = PriceComparer(S, T).compare(store("a", one), store("b", two), [store("a2", one), store("b2", two)], groups)
    assert c.outcome is Outcome.MISMATCH and "different price list" in c.reason
    assert c.counts.shared == 3 and c.evidence()["shared_with"] == [[0, 1, 1], [1, 1, 1], [2, 1, 1]]
    alone = PriceComparer(S, T).compare(store("a", one), store("b", two))
    assert alone.outcome is Outcome.MATCH and alone.counts.shared == 0


def test_a_difference_nobody_shares_is_a_store_deviation():
    one, noisy = lists({5})
    groups = {"a": "A", "a2": "A", "b": "B", "b2": "B"}
    # b's group-mate charges the list price: b's own price on product 5 is backed by nobody
    c = PriceComparer(S, T).compare(store("a", one), store("b", noisy), [store("a2", one), store("b2", one)], groups)
    assert c.outcome is Outcome.MATCH
    assert (c.counts.shared, c.counts.own_a, c.counts.own_b) == (0, 0, 1)


def test_noisy_stores_of_one_list_match_each_other_where_a_fixed_rate_would_not():
    # each store has its own 1 % of scattered deviations: 2 % apart, all of it idiosyncratic
    one = catalogue(100)
    a = {**one, 1: (901, 0, False)}
    b = {**one, 2: (902, 0, False)}
    groups = {"a": "A", "a2": "A", "b": "B", "b2": "B"}
    c = PriceComparer(S, T).compare(store("a", a), store("b", b), [store("a2", one), store("b2", one)], groups)
    assert c.counts.agreeing == 98 and c.outcome is Outcome.MATCH
    assert (c.counts.own_a, c.counts.own_b) == (1, 1)


def test_timing_explains_changes_between_scrapes_taken_apart():
    one, moved = lists({0, 1, 2})
    apart = PriceComparer(S, T).compare(store("a", one), store("b", moved, at=T - timedelta(days=2)))
    together = PriceComparer(S, T).compare(store("a", one), store("b", moved))
    assert together.outcome is Outcome.MISMATCH and together.counts.timing == 0
    assert apart.outcome is Outcome.MATCH and apart.counts.timing >= 3  # 1 %/day prior over 2 days


def test_special_flag_must_agree():
    b = catalogue(50)
    b[3] = (199, 0, True)
    assert compare(store("a", catalogue(50)), store("b", b)).counts.agreeing == 49


def test_was_price_counts_only_when_both_have_one():
    a = catalogue(40, was=250)
    b = catalogue(40)
    assert compare(store("a", a), store("b", b)).counts.agreeing == 40
    b = catalogue(40, was=260)
    assert compare(store("a", a), store("b", b)).counts.agreeing == 0


def test_small_overlap_is_inconclusive():
    assert compare(store("a", catalogue(29)), store("b", catalogue(29))).outcome is Outcome.INCONCLUSIVE
    # 40 shared of a 100-product catalogue and an 90-product one: below half of the smaller (45)
    c = compare(store("a", catalogue(100)), store("b", catalogue(90, start=60)))
    assert c.counts.overlap == 40 and c.outcome is Outcome.INCONCLUSIVE


def test_stale_side_is_inconclusive():
    old = T - timedelta(hours=S.window_hours, seconds=1)
    c = compare(store("a", catalogue(50)), store("b", catalogue(50), at=old))
    assert c.outcome is Outcome.INCONCLUSIVE and "not current" in c.reason
    assert compare(store("a", catalogue(50)), store("b", catalogue(50), at=T - timedelta(hours=72))).outcome is Outcome.MATCH


@pytest.mark.parametrize("deviation,expected", [(0.03, Outcome.MATCH), (0.02, Outcome.MISMATCH)])
def test_judging_counts_follows_the_settings(deviation, expected):
    counts = Counts(100, 97, 100, 100, own_a=3, own_b=3)
    assert judge(counts, Settings(max_member_deviation=deviation))[0] is expected


@pytest.mark.parametrize("tolerance,expected", [(0.03, Outcome.MATCH), (0.02, Outcome.MISMATCH)])
def test_shared_disagreements_follow_their_tolerance(tolerance, expected):
    counts = Counts(100, 97, 100, 100, shared=3)
    assert judge(counts, Settings(shared_deviation_tolerance=tolerance))[0] is expected


def test_comparison_is_symmetric():
    a, b = catalogue(60), catalogue(70)
    b[5] = (1, 0, False)
    ab = compare(store("a", a), store("b", b))
    ba = compare(store("b", b), store("a", a))
    assert (ab.outcome, ab.counts.overlap, ab.counts.agreeing) == (ba.outcome, ba.counts.overlap, ba.counts.agreeing)


def test_many_timing_bounds_at_once_equal_one_at_a_time():
    """The early stop and the blocking rely on both forms giving the same bound."""
    overlaps = np.array([0, 1, 17, 400, 4250, 30_000])
    gaps = [timedelta(0), timedelta(minutes=59, seconds=59, microseconds=999_999), timedelta(hours=1),
            timedelta(hours=13, microseconds=7), -timedelta(days=2, seconds=3), timedelta(days=3)]
    for rate in (0.0, 0.003, 0.05, 0.2):
        for gap in gaps:
            us = np.full(len(overlaps), gap // timedelta(microseconds=1))
            assert timing_allowances(overlaps, us, rate).tolist() == [
                timing_allowance(int(n), gap, rate) for n in overlaps]


@pytest.mark.parametrize("settings", [S, Settings(max_member_deviation=0.023, shared_deviation_tolerance=0.0017)])
def test_many_match_bounds_at_once_equal_one_at_a_time(settings):
    sizes = np.array([0, 1, 99, 100, 101, 4250, 29_999])
    timing = np.array([0, 3, 0, 1, 9, 180, 7])
    for supported in (False, True):
        flags = np.full(len(sizes), supported)
        assert max_disagreements_of(sizes, settings, timing, flags).tolist() == [
            max_disagreements(int(n), settings, int(t), supported) for n, t in zip(sizes, timing)]
