"""The example in docs/scenario.md loads and behaves as its events say."""

from __future__ import annotations

import re
from pathlib import Path

from pricegroups.demo.scenario import Scenario

DOC = Path(__file__).resolve().parents[3] / "docs" / "scenario.md"


def example() -> Scenario:
    block = re.search(r"```json\n(.*?)```", DOC.read_text(), re.S).group(1)
    return Scenario.from_json(block)


def test_the_documented_example_loads_and_round_trips():
    scenario = example()
    assert Scenario.from_json(scenario.to_json()).to_json() == scenario.to_json()
    assert scenario.skus("cornerstore") == ["1001", "1002", "1003"]


def test_the_documented_example_moves_and_closes_stores():
    s = example()
    assert s.true_zones("cornerstore", 0) == {"north": ["CS1", "CS2"], "south": ["CS3"]}
    assert s.true_zones("cornerstore", 2) == {"north": ["CS1"], "south": ["CS2", "CS3"]}
    assert s.true_prices("cornerstore", "CS3", 4) == {}
    assert [st.code for st in s.stores("cornerstore", 4)] == ["CS1", "CS2"]
    bananas = s.true_prices("cornerstore", "CS1", 0)["1003"]
    assert bananas.unit_price is None and bananas.price > 0
