"""Benchmark: the project's bulk price upsert against the usual alternatives, in one process.

Preloads N prices, then writes a batch of N rows (30% new, 20% changed, 50%
unchanged) four ways, each starting from the same preloaded table:

  (a) row-by-row executemany INSERT ... ON CONFLICT (a sample, extrapolated)
  (b) VALUES-list batches of 1,000 rows ... ON CONFLICT, as ORMs' bulk_create do
  (c) pricegroups.upsert.upsert_prices (COPY -> staging -> one classified statement
      per chunk of whole stores, default Settings: 250,000 rows, each chunk committed)
  (d) raw binary COPY of the same rows into an empty copy of the table with its
      primary key: the practical ceiling

Ends with: RESULT upsert_vs_copy=<c/d> upsert_vs_values=<c/b> peak_rss_mib=<MiB>
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from psycopg import sql

from pricegroups import db
from pricegroups.migrate import migrate
from pricegroups.stores import StoreInfo, ensure_chain, ensure_stores
from pricegroups.upsert import PriceRow, upsert_prices

T0 = datetime(2026, 11, 1, 6, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=1)
STORES = 500
PRICE_POOL = [Decimal(cents) / 100 for cents in range(50, 5050)]  # shared objects keep memory flat
POOL_INDEX = {price: i for i, price in enumerate(PRICE_POOL)}
VALUE_COLUMNS = "price, was_price, unit_price, unit_measure, on_special, promo_text"
UPSERT_TAIL = f"""
ON CONFLICT (product_id, store_id) DO UPDATE
SET price = EXCLUDED.price, was_price = EXCLUDED.was_price, unit_price = EXCLUDED.unit_price,
    unit_measure = EXCLUDED.unit_measure, on_special = EXCLUDED.on_special,
    promo_text = EXCLUDED.promo_text, scraped_at = EXCLUDED.scraped_at, run_id = EXCLUDED.run_id
WHERE EXCLUDED.scraped_at >= prices.scraped_at
  AND (prices.{VALUE_COLUMNS.replace(', ', ', prices.')}) IS DISTINCT FROM
      (EXCLUDED.{VALUE_COLUMNS.replace(', ', ', EXCLUDED.')})
