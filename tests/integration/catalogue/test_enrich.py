"""ProductEnricher on real PostgreSQL: attributes from every listing, unit prices computed or checked."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pricegroups.catalogue.barcodes import with_check_digit
from pricegroups.catalogue.enrich import enrich, parse_measure
from pricegroups.catalogue.resolve import resolve_run
from pricegroups.catalogue.sizes import Size
from tests.factories import make_chain_with_stores
from tests.integration.catalogue.staging import item, product_of, stage, state

BARCODE = with_check_digit("930000000009")


@pytest.fixture
def chains(conn):
    acme, acme_stores = make_chain_with_stores(conn, "acme", stores=2)
    bolt, bolt_stores = make_chain_with_stores(conn, "bolt", stores=1)
    return acme, acme_stores, bolt, bolt_stores


@pytest.mark.parametrize(("text", "size"), [
    ("per 100g", Size(Decimal(100), "g")), ("$/kg", Size(Decimal(1000), "g")), ("per 1L", Size(Decimal(1000), "ml")),
    ("/100mL", Size(Decimal(100), "ml")), ("each", Size(Decimal(1), "each")), ("$ per 1 ea", Size(Decimal(1), "each")),
    ("per litre", Size(Decimal(1000), "ml")), ("AUD 1kg", Size(Decimal(1000), "g")), ("", None), ("??", None),
])
def test_unit_measures_as_sites_write_them(text, size):
    assert parse_measure(text) == size


def test_size_barcode_and_category_are_filled_from_other_listings(conn, chains):
    acme, (a1, _), bolt, (b1,) = chains
    # one product (same barcode); only acme knows the size, only bolt the category
    stage(conn, "r1", [item(a1, acme, "A", "Oat Milk", barcode=BARCODE, size_text="1L"),
                       item(b1, bolt, "B", "Oat Milk", barcode=BARCODE, category="Dairy & Alternatives")])
    resolve_run(conn, "r1")
    # a product created without size or category by bolt first, known by acme later
    conn.execute("UPDATE products SET size_value = NULL, size_unit = NULL, category = NULL")
    counts = enrich(conn, "r1")
    assert counts["sizes_filled"] == 1 and counts["categories_filled"] == 1
    assert conn.execute("SELECT size_value, size_unit, category, barcode FROM products").fetchall() == [
        (Decimal(1000), "ml", "Dairy & Alternatives", "0" + BARCODE)]


def test_a_barcode_known_only_to_a_listing_fills_the_product(conn, chains):
    acme, (a1, _), _, _ = chains
    stage(conn, "r1", [item(a1, acme, "A", "Granola 500g")])
    resolve_run(conn, "r1")
    conn.execute("UPDATE listings SET barcode = %s", ("0" + BARCODE,))
    counts = enrich(conn, "r1")
    assert counts["barcodes_filled"] == 1
    assert conn.execute("SELECT barcode FROM products").fetchall() == [("0" + BARCODE,)]


def test_a_barcode_claimed_elsewhere_is_not_filled(conn, chains):
    acme, (a1, _), _, _ = chains
    stage(conn, "r1", [item(a1, acme, "A", "Granola 500g"), item(a1, acme, "B", "Muesli 750g", barcode=BARCODE)])
    resolve_run(conn, "r1")
    conn.execute("UPDATE listings SET barcode = %s WHERE sku = 'A'", ("0" + BARCODE,))
    assert enrich(conn, "r1")["barcodes_filled"] == 0  # the reconciler's job: it is a duplicate or a conflict


def test_unit_price_is_computed_when_the_site_gives_none(conn, chains):
    acme, (a1, a2), _, _ = chains
    stage(conn, "r1", [
        item(a1, acme, "M", "Milk 2L", price=Decimal("3.10")),
        item(a2, acme, "M", "Milk 2L", price=Decimal("3.30")),
        item(a1, acme, "C", "Cola 6 x 375mL", price=Decimal("9.00")),
        item(a1, acme, "E", "Avocado each", price=Decimal("1.50")),
        item(a1, acme, "W", "Mystery box", price=Decimal("5.00")),  # no size: nothing to compute
    ])
    resolve_run(conn, "r1")
    counts = enrich(conn, "r1")
    rows = conn.execute("SELECT store_id, sku, unit_price, unit_measure FROM scraped_items ORDER BY 1, 2").fetchall()
    assert rows == [
        (a1, "C", Decimal("0.4000"), "per 100ml"),  # 9.00 / 2250 ml * 100
        (a1, "E", Decimal("1.5000"), "each"),
        (a1, "M", Decimal("0.1550"), "per 100ml"),
        (a1, "W", None, None),
        (a2, "M", Decimal("0.1650"), "per 100ml"),
    ]
    assert counts["unit_prices_computed"] == 4


def test_a_large_unit_price_disagreement_is_flagged_not_overwritten(conn, chains):
    acme, (a1, a2), _, _ = chains
    stage(conn, "r1", [
        # 4.00 for 500 g is 0.80 per 100 g and 8.00 per kg
        item(a1, acme, "OK", "Coffee 500g", price=Decimal("4.00"), unit_price=Decimal("8.00"), unit_measure="per kg"),
        item(a2, acme, "OK", "Coffee 500g", price=Decimal("4.00"), unit_price=Decimal("0.82"),
             unit_measure="$/100g"),  # within tolerance
        item(a1, acme, "BAD", "Tea 100g", price=Decimal("5.00"), unit_price=Decimal("0.50"),
             unit_measure="per 100g"),  # the site says 0.50, price/size says 5.00
    ])
    resolve_run(conn, "r1")
    counts = enrich(conn, "r1")
    assert counts["unit_prices_compared"] == 3 and counts["unit_prices_flagged"] == 1
    assert conn.execute("SELECT sku, unit_price FROM scraped_items WHERE sku = 'BAD'").fetchall() == [
        ("BAD", Decimal("0.5000"))]
    [(sku, detail)] = conn.execute("SELECT sku, detail FROM catalogue_flags WHERE kind = 'unit_price_disagrees'")
    assert sku == "BAD" and Decimal(str(detail["computed"])) == Decimal("5.0000")


def test_absurd_sizes_in_other_listings_are_flagged_and_skipped(conn, chains):
    acme, (a1, _), bolt, (b1,) = chains
    stage(conn, "r1", [item(a1, acme, "A", "Rice", barcode=BARCODE, size_text="0g"),
                       item(b1, bolt, "B", "Rice", barcode=BARCODE, size_text="99999kg")])
    resolve_run(conn, "r1")
    counts = enrich(conn, "r1")
    assert counts["sizes_filled"] == 0
    assert conn.execute("SELECT count(*) FROM catalogue_flags WHERE kind = 'absurd_size'").fetchone() == (2,)


def test_enrich_twice_changes_nothing(conn, chains):
    acme, (a1, a2), bolt, (b1,) = chains
    stage(conn, "r1", [
        item(a1, acme, "A", "Oat Milk", barcode=BARCODE, size_text="1L", price=Decimal("2.00")),
        item(b1, bolt, "B", "Oat Milk", barcode=BARCODE, category="Dairy", price=Decimal("2.20"),
             unit_price=Decimal("9.99"), unit_measure="per 100ml"),
    ])
    resolve_run(conn, "r1")
    enrich(conn, "r1")
    before = state(conn)
    again = enrich(conn, "r1")
    assert state(conn) == before
    assert again["sizes_filled"] == again["unit_prices_computed"] == again["flags"] == 0
    assert product_of(conn, "r1", a1, "A") == product_of(conn, "r1", b1, "B")
