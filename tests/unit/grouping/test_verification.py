"""Choosing members to verify and estimating the served-price error: pure functions, no database."""

from __future__ import annotations

import math

import pytest

from pricegroups.grouping.verification import MemberRisk, choose_members, estimate, risk_score, served_share


def members(n: int, forced: set[int] = frozenset(), risk: dict[int, float] | None = None) -> list[MemberRisk]:
    risk = risk or {}
    return [MemberRisk(i, i in forced, risk.get(i, 0.0)) for i in range(1, n + 1)]


# -- choose_members ------------------------------------------------------------

def test_the_whole_budget_is_spent_every_run_half_random_half_by_risk():
    chosen = choose_members(members(100), budget=10, random_share=0.5, seed="2026-11-02T06:00:00+00:00/1")
    assert len(chosen) == 10
    assert sorted(chosen.values()).count("random") == 5
    assert sorted(chosen.values()).count("risk") == 5


def test_budget_is_spent_even_when_nobody_is_risky_or_due():
    # every member verified a moment ago (risk ~0): an old "due" gate would plan nobody
    chosen = choose_members(members(30, risk=dict.fromkeys(range(1, 31), 0.01)), 3, 0.5, "s")
    assert len(chosen) == 3


def test_random_draw_is_reproducible_for_a_seed_and_differs_for_another():
    pool = members(200)
    first = choose_members(pool, 20, 1.0, "2026-11-02T06:00:00+00:00/1")
    again = choose_members(list(reversed(pool)), 20, 1.0, "2026-11-02T06:00:00+00:00/1")
    other = choose_members(pool, 20, 1.0, "2026-11-03T06:00:00+00:00/1")
    assert first == again  # input order does not matter either
    assert set(first.values()) == {"random"}
    assert set(first) != set(other)


def test_random_draw_is_not_the_riskiest_or_the_lowest_ids():
    pool = members(200, risk={i: float(i) for i in range(1, 201)})
    drawn = {s for s, r in choose_members(pool, 20, 1.0, "x").items() if r == "random"}
    assert drawn != set(range(1, 21)) and drawn != set(range(181, 201))


def test_forced_members_come_outside_the_budget_and_are_never_drawn_twice():
    pool = members(20, forced={3, 7, 11})
    chosen = choose_members(pool, 2, 0.5, "s")
    assert {s for s, r in chosen.items() if r == "forced"} == {3, 7, 11}
    assert len([r for r in chosen.values() if r != "forced"]) == 2
    assert not {s for s, r in chosen.items() if r != "forced"} & {3, 7, 11}


def test_risk_part_takes_the_highest_risk_first_ties_by_store_id():
    pool = members(10, risk={4: math.inf, 9: 3.0, 2: 1.5, 6: 1.5, 8: 1.5})
    chosen = choose_members(pool, 4, 0.0, "s")
    assert chosen == {4: "risk", 9: "risk", 2: "risk", 6: "risk"}


def test_budget_of_one_still_samples_at_random_and_a_zero_budget_plans_only_forced():
    assert list(choose_members(members(5), 1, 0.5, "s").values()) == ["random"]
    assert choose_members(members(5, forced={2}), 0, 0.5, "s") == {2: "forced"}
    assert len(choose_members(members(3), 10, 0.5, "s")) == 3  # never more than there are members


