"""ProductResolver on real PostgreSQL: order, identity across chains, nothing lost, nothing mangled."""

from __future__ import annotations

import psycopg
import pytest

from pricegroups.catalogue.barcodes import with_check_digit
from pricegroups.catalogue.resolve import resolve_run
from tests.factories import make_chain_with_stores
from tests.integration.catalogue.staging import item, product_of, stage, state

COKE = with_check_digit("930000000001")  # EAN-13
CHIPS = with_check_digit("930000000002")


@pytest.fixture
def chains(conn):
    acme, acme_stores = make_chain_with_stores(conn, "acme", stores=2)
    bolt, bolt_stores = make_chain_with_stores(conn, "bolt", stores=2)
    return acme, acme_stores, bolt, bolt_stores


def _flags(conn, kind):
    return conn.execute("SELECT sku, detail FROM catalogue_flags WHERE kind = %s ORDER BY flag_id", (kind,)).fetchall()


def test_one_product_across_chains_through_barcodes_in_any_gtin_form(conn, chains):
    acme, (a1, a2), bolt, (b1, _) = chains
    stage(conn, "r1", [
        item(a1, acme, "A-COKE", "Coca-Cola Classic 1.25L", brand="Coca-Cola", barcode=COKE),
        item(a2, acme, "A-COKE", "Coca-Cola Classic 1.25L", brand="Coca-Cola", barcode=COKE),
        item(b1, bolt, "77", "Classic Coke Bottle", brand="Coke", size_text="1.25 Litre", barcode="0" + COKE),
    ])
    counts = resolve_run(conn, "r1")
    assert product_of(conn, "r1", a1, "A-COKE") == product_of(conn, "r1", a2, "A-COKE") == product_of(conn, "r1", b1, "77")
    assert counts["created_products"] == 1 and counts["created_listings"] == 2
    assert conn.execute("SELECT barcode, size_value, size_unit FROM products").fetchall() == [
        ("0" + COKE, 1250, "ml")]


def test_listing_comes_before_barcode_and_barcode_before_key(conn, chains):
    acme, (a1, _), bolt, (b1, _) = chains
    stage(conn, "r1", [
        item(a1, acme, "A1", "Crinkle Chips 170g", brand="Smith's", barcode=CHIPS),
        item(a1, acme, "A2", "Plain Chips 170g", brand="Smith's"),
    ])
    resolve_run(conn, "r1")
    chips = product_of(conn, "r1", a1, "A1")
    plain = product_of(conn, "r1", a1, "A2")
    assert chips != plain
    # next run: A2 now claims CHIPS' barcode, but its listing wins (and the change is flagged);
    # B-new has the barcode and plain's key: the barcode wins; B-key has only plain's key
    stage(conn, "r2", [
        item(a1, acme, "A2", "Plain Chips 170g", brand="Smith's", barcode=CHIPS),
        item(b1, bolt, "B-new", "Plain Chips 170g", brand="Smiths", barcode=CHIPS),
        item(b1, bolt, "B-key", "Chips, Plain", brand="SMITHS", size_text="170 g"),
    ])
    counts = resolve_run(conn, "r2")
    assert product_of(conn, "r2", a1, "A2") == plain
    assert product_of(conn, "r2", b1, "B-new") == chips
    assert product_of(conn, "r2", b1, "B-key") == plain
    assert (counts["by_listing"], counts["by_barcode"], counts["by_key"], counts["created_products"]) == (1, 1, 1, 0)
    assert [sku for sku, _ in _flags(conn, "barcode_shared")] == [None]  # A1 and A2 of acme share CHIPS


def test_a_barcode_item_takes_over_a_barcodeless_product_of_its_key(conn, chains):
    acme, (a1, _), bolt, (b1, _) = chains
    stage(conn, "r1", [item(a1, acme, "A1", "Tim Tam Original 200g", brand="Arnott's")])
    resolve_run(conn, "r1")
    stage(conn, "r2", [item(b1, bolt, "B1", "Tim Tam Original", brand="Arnotts Pty Ltd", size_text="200g",
                            barcode=CHIPS)])
    resolve_run(conn, "r2")
    assert product_of(conn, "r2", b1, "B1") == product_of(conn, "r1", a1, "A1")
    assert conn.execute("SELECT barcode FROM products").fetchall() == [("0" + CHIPS,)]


