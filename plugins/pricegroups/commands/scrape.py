"""`scrape`: scrape a chain's stores now and print a per-store summary."""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timezone

from pricegroups import db
from pricegroups.commands.airflow_secrets import airflow_connection_secret
from pricegroups.errors import ConfigError
from pricegroups.migrate import migrate
from pricegroups.demo.chains import demo_profiles
from pricegroups.scrape.service import register_chain, scrape_chain, sync_stores
from pricegroups.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scrape", help="scrape a chain's stores and print a per-store summary")
    p.add_argument("--chain", required=True, help="chain code")
    p.add_argument("--store", action="append", metavar="CODE", help="store code (repeatable; default: all)")
    p.add_argument("--date", help="logical date YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--force", action="store_true", help="fetch again even if a snapshot of that date exists")
    p.add_argument("--run-id", help="default: manual__<chain>__<date>")
    p.add_argument("--sync", action="store_true", help="read the store locator first and add new stores")
    p.add_argument("--demo-base-url", metavar="URL",
                   help="register the demo site's chains at URL (e.g. http://127.0.0.1:8765) and sync stores")
    p.add_argument("--database-url", help="default: DATABASE_URL, else the embedded PostgreSQL")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting")
    p.set_defaults(func=run_scrape)


def _logical_date(text: str | None) -> datetime:
    try:
        day = date.fromisoformat(text) if text else datetime.now(timezone.utc).date()
    except ValueError as exc:
        raise ConfigError(f"--date must be YYYY-MM-DD, got {text!r}") from exc
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def run_scrape(args: argparse.Namespace) -> int:
    overrides = dict(item.split("=", 1) for item in args.set if "=" in item)
    settings = load_settings(overrides)
    logical_date = _logical_date(args.date)
    run_id = args.run_id or f"manual__{args.chain}__{logical_date.date().isoformat()}"
    with db.connect(args.database_url) as conn:
        migrate(conn)
        if args.demo_base_url:
            for code, name, base_url, profile in demo_profiles(args.demo_base_url):
                register_chain(conn, code, name, base_url, profile)
            conn.commit()
        if args.sync or args.demo_base_url:
            synced = sync_stores(conn, args.chain, settings, logical_date, run_id, force=args.force,
                                 connection_lookup=airflow_connection_secret)
            closed = f", listed as closed: {', '.join(synced['closed'])}" if synced["closed"] else ""
            print(f"store locator: {synced['listed']} stores listed, {len(synced['new'])} new,"
                  f" not listed: {', '.join(synced['unlisted']) or 'none'}{closed}")
        store_ids = None
        if args.store:
            rows = conn.execute(
                """SELECT s.code, s.store_id FROM stores s JOIN chains c USING (chain_id)
                   WHERE c.code = %s AND s.code = ANY(%s)""",
                (args.chain, args.store),
            ).fetchall()
            unknown = set(args.store) - {code for code, _ in rows}
            if unknown:
                raise ConfigError(f"unknown stores of {args.chain}: {', '.join(sorted(unknown))}")
            store_ids = [store_id for _, store_id in rows]
            conn.commit()
        report = scrape_chain(conn, run_id, logical_date, args.chain, store_ids, settings, force=args.force,
                              connection_lookup=airflow_connection_secret)
    print(f"{'store':<10} {'status':<8} {'pages':>5} {'items':>6} {'dropped':>7} {'retries':>7}"
          f" {'secs':>6}  note")
    for o in report.outcomes:
        note = "snapshot" if o.from_snapshot else ""
        if o.error:
            note = f"{note} {o.error}".strip()
        print(f"{o.code:<10} {o.status:<8} {o.pages:>5} {len(o.items):>6} {o.dropped_items:>7} {o.retries:>7}"
              f" {o.duration_s:>6.2f}  {note}")
    counts = report.counts()
    print(f"run {run_id}: {counts['ok']} ok, {counts['failed']} failed, {counts['suspect']} suspect;"
          f" {counts['items']} items, {counts['pages']} pages, {counts['http_requests']} HTTP requests")
    return 0 if counts["failed"] == 0 and counts["suspect"] == 0 else 1
