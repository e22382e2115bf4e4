"""Loading current prices into a PriceMatrix: the values the comparer sees are the stored ones."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from pricegroups.grouping import repository as repo
from tests.factories import T0, make_chain_with_stores, make_products


def test_loaded_matrix_holds_keys_was_prices_and_the_hour_each_price_was_first_seen(conn, monkeypatch):
    _, stores = make_chain_with_stores(conn, "acme", 3)
    products = make_products(conn, 4)
    times = [T0 - timedelta(microseconds=1), T0, T0 + timedelta(minutes=59, seconds=59, microseconds=999_999),
             T0 - timedelta(days=400, hours=5)]
    rows = [(products[i], stores[s], f"{1 + i + s}.{(7 * i) % 100:02d}", "3.50" if i == 2 else None, i % 2 == 1,
             times[(i + s) % 4]) for s in (0, 2) for i in range(4) if (s, i) != (2, 3)]
    conn.execute(
        """INSERT INTO prices (product_id, store_id, price, was_price, on_special, scraped_at, run_id)
           SELECT p, s, price::numeric, was::numeric, special, at, 'r'
           FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::bool[], %s::timestamptz[])
                AS v(p, s, price, was, special, at)""",
        [list(c) for c in zip(*rows)],
    )
    _, states = repo.load_states(conn)
    expected = {(s, p): (k, w, h) for s, p, k, w, h in conn.execute(
        """SELECT store_id, product_id, (price * 200)::int4 + on_special::int4, coalesce((was_price * 100)::int4, 0),
                  floor(extract(epoch FROM scraped_at) / 3600)::int4 FROM prices""")}
    for per_copy in (250, 1):  # one statement, or one per store
        monkeypatch.setattr(repo, "_STORES_PER_COPY", per_copy)
        matrix = repo.load_matrix(conn, states, stores)
        assert matrix.stores == tuple(stores) and matrix.products.tolist() == sorted({p for _, p in expected})
        found = {(matrix.stores[r], int(matrix.products[c])): (int(matrix.keys[r, c]), int(matrix.was[r, c]),
                                                               int(matrix.observed[r, c]))
                 for r, c in zip(*np.nonzero(matrix.keys))}
        assert found == expected
        assert matrix.sizes.tolist() == [4, 0, 3]
    timed_first = repo.load_matrix(conn, states, stores, observed_for=[stores[0]])  # times only where they are used
    assert np.array_equal(timed_first.keys, matrix.keys) and np.array_equal(timed_first.was, matrix.was)
    assert np.array_equal(timed_first.observed[0], matrix.observed[0]) and not timed_first.observed[1:].any()
