"""Why a served price was wrong: the demo report's causes, read from a scenario's truth."""

from __future__ import annotations

import pytest

from pricegroups.demo.report import WRONG_CAUSES, DayMetrics, _wrong_cause, causes_text, wrong_by_cause


class Truth:
    """The two Scenario methods _wrong_cause reads."""

    def __init__(self, zones: dict[str, str], deviations: dict[str, dict[str, str]]):
        self.zones, self.devs = zones, deviations

    def zone_of(self, chain: str, store: str, day: int) -> str:
        return self.zones[store]

    def deviations(self, chain: str, store: str, day: int) -> dict[str, str]:
        return self.devs.get(store, {})


@pytest.mark.parametrize(
    "zones, deviations, from_anchor, cause",
    [
        ({"M": "z2", "A": "z1"}, {"M": {"s1": "lag"}}, True, "moved"),  # a move explains the rest
        ({"M": "z1", "A": "z1"}, {"M": {"s1": "lag"}, "A": {"s1": "own"}}, True, "member_late"),
        ({"M": "z1", "A": "z1"}, {"M": {"s1": "own"}}, True, "member_own"),
        ({"M": "z1", "A": "z1"}, {"A": {"s1": "lag"}}, False, "not_at_anchor"),
        ({"M": "z1", "A": "z1"}, {"A": {"s1": "lag"}}, True, "anchor_late"),
        ({"M": "z1", "A": "z1"}, {"A": {"s1": "own"}}, True, "anchor_own"),
        ({"M": "z1", "A": "z1"}, {"M": {"s1": "glitch"}, "A": {"s1": "glitch"}}, True, "member_glitch"),
        ({"M": "z1", "A": "z1"}, {"A": {"s1": "glitch"}}, True, "anchor_glitch"),
        ({"M": "z1", "A": "z1"}, {"A": {"s2": "own"}}, True, "other"),
    ],
)
def test_wrong_cause_names_the_first_explanation_that_applies(zones, deviations, from_anchor, cause):
    assert _wrong_cause(Truth(zones, deviations), "c", "M", "A", from_anchor, ["s1"], 3) == cause
    assert cause in WRONG_CAUSES


def _day(day: int, causes: dict[str, int]) -> DayMetrics:
    return DayMetrics(day=day, run_id=f"r{day}", scraped=1, stores=2, groups=1, true_zones=1, ari=1.0,
                      inferred=100, wrong_inferred=sum(causes.values()), observed=1, wrong_observed=0, created=0,
                      updated=0, unchanged=0, ignored_older=0, merges=0, ejections=0, anchor_changes=0, wall_s=1.0,
                      wrong_causes=causes)


def test_causes_add_up_over_days_largest_first():
    days = [_day(0, {"moved": 2, "member_late": 5}), _day(1, {"moved": 7})]
    assert list(wrong_by_cause(days).items()) == [("moved", 9), ("member_late", 5)]
    lines = causes_text(days).splitlines()
    assert lines[0].split()[:2] == ["9", "64.3%"] and "moved" in lines[0]