"""


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_dataset(rows: int, seed: int = 7) -> tuple[list[tuple[int, int]], list[PriceRow], list[PriceRow]]:
    """(product, store) keys, the preload rows and the batch rows, in scrape (store-major) order."""
    rng = random.Random(seed)
    products_needed = -(-int(rows * 1.3) // STORES)
    keys = [(p, s) for s in range(1, STORES + 1) for p in range(1, products_needed + 1)]
    rng.shuffle(keys)
    preload_keys = keys[:rows]
    new_keys = keys[rows : rows + int(rows * 0.3)]
    kept = preload_keys[: rows - len(new_keys)]  # 70% of the batch re-observes preloaded keys
    changed_count = int(rows * 0.2)
    base_price = {k: PRICE_POOL[rng.randrange(len(PRICE_POOL))] for k in preload_keys}
    preload = [PriceRow(p, s, base_price[(p, s)], T0) for p, s in preload_keys]
    batch = []
    for i, (p, s) in enumerate(kept):
        price = base_price[(p, s)]
        if i < changed_count:
            price = PRICE_POOL[(POOL_INDEX[price] + 7) % len(PRICE_POOL)]
        batch.append(PriceRow(p, s, price, T1))
    batch.extend(PriceRow(p, s, PRICE_POOL[(p * 31 + s) % len(PRICE_POOL)], T1) for p, s in new_keys)
    batch.sort(key=lambda r: (r.store_id, r.product_id))  # scrapes arrive store by store
    return keys, preload, batch


def setup_database(url: str, product_count: int) -> list[int]:
    with psycopg.connect(url) as conn:
        migrate(conn)
        conn.execute("TRUNCATE prices, listings, products, scrape_log, rejected_items RESTART IDENTITY CASCADE")
        conn.commit()
        chain = ensure_chain(conn, "bench", "Bench")
        ensure_stores(conn, chain, [StoreInfo(f"b{i:04d}") for i in range(STORES)], at=T0)
        conn.execute(
            "INSERT INTO products (product_id, name, name_key) SELECT g, 'p' || g, 'p' || g"
            " FROM generate_series(1, %s) g ON CONFLICT DO NOTHING",
            (product_count,),
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('products', 'product_id'), %s)", (product_count,))
        store_ids = [r[0] for r in conn.execute("SELECT store_id FROM stores WHERE chain_id = %s ORDER BY 1", (chain,))]
        conn.commit()
    return store_ids


def copy_rows(cur: psycopg.Cursor, table: str, rows: list[PriceRow], run_id: str) -> None:
    with cur.copy(
        sql.SQL(
            "COPY {} (product_id, store_id, price, scraped_at, was_price, unit_price, unit_measure,"
            " on_special, promo_text, run_id) FROM STDIN (FORMAT BINARY)"
        ).format(sql.Identifier(table))
    ) as copy:
        copy.set_types(["int8", "int4", "numeric", "timestamptz", "numeric", "numeric", "text", "bool", "text", "text"])
        for row in rows:
            copy.write_row((*row, run_id))


def reset_prices(url: str, preload: list[PriceRow]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE prices")
        conn.execute("UPDATE stores SET last_scraped_at = NULL")
        with conn.cursor() as cur, conn.transaction():
            copy_rows(cur, "prices", preload, "preload")
        conn.execute("VACUUM ANALYZE prices")
        conn.execute("VACUUM ANALYZE stores")


def remap(rows: list[PriceRow], store_ids: list[int]) -> list[PriceRow]:
    return [r._replace(store_id=store_ids[r.store_id - 1]) for r in rows]


def timed(label: str, fn) -> float:
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed:.2f} s", flush=True)
    return elapsed


def _params(r: PriceRow) -> tuple:
    return (r.product_id, r.store_id, r.scraped_at, r.price, r.was_price, r.unit_price, r.unit_measure,
            r.on_special, r.promo_text)


def run_executemany(url: str, rows: list[PriceRow]) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO prices (product_id, store_id, scraped_at, {VALUE_COLUMNS}, run_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'a')" + UPSERT_TAIL,
            [_params(r) for r in rows],
        )
        conn.commit()


def run_values(url: str, rows: list[PriceRow], page: int = 1000) -> None:
    """psycopg2's execute_values: the usual fast VALUES-list path (C-level quoting), as ORMs' bulk writes."""
    import psycopg2
    from psycopg2.extras import execute_values

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            execute_values(
                cur,
                f"INSERT INTO prices (product_id, store_id, scraped_at, {VALUE_COLUMNS}, run_id) VALUES %s"
                + UPSERT_TAIL,
                [_params(r) for r in rows],
                template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, 'b')",
                page_size=page,
            )
        conn.commit()
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000, help="rows for the row-by-row baseline")
    args = parser.parse_args()

    server = db.database_url()
    bench_db = "pricegroups_bench"
    db.ensure_database(server, bench_db)
    url = db.with_database(server, bench_db)
    with psycopg.connect(url) as c:
        version = c.execute("SHOW server_version").fetchone()[0]
    print(f"PostgreSQL {version}; preload {args.rows:,} prices, then upsert {args.rows:,} rows "
          "(30% new, 20% changed, 50% unchanged)", flush=True)

    keys, preload, batch = make_dataset(args.rows)
    store_ids = setup_database(url, max(p for p, _ in keys))
    del keys
    preload, batch = remap(preload, store_ids), remap(batch, store_ids)
    rng = random.Random(3)
    sample = rng.sample(batch, min(args.sample, len(batch)))
    print(f"dataset ready, peak RSS {peak_rss_mib():.0f} MiB", flush=True)

    results: dict[str, float] = {}
    reset_prices(url, preload)
    results["a"] = len(sample) / timed(f"(a) executemany, {len(sample):,}-row sample", lambda: run_executemany(url, sample))

    reset_prices(url, preload)
    results["b"] = len(batch) / timed("(b) VALUES lists of 1,000", lambda: run_values(url, batch))

    reset_prices(url, preload)
    outcome = {}

    def project_upsert() -> None:
        with psycopg.connect(url) as conn:
            outcome["result"] = upsert_prices(conn, batch, "c")
            conn.commit()

    results["c"] = len(batch) / timed("(c) pricegroups upsert_prices", project_upsert)
    counts = outcome["result"].as_counts()
    print(f"      counts: {counts}, {outcome['result'].chunks} chunks")
    expected = {"created": int(args.rows * 0.3), "updated": int(args.rows * 0.2),
                "unchanged": args.rows - int(args.rows * 0.3) - int(args.rows * 0.2),
                "ignored_older": 0, "rejected": 0}
    if counts != expected:
        raise SystemExit(f"upsert counts {counts} differ from the dataset's {expected}")

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS prices_copy_ceiling")
        conn.execute("CREATE TABLE prices_copy_ceiling (LIKE prices INCLUDING DEFAULTS, PRIMARY KEY (product_id, store_id))")

    def raw_copy() -> None:
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            copy_rows(cur, "prices_copy_ceiling", batch, "d")
            conn.commit()

    results["d"] = len(batch) / timed("(d) raw binary COPY into an empty table with its PK", raw_copy)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE prices_copy_ceiling")

    print()
    print(f"{'method':<52} {'rows/s':>12} {'vs COPY':>8}")
    labels = {
        "a": f"(a) row-by-row executemany (sample {len(sample):,}, extrapolated)",
        "b": "(b) VALUES lists (execute_values, page 1,000)",
        "c": "(c) pricegroups upsert (COPY + staging + chunks)",
        "d": "(d) raw binary COPY, empty table with PK (ceiling)",
    }
    for key in "abcd":
        print(f"{labels[key]:<52} {results[key]:>12,.0f} {results[key] / results['d']:>8.2f}")
    print(f"(c) is {results['c'] / results['b']:.1f}x (b) and {results['c'] / results['a']:.0f}x (a)")
    print(f"RESULT upsert_vs_copy={results['c'] / results['d']:.2f} "
          f"upsert_vs_values={results['c'] / results['b']:.1f} peak_rss_mib={peak_rss_mib():.0f}")


if __name__ == "__main__":
    main()
