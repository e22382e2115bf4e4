"""A scenario: the chains, stores, hidden zones, listings and events the demo site serves.

Loaded from JSON (docs/scenario.md) or generated (generate.default_scenario).
It is also the ground truth for tests and the demo report: which zone prices a
store on a day, and every store's true prices. The pipeline never sees it.

A store shows its zone's price list except where it deviates (`deviations`):
on its own persistent prices (Store.own_share), for a store that is late
with price changes (Store.lag_share), on a regular-price change it shows 1-2
days late, and on the day's one-off glitches (PricingRules.glitch_share).
What the site serves and `true_prices` both include them.
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
    APP_LAYOUTS,
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
from pricegroups.demo.pricing import PriceEngine, lowest_draws
from pricegroups.errors import ConfigError

FORMAT = "pricegroups-demo-scenario/1"
_NO_DEVIATIONS: dict[str, tuple[TruePrice, str]] = {}
_TABLE_LIMIT = 512  # bounded memo tables: a long demo asks for many days


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
        self._carried: dict[tuple[str, str], frozenset[str]] = {}
        self._own: dict[tuple[str, str], frozenset[str]] = {}
        self._changes: dict[tuple[str, int], list[tuple[str, int, int]]] = {}
        self._deviations: dict[tuple[str, str, int], dict[str, tuple[TruePrice, str]]] = {}
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
            _bound(self._zone_tables)
            self._zone_tables[key] = table
        return table

    def version(self, chain: str, sku: str, day: int) -> int:
        """Which regular price the listing has on `day` (it changes when this does; 0 on day 0)."""
        return self._engine.version(chain, self._listings[chain][sku], day)

    def twin_skus(self, chain: str, zone: str) -> frozenset[str]:
        """SKUs on which a near-twin zone's list differs from its twin's (empty for other zones)."""
        return self._engine.twin_skus(self.chain(chain), self._zones[chain][zone])

    def own_skus(self, chain: str, store: str) -> frozenset[str]:
        """The carried listings the store prices itself, every day: round(own_share * carried) of
        them, at least one when own_share > 0 (the lowest draws per (store, sku))."""
        key = (chain, store)
        skus = self._own.get(key)
        if skus is None:
            carried = [lst.sku for lst in self.assortment(chain, store)]
            share = self.store(chain, store).own_share
            skus = self._own[key] = lowest_draws(self.seed, (chain, store), carried, share, "own")
        return skus

    def glitch_skus(self, chain: str, store: str, day: int) -> frozenset[str]:
        """The carried listings (own prices excepted) the store shows at a one-off price on `day` only:
        round(glitch_share * carried), at least one when glitch_share > 0, drawn afresh per day."""
        share = self.pricing.glitch_share
        if not share:
            return frozenset()
        own = self.own_skus(chain, store)
        carried = [lst.sku for lst in self.assortment(chain, store) if lst.sku not in own]
        return lowest_draws(self.seed, (chain, store, day), carried, share, "glitch")

    def deviations(self, chain: str, store: str, day: int) -> dict[str, str]:
        """{sku: "own" | "lag" | "glitch"}: where the store shows something else than its zone's list on `day`."""
        if not self.is_open(chain, store, day):
            return {}
        return {sku: cause for sku, (_, cause) in self._store_deviations(chain, store, day).items()}

    def items(self, chain: str, store: str, day: int) -> list[Item]:
        """The store's catalogue on `day` as the site shows it (no events applied); empty once closed."""
        if not self.is_open(chain, store, day):
            return []
        table = self.zone_prices(chain, self.zone_of(chain, store, day), day)
        deviations = self._store_deviations(chain, store, day)
        if not deviations:
            return [Item(lst, table[lst.sku]) for lst in self.assortment(chain, store)]
        return [Item(lst, deviations[lst.sku][0] if lst.sku in deviations else table[lst.sku])
                for lst in self.assortment(chain, store)]

    def true_prices(self, chain: str, store: str, day: int) -> dict[str, TruePrice]:
        """{sku: TruePrice} of the store on `day` (exactly what the site shows); empty once closed."""
        if not self.is_open(chain, store, day):
            return {}
        table = self.zone_prices(chain, self.zone_of(chain, store, day), day)
        prices = {lst.sku: table[lst.sku] for lst in self.assortment(chain, store)}
        for sku, (price, _) in self._store_deviations(chain, store, day).items():
            prices[sku] = price
        return prices

    def _store_deviations(self, chain: str, store: str, day: int) -> dict[str, tuple[TruePrice, str]]:
        """{sku: (the price shown, "own" | "lag" | "glitch")} of an open store's listings that differ from its
        zone's; a glitch replaces a late price, never an own one."""
        s = self.store(chain, store)
        if not s.own_share and not s.lag_share and not self.pricing.glitch_share:
            return _NO_DEVIATIONS
        key = (chain, store, day)
        found = self._deviations.get(key)
        if found is not None:
            return found
        c, zone = self.chain(chain), self._zones[chain][self.zone_of(chain, store, day)]
        table = self.zone_prices(chain, zone.code, day)
        own = self.own_skus(chain, store)
        listings, own_price = self._listings[chain], self._engine.own_price
        found = {sku: (own_price(c, zone, s, listings[sku], day), "own") for sku in own}
        if s.lag_share:
            carried = self._carried_skus(chain, store)
            for sku, version, age in self._version_changes(chain, day):
                if sku in own or sku not in carried:
                    continue
                draw = unit(self.seed, chain, store, sku, version, "lag")
                if draw >= s.lag_share or age >= (2 if draw < s.lag_share / 2 else 1):
                    continue
                late = self._engine.price(c, zone, listings[sku], day, version - 1)
                if late != table[sku]:  # a change that changed nothing shows nothing
                    found[sku] = (late, "lag")
        for sku in self.glitch_skus(chain, store, day):
            shown = found[sku][0] if sku in found else table[sku]
            found[sku] = (self._engine.glitch_price(c, s, listings[sku], shown, day), "glitch")
        _bound(self._deviations, 4 * _TABLE_LIMIT)
        self._deviations[key] = found
        return found

    def _carried_skus(self, chain: str, store: str) -> frozenset[str]:
        key = (chain, store)
        skus = self._carried.get(key)
        if skus is None:
            skus = self._carried[key] = frozenset(lst.sku for lst in self.assortment(chain, store))
        return skus

    def _version_changes(self, chain: str, day: int) -> list[tuple[str, int, int]]:
        """[(sku, new version, age)]: regular-price changes on `day` (age 0) and on the day before (age 1)."""
        key = (chain, day)
        changes = self._changes.get(key)
        if changes is None:
            changes, version = [], self._engine.version
            for lst in self.chain(chain).listings:
                today, yesterday = version(chain, lst, day), version(chain, lst, day - 1)
                if day >= 1 and today != yesterday:
                    changes.append((lst.sku, today, 0))
                elif day >= 2 and yesterday != version(chain, lst, day - 2):
                    changes.append((lst.sku, yesterday, 1))
            _bound(self._changes)
            self._changes[key] = changes
        return changes

    # ---- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "seed": self.seed,
            "days": self.days,
            "start_date": self.start_date.isoformat(),
            "pricing": _pricing_to_dict(self.pricing),
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
        return self._copy(events=events)

    def starting(self, start_date: date) -> "Scenario":
        """The same scenario with another demo epoch (the date of day 0); prices follow day numbers."""
        return self._copy(start_date=start_date)

    def _copy(self, **changes: Any) -> "Scenario":
        current = {"seed": self.seed, "chains": self.chains.values(), "events": self.events,
                  "pricing": self.pricing, "days": self.days, "start_date": self.start_date}
        return Scenario(**{**current, **changes})

    # ---- checks -----------------------------------------------------------------------------------

    def _validate(self) -> None:
        glitch = self.pricing.glitch_share
        if not _share(glitch) or glitch >= 0.5:
            raise ConfigError(f"pricing: glitch_share must be a number in [0, 0.5), not {glitch!r}")
        for c in self.chains.values():
            if c.layout not in LAYOUTS:
                raise ConfigError(f"chain {c.code}: layout must be one of {LAYOUTS}, not {c.layout!r}")
            if c.app is not None and c.app not in APP_LAYOUTS:
                raise ConfigError(f"chain {c.code}: app must be one of {APP_LAYOUTS} (or absent), not {c.app!r}")
            if not 1 <= c.page_size <= 1000 or c.unit_basis not in (100, 1000):
                raise ConfigError(f"chain {c.code}: page_size 1..1000 and unit_basis 100 or 1000")
            zones = self._zones[c.code]
            for z in c.zones:
                self._validate_twin(c, z)
            for s in c.stores:
                if s.zone not in zones:
                    raise ConfigError(f"store {c.code}/{s.code}: unknown zone {s.zone!r}")
                if not _share(s.own_share) or s.own_share >= 0.5:
                    raise ConfigError(f"store {c.code}/{s.code}: own_share must be a number in [0, 0.5), "
                                      f"not {s.own_share!r}")
                if not _share(s.lag_share) or s.lag_share > 1:
                    raise ConfigError(f"store {c.code}/{s.code}: lag_share must be a number in [0, 1], "
                                      f"not {s.lag_share!r}")
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

    def _validate_twin(self, chain: Chain, zone: Zone) -> None:
        where = f"zone {chain.code}/{zone.code}"
        if zone.twin_of is None:
            if zone.twin_share != 0:
                raise ConfigError(f"{where}: twin_share {zone.twin_share!r} needs twin_of "
                                  "(the zone whose list it nearly copies)")
            return
        twin = self._zones[chain.code].get(zone.twin_of) if isinstance(zone.twin_of, str) else None
        if twin is None or twin.code == zone.code:
            raise ConfigError(f"{where}: twin_of must name another zone of chain {chain.code!r}, "
                              f"not {zone.twin_of!r}")
        if twin.twin_of is not None:
            raise ConfigError(f"{where}: twin_of {twin.code!r} is itself a twin (of {twin.twin_of!r})")
        if not _share(zone.twin_share) or not 0 < zone.twin_share < 0.5:
            raise ConfigError(f"{where}: twin_share must be a number between 0 and 0.5 (both excluded), "
                              f"not {zone.twin_share!r}")


