"""Builders for staged items, as the scrape step would leave them in scraped_items."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

import psycopg

from tests.factories import T0

COLUMNS = ("run_id", "store_id", "chain_id", "sku", "name", "brand", "size_text", "barcode", "category",
           "price", "was_price", "unit_price", "unit_measure", "on_special", "promo_text", "scraped_at")


def item(store_id: int, chain_id: int, sku: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"store_id": store_id, "chain_id": chain_id, "sku": sku, "name": name, **fields}


def stage(conn: psycopg.Connection, run_id: str, items: Iterable[dict[str, Any]],
          scraped_at: datetime = T0, ok_stores: bool = True) -> None:
    """Register the run, copy the items into scraped_items and log an ok scrape for each store."""
    items = list(items)
    conn.execute("INSERT INTO runs (run_id, logical_date) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (run_id, scraped_at))
    with conn.cursor() as cur, cur.copy(f"COPY scraped_items ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for it in items:
            row = {"run_id": run_id, "price": Decimal("1.00"), "on_special": False,
                   "scraped_at": scraped_at, **it}
            copy.write_row([row.get(c) for c in COLUMNS])
    if ok_stores:
        conn.execute(
            """INSERT INTO scrape_log (run_id, store_id, status, items)
               SELECT %s, store_id, 'ok', count(*) FROM scraped_items WHERE run_id = %s GROUP BY store_id
               ON CONFLICT DO NOTHING""",
            (run_id, run_id),
        )
    conn.commit()


def product_of(conn: psycopg.Connection, run_id: str, store_id: int, sku: str) -> int | None:
    row = conn.execute("SELECT product_id FROM scraped_items WHERE run_id = %s AND store_id = %s AND sku = %s",
                       (run_id, store_id, sku)).fetchone()
    return row[0]


STATE_TABLES = {
    "brands": "SELECT * FROM brands ORDER BY brand_id",
    "brand_aliases": "SELECT * FROM brand_aliases ORDER BY alias_key",
    "products": "SELECT * FROM products ORDER BY product_id",
    "listings": "SELECT * FROM listings ORDER BY chain_id, sku",
    "prices": "SELECT * FROM prices ORDER BY product_id, store_id",
    "scraped_items": "SELECT * FROM scraped_items ORDER BY run_id, store_id, sku",
    "rejected_items": "SELECT * FROM rejected_items ORDER BY rejected_id",
    "catalogue_flags": "SELECT * FROM catalogue_flags ORDER BY flag_id",
    "catalogue_merges": "SELECT * FROM catalogue_merges ORDER BY merge_id",
    "listing_absences": "SELECT * FROM listing_absences ORDER BY store_id, product_id",
    "runs": "SELECT run_id, summary FROM runs ORDER BY run_id",
}


def state(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every row the catalogue steps may write, for 'twice changes nothing' checks."""
    return {name: conn.execute(query).fetchall() for name, query in STATE_TABLES.items()}
