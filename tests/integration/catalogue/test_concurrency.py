"""Two runs resolving the same new products at once create each product once."""

from __future__ import annotations

import threading

import psycopg

from pricegroups.catalogue.barcodes import with_check_digit
from pricegroups.catalogue.resolve import resolve_run
from tests.factories import make_chain_with_stores
from tests.integration.catalogue.staging import item, stage


def _resolve_at_once(db_url: str, run_ids: list[str]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(run_ids))

    def resolve(run_id: str) -> None:
        try:
            with psycopg.connect(db_url) as own:
                start.wait()
                resolve_run(own, run_id)
        except BaseException as exc:  # collected: an exception in a thread would vanish
            errors.append(exc)

    threads = [threading.Thread(target=resolve, args=(r,)) for r in run_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_resolves_of_overlapping_runs_create_each_product_once(conn, db_url):
    acme, (a1, _) = make_chain_with_stores(conn, "acme", stores=2)
    bolt, (b1, _) = make_chain_with_stores(conn, "bolt", stores=2)
    barcodes = [with_check_digit(f"93{i:010d}") for i in range(300)]
    stage(conn, "ra", [item(a1, acme, f"A{i}", f"Thing {i} 100g", barcode=bc) for i, bc in enumerate(barcodes)]
          + [item(a1, acme, f"K{i}", f"Loose No{i} each") for i in range(200)])
    stage(conn, "rb", [item(b1, bolt, f"B{i}", f"Thing {i}", size_text="100 g", barcode=bc)
                       for i, bc in enumerate(barcodes)]
          + [item(b1, bolt, f"K{i}", f"Loose No{i}", size_text="each") for i in range(200)])
    assert _resolve_at_once(db_url, ["ra", "rb"]) == []
    assert conn.execute("SELECT count(*) FROM products").fetchone() == (500,)
    assert conn.execute("SELECT count(*) FROM scraped_items WHERE product_id IS NULL").fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM (SELECT product_id FROM listings GROUP BY 1 HAVING count(*) = 2) x").fetchone() == (500,)


def test_concurrent_resolves_of_products_known_only_by_key_create_each_once(conn, db_url):
    # no barcode to conflict on: only the catalogue lock keeps the two runs apart (fails without it)
    acme, (a1, _) = make_chain_with_stores(conn, "acme", stores=2)
    bolt, (b1, _) = make_chain_with_stores(conn, "bolt", stores=2)
    stage(conn, "ra", [item(a1, acme, f"A{i}", f"Loose No{i} each") for i in range(2000)])
    stage(conn, "rb", [item(b1, bolt, f"B{i}", f"Loose No{i}", size_text="each") for i in range(2000)])
    assert _resolve_at_once(db_url, ["ra", "rb"]) == []
    assert conn.execute("SELECT count(*) FROM products").fetchone() == (2000,)
