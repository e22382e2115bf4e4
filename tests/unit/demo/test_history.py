"""The scaled scenario and the first week worked out from its truth (demo/history.py): what preload writes."""

from __future__ import annotations

from collections import Counter

import pytest

from pricegroups.demo.generate import scaled_scenario
from pricegroups.demo.history import History, anchor_rows, member_rows, plan_history
from pricegroups.demo.scenario import Scenario
from pricegroups.settings import Settings


def _history(scenario: Scenario) -> History:
    ids = {c: {s.code: i for i, s in enumerate(chain.stores, 1)} for c, chain in scenario.chains.items()}
    return plan_history(scenario, 7, ids, {c: i for i, c in enumerate(scenario.chains, 1)}, Settings())


@pytest.fixture(scope="module")
def world():
    scenario = scaled_scenario(120, 200)
    return scenario, _history(scenario)


def test_scaled_scenario_has_the_asked_size_and_no_events():
    scenario = scaled_scenario(400, 500)
    stores = [s for c in scenario.chains.values() for s in c.stores]
    assert len(stores) == 400 and not scenario.events
    carried = [len(scenario.assortment(c, s.code)) for c, chain in scenario.chains.items() for s in chain.stores[:20]]
    assert 450 <= sum(carried) / len(carried) <= 550
    for chain in scenario.chains.values():
        assert 4 <= len(chain.zones) <= 40
        assert any(s.own_share for s in chain.stores) and any(s.lag_share for s in chain.stores)


def test_every_zone_is_anchored_by_a_store_without_prices_of_its_own(world):
    scenario, history = world
    for chain, anchors in history.anchors.items():
        for zone, anchor in anchors.items():
            store = scenario.store(chain, anchor)
            assert store.zone == zone
            if any(not s.own_share and not s.lag_share for s in scenario.stores(chain) if s.zone == zone):
                assert not store.own_share and not store.lag_share


def test_the_budget_verifies_a_tenth_of_the_members_every_day(world):
    scenario, history = world
    per_day = Counter((day, chain) for day, chain, _ in history.reasons)
    for chain in scenario.chains:
        members = len(history.members(chain))
        assert all(per_day[(day, chain)] == -(-members // 10) for day in range(1, 7))


def test_a_member_keeps_only_what_differs_from_its_anchor(world):
    scenario, history = world
    for chain in scenario.chains:
        for member in history.members(chain)[:10]:
            day = history.verified[(chain, member)]
            anchor = history.anchor_of(chain, member)
            truth = scenario.true_prices(chain, member, day)
            anchor_truth = scenario.true_prices(chain, anchor, day)
            expected = {sku for sku, price in truth.items() if anchor_truth.get(sku) != price}
            rows = list(member_rows(scenario, history, chain, member))
            assert {r.sku for r in rows} == expected
            assert all(r.price == truth[r.sku] and r.since in (0, day) for r in rows)


def test_an_anchor_row_is_dated_by_the_first_day_of_its_price(world):
    scenario, history = world
    chain = next(iter(scenario.chains))
    anchor = next(iter(history.anchors[chain].values()))
    for row in anchor_rows(scenario, history, chain, anchor):
        assert scenario.true_prices(chain, anchor, row.since)[row.sku] == row.price
        if row.since:
            assert scenario.true_prices(chain, anchor, row.since - 1)[row.sku] != row.price


def test_a_late_or_own_priced_anchor_has_the_rows_its_pages_show():
    """A zone whose every store is late or prices some products itself elects one of them anyway (bench/day.py
    --stores 60: the small world's greengrocer); the DAG stores what that anchor shows, not its zone's list."""
    scenario = scaled_scenario(15, 200)
    history = _history(scenario)
    deviating = [(c, a) for c, anchors in history.anchors.items() for a in anchors.values()
                 if scenario.store(c, a).own_share or scenario.store(c, a).lag_share]
    assert any(scenario.deviations(c, a, history.last) for c, a in deviating)
    for chain, anchor in deviating:
        rows = list(anchor_rows(scenario, history, chain, anchor))
        assert {r.sku: r.price for r in rows} == scenario.true_prices(chain, anchor, history.last)
        for row in rows:
            assert all(scenario.true_prices(chain, anchor, d)[row.sku] == row.price
                       for d in range(row.since, history.days))
            if row.since:
                assert scenario.true_prices(chain, anchor, row.since - 1)[row.sku] != row.price
