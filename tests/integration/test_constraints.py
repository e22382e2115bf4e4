"""The database itself enforces the group invariants it can (DESIGN.md §6, invariant 1)."""

from __future__ import annotations

import psycopg
import pytest

from tests.factories import make_chain_with_stores


def _group_of(conn, store_id: int) -> int:
    return conn.execute("SELECT group_id FROM stores WHERE store_id = %s", (store_id,)).fetchone()[0]


def test_new_stores_start_as_anchors_of_their_own_groups(conn):
    _, stores = make_chain_with_stores(conn, stores=3)
    rows = conn.execute(
        "SELECT s.store_id, g.anchor_store_id FROM stores s JOIN store_groups g USING (group_id) ORDER BY 1"
    ).fetchall()
    assert rows == [(s, s) for s in stores]
    events = conn.execute("SELECT kind, store_id FROM group_events ORDER BY store_id").fetchall()
    assert events == [("created", s) for s in stores]


def test_member_can_join_another_group_in_one_transaction(conn):
    _, (a, b, _) = make_chain_with_stores(conn, stores=3)
    old_group = _group_of(conn, b)
    conn.execute("UPDATE stores SET group_id = %s WHERE store_id = %s", (_group_of(conn, a), b))
    conn.execute("DELETE FROM store_groups WHERE group_id = %s", (old_group,))
    conn.commit()
    assert _group_of(conn, a) == _group_of(conn, b)


def test_anchor_cannot_leave_its_group(conn):
    _, (a, b, _) = make_chain_with_stores(conn, stores=3)
    conn.execute("UPDATE stores SET group_id = %s WHERE store_id = %s", (_group_of(conn, b), a))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.commit()


def test_anchor_must_belong_to_its_group(conn):
    _, (a, b, c) = make_chain_with_stores(conn, stores=3)
    old_group = _group_of(conn, b)
    conn.execute("UPDATE stores SET group_id = %s WHERE store_id = %s", (_group_of(conn, c), b))
    conn.execute("DELETE FROM store_groups WHERE group_id = %s", (old_group,))
    conn.commit()
    # b is now a member of c's group, not an anchor anywhere: it cannot anchor a's group
    conn.execute("UPDATE store_groups SET anchor_store_id = %s WHERE group_id = %s", (b, _group_of(conn, a)))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.commit()


def test_group_cannot_span_chains(conn):
    _, (a, _, _) = make_chain_with_stores(conn, code="acme", stores=3)
    _, (x, _) = make_chain_with_stores(conn, code="zeta", stores=2)
    conn.execute("UPDATE stores SET group_id = %s WHERE store_id = %s", (_group_of(conn, a), x))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.commit()


def test_store_must_have_a_group(conn):
    _, (a, _, _) = make_chain_with_stores(conn, stores=3)
    with pytest.raises(psycopg.errors.NotNullViolation):
        conn.execute("UPDATE stores SET group_id = NULL WHERE store_id = %s", (a,))


def test_group_with_stores_cannot_be_deleted(conn):
    _, (a, b, _) = make_chain_with_stores(conn, stores=3)
    old_group = _group_of(conn, b)
    conn.execute("UPDATE stores SET group_id = %s WHERE store_id = %s", (_group_of(conn, a), b))
    conn.execute("DELETE FROM store_groups WHERE group_id = %s", (old_group,))
    conn.commit()
    conn.execute("DELETE FROM store_groups WHERE group_id = %s", (_group_of(conn, a),))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.commit()


def test_one_store_cannot_anchor_two_groups(conn):
    chain, (a, _, _) = make_chain_with_stores(conn, stores=3)
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO store_groups (chain_id, anchor_store_id, created_at) VALUES (%s, %s, now())",
            (chain, a),
        )


def test_group_events_are_append_only(conn):
    make_chain_with_stores(conn, stores=1)
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM group_events")


def test_price_must_be_positive(conn):
    from tests.factories import make_products

    _, (a, _, _) = make_chain_with_stores(conn, stores=3)
    (p,) = make_products(conn, 1)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO prices (product_id, store_id, price, scraped_at, run_id) VALUES (%s, %s, 0, now(), 'r')",
            (p, a),
        )


def test_barcode_is_unique_when_present(conn):
    conn.execute("INSERT INTO products (name, name_key, barcode) VALUES ('a', 'a', '09300000000012')")
    conn.execute("INSERT INTO products (name, name_key) VALUES ('b', 'b'), ('c', 'c')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO products (name, name_key, barcode) VALUES ('d', 'd', '09300000000012')")


def test_the_chains_table_allows_the_chain_codes_the_library_allows(conn):
    from pricegroups.stores import CHAIN_CODE_PATTERN

    definition = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'chains'::regclass"
        " AND conname = 'chains_code_check'"
    ).fetchone()[0]
    assert f"'{CHAIN_CODE_PATTERN}'" in definition, definition
