"""Reconcilers on real PostgreSQL: brand variants and duplicate products become one, nothing is lost."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from pricegroups.catalogue.barcodes import with_check_digit
from pricegroups.catalogue.reconcile import reconcile
from pricegroups.catalogue.resolve import resolve_run
from tests.factories import T0, make_chain_with_stores
from tests.integration.catalogue.staging import item, product_of, stage, state

BARCODE = "0" + with_check_digit("930000000005")
OTHER = "0" + with_check_digit("930000000006")


def _brand(conn, name, key):
    return conn.execute("INSERT INTO brands (name, key) VALUES (%s, %s) RETURNING brand_id", (name, key)).fetchone()[0]


def _product(conn, name, brand_id=None, barcode=None, size=None, category=None, name_key=None):
    value, unit = size or (None, None)
    return conn.execute(
        """INSERT INTO products (brand_id, name, name_key, size_value, size_unit, barcode, category)
           VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING product_id""",
        (brand_id, name, name_key or name.lower(), value, unit, barcode, category),
    ).fetchone()[0]


def _listing(conn, chain_id, sku, product_id, barcode=None):
    conn.execute(
        """INSERT INTO listings (chain_id, sku, product_id, name, barcode, first_seen_at, last_seen_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (chain_id, sku, product_id, sku, barcode, T0, T0),
    )


def _price(conn, product_id, store_id, price, at):
    conn.execute(
        "INSERT INTO prices (product_id, store_id, price, scraped_at, run_id) VALUES (%s, %s, %s, %s, 'seed')",
        (product_id, store_id, Decimal(price), at),
    )


@pytest.fixture
def chain(conn):
    return make_chain_with_stores(conn, "acme", stores=3)


def test_legacy_brand_variants_merge_into_one_and_products_follow(conn, chain):
    # brands keyed by an older normalisation: five rows for two brands
    coke = _brand(conn, "Coca-Cola", "coca-cola")
    coke2 = _brand(conn, "COCA COLA", "COCA COLA")
    coke3 = _brand(conn, "Coca-Cola Pty Ltd", "coca-cola pty ltd")
    smiths = _brand(conn, "Smith's", "smith's")
    smiths2 = _brand(conn, "Smiths", "smiths")
    products = [_product(conn, f"P{i}", b) for i, b in enumerate((coke, coke2, coke2, coke3, smiths, smiths2))]
    conn.commit()
    counts = reconcile(conn, "r1")
    assert counts["brand_sets"] == 2 and counts["brand_merged"] == 3
    assert conn.execute("SELECT brand_id, key FROM brands ORDER BY brand_id").fetchall() == [
        (coke2, "cocacola"), (smiths2, "smiths")]  # most products survives; smiths2 held the key
    brand_of = dict(conn.execute("SELECT product_id, brand_id FROM products").fetchall())
    assert [brand_of[p] for p in products] == [coke2, coke2, coke2, coke2, smiths2, smiths2]
    merges = conn.execute(
        "SELECT entity, survivor_id, merged_id, reason FROM catalogue_merges ORDER BY merge_id").fetchall()
    assert sorted((s, m) for _, s, m, _ in merges) == sorted([(coke2, coke), (coke2, coke3), (smiths2, smiths)])
    assert all(e == "brand" and "cocacola" in r or "smiths" in r for e, _, _, r in merges)


def test_the_alias_table_merges_brands_a_user_says_are_one(conn, chain):
    kit = _brand(conn, "Kit Kat", "kitkat")
    nestle_kitkat = _brand(conn, "KitKat by Nestle", "kitkatbynestle")
    conn.execute("INSERT INTO brand_aliases (alias_key, brand_key, note) VALUES ('kitkatbynestle', 'kitkat', 'one')")
    conn.commit()
    counts = reconcile(conn, "r1")
    assert counts["brand_merged"] == 1
    assert conn.execute("SELECT brand_id FROM brands").fetchall() == [(kit,)]
    assert conn.execute("SELECT merged_id FROM catalogue_merges").fetchall() == [(nestle_kitkat,)]


def test_product_merge_moves_listings_and_prices_keeping_the_newest_per_store(conn, chain):
    chain_id, (s1, s2, s3) = chain
    survivor = _product(conn, "Chips 170g", barcode=BARCODE, size=(170, "g"))
    dup = _product(conn, "Chips 170g (old)", category="Snacks")
    _listing(conn, chain_id, "S1", survivor, BARCODE)
    _listing(conn, chain_id, "S2", dup, BARCODE)  # the duplicate's listing claims the same barcode
    _price(conn, survivor, s1, "3.00", T0)  # older than the duplicate's at s1
    _price(conn, dup, s1, "3.50", T0 + timedelta(days=1))
    _price(conn, survivor, s2, "2.90", T0 + timedelta(days=2))  # newer than the duplicate's at s2
    _price(conn, dup, s2, "2.80", T0 + timedelta(days=1))
    _price(conn, dup, s3, "3.10", T0)  # only the duplicate has s3
    conn.commit()
    counts = reconcile(conn, "r1")
    assert counts["product_merged"] == 1
    assert counts["product_prices_dropped"] == 2 and counts["product_prices_moved"] == 2
    assert conn.execute("SELECT product_id, store_id, price FROM prices ORDER BY store_id").fetchall() == [
        (survivor, s1, Decimal("3.50")), (survivor, s2, Decimal("2.90")), (survivor, s3, Decimal("3.10"))]
    assert conn.execute("SELECT sku, product_id FROM listings ORDER BY sku").fetchall() == [
        ("S1", survivor), ("S2", survivor)]
    assert conn.execute("SELECT product_id, barcode, size_value, category FROM products").fetchall() == [
        (survivor, BARCODE, 170, "Snacks")]  # the survivor's gaps filled from the duplicate
    [(reason, detail)] = conn.execute("SELECT reason, detail FROM catalogue_merges").fetchall()
    assert BARCODE in reason and detail["merged_row"]["name"] == "Chips 170g (old)"


