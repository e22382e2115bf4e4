"""sql/0011: a product without prices can be deleted; one with prices still cannot."""

from __future__ import annotations

import psycopg
import pytest

from tests.factories import T0, make_chain_with_stores, make_products


def test_products_without_prices_can_be_deleted_and_those_with_prices_cannot(conn):
    _, (store, _) = make_chain_with_stores(conn, stores=2)
    free, priced = make_products(conn, 2)
    conn.execute("INSERT INTO prices (product_id, store_id, price, scraped_at, run_id) VALUES (%s, %s, 1, %s, 'r')",
                 (priced, store, T0))
    conn.execute("DELETE FROM products WHERE product_id = %s", (free,))
    conn.commit()
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still has prices"):
        conn.execute("DELETE FROM products WHERE product_id = %s", (priced,))
    conn.rollback()
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still has prices"):
        conn.execute("DELETE FROM stores WHERE store_id = %s", (store,))
