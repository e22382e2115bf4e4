"""Cutting work into mapped batches: within the cap, never spread thin, every item once, distinct names."""

import pytest

from pricegroups.batching import chain_batches, split


@pytest.mark.parametrize("items, cap, minimum, expected_batches", [
    (list(range(19)), 32, 50, 1),
    (list(range(500)), 32, 50, 10),
    (list(range(100_000)), 32, 50, 32),
    ([], 32, 50, 0),
    (list(range(3)), 32, 1, 3),
    (list(range(10)), 4, 1, 4),
])
def test_batches_stay_within_the_cap_and_cover_every_item_once(items, cap, minimum, expected_batches):
    batches = split(items, cap, minimum)
    assert len(batches) == expected_batches
    assert [x for b in batches for x in b] == items, "consecutive, in order"
    assert all(b for b in batches)
    if batches:
        assert max(map(len, batches)) - min(map(len, batches)) <= 1


def test_each_batch_of_distinct_items_has_its_own_first_item():
    pairs = [[1, b] for b in range(2, 200)] + [[2, 3]]  # one store in every pair but one
    firsts = [tuple(b[0]) for b in split(sorted(pairs), 8, 1)]
    assert len(set(firsts)) == len(firsts) == 8


def test_every_chain_gets_a_batch_and_the_cap_is_shared_by_stores():
    batches = chain_batches({"big": list(range(1000)), "small": [5000, 5001], "none": []}, cap=10, min_per_batch=40)
    by_chain = {}
    for b in batches:
        by_chain.setdefault(b["chain"], []).append(b["store_ids"])
    assert set(by_chain) == {"big", "small"}
    assert len(by_chain["small"]) == 1 and len(batches) <= 10
    assert sorted(s for parts in by_chain["big"] for s in parts) == list(range(1000))
    assert all(len(p) >= 40 for p in by_chain["big"])


def test_more_chains_than_the_cap_still_get_one_batch_each():
    batches = chain_batches({f"c{i}": [i] for i in range(5)}, cap=2)
    assert [b["chain"] for b in batches] == [f"c{i}" for i in range(5)]
    assert chain_batches({}, cap=3) == []