def test_same_brand_name_and_size_merge_unless_barcodes_conflict(conn, chain):
    chain_id, (s1, _, _) = chain
    brand = _brand(conn, "Arnott's", "arnotts")
    a = _product(conn, "Tim Tam 200g", brand, size=(200, "g"), name_key="tam tim")
    b = _product(conn, "TIM TAM 200 g", brand, barcode=BARCODE, size=(200, "g"), name_key="tam tim")
    # two of another key with two different barcodes and one without: not guessed
    c = _product(conn, "Shapes 175g", brand, barcode=OTHER, size=(175, "g"), name_key="shapes")
    d = _product(conn, "Shapes 175g", brand, barcode="0" + with_check_digit("930000000007"), size=(175, "g"),
                 name_key="shapes")
    e = _product(conn, "Shapes 175g", brand, size=(175, "g"), name_key="shapes")
    for i, p in enumerate((a, b, c, d, e)):
        _listing(conn, chain_id, f"L{i}", p)
    conn.commit()
    counts = reconcile(conn, "r1")
    assert counts["product_merged"] == 1
    remaining = [r[0] for r in conn.execute("SELECT product_id FROM products ORDER BY 1").fetchall()]
    assert remaining == [b, c, d, e]  # b (with a barcode) survived a
    [(kind, detail)] = conn.execute("SELECT kind, detail FROM catalogue_flags").fetchall()
    assert kind == "ambiguous_duplicates" and detail["product_ids"] == [c, d, e]


def test_reconcile_twice_changes_nothing(conn, chain):
    chain_id, (s1, s2, _) = chain
    _brand(conn, "Coca Cola", "coca cola")
    _brand(conn, "COCA-COLA", "COCA-COLA")
    x = _product(conn, "Cola", barcode=BARCODE)
    y = _product(conn, "Cola 2")
    _listing(conn, chain_id, "X", x)
    _listing(conn, chain_id, "Y", y, BARCODE)
    _price(conn, x, s1, "1.00", T0)
    _price(conn, y, s1, "1.20", T0)
    _price(conn, y, s2, "1.30", T0)
    conn.execute("INSERT INTO runs (run_id, logical_date) VALUES ('r1', %s)", (T0,))
    conn.commit()
    first = reconcile(conn, "r1")
    assert first["brand_merged"] == 1 and first["product_merged"] == 1
    before = state(conn)
    second = reconcile(conn, "r1")
    assert state(conn) == before
    assert second["brand_sets"] == second["product_sets"] == 0


def test_merges_repoint_the_runs_staged_items_so_the_upsert_sees_survivors(conn, chain):
    chain_id, (s1, _, _) = chain
    stage(conn, "r1", [item(s1, chain_id, "A", "Oat Milk 1L", brand="Oatly")])
    resolve_run(conn, "r1")
    old = product_of(conn, "r1", s1, "A")
    survivor = _product(conn, "Oatly Oat Milk", barcode=BARCODE)
    conn.execute("UPDATE listings SET barcode = %s WHERE sku = 'A'", (BARCODE,))
    conn.commit()
    reconcile(conn, "r1")
    assert product_of(conn, "r1", s1, "A") == survivor
    assert conn.execute("SELECT count(*) FROM products WHERE product_id = %s", (old,)).fetchone() == (0,)


def test_many_duplicate_sets_merge_in_batches_each_keeping_its_own_newest_prices(conn, chain, monkeypatch):
    from pricegroups.catalogue import reconcile as reconciling

    monkeypatch.setattr(reconciling, "MERGE_BATCH", 2)  # 5 sets: 3 transactions, a few statements each
    chain_id, (s1, s2, _) = chain
    expected = []
    for n in range(5):
        barcode = "0" + with_check_digit(f"93100000000{n}")
        survivor = _product(conn, f"Tea {n} 100g", barcode=barcode)
        dup = _product(conn, f"Tea {n} 100g (old)", category=f"Tea {n}")
        _listing(conn, chain_id, f"T{n}", survivor, barcode)
        _listing(conn, chain_id, f"D{n}", dup, barcode)
        _price(conn, survivor, s1, f"{n + 1}.00", T0)
        _price(conn, dup, s1, f"{n + 1}.50", T0 + timedelta(days=1))  # newer: the set's price at s1
        _price(conn, dup, s2, f"{n + 1}.20", T0)
        expected += [(survivor, s1, Decimal(f"{n + 1}.50")), (survivor, s2, Decimal(f"{n + 1}.20"))]
    conn.commit()
    counts = reconcile(conn, "r1")
    assert counts["product_sets"] == 5 and counts["product_merged"] == 5
    assert counts["product_prices_dropped"] == 5 and counts["product_prices_moved"] == 10
    assert conn.execute("SELECT product_id, store_id, price FROM prices ORDER BY 1, 2").fetchall() == sorted(expected)
    assert conn.execute("SELECT count(*), count(DISTINCT survivor_id) FROM catalogue_merges").fetchone() == (5, 5)
    assert [c for (c,) in conn.execute("SELECT category FROM products ORDER BY product_id")] == [
        f"Tea {n}" for n in range(5)], "each survivor's gaps filled from its own duplicate"
    assert reconcile(conn, "r1")["product_merged"] == 0
