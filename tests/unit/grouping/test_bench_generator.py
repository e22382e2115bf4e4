"""The benchmark's synthetic chains (bench/grouping.py) are what the issue says they are."""

from __future__ import annotations

import numpy as np

from bench import grouping as bench


def chain(seed: int = 7, stores: int = 300, products: int = 2_000, zones: int = 8):
    return bench.make_chain(seed, stores, products, zones)


def clean_store(c, zone: int) -> int:
    """A store priced exactly as its zone, carrying a full-size catalogue."""
    ok = (c.zone == zone) & (c.own == 0) & ~c.tiny
    return int(np.flatnonzero(ok)[0])


def test_same_seed_same_chain_and_another_seed_another():
    a, b, other = chain(), chain(), chain(seed=8)
    assert np.array_equal(a.keys, b.keys) and np.array_equal(a.zone, b.zone) and np.array_equal(a.own, b.own)
    assert not np.array_equal(a.keys, other.keys)


def test_near_twins_differ_on_1_2_to_1_5_percent_of_products():
    products = 2_000
    c = chain(products=products, zones=8)
    assert c.twins == ((1, 7), (2, 6))
    # compare the lists themselves: union of two clean stores per zone covers (almost) every product
    lists = {}
    for z in range(8):
        rows = np.flatnonzero((c.zone == z) & (c.own == 0) & ~c.tiny & c.fresh)[:6]
        keys = c.keys[rows]
        known = (keys != 0).any(axis=0)
        lists[z] = (np.where(known, keys.max(axis=0), 0), known)
    for zone, twin in c.twins:
        (ka, a), (kb, b) = lists[zone], lists[twin]
        both = a & b
        share = np.count_nonzero(ka[both] != kb[both]) / np.count_nonzero(both)
        assert 0.011 <= share <= 0.016, share
    (k0, a0), (k3, a3) = lists[0], lists[3]
    both = a0 & a3
    assert np.count_nonzero(k0[both] != k3[both]) / np.count_nonzero(both) >= 0.045


def test_own_deviations_are_prices_nobody_else_charges():
    c = chain()
    keys = c.keys
    deviating = np.flatnonzero(c.own)
    assert len(deviating) > 0.1 * len(keys)  # noisy (10%) and persistent (5%) stores
    for i in deviating[:25]:
        others = np.delete(keys, i, axis=0)
        carried = keys[i] != 0
        lonely = carried & ~(others == keys[i]).any(axis=0)
        assert np.count_nonzero(lonely) == c.own[i]
        assert 0.001 <= c.own[i] / np.count_nonzero(carried) <= 0.0085


def test_clean_stores_of_a_zone_agree_on_their_overlap():
    c = chain()
    for z in range(8):
        rows = np.flatnonzero((c.zone == z) & (c.own == 0) & ~c.tiny)
        keys = c.keys[rows]
        both = (keys[0] != 0) & (keys[1:] != 0)
        assert ((keys[1:] == keys[0]) | ~both).all()


def test_head_keeps_the_ground_truth_aligned():
    c = chain()
    h = c.head(50)
    assert h.keys.shape[0] == len(h.zone) == len(h.own) == len(h.fresh) == len(h.tiny) == 50
    assert np.array_equal(h.own, c.own[:50]) and h.twins == c.twins
