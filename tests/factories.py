"""Small builders for test data, on top of the library's own store setup."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg

from pricegroups.stores import StoreInfo, ensure_chain, ensure_stores

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)


def make_chain_with_stores(conn: psycopg.Connection, code: str = "acme", stores: int = 3) -> tuple[int, list[int]]:
    chain_id = ensure_chain(conn, code, code.title())
    ids = ensure_stores(conn, chain_id, [StoreInfo(f"{code}-{i:03d}") for i in range(stores)], at=T0)
    conn.commit()
    return chain_id, [ids[f"{code}-{i:03d}"] for i in range(stores)]


def make_products(conn: psycopg.Connection, count: int) -> list[int]:
    rows = conn.execute(
        """INSERT INTO products (name, name_key)
           SELECT 'Product ' || g, 'product ' || g FROM generate_series(1, %s) g
           RETURNING product_id""",
        (count,),
    ).fetchall()
    conn.commit()
    return sorted(r[0] for r in rows)