def test_brand_variants_resolve_to_one_brand_and_aliases_are_followed(conn, chains):
    acme, (a1, _), bolt, (b1, _) = chains
    conn.execute("INSERT INTO brand_aliases (alias_key, brand_key) VALUES ('coke', 'cocacola')")
    names = ["Coca-Cola", "Coca Cola", "COCA-COLA", "Coca-Cola Pty Ltd", "Coke", "Cóca-Cola"]
    stage(conn, "r1", [item(a1, acme, f"S{i}", f"Drink {i}", brand=n) for i, n in enumerate(names)])
    counts = resolve_run(conn, "r1")
    assert counts["created_brands"] == 1
    assert conn.execute("SELECT count(DISTINCT brand_id), count(*) FROM products").fetchone() == (1, len(names))
    assert conn.execute("SELECT key FROM brands").fetchall() == [("cocacola",)]


def test_restricted_circulation_barcodes_do_not_join_chains(conn, chains):
    acme, (a1, _), bolt, (b1, _) = chains
    instore = with_check_digit("200000001234")
    stage(conn, "r1", [item(a1, acme, "A1", "Deli Ham 200g", barcode=instore),
                       item(b1, bolt, "B1", "Roast Beef 150g", barcode=instore)])
    resolve_run(conn, "r1")
    assert product_of(conn, "r1", a1, "A1") != product_of(conn, "r1", b1, "B1")
    assert _flags(conn, "invalid_barcode") == []


def test_invalid_barcodes_are_flagged_and_the_key_is_used(conn, chains):
    acme, (a1, _), bolt, (b1, _) = chains
    stage(conn, "r1", [item(a1, acme, "A1", "Milk 2L", brand="Dairy Farmers", barcode="9300000000011"),
                       item(b1, bolt, "B1", "Milk", brand="Dairy Farmers", size_text="2 Litre")])
    resolve_run(conn, "r1")
    assert product_of(conn, "r1", a1, "A1") == product_of(conn, "r1", b1, "B1")
    [(sku, detail)] = _flags(conn, "invalid_barcode")
    assert sku == "A1" and "check digit" in detail["problem"]


def test_a_listing_whose_barcode_changes_is_flagged_not_guessed(conn, chains):
    acme, (a1, _), _, _ = chains
    stage(conn, "r1", [item(a1, acme, "A1", "Chips 170g", barcode=CHIPS)])
    resolve_run(conn, "r1")
    first = product_of(conn, "r1", a1, "A1")
    stage(conn, "r2", [item(a1, acme, "A1", "Chips 170g", barcode=COKE)])
    resolve_run(conn, "r2")
    assert product_of(conn, "r2", a1, "A1") == first
    assert conn.execute("SELECT barcode FROM products").fetchall() == [("0" + CHIPS,)]
    [(sku, detail)] = _flags(conn, "barcode_changed")
    assert sku == "A1" and detail == {"old": "0" + CHIPS, "new": "0" + COKE}


NASTY = [
    "O'Reilly's \"Best\" Chips 100g",
    "Robert'); DROP TABLE products;-- 1kg",
    "100% Juice \\N \t tab; 1L",
    "Crème brûlée 2 × 100g",
    "🍌 Banana Bread 🍞",
    "牛乳 1L",
    "Молоко 2,5% 1 л",
    "حليب 1 لتر",
    "%s %(name)s {} $1 ?",
]


