"""The offline `group` command: one maintenance round on CSV files, with the DAG's engine and rules.

PRICES.csv: chain,store,product,price,was_price,on_special,scraped_at (any order).
GROUPS.csv: chain,store,anchor. EVENTS.csv: one row per decision with evidence.
A state directory (--state-in / --state-out) holds what the engine knows after
a round, as the database does: groups.csv, stores.csv, rows.csv (see
STATE_FILES and docs/grouping.md, "Offline CLI"). EFFECTIVE.csv
(--effective-out): what the site would serve for every store (rules/serving.py).

Every input problem is a BadData naming the file and line; outputs are
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

from pricegroups.errors import BadData
from pricegroups.grouping.book import GroupBook, RoundSummary
from pricegroups.grouping.rules.cadence import Cadence
from pricegroups.grouping.rules.serving import PriceRow
from pricegroups.grouping.model import GroupState, StoreState
from pricegroups.settings import Settings

PRICE_COLUMNS = ("chain", "store", "product", "price", "was_price", "on_special", "scraped_at")
GROUP_COLUMNS = ("chain", "store", "anchor")
EVENT_COLUMNS = ("kind", "chain", "store", "other_store", "outcome", "overlap", "agreeing", "rate", "evidence")
EFFECTIVE_COLUMNS = ("chain", "store", "product", "price", "on_special", "source")
STATE_GROUP_COLUMNS = ("chain", "group", "anchor", "created_at")
STATE_STORE_COLUMNS = ("chain", "store", "group", "first_scraped_at", "last_scraped_at", "verified_at",
                       "needs_verification")
STATE_ROW_COLUMNS = ("chain", "store", "product", "price", "was_price", "on_special", "first_observed")
# written by --state-out; optional in --state-in (a state written before them has none: 0 / no previous price)
STATE_STORE_EXTRA = ("late_changes", "timely_changes")
STATE_ROW_EXTRA = ("previous_price",)
STATE_FILES = {"groups.csv": STATE_GROUP_COLUMNS, "stores.csv": STATE_STORE_COLUMNS, "rows.csv": STATE_ROW_COLUMNS}
Store = tuple[str, str]  # (chain, store code); a group key is (chain, group label)


@dataclass(frozen=True)
class PriceDump:
    """PRICES.csv at `as_of`: per store its current rows (the latest per product within the window)."""

    rows: dict[Store, dict[str, PriceRow]]  # first_observed: start of the product's run of equal prices
    scraped_at: dict[Store, datetime]  # newest observation at or before as_of, per store
    first_seen: dict[Store, datetime]  # oldest observation at or before as_of, per store
    stores: frozenset[Store]  # every store in the file, current or not
    as_of: datetime

    @property
    def prices(self) -> dict[Store, dict[str, tuple[int, int, bool]]]:
        return {s: {p: (r.price, r.was_price, r.on_special) for p, r in rows.items()} for s, rows in self.rows.items()}


def read_prices(path: Path, as_of: datetime | None, settings: Settings) -> PriceDump:
    rows: list[tuple[Store, str, int, int, bool, datetime]] = []
    seen: set[tuple] = set()
    for line, record in _records(path, PRICE_COLUMNS):
        where = f"{path}:{line}"
        chain, store, product = (record[c].strip() for c in ("chain", "store", "product"))
        if not chain or not store or not product:
            raise BadData(f"{where}: chain, store and product must not be empty")
        price = _money(record["price"], "price", where)
        was = _money(record["was_price"], "was_price", where) if record["was_price"].strip() else 0
        special = _flag(record["on_special"], "on_special", where)
        at = _time(record["scraped_at"], "scraped_at", where)
        key = (chain, store, product, at)
        if key in seen:
            raise BadData(f"{where}: duplicate row for store {store!r} product {product!r} at {at.isoformat()}")
        seen.add(key)
        rows.append(((chain, store), product, price, was, special, at))
    if not rows:
        raise BadData(f"{path}: no price rows")
    as_of = as_of or max(r[5] for r in rows)
    floor = settings.current_since(as_of)
    history: dict[tuple[Store, str], list[tuple]] = {}
    newest: dict[Store, datetime] = {}
    oldest: dict[Store, datetime] = {}
    for row in rows:
        store, product, *_, at = row
        if at > as_of:
            continue
        newest[store] = max(newest.get(store, at), at)
        oldest[store] = min(oldest.get(store, at), at)
        history.setdefault((store, product), []).append(row)
    current: dict[Store, dict[str, PriceRow]] = {}
    for (store, product), observations in history.items():
        observations.sort(key=lambda r: r[5])
        *_, price, was, special, at = observations[-1]
        if at < floor:
            continue
        first, previous = at, 0
        for earlier in reversed(observations[:-1]):  # the price has been the same since...
            if earlier[2:5] != (price, was, special):
                if not earlier[4] and not special and earlier[2] != price:  # a regular-price change
                    previous = earlier[2]
                break
            first = earlier[5]
        current.setdefault(store, {})[product] = PriceRow(price, was, special, first, previous)
    return PriceDump(current, newest, oldest, frozenset(r[0] for r in rows), as_of)


def read_groups(path: Path) -> dict[Store, Store]:
    """{store: its anchor} from a previous GROUPS.csv; an anchor names itself."""
    anchor_of: dict[Store, Store] = {}
    for line, record in _records(path, GROUP_COLUMNS):
        chain, store, anchor = (record[c].strip() for c in GROUP_COLUMNS)
        if not chain or not store or not anchor:
            raise BadData(f"{path}:{line}: chain, store and anchor must not be empty")
        if (chain, store) in anchor_of:
            raise BadData(f"{path}:{line}: store {store!r} of chain {chain!r} listed twice")
        anchor_of[(chain, store)] = (chain, anchor)
    for store, anchor in list(anchor_of.items()):
        anchor_of.setdefault(anchor, anchor)
        if anchor_of[anchor] != anchor:
            raise BadData(f"{path}: anchor {anchor[1]!r} of store {store[1]!r} is itself in another group")
    return anchor_of


# -- state ---------------------------------------------------------------------

def read_state(directory: Path) -> GroupBook:
    """A GroupBook from a state directory written by --state-out (or by hand)."""
    groups_path, stores_path, rows_path = (directory / name for name in STATE_FILES)
    heads: dict[tuple, tuple[str, datetime, int]] = {}  # group key -> (anchor code, created_at, line)
    for line, record in _records(groups_path, STATE_GROUP_COLUMNS):
        where = f"{groups_path}:{line}"
        chain, group, anchor = _required(record, ("chain", "group", "anchor"), where)
        if (chain, group) in heads:
            raise BadData(f"{where}: group {group!r} of chain {chain!r} listed twice")
        heads[(chain, group)] = (anchor, _time(record["created_at"], "created_at", where), line)
    stores: dict[Store, StoreState] = {}
    first_scraped: dict[Store, datetime | None] = {}
    flagged: set[Store] = set()
    for line, record in _records(stores_path, STATE_STORE_COLUMNS):
        where = f"{stores_path}:{line}"
        chain, code, group = _required(record, ("chain", "store", "group"), where)
        if (chain, code) in stores:
            raise BadData(f"{where}: store {code!r} of chain {chain!r} listed twice")
        if (chain, group) not in heads:
            raise BadData(f"{where}: group {group!r} of chain {chain!r} is not in {groups_path.name}")
        scraped = _optional_time(record["last_scraped_at"], "last_scraped_at", where)
        verified = _optional_time(record["verified_at"], "verified_at", where)
        late, on_time = (_count(record.get(c), c, where) for c in ("late_changes", "timely_changes"))
        stores[(chain, code)] = StoreState((chain, code), (chain, group), scraped, verified, late=late, on_time=on_time)
        first_scraped[(chain, code)] = _optional_time(record["first_scraped_at"], "first_scraped_at", where)
        if _flag(record["needs_verification"], "needs_verification", where):
            flagged.add((chain, code))
    book = GroupBook(first_scraped_at=first_scraped, needs_verification=flagged)
    members: dict[tuple, list[Store]] = {}
    for store, state in stores.items():
        members.setdefault(state.group, []).append(store)
    for key, (anchor, created, line) in heads.items():
        anchor_store = (key[0], anchor)
        if anchor_store not in stores or stores[anchor_store].group != key:
            raise BadData(f"{groups_path}:{line}: anchor {anchor!r} is not a store of group {key[1]!r} "
                            f"in {stores_path.name}")
        others = tuple(sorted(s for s in members[key] if s != anchor_store))
        book.groups[key] = GroupState(key, key[0], anchor_store, others, created)
    book.stores.update(sorted(stores.items()))
    seen: set[tuple] = set()
    for line, record in _records(rows_path, STATE_ROW_COLUMNS):
        where = f"{rows_path}:{line}"
        chain, code, product = _required(record, ("chain", "store", "product"), where)
        if (chain, code) not in stores:
            raise BadData(f"{where}: store {code!r} of chain {chain!r} is not in {stores_path.name}")
        if (chain, code, product) in seen:
            raise BadData(f"{where}: duplicate row for store {code!r} product {product!r}")
        seen.add((chain, code, product))
        price = _money(record["price"], "price", where)
        was = _money(record["was_price"], "was_price", where) if record["was_price"].strip() else 0
        previous = _money(record["previous_price"], "previous_price", where) \
            if (record.get("previous_price") or "").strip() else 0
        row = PriceRow(price, was, _flag(record["on_special"], "on_special", where),
                       _time(record["first_observed"], "first_observed", where), previous)
        book.rows.setdefault((chain, code), {})[product] = row
    return book


def state_outputs(book: GroupBook, directory: Path) -> list[tuple[Path, tuple, list[tuple]]]:
    """The three state files of `book`, sorted, for _write_all."""
    groups = sorted(book.groups.values(), key=lambda g: g.group)
    stores = sorted(book.stores.values(), key=lambda s: s.store)
    return [
        (directory / "groups.csv", STATE_GROUP_COLUMNS,
         [(g.chain, _label(g.group), g.anchor[1], _iso(g.created_at)) for g in groups]),
        (directory / "stores.csv", STATE_STORE_COLUMNS + STATE_STORE_EXTRA,
         [(s.store[0], s.store[1], _label(s.group), _iso(book.first_scraped_at.get(s.store)), _iso(s.scraped_at),
           _iso(s.verified_at), _bool(s.store in book.needs_verification), s.late, s.on_time) for s in stores]),
        (directory / "rows.csv", STATE_ROW_COLUMNS + STATE_ROW_EXTRA,
         [(s.store[0], s.store[1], product, _amount(r.price), _amount(r.was_price) if r.was_price else "",
           _bool(r.on_special), _iso(r.first_observed), _amount(r.previous_price) if r.previous_price else "")
          for s in stores for product, r in sorted(book.rows.get(s.store, {}).items())]),
    ]


def effective_output(book: GroupBook, path: Path, settings: Settings) -> tuple[Path, tuple, list[tuple]]:
    served = book.effective(Cadence.of_hours(settings.run_interval_hours))
    rows = [(store[0], store[1], product, _amount(e.row.price), _bool(e.row.on_special), e.source)
            for store in sorted(served) for product, e in sorted(served[store].items())]
    return path, EFFECTIVE_COLUMNS, rows


# -- the round -----------------------------------------------------------------

def run_round(
    prices_path: Path,
    out_path: Path | None,
    settings: Settings,
    groups_path: Path | None = None,
    as_of: datetime | None = None,
    events_path: Path | None = None,
    state_in: Path | None = None,
    state_out: Path | None = None,
    effective_out: Path | None = None,
) -> RoundSummary:
    """Read, run one maintenance round (health checks, then merges), write the asked outputs.

    Starts from `state_in` (a state directory) or `groups_path` (GROUPS.csv,
    every store unverified) or nothing (every store ungrouped). Each store
    with current rows in PRICES.csv was scraped this round; the others were not.
    """
    if state_in is not None and groups_path is not None:
        raise BadData("--groups and --state-in are mutually exclusive")
    dump = read_prices(prices_path, as_of, settings)
    if state_in is not None:
        book = read_state(state_in)
    else:
        previous = read_groups(groups_path) if groups_path else {}
        created = dump.as_of - timedelta(days=3650)  # a CSV has no creation dates: older than any new group
        book = GroupBook.from_anchors({s: s[0] for s in previous}, previous, created)
    for store in sorted(dump.stores - set(book.stores)):  # new stores start ungrouped
        book.add_store(store, store[0], dump.first_seen.get(store, dump.as_of))
    recorded: list[Store] = []
    for store in sorted(dump.rows):
        if book.record_scrape(store, dump.rows[store], dump.scraped_at[store], dump.first_seen[store]):
            recorded.append(store)
    book.record_lateness(recorded, settings)
    summary = book.maintenance_round(None, dump.as_of, settings)
    scraped, not_newer = len(recorded), len(dump.rows) - len(recorded)
    summary.scraped, summary.not_newer = scraped, not_newer
    outputs = []
    if out_path is not None:
        result = book.anchor_of()
        outputs.append((out_path, GROUP_COLUMNS, [(s[0], s[1], result[s][1]) for s in sorted(book.stores)]))
    if events_path is not None:
        outputs.append((events_path, EVENT_COLUMNS, [_event_row(e) for e in book.events]))
    if effective_out is not None:
        outputs.append(effective_output(book, effective_out, settings))
    if state_out is not None:
        if state_out.exists() and not state_out.is_dir():
            raise BadData(f"{state_out}: --state-out must be a directory")
        outputs.extend(state_outputs(book, state_out))
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
        json.dumps(evidence, default=_json_plain, sort_keys=True),
    )


def _json_plain(value: object) -> object:
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
            parent = path.parent or Path(".")
            parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
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
        raise BadData(f"{path}: cannot read ({exc.strerror})") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise BadData(f"{path}:1: missing column(s) {', '.join(missing)}")
        reader.fieldnames = header
        try:
            for record in reader:
                if None in record or any(record.get(c) is None for c in required):
                    raise BadData(f"{path}:{reader.line_num}: wrong number of fields")
                yield reader.line_num, record
        except csv.Error as exc:
            raise BadData(f"{path}:{reader.line_num}: {exc}") from exc


def _count(raw: str | None, name: str, where: str) -> int:
    """A non-negative whole number; an absent or empty field is 0."""
    text = (raw or "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise BadData(f"{where}: {name} must be a whole number of at least 0, not {text!r}")
    return int(text)


def _required(record: dict, names: tuple[str, ...], where: str) -> list[str]:
    values = [record[n].strip() for n in names]
    if not all(values):
        raise BadData(f"{where}: {', '.join(names[:-1])} and {names[-1]} must not be empty")
    return values


def _money(text: str, name: str, where: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BadData(f"{where}: {name} {text!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise BadData(f"{where}: {name} {text!r} must be a positive amount")
    amount = value * 100
    if amount != amount.to_integral_value():
        raise BadData(f"{where}: {name} {text!r} has fractions of a cent")
    return int(amount)


def _flag(text: str, name: str, where: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise BadData(f"{where}: {name} must be true or false, got {text!r}")
    return value == "true"


def _time(text: str, name: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadData(f"{where}: {name} {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise BadData(f"{where}: {name} {text!r} has no UTC offset")
    return value


def _optional_time(text: str, name: str, where: str) -> datetime | None:
    return _time(text, name, where) if text.strip() else None


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _label(group: Hashable) -> str:
    return str(group[1]) if isinstance(group, tuple) else str(group)


def parse_as_of(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadData(f"--as-of {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise BadData(f"--as-of {text!r} has no UTC offset")
    return value


def store_key(store: Hashable) -> str:
    return "/".join(store) if isinstance(store, tuple) else str(store)
