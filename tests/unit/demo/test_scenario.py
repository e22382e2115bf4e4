"""The scenario: sizes of the default, JSON round trip, and truth as a pure function of (scenario, day)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from pricegroups.demo.generate import default_scenario
from pricegroups.demo.model import Event
from pricegroups.demo.scenario import Scenario
from pricegroups.errors import ConfigError

ROOT = str(Path(__file__).resolve().parents[3])


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return default_scenario()


def truth_digest(scenario: Scenario, days: tuple[int, ...]) -> str:
    digest = hashlib.sha256()
    for chain in scenario.chains:
        for store in scenario.stores(chain)[:3]:
            for day in days:
                for sku, price in sorted(scenario.true_prices(chain, store.code, day).items()):
                    digest.update(f"{chain}|{store.code}|{day}|{sku}|{price}".encode())
    return digest.hexdigest()


def test_default_scenario_has_the_stated_sizes(scenario):
    assert set(scenario.chains) == {"freshmart", "valueway", "greengrocer"}
    assert {c.layout for c in scenario.chains.values()} == {"grid", "table", "jsonld"}
    stores = sum(len(c.stores) for c in scenario.chains.values())
    assert 140 <= stores <= 160
    for chain in scenario.chains.values():
        assert 3 <= len(chain.zones) <= 10
        assert 300 <= len(chain.listings) <= 1500
        assert 40 <= chain.page_size <= 100
        used = Counter(s.zone for s in chain.stores)
        assert set(used) == {z.code for z in chain.zones}, "every zone prices at least one store"
        independents = [z.code for z in chain.zones if z.independent]
        assert independents and all(used[z] == 1 for z in independents)
        assert all(0.8 <= s.range_share <= 0.97 for s in chain.stores)


def test_default_scenario_generates_in_well_under_a_second():
    start = time.process_time()  # CPU time: other processes on a shared machine do not count
    default_scenario(seed=99)
    assert time.process_time() - start < 1.0


def test_stores_carry_80_to_97_percent_of_the_range(scenario):
    for chain in scenario.chains.values():
        for store in chain.stores:
            share = len(scenario.assortment(chain.code, store.code)) / len(chain.listings)
            assert 0.74 <= share <= 1.0, (chain.code, store.code, share)
            assert abs(share - store.range_share) < 0.07


def test_products_are_shared_across_chains_with_the_same_barcode_and_varied_brand_spelling(scenario):
    by_product = defaultdict(dict)
    for chain in scenario.chains.values():
        for lst in chain.listings:
            by_product[lst.product][chain.code] = lst
    shared = {p: ls for p, ls in by_product.items() if len(ls) > 1}
    assert len(shared) > 100
    barcodes = [{lst.barcode for lst in ls.values() if lst.barcode} for ls in shared.values()]
    assert all(len(b) <= 1 for b in barcodes), "a product has one barcode everywhere"
    spellings = {frozenset(lst.brand for lst in ls.values()) for ls in shared.values()}
    assert frozenset({"Coca-Cola", "Coca Cola"}) in spellings or any(
        {"Coca-Cola", "Coca Cola"} <= s for s in spellings)
    skus = [lst.sku for c in scenario.chains.values() for lst in c.listings]
    assert len(skus) == len(set(skus))


def test_barcodes_are_valid_ean13(scenario):
    for chain in scenario.chains.values():
        for lst in chain.listings:
            if lst.barcode is None:
                continue
            digits = [int(c) for c in lst.barcode]
            assert len(digits) == 13
            assert sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def test_events_fall_on_days_2_to_13_and_name_their_chain_and_store(scenario):
    kinds = Counter(e.kind for e in scenario.events)
    for kind in ("store_moves", "zones_converge", "store_closes", "rate_limit", "server_error", "slow",
                 "malformed", "truncated"):
        assert kinds[kind] >= 1, kind
    assert all(2 <= e.day <= 13 for e in scenario.events)
    assert scenario.events_on(0) == [] and scenario.events_on(1) == []
    assert any(e.kind == "server_error" and e.count is None for e in scenario.events), "a permanent 500"
    for e in scenario.events:
        if e.kind != "zones_converge" and not (e.kind == "rate_limit" and e.store is None):
            scenario.store(e.chain, e.store)


def test_json_round_trip_keeps_the_scenario_and_its_prices(scenario, tmp_path):
    path = tmp_path / "scenario.json"
    scenario.save(path)
    loaded = Scenario.load(path)
    assert loaded.to_json() == scenario.to_json()
    for chain in loaded.chains:
        store = loaded.stores(chain)[7].code
        for day in (0, 5, 13):
            assert loaded.true_prices(chain, store, day) == scenario.true_prices(chain, store, day)


def test_prices_are_a_pure_function_of_scenario_and_day(scenario):
    # two instances, asked in opposite orders, agree on every price
    other = Scenario.from_json(scenario.to_json())
    for chain in scenario.chains:
        stores = [s.code for s in scenario.stores(chain)][:4]
        days = (0, 1, 6, 7, 12)
        forward = {(s, d): scenario.true_prices(chain, s, d) for s in stores for d in days}
        backward = {(s, d): other.true_prices(chain, s, d) for s in reversed(stores) for d in reversed(days)}
        assert forward == backward


def test_prices_are_the_same_in_another_process(scenario):
    days = (0, 8, 13)
    code = (
        "from pricegroups.demo.generate import default_scenario\n"
        "from tests.unit.demo.test_scenario import truth_digest\n"
        "print(truth_digest(default_scenario(), (0, 8, 13)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}, cwd=ROOT)
    assert out.stdout.strip() == truth_digest(scenario, days)


def test_the_same_seed_gives_the_same_scenario_and_another_seed_another():
    assert default_scenario(5).to_json() == default_scenario(5).to_json()
    assert default_scenario(5).to_json() != default_scenario(6).to_json()


def test_a_small_share_of_prices_changes_each_day_and_specials_change_weekly(scenario):
    chain = "freshmart"
    zone = scenario.chain(chain).zones[0].code
    for day in (1, 2, 3, 4, 5, 6, 8, 9):
        before, after = scenario.zone_prices(chain, zone, day - 1), scenario.zone_prices(chain, zone, day)
        changed = sum(before[s] != after[s] for s in before) / len(before)
        assert 0 < changed < 0.03, (day, changed)
    week0, week1 = scenario.zone_prices(chain, zone, 6), scenario.zone_prices(chain, zone, 7)
    specials0 = {s for s, p in week0.items() if p.on_special}
    specials1 = {s for s, p in week1.items() if p.on_special}
    assert 0.04 < len(specials0) / len(week0) < 0.15
    assert specials0 != specials1


def test_specials_are_written_like_real_sites(scenario):
    prices = [p for c in scenario.chains.values() for z in c.zones
              for p in scenario.zone_prices(c.code, z.code, 3).values() if p.on_special]
    discounts = [p for p in prices if p.was_price is not None]
    multibuys = [p for p in prices if p.multibuy_qty is not None]
    assert discounts and multibuys
    for p in discounts:
        assert p.was_price > p.price and p.promo_text == f"Save ${p.was_price - p.price:.2f}"
    for p in multibuys:
        assert p.was_price is None and p.promo_text == f"{p.multibuy_qty} for ${p.multibuy_price:.2f}"
        assert p.multibuy_price < p.price * p.multibuy_qty


def test_stores_in_one_zone_share_prices_and_zones_differ(scenario):
    for chain in scenario.chains:
        zones = scenario.true_zones(chain, 0)
        regular = [stores for stores in zones.values() if len(stores) >= 2]
        a, b = regular[0][:2]
        pa, pb = scenario.true_prices(chain, a, 0), scenario.true_prices(chain, b, 0)
        assert all(pa[s] == pb[s] for s in pa.keys() & pb.keys())
        c = regular[1][0]
        pc = scenario.true_prices(chain, c, 0)
        common = pa.keys() & pc.keys()
        assert sum(pa[s] == pc[s] for s in common) / len(common) < 0.9


def test_a_store_moving_zone_takes_the_new_zones_prices(scenario):
    move = next(e for e in scenario.events if e.kind == "store_moves")
    old = scenario.store(move.chain, move.store).zone
    assert scenario.zone_of(move.chain, move.store, move.day - 1) == old
    assert scenario.zone_of(move.chain, move.store, move.day) == move.zone
    prices = scenario.true_prices(move.chain, move.store, move.day)
    table = scenario.zone_prices(move.chain, move.zone, move.day)
    assert all(prices[s] == table[s] for s in prices)


def test_converged_zones_price_alike_from_their_day(scenario):
    event = next(e for e in scenario.events if e.kind == "zones_converge")
    before = scenario.true_zones(event.chain, event.day - 1)
    after = scenario.true_zones(event.chain, event.day)
    assert event.zone in before and event.zone not in after
    assert set(after[event.into]) == set(before[event.into]) | set(before[event.zone])


def test_a_closed_store_has_no_prices_and_leaves_the_store_list(scenario):
    event = next(e for e in scenario.events if e.kind == "store_closes")
    assert scenario.is_open(event.chain, event.store, event.day - 1)
    assert not scenario.is_open(event.chain, event.store, event.day)
    assert scenario.true_prices(event.chain, event.store, event.day) == {}
    assert event.store not in {s.code for s in scenario.stores(event.chain, event.day)}
    assert event.store in {s.code for s in scenario.stores(event.chain, event.day - 1)}


@pytest.mark.parametrize(
    "event",
    [
        {"kind": "earthquake", "chain": "freshmart", "day": 3},
        {"kind": "store_closes", "chain": "freshmart", "day": 3, "store": "NOPE"},
        {"kind": "store_moves", "chain": "freshmart", "day": 3, "store": "FM001", "zone": "nowhere"},
        {"kind": "rate_limit", "chain": "nochain", "day": 3},
        {"kind": "truncated", "chain": "freshmart", "day": 3},
        {"kind": "rate_limit", "chain": "freshmart", "day": 3, "colour": "red"},
    ],
)
def test_an_invalid_event_is_a_config_error(scenario, event):
    data = scenario.to_dict()
    data["events"] = [event]
    with pytest.raises(ConfigError):
        Scenario.from_dict(data)


def test_invalid_json_is_a_config_error():
    with pytest.raises(ConfigError):
        Scenario.from_json("{not json")
    with pytest.raises(ConfigError):
        Scenario.from_json('{"format": "something-else/9", "chains": []}')


def test_with_events_replaces_the_events(scenario):
    closed = scenario.with_events([Event("store_closes", "valueway", day=0, store="VW001")])
    assert not closed.is_open("valueway", "VW001", 0)
    assert scenario.is_open("valueway", "VW001", 0)
