"""Benchmark: the scraper's parse throughput per layout, and a full scrape of the demo site over loopback.

1. End-to-end: a fresh database, the three demo chains registered and their
   stores synced, then every store of every chain scraped over HTTP on
   loopback (rate limit off, snapshots into a temporary directory), one chain
   after another, as the DAG's scrape task would. The demo site runs in a
   process of its own (a website is another machine; in this process it would
   share the GIL with the scraper), started and stopped by this script.
2. Replay: the same scrape again for the same logical date: every store comes
   from its snapshot (zero HTTP requests), so this is read + gunzip + parse + COPY.
3. Parse throughput: the snapshot pages of each layout the demo scrapes
   (grid; the JSON API `api`; the embedded app state `nextdata`), decompressed
   once, parsed again and again by `parse_page` (the network is out of it);
   and the HTML sites the two app chains still serve (`table`, `jsonld`),
   fetched once for the same stores. The baseline measured alongside is the
   bare parse of the same bytes (lxml's HTML parse; `json.loads` for the API):
   the share of the time the parse engine adds on top of it.

Ends with: RESULT layouts=5 min_parse_items_per_s=<min over layouts> scrape_all_stores_s=<end-to-end s>
           <layout>_items_per_s=<items/s> for each layout (grid, api, nextdata, table, jsonld)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from datetime import datetime, time as dtime, timezone
from pathlib import Path

import psycopg
import requests
from lxml import etree
from psycopg import sql

from pricegroups import db
from pricegroups.demo.chains import DEMO_CHAINS, demo_profiles
from pricegroups.demo.generate import default_scenario
from pricegroups.demo.server import DemoSiteProcess
from pricegroups.migrate import migrate
from pricegroups.scrape.parse import parse_page
from pricegroups.scrape.profile import compile_profile, load_profile_file
from pricegroups.scrape.service import ChainConfig, catalogue_url
from pricegroups.scrape.service import register_chain, scrape_chain, sync_stores
from pricegroups.settings import Settings

BENCH_DB = "pricegroups_bench_scrape"


def fresh_database() -> str:
    server = db.database_url()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    url = db.with_database(server, BENCH_DB)
    with psycopg.connect(url) as conn:
        migrate(conn)
    return url


def scrape_all(url: str, settings: Settings, at: datetime, run_id: str, stores: int | None) -> dict:
    totals = {"ok": 0, "failed": 0, "suspect": 0, "items": 0, "pages": 0, "http_requests": 0, "stores": 0}
    with psycopg.connect(url) as conn:
        for code, _, _ in DEMO_CHAINS:
            ids = [r[0] for r in conn.execute(
                "SELECT store_id FROM stores JOIN chains USING (chain_id) WHERE chains.code = %s ORDER BY store_id",
                (code,)).fetchall()]
            conn.commit()
            counts = scrape_chain(conn, run_id, at, code, ids[:stores] if stores else ids, settings).counts()
            for key in totals:
                totals[key] += counts[key]
    return totals


MAX_PAGES = 400  # pages timed per layout
HTML_SITES = {"valueway": "table", "greengrocer": "jsonld"}  # the app chains' HTML sites, still served


def snapshot_pages(snapshot_root: Path, code: str) -> list[tuple[bytes, str]]:
    """(body, url) of a chain's catalogue pages as the live scrape snapshotted them."""
    pages = []
    for manifest in sorted((snapshot_root / code).glob("*/*/manifest.json")):
        if manifest.parent.name.startswith("_"):
            continue  # the store locator
        for entry in json.loads(manifest.read_text())["pages"]:
            pages.append((gzip.decompress((manifest.parent / entry["file"]).read_bytes()), entry["url"]))
    return pages[:MAX_PAGES]


def html_site_pages(base_url: str, code: str, layout: str) -> list[tuple[bytes, str]]:
    """(body, url) of the HTML site's catalogue pages of a chain scraped through its app, walked once."""
    profile = compile_profile(load_profile_file(layout))
    chain = ChainConfig(0, code, base_url, profile)
    pages: list[tuple[bytes, str]] = []
    with requests.Session() as session:
        for store in default_scenario().stores(code):
            url = catalogue_url(chain, store.code, None)
            while url and len(pages) < MAX_PAGES:
                body = session.get(url, timeout=30).content
                pages.append((body, url))
                url = parse_page(body, url, profile).next_url
            if len(pages) >= MAX_PAGES:
                break
    return pages


