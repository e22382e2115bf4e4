"""Benchmark: resolving 200,000 staged items to products, set-based, against a per-item baseline.

Dataset (deterministic): 4 chains x 5 stores x 10,000 SKUs = 200,000 staged
items, drawn from 15,000 products. 70% of products have a global barcode, which
chains 1-3 publish (in varying GTIN forms; 1% mangled) and chain 4 never does;
brands and names are written differently per chain ("Coca-Cola" / "COCA COLA",
size in the name or in a size text, word order), and a few names are blank.

Measured in one process, on one fresh database:

  (a) baseline: per-item resolution (look up listing, barcode, key; insert brand,
      product, listing; update the item: one round trip per step) on a 2,000-item
      sample with the same mix of new and known SKUs, extrapolated to 200,000
  (b) resolve_run on an empty catalogue (every listing new: the worst case)
  (c) resolve_run on the next day's run (every listing known: the daily case)
  (d) for information: reconcile and enrich of that run

Ends with: RESULT resolve_200k_s=<(b) seconds>
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from psycopg import sql

from pricegroups import db
from pricegroups.catalogue.barcodes import with_check_digit
from pricegroups.catalogue.enrich import enrich
from pricegroups.catalogue.reconcile import reconcile
from pricegroups.catalogue.resolve import key_item, resolve_run
from pricegroups.migrate import migrate
from pricegroups.stores import StoreInfo, ensure_chain, ensure_stores

T0 = datetime(2026, 11, 1, 6, tzinfo=timezone.utc)
CHAINS, STORES, SKUS, PRODUCTS = 4, 5, 10_000, 15_000
BRANDS = ["Coca-Cola", "Smith's", "Arnott's", "Nestlé", "Ben & Jerry's", "Kellogg's", "Heinz", "Uncle Tobys",
          "Dairy Farmers", "Oatly", "Sanitarium", "Cadbury", "Bega", "Schweppes", "Devondale", "Lurpak"]
WORDS = ["Classic", "Original", "Light", "Crunchy", "Smooth", "Dark", "Milk", "Chips", "Cereal", "Juice",
         "Yoghurt", "Cheese", "Biscuits", "Chocolate", "Coffee", "Tea", "Honey", "Oats", "Soup", "Sauce"]
SIZES = ["500g", "1.25L", "6 x 375mL", "170g", "2L", "1kg", "12pk", "750ml", "200g", "each"]
COLUMNS = "run_id, store_id, chain_id, sku, name, brand, size_text, barcode, category, price, scraped_at"


def brand_variant(brand: str, chain: int) -> str:
    return [brand, brand.upper(), brand.replace("-", " ").replace("'", ""), brand + " Pty Ltd"][chain % 4]


def make_catalogue(seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    products = []
    for p in range(PRODUCTS):
        words = rng.sample(WORDS, 3)
        products.append({
            "brand": BRANDS[p % len(BRANDS)],
            "words": words + [f"No{p}"],
            "size": SIZES[p % len(SIZES)],
            "barcode": with_check_digit(f"93{p:010d}") if rng.random() < 0.7 else None,
            "category": WORDS[p % 7],
        })
    return products


def make_items(products: list[dict], chain_ids: list[int], stores: dict[int, list[int]], run_id: str,
               at: datetime, seed: int = 13) -> list[tuple]:
    """Store-major rows for scraped_items: each chain lists the same 10,000 of the products every day."""
    rng = random.Random(seed)  # prices and mangled barcodes vary by day, the assortment does not
    rows = []
    for c, chain_id in enumerate(chain_ids):
        carried = sorted(random.Random(1000 + c).sample(range(PRODUCTS), SKUS))
        listed = []
        for p in carried:
            prod = products[p]
            words = prod["words"] if c % 2 == 0 else list(reversed(prod["words"]))
            in_name = c in (0, 2)
            name = " ".join(words) + (" " + prod["size"] if in_name else "")
            barcode = None
            if prod["barcode"] and c < 3:
                barcode = ["", "0", " "][c] + prod["barcode"]
                if rng.random() < 0.01:
                    barcode = barcode[:-1] + str((int(barcode[-1]) + 1) % 10)  # a wrong check digit
            if rng.random() < 0.0005:
                name = "   "
            listed.append((f"{chain_id}-{p}", name, brand_variant(prod["brand"], c),
                           None if in_name else prod["size"], barcode, prod["category"]))
        for store_id in stores[chain_id]:
            for sku, name, brand, size_text, barcode, category in listed:
                price = Decimal(rng.randrange(100, 2000)) / 100
                rows.append((run_id, store_id, chain_id, sku, name, brand, size_text, barcode, category, price, at))
    return rows


def copy_items(conn: psycopg.Connection, rows: list[tuple]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY scraped_items ({COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.commit()


def reset_catalogue(conn: psycopg.Connection) -> None:
    conn.execute("""TRUNCATE scraped_items, rejected_items, listings, prices, products, brands, catalogue_flags,
                    catalogue_merges, listing_absences RESTART IDENTITY""")
    conn.commit()


def naive_resolve(conn: psycopg.Connection, run_id: str) -> int:
    """The baseline: the same resolution order, one item and one round trip per step at a time."""
    items = conn.execute(
        "SELECT store_id, chain_id, sku, name, brand, size_text, barcode, category, scraped_at FROM scraped_items"
        " WHERE run_id = %s ORDER BY store_id, sku", (run_id,)).fetchall()
    aliases: dict[str, str] = {}
    for store_id, chain_id, sku, name, brand, size_text, barcode, category, at in items:
        row = conn.execute("SELECT product_id FROM listings WHERE chain_id = %s AND sku = %s",
                           (chain_id, sku)).fetchone()
        if row is None:
            key = key_item(chain_id, sku, name, brand, size_text, barcode, aliases)
            if key.reject:
                conn.execute("INSERT INTO rejected_items (run_id, stage, chain_id, store_id, sku, reason)"
                             " VALUES (%s, 'resolve', %s, %s, %s, %s)", (run_id, chain_id, store_id, sku, key.reject))
                continue
            brand_id = None
            if key.brand_key:
                conn.execute("INSERT INTO brands (name, key) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                             (brand, key.brand_key))
                brand_id = conn.execute("SELECT brand_id FROM brands WHERE key = %s", (key.brand_key,)).fetchone()[0]
            value, unit = key.size if key.size else (None, None)
            row = key.gtin and conn.execute("SELECT product_id FROM products WHERE barcode = %s",
                                            (key.gtin,)).fetchone()
            if not row:
                row = conn.execute(
                    """SELECT product_id FROM products WHERE brand_id IS NOT DISTINCT FROM %s AND name_key = %s
                       AND size_unit IS NOT DISTINCT FROM %s AND size_value IS NOT DISTINCT FROM %s
                       AND (barcode IS NULL OR %s::text IS NULL) ORDER BY product_id LIMIT 1""",
                    (brand_id, key.name_key, unit, value, key.gtin)).fetchone()
            if not row:
                row = conn.execute(
                    """INSERT INTO products (brand_id, name, name_key, size_value, size_unit, barcode, category)
                       VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING product_id""",
                    (brand_id, name, key.name_key, value, unit, key.gtin, category)).fetchone()
            conn.execute(
                """INSERT INTO listings (chain_id, sku, product_id, name, brand_text, size_text, barcode, category,
                                         first_seen_at, last_seen_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)""",
                (chain_id, sku, row[0], name, brand, size_text, key.gtin, category, at, at))
        conn.execute("UPDATE scraped_items SET product_id = %s WHERE run_id = %s AND store_id = %s AND sku = %s",
                     (row[0], run_id, store_id, sku))
    conn.commit()
    return len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=100, help="SKUs per chain in the baseline sample")
    args = parser.parse_args()

    server = db.database_url()
    name = "pricegroups_bench_resolve"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = db.with_database(server, name)
    with psycopg.connect(url) as conn:
        migrate(conn)
        chain_ids, stores = [], {}
        for c in range(CHAINS):
            chain_id = ensure_chain(conn, f"chain{c}", f"Chain {c}")
            ids = ensure_stores(conn, chain_id, [StoreInfo(f"s{i}") for i in range(STORES)], at=T0)
            chain_ids.append(chain_id)
            stores[chain_id] = sorted(ids.values())
        conn.commit()
        products = make_catalogue()
        print(f"generating {CHAINS * STORES * SKUS:,} staged items ...", flush=True)
        day1 = make_items(products, chain_ids, stores, "bench-day1", T0)
        day2 = make_items(products, chain_ids, stores, "bench-day2", T0 + timedelta(days=1), seed=14)

        # (a) baseline on a sample with the run's mix: every store of each chain, the first N SKUs
        skus = {}
        for row in day1:
            skus.setdefault(row[2], [])
            if len(skus[row[2]]) < args.sample and row[3] not in skus[row[2]]:
                skus[row[2]].append(row[3])
        chosen = {(chain, sku) for chain, keep in skus.items() for sku in keep}
        sample = [("bench-base",) + row[1:] for row in day1 if (row[2], row[3]) in chosen]
        copy_items(conn, sample)
        start = time.perf_counter()
        done = naive_resolve(conn, "bench-base")
        naive_s = time.perf_counter() - start
        per_item_ms = 1000 * naive_s / done
        naive_200k = per_item_ms * len(day1) / 1000
        print(f"(a) per-item baseline: {done:,} items in {naive_s:.2f} s = {per_item_ms:.3f} ms/item"
              f" -> {naive_200k:.0f} s extrapolated to {len(day1):,}")
        reset_catalogue(conn)

        # (b) a cold catalogue, (c) the next day
        copy_items(conn, day1)
        conn.execute("ANALYZE scraped_items")
        conn.commit()
        start = time.perf_counter()
        cold = resolve_run(conn, "bench-day1")
        cold_s = time.perf_counter() - start
        print(f"(b) resolve_run, empty catalogue: {len(day1):,} items in {cold_s:.2f} s"
              f" ({len(day1) / cold_s:,.0f} items/s); {cold}")
        copy_items(conn, day2)
        conn.execute("ANALYZE scraped_items")
        conn.commit()
        start = time.perf_counter()
        warm = resolve_run(conn, "bench-day2")
        warm_s = time.perf_counter() - start
        print(f"(c) resolve_run, next day (known listings): {len(day2):,} items in {warm_s:.2f} s; {warm}")

        for label, step in (("reconcile", reconcile), ("enrich", enrich)):
            start = time.perf_counter()
            counts = step(conn, "bench-day2")
            print(f"(d) {label} after (c): {time.perf_counter() - start:.2f} s;"
                  f" {{{', '.join(f'{k}: {v}' for k, v in counts.items() if v)}}}")

        left = conn.execute(
            """SELECT count(*) FROM scraped_items si WHERE product_id IS NULL AND NOT EXISTS (
                 SELECT 1 FROM rejected_items r WHERE r.run_id = si.run_id AND r.store_id = si.store_id
                 AND r.sku = si.sku)""").fetchone()[0]
        shared = conn.execute("SELECT count(*) FROM (SELECT product_id FROM listings GROUP BY product_id"
                              " HAVING count(DISTINCT chain_id) > 1) x").fetchone()[0]
        print(f"check: items neither resolved nor rejected: {left}; products listed by 2+ chains: {shared:,}")
        print(f"ratios: baseline / cold = {naive_200k / cold_s:.1f}x, cold / warm = {cold_s / warm_s:.1f}x")
        if left:
            raise SystemExit("some staged items were neither resolved nor rejected")
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    print(f"RESULT resolve_200k_s={cold_s:.2f}")


if __name__ == "__main__":
    main()
