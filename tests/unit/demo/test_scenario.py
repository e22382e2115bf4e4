"""The scenario: sizes of the default, JSON round trip, truth as a pure function of (scenario, day), and the
realism that makes grouping hard: near-twin zones, stores' own prices, late price changes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from pricegroups.demo.generate import compact_scenario, default_scenario
from pricegroups.demo.model import Event, TruePrice
from pricegroups.demo.scenario import Scenario
from pricegroups.errors import ConfigError
from tests.unit.demo.test_scenario_doc import example

ROOT = str(Path(__file__).resolve().parents[3])
DAYS = range(14)


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


def regular(price: TruePrice) -> Decimal:
    """The regular price behind a shown price (a discount shows it as the was-price)."""
    return price.was_price if price.was_price is not None else price.price


def zone_digest(scenario: Scenario, zones: list[tuple[str, str]], days: tuple[int, ...]) -> str:
    digest = hashlib.sha256()
    for chain, zone in zones:
        for day in days:
            for sku, price in sorted(scenario.zone_prices(chain, zone, day).items()):
                digest.update(f"{chain}|{zone}|{day}|{sku}|{price}".encode())
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


def test_stores_in_one_zone_share_prices_outside_their_deviations_and_zones_differ(scenario):
    for chain in scenario.chains.values():
        twin_of = {z.code: z.twin_of for z in chain.zones}
        for day in (0, 9):
            zones = {z: stores for z, stores in scenario.true_zones(chain.code, day).items() if len(stores) >= 2}
            for stores in zones.values():
                first = scenario.true_prices(chain.code, stores[0], day)
                for other in stores[1:]:
                    prices = scenario.true_prices(chain.code, other, day)
                    skip = scenario.deviations(chain.code, stores[0], day).keys() | scenario.deviations(
                        chain.code, other, day).keys()
                    assert all(first[s] == prices[s] for s in first.keys() & prices.keys() - skip), other
            for za in zones:
                for zb in zones:
                    if za < zb and za not in (twin_of[zb], zb) and zb != twin_of[za]:
                        pa = scenario.zone_prices(chain.code, za, day)
                        pb = scenario.zone_prices(chain.code, zb, day)
                        assert sum(pa[s] == pb[s] for s in pa) / len(pa) < 0.9, (za, zb)


def test_a_store_moving_zone_takes_the_new_zones_prices(scenario):
    moves = [e for e in scenario.events if e.kind == "store_moves"]
    assert len(moves) == 3
    for move in moves:
        old = scenario.store(move.chain, move.store).zone
        assert scenario.zone_of(move.chain, move.store, move.day - 1) == old
        assert scenario.zone_of(move.chain, move.store, move.day) == move.zone
        prices = scenario.true_prices(move.chain, move.store, move.day)
        table = scenario.zone_prices(move.chain, move.zone, move.day)
        deviations = scenario.deviations(move.chain, move.store, move.day)
        assert all(prices[s] == table[s] for s in prices.keys() - deviations.keys())
        assert all(prices[s] != table[s] for s in deviations)


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


# ---- the realistic scenario: near-twin zones, own prices, late price changes ------------------------------


def test_default_scenario_has_near_twin_zones_and_a_tenth_of_stores_deviating(scenario):
    twins = {c.code: [(z.code, z.twin_of, z.twin_share) for z in c.zones if z.twin_of] for c in scenario.chains.values()}
    assert twins == {"freshmart": [("fm-z1t", "fm-z1", 0.012)], "valueway": [("vw-z2t", "vw-z2", 0.015)],
                     "greengrocer": []}
    used = Counter((c.code, s.zone) for c in scenario.chains.values() for s in c.stores)
    assert 6 <= used[("freshmart", "fm-z1t")] <= 10 and 4 <= used[("valueway", "vw-z2t")] <= 8
    for chain in scenario.chains.values():
        solo = {z.code for z in chain.zones if z.independent}
        regular = [s for s in chain.stores if s.zone not in solo]
        own = {s.code for s in regular if s.own_share}
        lag = {s.code for s in regular if s.lag_share}
        assert len(own) == len(lag) == max(1, round(0.1 * len(regular))), chain.code
        assert not own & lag
        assert all(0.001 <= s.own_share <= 0.004 for s in regular if s.code in own)
        assert all(0.5 <= s.lag_share <= 0.9 for s in regular if s.code in lag)
        assert all(s.own_share == s.lag_share == 0 for s in chain.stores if s.zone in solo)


def test_compact_scenario_keeps_the_events_and_has_small_near_twin_zones(scenario):
    compact = compact_scenario()
    assert Counter(e.kind for e in compact.events) == Counter(e.kind for e in scenario.events)
    used = Counter((c.code, s.zone) for c in compact.chains.values() for s in c.stores)
    assert 2 <= used[("freshmart", "fm-z1t")] <= 3 and used[("valueway", "vw-z2t")] == 2
    for chain in compact.chains.values():
        assert any(s.own_share for s in chain.stores) and any(s.lag_share for s in chain.stores)


@pytest.mark.parametrize("make", [default_scenario, compact_scenario])
def test_the_movers_are_a_member_into_the_near_twin_and_an_anchor_to_another_list(make):
    scenario = make()
    moves = {(e.chain, e.day): e for e in scenario.events if e.kind == "store_moves"}
    member = moves[("freshmart", 3)]
    store = scenario.store("freshmart", member.store)
    assert (store.zone, member.zone) == ("fm-z1", "fm-z1t")
    assert store.own_share == store.lag_share == 0
    assert len(scenario.true_zones("freshmart", 3)["fm-z1"]) >= 2, "the zone it leaves is still a group"
    anchor = moves[("valueway", 6)]
    store = scenario.store("valueway", anchor.store)
    peers = [s for s in scenario.chain("valueway").stores if s.zone == store.zone]
    clean = [s for s in peers if not s.own_share and not s.lag_share]
    size = {s.code: len(scenario.assortment("valueway", s.code)) for s in clean}
    assert len(peers) >= 3 and store in clean and size[store.code] == max(size.values())
    zones = {z.code: z for z in scenario.chain("valueway").zones}
    target = zones[anchor.zone]
    assert anchor.zone != store.zone and not target.independent and target.twin_of is None
    assert zones[store.zone].twin_of is None, "it leaves a zone with a list of its own"


def test_zones_without_a_twin_price_exactly_as_before_near_twins_came(scenario):
    # every listing and every zone list but the near-twins' is what the generator made before they existed
    zones = [(c.code, z.code) for c in scenario.chains.values() for z in c.zones if z.twin_of is None]
    assert len(zones) == 19
    assert zone_digest(scenario, zones, (0, 6, 7, 13)) == (
        "33feac0dc76b3166abc4b5ace2de107368e3e2f01c7821a021b5069f0029a115")


def test_a_scenario_without_the_new_fields_loads_and_prices_as_before():
    s = example()
    data = s.to_dict()
    assert all(set(z) == {"code", "independent"} for c in data["chains"] for z in c["zones"])
    assert all("own_share" not in st and "lag_share" not in st for c in data["chains"] for st in c["stores"])
    digest = hashlib.sha256()
    for store in ("CS1", "CS2", "CS3"):
        for day in range(5):
            assert s.deviations("cornerstore", store, day) == {}
            for sku, price in sorted(s.true_prices("cornerstore", store, day).items()):
                digest.update(f"{store}|{day}|{sku}|{price}".encode())
    assert digest.hexdigest() == "8e0c85b5de249173e15e197b04281e8eb8a6fd1323bf678e341be90f7896231f"


def test_near_twin_zones_differ_from_their_twin_on_about_twin_share_of_listings_and_nowhere_else(scenario):
    twins = [(c, z) for c in scenario.chains.values() for z in c.zones if z.twin_of]
    assert len(twins) == 2
    for chain, zone in twins:
        skus = scenario.twin_skus(chain.code, zone.code)
        assert len(skus) == round(zone.twin_share * len(chain.listings))
        assert scenario.twin_skus(chain.code, zone.twin_of) == frozenset()
        specials = 0
        for day in DAYS:
            mine = scenario.zone_prices(chain.code, zone.code, day)
            theirs = scenario.zone_prices(chain.code, zone.twin_of, day)
            assert {s for s in mine if mine[s] != theirs[s]} == skus, day
            for sku in skus:  # the twin's specials, on this zone's own regular price 4-12 % away
                assert mine[sku].on_special == theirs[sku].on_special
                if max(regular(mine[sku]), regular(theirs[sku])) <= 12:  # multi-buys only up to $12
                    assert mine[sku].multibuy_qty == theirs[sku].multibuy_qty
                assert regular(mine[sku]) != regular(theirs[sku])
                assert Decimal("0.85") < regular(mine[sku]) / regular(theirs[sku]) < Decimal("1.15")
                specials += mine[sku].on_special
            for other in chain.zones:  # a near-twin is near its twin only
                if other.code not in (zone.code, zone.twin_of) and not other.independent and day == 0:
                    table = scenario.zone_prices(chain.code, other.code, day)
                    assert sum(mine[s] == table[s] for s in mine) / len(mine) < 0.9
        assert specials > 0, "some differing listings go on special"


def test_own_prices_are_persistent_about_own_share_and_never_on_special(scenario):
    stores = [(c.code, s) for c in scenario.chains.values() for s in c.stores if s.own_share]
    assert len(stores) == 14
    for chain, store in stores:
        carried = {lst.sku for lst in scenario.assortment(chain, store.code)}
        own = scenario.own_skus(chain, store.code)
        assert own <= carried and len(own) == max(1, round(store.own_share * len(carried)))
        for day in DAYS:
            if not scenario.is_open(chain, store.code, day):
                continue
            deviations = scenario.deviations(chain, store.code, day)
            assert {s for s, cause in deviations.items() if cause == "own"} == own, (store.code, day)
            prices = scenario.true_prices(chain, store.code, day)
            table = scenario.zone_prices(chain, scenario.zone_of(chain, store.code, day), day)
            for sku in own:
                p = prices[sku]
                assert (p.on_special, p.was_price, p.promo_text, p.multibuy_qty) == (False, None, None, None)
                assert Decimal("1.03") < p.price / regular(table[sku]) < Decimal("1.2")  # 6-15 %, shelf-rounded
    assert all(scenario.own_skus(c.code, s.code) == frozenset()
               for c in scenario.chains.values() for s in c.stores if not s.own_share)


def test_late_prices_follow_a_change_of_the_last_two_days_and_then_go(scenario):
    stores = [(c.code, s) for c in scenario.chains.values() for s in c.stores if s.lag_share]
    assert len(stores) == 14
    shares, seen, lengths = [], set(), Counter()  # lengths: changes shown 1 or 2 days late
    for chain, store in stores:
        carried = len(scenario.assortment(chain, store.code))
        for day in DAYS:
            if not scenario.is_open(chain, store.code, day):
                continue
            late = {s for s, cause in scenario.deviations(chain, store.code, day).items() if cause == "lag"}
            shares.append(len(late) / carried)
            seen |= {(chain, sku) for sku in late}
            zone = scenario.zone_of(chain, store.code, day)
            prices = scenario.true_prices(chain, store.code, day)
            table = scenario.zone_prices(chain, zone, day)
            for sku in late:
                version = lambda d: scenario.version(chain, sku, d)  # noqa: E731
                changed = [c for c in (day, day - 1) if c >= 1 and version(c) != version(c - 1)]
                assert changed, (store.code, day, sku)
                change = changed[0]
                # the regular price the zone had before the change, with today's specials
                assert regular(prices[sku]) == regular(scenario.zone_prices(chain, zone, change - 1)[sku])
                assert regular(prices[sku]) != regular(table[sku])
                assert prices[sku].on_special == table[sku].on_special
                if change == day and day + 2 < 14 and version(day + 2) == version(day) and all(
                        scenario.is_open(chain, store.code, d) for d in (day + 1, day + 2)):
                    late_too = lambda d: scenario.deviations(chain, store.code, d).get(sku) == "lag"  # noqa: E731
                    assert not late_too(day + 2), "gone after 2 days"
                    lengths[1 + late_too(day + 1)] += 1
    assert lengths[1] > 10 and lengths[2] > 10, lengths
    assert max(shares) <= 0.02 and 0.002 < sum(shares) / len(shares) < 0.012
    assert len(seen) > 100, "different products every day"
    assert all(not scenario.deviations(c.code, s.code, 0) for c in scenario.chains.values() for s in c.stores
               if not s.own_share), "nothing is late on day 0"


def test_the_site_and_the_truth_agree_and_differ_from_the_zone_exactly_on_deviations(scenario):
    deviating = 0
    for chain in scenario.chains.values():
        stores = [s for s in chain.stores if s.own_share or s.lag_share] + list(chain.stores[:3])
        for store in stores:
            for day in DAYS:
                shown = {i.listing.sku: i.price for i in scenario.items(chain.code, store.code, day)}
                truth = scenario.true_prices(chain.code, store.code, day)
                assert shown == truth, (store.code, day)
                if not truth:
                    continue
                table = scenario.zone_prices(chain.code, scenario.zone_of(chain.code, store.code, day), day)
                deviations = scenario.deviations(chain.code, store.code, day)
                assert {s for s in truth if truth[s] != table[s]} == set(deviations), (store.code, day)
                assert set(deviations.values()) <= {"own", "lag"}
                deviating += len(deviations)
    assert deviating > 500


def test_json_round_trip_keeps_near_twins_and_store_deviations(scenario):
    data = json.loads(scenario.to_json())
    fm = next(c for c in data["chains"] if c["code"] == "freshmart")
    assert {"code": "fm-z1t", "independent": False, "twin_of": "fm-z1", "twin_share": 0.012} in fm["zones"]
    assert sum("twin_of" in z for z in fm["zones"]) == 1
    own = next(s for s in fm["stores"] if "own_share" in s)
    late = next(s for s in fm["stores"] if "lag_share" in s)
    assert "lag_share" not in own and "own_share" not in late
    loaded = Scenario.from_dict(data)
    assert loaded.to_json() == scenario.to_json()
    for store in (own["code"], late["code"]):
        for day in (3, 9):
            assert loaded.true_prices("freshmart", store, day) == scenario.true_prices("freshmart", store, day)
            assert loaded.deviations("freshmart", store, day) == scenario.deviations("freshmart", store, day)
    assert any(loaded.deviations("freshmart", late["code"], day) for day in DAYS)


def test_a_near_twin_and_store_shares_work_in_a_small_scenario():
    data = example().to_dict()
    chain = data["chains"][0]
    chain["zones"][1].update(twin_of="north", twin_share=0.3)
    chain["stores"][0]["own_share"] = 0.2
    s = Scenario.from_dict(data)
    assert len(s.twin_skus("cornerstore", "south")) == 1
    north, south = s.zone_prices("cornerstore", "north", 0), s.zone_prices("cornerstore", "south", 0)
    assert sum(north[k] != south[k] for k in north) == 1
    assert list(s.deviations("cornerstore", "CS1", 0).values()) == ["own"]


def _set(path: str, value):
    def change(chain: dict) -> None:
        kind, index, field = path.split(".")
        chain[kind][int(index)][field] = value
    return change


def _add_zone(zone: dict):
    def change(chain: dict) -> None:
        chain["zones"][1].update(twin_of="north", twin_share=0.1)
        chain["zones"].append(zone)
    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set("zones.1.twin_of", "nowhere"), "twin_of must name another zone of chain 'cornerstore'"),
        (_set("zones.1.twin_of", "south"), "twin_of must name another zone"),
        (_add_zone({"code": "east", "twin_of": "south", "twin_share": 0.1}), "'south' is itself a twin"),
        (_set("zones.1.twin_share", 0.1), "twin_share 0.1 needs twin_of"),
        (lambda c: c["zones"][1].update(twin_of="north", twin_share=0), "twin_share must be a number between 0"),
        (lambda c: c["zones"][1].update(twin_of="north", twin_share=0.5), "twin_share must be a number between 0"),
        (lambda c: c["zones"][1].update(twin_of="north", twin_share="0.1"), "twin_share must be a number"),
        (_set("stores.0.own_share", 0.5), "CS1: own_share must be a number in"),
        (_set("stores.0.own_share", -0.01), "own_share must be"),
        (_set("stores.2.lag_share", 1.5), "CS3: lag_share must be a number in"),
        (_set("stores.2.lag_share", True), "lag_share must be"),
        (_set("zones.0.twin", "south"), "invalid scenario"),
    ],
)
def test_a_bad_near_twin_or_store_share_is_a_config_error(change, message):
    data = example().to_dict()
    change(data["chains"][0])
    with pytest.raises(ConfigError, match=message):
        Scenario.from_dict(data)