def test_risk_score_is_staleness_weighted_by_group_change_and_deviations():
    never = risk_score(None, 7, False, 0, 0, 0.01)
    old = risk_score(14, 7, False, 0, 1000, 0.01)
    fresh = risk_score(1, 7, False, 0, 1000, 0.01)
    changed = risk_score(1, 7, True, 0, 1000, 0.01)
    deviating = risk_score(1, 7, False, 5, 1000, 0.01)
    assert never == math.inf
    assert old == pytest.approx(2.0) and fresh == pytest.approx(1 / 7)
    assert changed == pytest.approx(2 / 7)
    assert deviating == pytest.approx(1.5 / 7)  # 5 overrides of at most 1% of 1,000
    assert risk_score(1, 7, False, 500, 1000, 0.01) == pytest.approx(2 / 7)  # the deviation weight is capped
    # a member just verified goes to the back whatever its overrides: the budget goes round all members
    assert risk_score(0, 7, True, 500, 1000, 0.01) == 0.0 < risk_score(2, 7, False, 0, 1000, 0.01)
    assert risk_score(-3, 7, False, 0, 0, 0.01) == 0.0  # a backfill: verified after as_of


# -- estimate --------------------------------------------------------------------

def test_estimate_known_values():
    e = estimate([(100, 2), (100, 0), (200, 4)])
    assert (e.stores, e.checked, e.wrong) == (3, 400, 6)
    assert e.share == pytest.approx(0.015)
    # var = 3/2 * (0.5^2 + 1.5^2 + 1^2) / 400^2 = 3.28125e-5
    half = 1.959963984540054 * math.sqrt(3.28125e-5)
    assert e.low == pytest.approx(0.015 - half) and e.high == pytest.approx(0.015 + half)
    assert e.low < e.share < e.high


def test_estimate_interval_contains_share_and_is_clipped():
    e = estimate([(10, 9), (10, 0), (10, 10)])
    assert 0.0 <= e.low <= e.share <= e.high <= 1.0
    assert e.high == 1.0
    clustered = estimate([(50, 50), (50, 0), (50, 0), (50, 0)])
    assert clustered.low == 0.0 and clustered.share == 0.25


def test_estimate_is_wider_when_errors_cluster_in_few_stores():
    spread = estimate([(100, 1)] * 10)
    clustered = estimate([(100, 10)] + [(100, 0)] * 9)
    assert spread.share == clustered.share == 0.01
    assert clustered.high - clustered.low > spread.high - spread.low


def test_estimate_degenerate_cases():
    empty = estimate([])
    assert (empty.share, empty.low, empty.high, empty.stores) == (0.0, 0.0, 1.0, 0)
    nothing_checked = estimate([(0, 0), (0, 0)])
    assert (nothing_checked.share, nothing_checked.low, nothing_checked.high) == (0.0, 0.0, 1.0)
    one = estimate([(200, 3)])
    assert (one.share, one.low, one.high) == (0.015, 0.0, 1.0)  # no spread between stores from one store
    none_wrong = estimate([(1000, 0), (2000, 0)])
    assert none_wrong.share == 0.0 and none_wrong.low == 0.0
    assert none_wrong.high == pytest.approx(1 - 0.05 ** (1 / 3000))  # ~3/3000, never a zero-width interval
    assert 0.0009 < none_wrong.high < 0.0011


# -- served_share ------------------------------------------------------------------

def test_the_served_share_weighs_the_draws_by_the_prices_no_check_reached():
    draws = estimate([(100, 2), (100, 0), (200, 4)])
    served = served_share(draws, verified_prices=250, unverified_prices=750)
    assert served.unverified_share == 0.75
    assert (served.share, served.low, served.high) == pytest.approx((0.75 * draws.share, 0.75 * draws.low,
                                                                     0.75 * draws.high))
    assert (served.stores, served.checked, served.wrong) == (draws.stores, draws.checked, draws.wrong)


def test_the_served_share_of_runs_that_verified_every_member_is_nothing_and_of_nothing_recorded_the_draws():
    draws = estimate([(100, 2), (100, 1)])
    everyone = served_share(draws, verified_prices=900, unverified_prices=0)
    assert (everyone.share, everyone.low, everyone.high, everyone.unverified_share) == (0.0, 0.0, 0.0, 0.0)
    assert served_share(draws, 0, 0) == draws  # no run recorded what it left served: the draws' share stands
    assert draws.unverified_share == 1.0