def _share(value: object) -> bool:
    """A number >= 0 (a share; bools and strings are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _bound(table: dict, limit: int = _TABLE_LIMIT) -> None:
    """Make room for one more entry in a memo table (oldest out first)."""
    if len(table) >= limit:
        table.pop(next(iter(table)))


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
        **({"app": chain.app} if chain.app else {}),
        "page_size": chain.page_size,
        "unit_basis": chain.unit_basis,
        "robots_disallow": list(chain.robots_disallow),
        "zones": [_without_defaults(z, ("twin_of", "twin_share")) for z in chain.zones],
        "stores": [_without_defaults(s, ("own_share", "lag_share")) for s in chain.stores],
        "listings": [listing(lst) for lst in chain.listings],
    }


def _pricing_to_dict(pricing: PricingRules) -> dict[str, Any]:
    """The pricing rules, `glitch_share` only when set (files written before it existed stay as they were)."""
    data = asdict(pricing)
    if not pricing.glitch_share:
        del data["glitch_share"]
    return data


def _without_defaults(obj: Zone | Store, optional: tuple[str, ...]) -> dict[str, Any]:
    """asdict(obj) without the `optional` fields left at their defaults (older files stay as they were)."""
    defaults = {f.name: f.default for f in fields(obj)}
    return {k: v for k, v in asdict(obj).items() if k not in optional or v != defaults[k]}


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
        app=data.get("app"),
        page_size=int(data.get("page_size", 60)),
        unit_basis=int(data.get("unit_basis", 100)),
        robots_disallow=tuple(data.get("robots_disallow", ())),
        zones=tuple(Zone(**z) for z in data["zones"]),
        stores=tuple(Store(**s) for s in data["stores"]),
        listings=tuple(listing(d) for d in data["listings"]),
    )