def test_names_with_quotes_sql_emoji_and_other_scripts_are_stored_exactly(conn, chains):
    acme, (a1, _), _, _ = chains
    stage(conn, "r1", [item(a1, acme, f"N{i}", name, brand=name[:6]) for i, name in enumerate(NASTY)])
    counts = resolve_run(conn, "r1")
    assert counts["rejected"] == 0
    stored = conn.execute(
        """SELECT l.name, p.name, l.brand_text FROM listings l JOIN products p USING (product_id)
           ORDER BY l.sku"""
    ).fetchall()
    assert [row[0] for row in stored] == NASTY
    assert [row[1] for row in stored] == NASTY
    assert [row[2] for row in stored] == [n[:6] for n in NASTY]
    assert conn.execute("SELECT count(*) FROM products").fetchone() == (len(NASTY),)


def test_absurd_sizes_are_flagged_and_the_product_has_no_size(conn, chains):
    acme, (a1, _), _, _ = chains
    stage(conn, "r1", [item(a1, acme, "Z1", "Sugar", size_text="0g"),
                       item(a1, acme, "Z2", "Flour", size_text="99999kg")])
    counts = resolve_run(conn, "r1")
    assert counts["rejected"] == 0
    assert conn.execute("SELECT count(*) FROM products WHERE size_value IS NULL").fetchone() == (2,)
    assert sorted(sku for sku, _ in _flags(conn, "absurd_size")) == ["Z1", "Z2"]


def test_every_staged_item_ends_resolved_or_rejected_with_a_reason(conn, chains):
    acme, (a1, a2), bolt, (b1, _) = chains
    stage(conn, "r1", [
        item(a1, acme, "ok", "Bread 700g"),
        item(a1, acme, "blank", "   "),
        item(a2, acme, "blank", "\t"),
        item(b1, bolt, "empty", "", barcode=COKE),
        item(b1, bolt, "ok2", "Bread 700g", barcode="not a barcode"),
    ])
    resolve_run(conn, "r1")
    resolve_run(conn, "r1")
    rows = conn.execute(
        """SELECT si.store_id, si.sku, si.product_id IS NOT NULL, r.reason
           FROM scraped_items si
           LEFT JOIN rejected_items r ON r.run_id = si.run_id AND r.store_id = si.store_id AND r.sku = si.sku
           ORDER BY si.store_id, si.sku"""
    ).fetchall()
    assert len(rows) == 5
    for _, sku, resolved, reason in rows:
        assert resolved != (reason is not None), sku
    assert {sku: reason for _, sku, _, reason in rows if reason} == {
        "blank": "blank product name", "empty": "blank product name"}
    assert conn.execute("SELECT count(*) FROM rejected_items").fetchone() == (3,)


def test_resolving_a_run_twice_changes_nothing_further(conn, chains):
    acme, (a1, a2), bolt, (b1, _) = chains
    stage(conn, "r1", [
        item(a1, acme, "A1", "Coca-Cola 1.25L", brand="Coca-Cola", barcode=COKE),
        item(a2, acme, "A2", "   "),
        item(b1, bolt, "B1", "Chips 170g", brand="Smith's", barcode="123"),
    ])
    resolve_run(conn, "r1")
    before = state(conn)
    again = resolve_run(conn, "r1")
    assert state(conn) == before
    assert again["created_products"] == again["created_listings"] == again["rejected"] == again["flags"] == 0


def test_a_large_run_takes_a_handful_of_statements_not_one_per_item(conn, chains):
    acme, (a1, a2), bolt, (b1, b2) = chains
    items = [item(s, c, f"K{i}", f"Product {i} 100g", brand=f"Brand {i % 50}",
                  barcode=with_check_digit(f"93{i:010d}") if i % 3 else None)
             for s, c in ((a1, acme), (a2, acme), (b1, bolt), (b2, bolt)) for i in range(3000)]
    stage(conn, "r1", items)
    statements = []

    class CountingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            statements.append(query)
            return super().execute(query, params, **kwargs)

    conn.cursor_factory = CountingCursor
    counts = resolve_run(conn, "r1")
    assert counts["newly_resolved"] == 12000 and counts["created_listings"] == 6000
    # products: 2000 barcodes shared across chains + 1000 keys shared across chains
    assert counts["created_products"] == 3000
    assert 10 < len(statements) < 50
