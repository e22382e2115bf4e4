"""A scenario: the chains, stores, hidden zones, listings and events the demo site serves.

Loaded from JSON (docs/scenario.md) or generated (generate.default_scenario).
It is also the ground truth for tests and the demo report: which zone prices a
store on a day, and every store's true prices. The pipeline never sees it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from pricegroups.demo.hashing import unit
from pricegroups.demo.model import (
    EVENT_KINDS,
    LAYOUTS,
    SIZE_UNITS,
    Chain,
    Event,
    Item,
    Listing,
    PricingRules,
    Store,
    TruePrice,
    Zone,
)
from pricegroups.demo.pricing import PriceEngine
from pricegroups.errors import ConfigError

FORMAT = "pricegroups-demo-scenario/1"


class Scenario:
    """Immutable scenario data plus ground-truth queries (memoised, so cheap to repeat)."""

    def __init__(
        self,
        *,
        seed: int,
        chains: Iterable[Chain],
        events: Iterable[Event] = (),
        pricing: PricingRules = PricingRules(),
        days: int = 14,
        start_date: date = date(2026, 3, 2),
    ) -> None:
        self.seed = seed
        self.days = days
        self.start_date = start_date
        self.pricing = pricing
        self.chains: dict[str, Chain] = {c.code: c for c in chains}
        self.events: tuple[Event, ...] = tuple(events)
        self._engine = PriceEngine(seed, pricing)
        self._stores = {c.code: {s.code: s for s in c.stores} for c in self.chains.values()}
        self._zones = {c.code: {z.code: z for z in c.zones} for c in self.chains.values()}
        self._listings = {c.code: {lst.sku: lst for lst in c.listings} for c in self.chains.values()}
        self._assortment: dict[tuple[str, str], tuple[Listing, ...]] = {}
        self._zone_tables: dict[tuple[str, str, int], dict[str, TruePrice]] = {}
        self._validate()

    # ---- structure -------------------------------------------------------------------------

    def chain(self, code: str) -> Chain:
        try:
            return self.chains[code]
        except KeyError:
            raise ConfigError(f"no chain {code!r} in the scenario") from None

    def store(self, chain: str, code: str) -> Store:
        try:
            return self._stores[chain][code]
        except KeyError:
            raise ConfigError(f"no store {code!r} in chain {chain!r}") from None

    def stores(self, chain: str, day: int | None = None) -> list[Store]:
        """The chain's stores; with `day`, only those open that day (what the locator lists)."""
        stores = list(self.chain(chain).stores)
        return stores if day is None else [s for s in stores if self.is_open(chain, s.code, day)]

    def skus(self, chain: str) -> list[str]:
        return [lst.sku for lst in self.chain(chain).listings]

    def listing(self, chain: str, sku: str) -> Listing:
        return self._listings[chain][sku]

    def date_of(self, day: int) -> date:
        """The calendar date of simulated day `day` (for the demo runner's logical dates)."""
        return self.start_date + timedelta(days=day)

    # ---- events ------------------------------------------------------------------------------

    def events_on(self, day: int, chain: str | None = None, store: str | None = None) -> list[Event]:
        """Events in effect on `day` (HTTP events of that day, standing events from their day on)."""
        return [
            e
            for e in self.events
            if e.applies_on(day) and (chain is None or e.chain == chain) and (store is None or e.store == store)
        ]

    def is_open(self, chain: str, store: str, day: int) -> bool:
        return not any(e.kind == "store_closes" for e in self.events_on(day, chain, store))

    # ---- ground truth --------------------------------------------------------------------------

    def zone_of(self, chain: str, store: str, day: int) -> str:
        """The zone whose price list the store shows on `day`, after moves and convergences."""
        zone = self.store(chain, store).zone
        standing = sorted(
            (e for e in self.events if e.chain == chain and e.applies_on(day) and e.day is not None),
            key=lambda e: e.day,
        )
        for event in standing:
            if event.kind == "store_moves" and event.store == store:
                zone = event.zone
        merged = {e.zone: e.into for e in standing if e.kind == "zones_converge"}
        seen = set()
        while zone in merged and zone not in seen:
            seen.add(zone)
            zone = merged[zone]
        return zone

    def true_zones(self, chain: str, day: int) -> dict[str, list[str]]:
        """Open stores grouped by the zone that prices them on `day`: the grouping to be learnt."""
        zones: dict[str, list[str]] = {}
        for s in self.stores(chain, day):
            zones.setdefault(self.zone_of(chain, s.code, day), []).append(s.code)
        return zones

    def assortment(self, chain: str, store: str) -> tuple[Listing, ...]:
        """The listings the store carries, in catalogue order (the same every day)."""
        key = (chain, store)
        listings = self._assortment.get(key)
        if listings is None:
            share = self.store(chain, store).range_share
            listings = tuple(
                lst for lst in self.chain(chain).listings if unit(self.seed, chain, store, lst.sku, "carries") < share
            )
            self._assortment[key] = listings
        return listings

    def zone_price(self, chain: str, zone: str, sku: str, day: int) -> TruePrice:
        return self.zone_prices(chain, zone, day)[sku]

    def zone_prices(self, chain: str, zone: str, day: int) -> dict[str, TruePrice]:
        """{sku: TruePrice} of every listing of the chain in `zone` on `day` (the zone's price list)."""
        key = (chain, zone, day)
        table = self._zone_tables.get(key)
        if table is None:
            c, z, price = self.chain(chain), self._zones[chain][zone], self._engine.price
            table = {lst.sku: price(c, z, lst, day) for lst in c.listings}
            if len(self._zone_tables) >= 512:  # bounded: a long demo asks for many days
                self._zone_tables.pop(next(iter(self._zone_tables)))
            self._zone_tables[key] = table
        return table

    def items(self, chain: str, store: str, day: int) -> list[Item]:
        """The store's catalogue on `day` as the site shows it (no events applied); empty once closed."""
        if not self.is_open(chain, store, day):
            return []
        table = self.zone_prices(chain, self.zone_of(chain, store, day), day)
        return [Item(lst, table[lst.sku]) for lst in self.assortment(chain, store)]

    def true_prices(self, chain: str, store: str, day: int) -> dict[str, TruePrice]:
        """{sku: TruePrice} of the store on `day`; empty once the store has closed."""
        if not self.is_open(chain, store, day):
            return {}
        table = self.zone_prices(chain, self.zone_of(chain, store, day), day)
        return {lst.sku: table[lst.sku] for lst in self.assortment(chain, store)}

    # ---- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "seed": self.seed,
            "days": self.days,
            "start_date": self.start_date.isoformat(),
            "pricing": asdict(self.pricing),
            "chains": [_chain_to_dict(c) for c in self.chains.values()],
            "events": [e.to_dict() for e in self.events],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(indent=1), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scenario":
        if data.get("format", FORMAT) != FORMAT:
            raise ConfigError(f"unknown scenario format {data.get('format')!r}, expected {FORMAT!r}")
        try:
            return cls(
                seed=int(data.get("seed", 0)),
                days=int(data.get("days", 14)),
                start_date=date.fromisoformat(data.get("start_date", "2026-03-02")),
                pricing=PricingRules(**data.get("pricing", {})),
                chains=[_chain_from_dict(c) for c in data["chains"]],
                events=[Event(**e) for e in data.get("events", [])],
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"invalid scenario: {exc!r}") from exc

    @classmethod
    def from_json(cls, text: str) -> "Scenario":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"scenario is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "Scenario":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def with_events(self, events: Iterable[Event]) -> "Scenario":
        """A copy of this scenario with other events (tests script their own)."""
        return Scenario(
            seed=self.seed,
            chains=self.chains.values(),
            events=events,
            pricing=self.pricing,
            days=self.days,
            start_date=self.start_date,
        )

    # ---- checks -----------------------------------------------------------------------------------

    def _validate(self) -> None:
        for c in self.chains.values():
            if c.layout not in LAYOUTS:
                raise ConfigError(f"chain {c.code}: layout must be one of {LAYOUTS}, not {c.layout!r}")
            if not 1 <= c.page_size <= 1000 or c.unit_basis not in (100, 1000):
                raise ConfigError(f"chain {c.code}: page_size 1..1000 and unit_basis 100 or 1000")
            zones = self._zones[c.code]
            for s in c.stores:
                if s.zone not in zones:
                    raise ConfigError(f"store {c.code}/{s.code}: unknown zone {s.zone!r}")
            if len(self._stores[c.code]) != len(c.stores) or len(self._listings[c.code]) != len(c.listings):
                raise ConfigError(f"chain {c.code}: store codes and SKUs must be unique")
            for lst in c.listings:
                if lst.size_unit not in SIZE_UNITS or lst.size_value <= 0 or lst.base_price <= 0:
                    raise ConfigError(f"listing {c.code}/{lst.sku}: bad size or price")
        for e in self.events:
            if e.kind not in EVENT_KINDS:
                raise ConfigError(f"event kind must be one of {EVENT_KINDS}, not {e.kind!r}")
            if e.chain not in self.chains:
                raise ConfigError(f"event {e.kind}: unknown chain {e.chain!r}")
            if e.store is not None and e.store not in self._stores[e.chain]:
                raise ConfigError(f"event {e.kind}: unknown store {e.chain}/{e.store}")
            needs_store = e.kind in ("store_moves", "store_closes", "robots_disallow", "slow", "malformed", "truncated")
            if needs_store and e.store is None:
                raise ConfigError(f"event {e.kind} needs a store")
            for zone in (e.zone, e.into):
                if zone is not None and zone not in self._zones[e.chain]:
                    raise ConfigError(f"event {e.kind}: unknown zone {e.chain}/{zone}")
            if e.kind in ("store_moves", "zones_converge") and e.day is None:
                raise ConfigError(f"event {e.kind} needs a day")
            if e.kind == "store_moves" and e.zone is None or e.kind == "zones_converge" and None in (e.zone, e.into):
                raise ConfigError(f"event {e.kind} needs its zone(s)")
            if e.mode not in (None, "404", "page"):
                raise ConfigError(f"event {e.kind}: mode must be '404' or 'page'")


