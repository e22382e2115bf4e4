"""The offline `group` command: one maintenance round on CSV price dumps, with the DAG's core.

PRICES.csv: chain,store,product,price,was_price,on_special,scraped_at (any order).
GROUPS.csv: chain,store,anchor. EVENTS.csv: one row per decision with evidence.
Every input problem is a DataError naming the file and line; outputs are
written to temporary files and renamed only when everything succeeded.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Hashable

from pricegroups.errors import DataError
from pricegroups.grouping.book import GroupBook, RoundSummary
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.settings import Settings

PRICE_COLUMNS = ("chain", "store", "product", "price", "was_price", "on_special", "scraped_at")
GROUP_COLUMNS = ("chain", "store", "anchor")
EVENT_COLUMNS = ("kind", "chain", "store", "other_store", "outcome", "overlap", "agreeing", "rate", "evidence")
Store = tuple[str, str]  # (chain, store code)


@dataclass(frozen=True)
class PriceDump:
    prices: dict[Store, dict[str, tuple[int, int, bool]]]  # latest current row per (store, product)
    scraped_at: dict[Store, datetime]  # newest observation per store
    stores: frozenset[Store]  # every store in the file, current or not
    as_of: datetime


def read_prices(path: Path, as_of: datetime | None, window: timedelta) -> PriceDump:
    rows: list[tuple[Store, str, int, int, bool, datetime]] = []
    seen: set[tuple] = set()
    for line, record in _records(path, PRICE_COLUMNS):
        where = f"{path}:{line}"
        chain, store, product = (record[c].strip() for c in ("chain", "store", "product"))
        if not chain or not store or not product:
            raise DataError(f"{where}: chain, store and product must not be empty")
        price = _money(record["price"], "price", where)
        was = _money(record["was_price"], "was_price", where) if record["was_price"].strip() else 0
        special = _flag(record["on_special"], where)
        at = _time(record["scraped_at"], where)
        key = (chain, store, product, at)
        if key in seen:
            raise DataError(f"{where}: duplicate row for store {store!r} product {product!r} at {at.isoformat()}")
        seen.add(key)
        rows.append(((chain, store), product, price, was, special, at))
    if not rows:
        raise DataError(f"{path}: no price rows")
    as_of = as_of or max(r[5] for r in rows)
    floor = as_of - window
    latest: dict[tuple[Store, str], tuple] = {}
    scraped: dict[Store, datetime] = {}
    for row in rows:
        store, product, *_, at = row
        if at > as_of:
            continue
        scraped[store] = max(scraped.get(store, at), at)
        if at >= floor and ((store, product) not in latest or latest[(store, product)][5] < at):
            latest[(store, product)] = row
    prices: dict[Store, dict[str, tuple[int, int, bool]]] = {}
    for (store, product), (_, _, price, was, special, _) in latest.items():
        prices.setdefault(store, {})[product] = (price, was, special)
    return PriceDump(prices, scraped, frozenset(r[0] for r in rows), as_of)


def read_groups(path: Path) -> dict[Store, Store]:
    """{store: its anchor} from a previous GROUPS.csv; an anchor names itself."""
    anchor_of: dict[Store, Store] = {}
    for line, record in _records(path, GROUP_COLUMNS):
        chain, store, anchor = (record[c].strip() for c in GROUP_COLUMNS)
        if not chain or not store or not anchor:
            raise DataError(f"{path}:{line}: chain, store and anchor must not be empty")
        if (chain, store) in anchor_of:
            raise DataError(f"{path}:{line}: store {store!r} of chain {chain!r} listed twice")
        anchor_of[(chain, store)] = (chain, anchor)
    for store, anchor in list(anchor_of.items()):
        anchor_of.setdefault(anchor, anchor)
        if anchor_of[anchor] != anchor:
            raise DataError(f"{path}: anchor {anchor[1]!r} of store {store[1]!r} is itself in another group")
    return anchor_of


def run_round(
    prices_path: Path,
    out_path: Path,
    settings: Settings,
    groups_path: Path | None = None,
    as_of: datetime | None = None,
    events_path: Path | None = None,
) -> RoundSummary:
    """Read, run one maintenance round (health checks, then merges), write GROUPS.csv (and EVENTS.csv)."""
    dump = read_prices(prices_path, as_of, timedelta(hours=settings.window_hours))
    previous = read_groups(groups_path) if groups_path else {}
    every_store = sorted(dump.stores | set(previous))
    anchor_of = {s: previous.get(s, s) for s in every_store}
    chain_of = {s: s[0] for s in every_store}
    created = dump.as_of - timedelta(days=3650)  # existing groups are older than any made this round
    book = GroupBook.from_anchors(chain_of, anchor_of, created)
    book.with_freshness(dump.scraped_at)
    matrix = PriceMatrix.from_prices(dump.prices, {s: dump.scraped_at.get(s) for s in every_store})
    summary = book.maintenance_round(matrix, dump.as_of, settings)
    result = book.anchor_of()
    outputs = [(out_path, GROUP_COLUMNS, [(s[0], s[1], result[s][1]) for s in every_store])]
    if events_path:
        outputs.append((events_path, EVENT_COLUMNS, [_event_row(e) for e in book.events]))
    _write_all(outputs)
    return summary


def _event_row(event: dict) -> tuple:
    evidence = event["evidence"]
    store, other = event["store"], event["other_store"]
    return (
        event["kind"],
        event["chain"],
        store[1] if isinstance(store, tuple) else store,
        other[1] if isinstance(other, tuple) else other,
        evidence.get("outcome", ""),
        evidence.get("overlap", ""),
        evidence.get("agreeing", ""),
        evidence.get("rate", ""),
        json.dumps(evidence, default=_plain, sort_keys=True),
    )


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _write_all(outputs: list[tuple[Path, tuple, list[tuple]]]) -> None:
    """Write each file to a temporary sibling, then rename them all: never a half-written output."""
    temps: list[tuple[str, Path]] = []
    try:
        for path, header, rows in outputs:
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
            temps.append((temp, path))
            with os.fdopen(fd, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows)
        for temp, path in temps:
            os.replace(temp, path)
    finally:
        for temp, _ in temps:
            if os.path.exists(temp):
                os.unlink(temp)


def _records(path: Path, required: tuple[str, ...]):
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{path}:1: missing column(s) {', '.join(missing)}")
        reader.fieldnames = header
        try:
            for record in reader:
                if None in record or any(record.get(c) is None for c in required):
                    raise DataError(f"{path}:{reader.line_num}: wrong number of fields")
                yield reader.line_num, record
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: {exc}") from exc


def _money(text: str, name: str, where: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DataError(f"{where}: {name} {text!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise DataError(f"{where}: {name} {text!r} must be a positive amount")
    amount = value * 100
    if amount != amount.to_integral_value():
        raise DataError(f"{where}: {name} {text!r} has fractions of a cent")
    return int(amount)


def _flag(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise DataError(f"{where}: on_special must be true or false, got {text!r}")
    return value == "true"


def _time(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DataError(f"{where}: scraped_at {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise DataError(f"{where}: scraped_at {text!r} has no UTC offset")
    return value


def parse_as_of(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"--as-of {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise DataError(f"--as-of {text!r} has no UTC offset")
    return value


def store_key(store: Hashable) -> str:
    return "/".join(store) if isinstance(store, tuple) else str(store)
