"""The generator's knobs (demo.generate.Knobs): each sets what it says, and the defaults change nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from pricegroups.demo.generate import Knobs, compact_scenario
from pricegroups.demo.scenario import Scenario

DAYS = range(5)


@pytest.fixture(scope="module")
def plain() -> Scenario:
    return compact_scenario()


def regular_stores(scenario: Scenario, chain: str) -> list:
    solo = {z.code for z in scenario.chain(chain).zones if z.independent}
    return [s for s in scenario.chain(chain).stores if s.zone not in solo]


def test_the_default_knobs_and_the_demo_values_give_the_scenario_built_without_knobs(plain):
    assert compact_scenario(knobs=Knobs()).to_json() == plain.to_json()
    assert compact_scenario(knobs=Knobs(own_stores=0.1, late_stores=0.1, glitch_share=0.0)).to_json() == plain.to_json()
    assert "glitch_share" not in plain.to_dict()["pricing"], "files written before glitches existed stay as they were"


@pytest.mark.parametrize("distance", [0.005, 0.01, 0.03])
def test_a_near_twin_at_distance_d_differs_from_its_twin_on_d_of_listings_every_day(distance):
    scenario = compact_scenario(knobs=Knobs(twin_share=distance))
    twins = [(c, z) for c in scenario.chains.values() for z in c.zones if z.twin_of]
    assert len(twins) == 2
    for chain, zone in twins:
        listings = len(chain.listings)
        for day in DAYS:
            mine = scenario.zone_prices(chain.code, zone.code, day)
            theirs = scenario.zone_prices(chain.code, zone.twin_of, day)
            differing = sum(mine[sku] != theirs[sku] for sku in mine)
            assert differing == round(distance * listings), (chain.code, day)
            assert abs(differing / listings - distance) < 1 / listings


def test_glitches_are_about_glitch_share_of_a_store_s_listings_on_one_day_only(plain):
    share = 0.02
    scenario = compact_scenario(knobs=Knobs(glitch_share=share))
    assert Scenario.from_json(scenario.to_json()).pricing.glitch_share == share  # the site's child process sees it
    repeated, glitches = 0, 0
    for chain in scenario.chains:
        for store in scenario.stores(chain):
            carried = len(scenario.assortment(chain, store.code)) - len(scenario.own_skus(chain, store.code))
            seen: Counter[str] = Counter()
            for day in DAYS:
                glitched = {s for s, cause in scenario.deviations(chain, store.code, day).items() if cause == "glitch"}
                assert len(glitched) == round(share * carried)
                shown = scenario.true_prices(chain, store.code, day)
                without = plain.true_prices(chain, store.code, day)  # the same store with no glitches
                assert {sku for sku in shown if shown[sku] != without[sku]} == glitched, (store.code, day)
                assert not any(shown[sku].on_special for sku in glitched)
                seen.update(glitched)
            repeated += sum(n > 1 for n in seen.values())
            glitches += sum(seen.values())
    assert repeated < 0.05 * glitches, "drawn afresh each day: a listing rarely glitches twice in five days"


def test_own_share_and_the_share_of_late_stores_are_set_on_the_same_stores_as_the_default(plain):
    one = compact_scenario(knobs=Knobs(own_share=0.01))
    none = compact_scenario(knobs=Knobs(own_share=0.0, late_stores=0.0))
    many = compact_scenario(knobs=Knobs(late_stores=0.25))
    for chain in plain.chains:
        default_own = {s.code for s in plain.chain(chain).stores if s.own_share}
        default_late = {s.code for s in plain.chain(chain).stores if s.lag_share}
        assert {s.code: s.own_share for s in one.chain(chain).stores if s.own_share} == dict.fromkeys(default_own, 0.01)
        assert {s.code for s in one.chain(chain).stores if s.lag_share} == default_late
        assert not any(s.own_share or s.lag_share for s in none.chain(chain).stores)
        late = {s.code for s in many.chain(chain).stores if s.lag_share}
        assert late >= default_late and len(late) == max(1, round(0.25 * len(regular_stores(many, chain))))
        assert {s.code for s in many.chain(chain).stores if s.own_share} == default_own


def test_the_daily_change_rate_sets_the_share_of_regular_prices_that_change_a_day(plain):
    fast = compact_scenario(knobs=Knobs(daily_change_rate=0.04))
    assert fast.pricing.daily_change_rate == 0.04 and plain.pricing.daily_change_rate == 0.006
    for scenario, rate in ((plain, 0.006), (fast, 0.04)):
        skus = scenario.skus("freshmart")
        changed = [sum(scenario.version("freshmart", sku, day) != scenario.version("freshmart", sku, day - 1)
                       for sku in skus) / len(skus) for day in range(1, 8)]
        assert 0.5 * rate < sum(changed) / len(changed) < 1.5 * rate


def test_knobs_out_of_range_are_refused():
    for bad in ({"twin_share": 0.0}, {"twin_share": 0.5}, {"glitch_share": -0.01}, {"own_share": 0.6},
                {"own_stores": 0.6, "late_stores": 0.6}, {"daily_change_rate": 0.0}):
        with pytest.raises(ValueError):
            Knobs(**bad)