def _chain_to_dict(chain: Chain) -> dict[str, Any]:
    def listing(lst: Listing) -> dict[str, Any]:
        d = asdict(lst)
        d["size_value"] = str(lst.size_value)
        d["base_price"] = str(lst.base_price)
        return d

    return {
        "code": chain.code,
        "name": chain.name,
        "layout": chain.layout,
        "page_size": chain.page_size,
        "unit_basis": chain.unit_basis,
        "robots_disallow": list(chain.robots_disallow),
        "zones": [asdict(z) for z in chain.zones],
        "stores": [asdict(s) for s in chain.stores],
        "listings": [listing(lst) for lst in chain.listings],
    }


def _chain_from_dict(data: dict[str, Any]) -> Chain:
    names = {f.name for f in fields(Listing)}

    def listing(d: dict[str, Any]) -> Listing:
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown listing fields {sorted(unknown)}")
        d = dict(d)
        d["size_value"] = Decimal(str(d["size_value"]))
        d["base_price"] = Decimal(str(d["base_price"]))
        return Listing(**d)

    return Chain(
        code=data["code"],
        name=data["name"],
        layout=data["layout"],
        page_size=int(data.get("page_size", 60)),
        unit_basis=int(data.get("unit_basis", 100)),
        robots_disallow=tuple(data.get("robots_disallow", ())),
        zones=tuple(Zone(**z) for z in data["zones"]),
        stores=tuple(Store(**s) for s in data["stores"]),
        listings=tuple(listing(d) for d in data["listings"]),
    )
