"""PriceComparer: the rules of DESIGN.md §5."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pricegroups.grouping.comparer import Counts, Outcome, PriceComparer, StorePricing, judge
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
    b = catalogue(50)
    b[7] = (200, 0, False)
    c = compare(store("a", catalogue(50)), store("b", b))
    assert c.counts.agreeing == 49 and c.outcome is Outcome.MATCH  # 49 / 50 = 0.98, the threshold itself
    assert c.disagreeing == (7,)


def test_threshold_is_inclusive():
    b = catalogue(100)
    b[0] = b[1] = (999, 0, False)
    assert compare(store("a", catalogue(100)), store("b", b)).outcome is Outcome.MATCH  # 98 / 100
    b[2] = (999, 0, False)
    assert compare(store("a", catalogue(100)), store("b", b)).outcome is Outcome.MISMATCH  # 97 / 100


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


@pytest.mark.parametrize("threshold,expected", [(0.95, Outcome.MATCH), (0.99, Outcome.MISMATCH)])
def test_judging_counts_follows_the_settings(threshold, expected):
    assert judge(Counts(100, 97, 100, 100), Settings(match_threshold=threshold))[0] is expected


def test_comparison_is_symmetric():
    a, b = catalogue(60), catalogue(70)
    b[5] = (1, 0, False)
    ab = compare(store("a", a), store("b", b))
    ba = compare(store("b", b), store("a", a))
    assert (ab.outcome, ab.counts.overlap, ab.counts.agreeing) == (ba.outcome, ba.counts.overlap, ba.counts.agreeing)
