"""`chains add|update|list|show|try`: a user's own chain with commands only (docs/site-profiles.md)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any

from pricegroups import db
from pricegroups.errors import ConfigError
from pricegroups.scrape.fields import ScrapedItem
from pricegroups.scrape.service import check_base_url, check_requests_per_second

GROUPS_SHOWN = 20  # `chains show` lists the largest groups; `groups show --chain` lists them all
RAW_SHOWN = 160  # characters of a dropped item's raw values


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("chains", help="add, change, list, show a chain, or try a site profile on its site")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="register a new chain with its site profile (validated first)")
    add.add_argument("--code", required=True, help="chain code: lowercase letters, digits, '-' and '_'")
    add.add_argument("--name", required=True, help="the chain's display name")
    add.add_argument("--base-url", required=True, type=_base_url, metavar="URL",
                     help="the site's root; profile paths are relative to it")
    add.add_argument("--profile", required=True, metavar="FILE.json", help="the site profile (docs/site-profiles.md)")
    _rate_option(add)
    _database_option(add)
    add.set_defaults(func=run_add)

    update = actions.add_parser("update", help="change a chain's profile, base URL, name or rate limit")
    update.add_argument("code", metavar="CODE")
    update.add_argument("--profile", metavar="FILE.json", help="a new site profile")
    update.add_argument("--base-url", type=_base_url, metavar="URL")
    update.add_argument("--name")
    _rate_option(update)
    _database_option(update)
    update.set_defaults(func=run_update)

    listing = actions.add_parser("list", help="every chain: stores, groups, rate limit, last scrape")
    _database_option(listing)
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one chain: profile, stores, groups and last scrape")
    show.add_argument("code", metavar="CODE")
    show.add_argument("--profile-only", action="store_true",
                      help="print only the profile's JSON (edit it, then `chains update CODE --profile FILE`)")
    _database_option(show)
    show.set_defaults(func=run_show)

    trial = actions.add_parser(
        "try", help="read a site's store locator and first catalogue page(s) with a profile; writes nothing",
        description="Fetches politely (robots.txt, rate limit, User-Agent) the store locator and the first "
                    "catalogue page(s) of one store, and prints the stores found, every item as parsed and "
                    "every dropped item with its reason. Needs no database and writes nothing. Exit status 0 "
                    "when the profile read stores and items, 1 when something failed, 2 for a bad profile.")
    trial.add_argument("--profile", required=True, metavar="FILE.json")
    trial.add_argument("--base-url", required=True, type=_base_url, metavar="URL")
    trial.add_argument("--store", metavar="CODE", help="the store whose catalogue to read (default: the first listed)")
    trial.add_argument("--pages", type=_positive_int, default=1, metavar="N",
                       help="catalogue pages to read (default 1)")
    _rate_option(trial)
    trial.set_defaults(func=run_try)


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="default: DATABASE_URL, else the embedded PostgreSQL")


def _rate_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests-per-second", type=_rate, metavar="N",
                        help="the chain's own politeness limit per host (0: none, for a site of your own;"
                             " default: the requests_per_second setting)")


def _base_url(text: str) -> str:
    try:
        return check_base_url(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of requests per second, got {text!r}") from None
    try:
        return check_requests_per_second(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _profile(path: str) -> dict[str, Any]:
    from pricegroups.scrape.profile import read_profile_file

    return read_profile_file(path)


def run_add(args: argparse.Namespace) -> int:
    from pricegroups.chains import add_chain
    from pricegroups.migrate import migrate

    profile = _profile(args.profile)  # a bad file fails before the database is touched
    with db.connect(args.database_url) as conn:
        migrate(conn)
        chain_id = add_chain(conn, args.code, args.name, args.base_url, profile, args.requests_per_second)
        conn.commit()
    print(f"chain {args.code} added (id {chain_id}) at {args.base_url.rstrip('/')}")
    print(f"next: python -m pricegroups scrape --chain {args.code} --sync   (reads the store locator, then scrapes)")
    return 0


def run_update(args: argparse.Namespace) -> int:
    from pricegroups.chains import update_chain
    from pricegroups.migrate import migrate

    if args.profile is None and args.base_url is None and args.name is None and args.requests_per_second is None:
        raise ConfigError("nothing to update: give --profile, --base-url, --name or --requests-per-second")
    profile = _profile(args.profile) if args.profile else None
    with db.connect(args.database_url) as conn:
        migrate(conn)
        changed = update_chain(conn, args.code, name=args.name, base_url=args.base_url, profile=profile,
                               requests_per_second=args.requests_per_second)
        conn.commit()
    print(f"chain {args.code}: {'changed ' + ', '.join(changed) if changed else 'unchanged'}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from pricegroups.chains import list_chains

    with db.connect(args.database_url) as conn:
        chains = list_chains(conn)
    print(f"{'code':<14} {'name':<20} {'stores':>6} {'groups':>6} {'rate/s':>8}  {'last scraped':<16}  base URL")
    for c in chains:
        print(f"{c.code:<14} {c.name:<20} {c.stores:>6} {c.groups:>6} {_rate_text(c.requests_per_second):>8}"
              f"  {_when(c.last_scraped_at):<16}  {c.base_url or '-'}")
    print(f"{len(chains)} chain(s)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from pricegroups.chains import chain_details

    with db.connect(args.database_url) as conn:
        details = chain_details(conn, args.code)
    profile = json.dumps(details.profile, indent=2, ensure_ascii=False)
    if args.profile_only:
        print(profile)
        return 0
    s = details.summary
    print(f"chain {s.code}: {s.name}")
    print(f"base URL: {s.base_url or '-'}")
    rate = s.requests_per_second
    print("rate limit: " + ("the requests_per_second setting" if rate is None else
                            "none" if rate == 0 else f"{rate:g} requests/s per host"))
    print("profile:")
    print(profile)
    inactive = f" ({details.inactive_stores} inactive)" if details.inactive_stores else ""
    print(f"stores: {s.stores} active{inactive}")
    for store in details.stores:
        closed = "" if store.active else "  (inactive)"
        print(f"  {store.code:<10} {store.name or '':<28} {store.address or '':<36}"
              f" last scraped {_when(store.last_scraped_at)}{closed}")
    more = s.stores + details.inactive_stores - len(details.stores)
    if more > 0:
        print(f"  ... and {more} more")
    members = sum(len(g.members) for g in details.groups)
    print(f"groups: {len(details.groups)} ({members} member(s) inferred from their anchors)")
    for g in details.groups[:GROUPS_SHOWN]:
        print(f"  group {g.group_id}: anchor {g.anchor} (scraped {_when(g.anchor_scraped_at)}),"
              f" {len(g.members)} member(s)")
    if len(details.groups) > GROUPS_SHOWN:
        print(f"  ... and {len(details.groups) - GROUPS_SHOWN} more (python -m pricegroups groups show"
              f" --chain {s.code})")
    last = details.last_scrape
    if last is None:
        print("last scrape: never")
    else:
        print(f"last scrape: run {last.run_id} for {_when(last.logical_date)} (started {_when(last.started_at)}):"
              f" {last.ok} ok, {last.failed} failed, {last.suspect} suspect, {last.items} items")
    print(f"newest store data: {_when(s.last_scraped_at)}")
    return 0


def run_try(args: argparse.Namespace) -> int:
    from pricegroups.commands.airflow_secrets import airflow_connection_secret
    from pricegroups.scrape.trial import try_profile
    from pricegroups.settings import load_settings

    profile = _profile(args.profile)
    trial = try_profile(profile, args.base_url, load_settings(), at=datetime.now(timezone.utc),
                        store=args.store, pages=args.pages, requests_per_second=args.requests_per_second,
                        connection_lookup=airflow_connection_secret)
    _print_sent(trial.sent)
    if trial.locator_url is not None:
        print(f"store locator {trial.locator_url}: "
              + (f"FAILED: {trial.locator_error}" if trial.locator_error else f"{len(trial.stores)} store(s)"))
        for s in trial.stores:
            closed = "  (closed)" if s.closed else ""
            print(f"  {s.code:<10} {s.name or '':<28} {s.address or '':<36} {s.catalogue_url or ''}{closed}")
    else:
        print("store locator: none in the profile")
    if trial.store is None:
        print("no store to read a catalogue of (give --store CODE)")
        return _finish(trial)
    if trial.store_listed is False:
        print(f"note: store {trial.store} is not listed by the store locator (a run would record it as failed)")
    print(f"catalogue of store {trial.store}: {trial.catalogue_url}")
    for n, page in enumerate(trial.catalogue.read, start=1):
        print(f"  page {n} {page.url}: {page.items} item(s), {page.dropped} dropped")
        if page.note:
            print(f"    why no items: {page.note}")
    if trial.catalogue_error:
        print(f"FAILED: {trial.catalogue_error}")
    items = list(trial.catalogue.items)
    dropped = list(trial.catalogue.dropped)
    if trial.failed_page is not None:  # the page that failed: show what it held, every drop included
        items += trial.failed_page.items
        dropped += trial.failed_page.dropped
    print(f"items ({len(items)}):")
    for item in items:
        print(f"  {item.sku:<12} {item.price:>9}  {item.name}{_details(item)}")
    print(f"dropped ({len(dropped)}):")
    for d in dropped:
        kept = " (item kept)" if d.kept else ""
        raw = json.dumps(d.raw, ensure_ascii=False, default=str)
        raw = raw if len(raw) <= RAW_SHOWN else raw[:RAW_SHOWN - 3] + "..."
        print(f"  {d.sku or '(no sku)':<12} {d.reason}{kept}  raw: {raw}")
    if trial.catalogue.next_url and not trial.catalogue_error:
        print(f"more pages: next is {trial.catalogue.next_url} (not read; --pages N reads more)")
    elif not trial.catalogue_error:
        print("end of the catalogue reached")
    return _finish(trial)


def _print_sent(sent: list[Any]) -> None:
    """Every request made, with the headers the profile set (a secret shows as ***)."""
    print(f"requests ({len(sent)}):")
    for r in sent:
        status = "no answer" if r.status is None else f"HTTP {r.status}"
        print(f"  {r.method} {r.url}  -> {status}")
        for name, value in r.headers.items():
            print(f"      {name}: {value}")


def _finish(trial: Any) -> int:
    f = trial.fetched
    print(f"{f.requests} HTTP request(s) (robots.txt included), {f.retries} retried; nothing was written")
    if not trial.ok:
        print("result: the profile does not read this site yet" if trial.catalogue_error or trial.locator_error
              else "result: no items found")
        return 1
    print("result: ok")
    return 0


def _details(item: ScrapedItem) -> str:
    parts = []
    if item.brand:
        parts.append(f"brand {item.brand}")
    if item.size_text:
        parts.append(f"size {item.size_text}")
    if item.was_price is not None:
        parts.append(f"was {item.was_price}")
    if item.on_special:
        parts.append("special")
    if item.multibuy_qty:
        parts.append(f"{item.multibuy_qty} for {item.multibuy_price}")
    if item.unit_price is not None:
        parts.append(f"unit {item.unit_price}/{item.unit_measure}")
    if item.promo_text:
        parts.append(f"promo {item.promo_text!r}")
    if item.barcode:
        parts.append(f"barcode {item.barcode}")
    if item.category:
        parts.append(f"category {item.category}")
    return "  [" + "; ".join(parts) + "]" if parts else ""


def _rate_text(rate: float | None) -> str:
    if rate is None:
        return "default"
    return "none" if rate == 0 else f"{rate:g}"


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value else "never"