def parse_throughput(snapshot_root: Path, base_url: str, seconds: float) -> dict[str, dict[str, float]]:
    """Per layout: pages/s and items/s of parse_page per CPU second, and of a bare parse (the baseline)."""
    results = {}
    parser = etree.HTMLParser(recover=True, remove_comments=True)
    sources = [(layout, lambda code=code: snapshot_pages(snapshot_root, code)) for code, _, layout in DEMO_CHAINS]
    sources += [(layout, lambda code=code, layout=layout: html_site_pages(base_url, code, layout))
                for code, layout in HTML_SITES.items()]
    for layout, source in sources:
        profile = compile_profile(load_profile_file(layout))
        pages = source()
        bare = json.loads if layout == "api" else (lambda body: etree.fromstring(body, parser))
        items = sum(len(parse_page(body, page_url, profile).items) for body, page_url in pages)  # warm up
        rounds, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            for body, page_url in pages:
                parse_page(body, page_url, profile)
            rounds += 1
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        base_rounds, base_start, base_cpu_start = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - base_start < seconds / 2:
            for body, _ in pages:
                bare(body)
            base_rounds += 1
        base_elapsed = time.process_time() - base_cpu_start
        results[layout] = {
            "pages": len(pages),
            "pages_per_s": rounds * len(pages) / cpu,
            "items_per_s": rounds * items / cpu,
            "wall_items_per_s": rounds * items / elapsed,
            "lxml_pages_per_s": base_rounds * len(pages) / base_elapsed,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=None, help="stores per chain (default: all)")
    parser.add_argument("--parse-seconds", type=float, default=3.0, help="timing per layout")
    args = parser.parse_args()

    site = DemoSiteProcess()
    site.start()
    try:
        url = fresh_database()
        at = datetime.combine(default_scenario().date_of(0), dtime(0), tzinfo=timezone.utc)
        with tempfile.TemporaryDirectory(prefix="pricegroups-bench-") as tmp:
            settings = Settings().with_overrides(
                {"snapshot_root": tmp, "requests_per_second": 0, "retry_backoff_s": 0.1})
            with psycopg.connect(url) as conn:
                for code, name, base_url, profile in demo_profiles(site.base_url):
                    register_chain(conn, code, name, base_url, profile)
                conn.commit()
                for code, _, _ in DEMO_CHAINS:
                    sync_stores(conn, code, settings, at, "bench")
            site.reset()

            start = time.perf_counter()
            live = scrape_all(url, settings, at, "bench-live", args.stores)
            live_s = time.perf_counter() - start
            served = site.stats()["total"]
            print(f"end-to-end over loopback: {live['stores']} stores ({live['ok']} ok, {live['failed']} failed,"
                  f" {live['suspect']} suspect), {live['pages']} pages, {live['items']:,} items,"
                  f" {live['http_requests']} HTTP requests (site counted {served}) in {live_s:.1f} s"
                  f" = {live['pages'] / live_s:.0f} pages/s, {live['items'] / live_s:,.0f} items/s", flush=True)

            site.reset()
            start = time.perf_counter()
            replay = scrape_all(url, settings, at, "bench-replay", args.stores)
            replay_s = time.perf_counter() - start
            print(f"replay from snapshots: {replay['stores']} stores, {replay['items']:,} items,"
                  f" {replay['http_requests']} HTTP requests (site counted {site.stats()['total']})"
                  f" in {replay_s:.1f} s = {replay['items'] / replay_s:,.0f} items/s;"
                  f" live/replay = {live_s / replay_s:.1f}x", flush=True)

            # Per core = per second of this process's CPU time (the parse is single-threaded); on a
            # shared machine wall-clock figures also count the time other processes held the core.
            print("parse throughput from snapshots, per core (CPU seconds of this single-threaded process):")
            results = parse_throughput(Path(tmp), site.base_url, args.parse_seconds)
            for layout, r in results.items():
                bare = "json.loads" if layout == "api" else "lxml parse"
                print(f"  {layout:<8} {r['pages']:>4} pages: {r['pages_per_s']:7.1f} pages/s {r['items_per_s']:9,.0f}"
                      f" items/s (wall clock {r['wall_items_per_s']:,.0f} items/s);"
                      f" bare {bare} {r['lxml_pages_per_s']:7.1f} pages/s"
                      f" (engine = {r['lxml_pages_per_s'] / r['pages_per_s']:.1f}x the bare parse time)")
            print(f"  load average while measuring: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
                  f" on {os.cpu_count()} cores")
    finally:
        site.stop()
    min_items = min(r["items_per_s"] for r in results.values())
    per_layout = " ".join(f"{layout}_items_per_s={r['items_per_s']:.0f}" for layout, r in results.items())
    print(f"RESULT layouts={len(results)} min_parse_items_per_s={min_items:.0f} scrape_all_stores_s={live_s:.1f}"
          f" {per_layout}")


if __name__ == "__main__":
    main()
