"""The scenario's parts as frozen dataclasses: what a chain, store, listing and event are.

Everything here is plain data that round-trips through JSON (docs/scenario.md);
the behaviour lives in scenario.py (truth) and pricing.py (prices).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

LAYOUTS = ("grid", "table", "jsonld")
# A chain's app: a JSON API (store chosen by a header) or pages with embedded app state (store chosen by a
# cookie), served beside its HTML layout; the demo registers a chain that has one with the app's profile.
APP_LAYOUTS = ("api", "nextdata")
SIZE_UNITS = ("g", "ml", "each")

# Events with an HTTP effect only on their own day (or every day when day is None).
# layout_changed and junk_items (store None: every store of the chain) exist for the fault campaign
# (bench/chaos.py, docs/chaos.md): a redesigned page without the profile's page marker, and absurd
# prices and hostile names served next to the real items.
HTTP_EVENTS = ("rate_limit", "server_error", "slow", "malformed", "truncated", "layout_changed", "junk_items")
# Events that hold from their day on.
STANDING_EVENTS = ("store_moves", "zones_converge", "store_closes", "robots_disallow")
EVENT_KINDS = HTTP_EVENTS + STANDING_EVENTS


@dataclass(frozen=True)
class PricingRules:
    """How prices move; shares are of a chain's listings."""

    daily_change_rate: float = 0.006  # share of regular prices that change on a given day
    zone_deviation_share: float = 0.25  # share of listings whose price in a zone differs from the chain's base
    independent_deviation_share: float = 0.5  # the same for an independently priced store's zone
    special_share: float = 0.08  # share of listings on special in a zone in a week
    multibuy_share: float = 0.3  # share of specials that are multi-buys ("2 for $5.00")
    week_length: int = 7  # specials change on days 0, week_length, 2 * week_length, ...
    # one-off glitches (a mis-set shelf label, a scrape catching a wrong price): per store and day, this
    # share of the store's listings shows another price on that day only; 0 (the default): none
    glitch_share: float = 0.0


@dataclass(frozen=True)
class Zone:
    """A hidden price list of a chain. Never shown by the site."""

    code: str
    independent: bool = False  # the price list of one independently priced store
    # A near-twin: this zone's list is `twin_of`'s list (same regular prices, specials and
    # versions) except on a fixed share `twin_share` of listings, where its regular price
    # differs by 4-12 %. None: a list of its own.
    twin_of: str | None = None
    twin_share: float = 0.0


@dataclass(frozen=True)
class Store:
    code: str
    name: str
    address: str
    zone: str  # the zone on day 0; events may move it
    range_share: float = 0.9  # share of the chain's listings this store carries
    own_share: float = 0.0  # share of its listings the store prices itself (6-15 % above its zone), every day
    lag_share: float = 0.0  # chance that the store shows a regular-price change 1-2 days late


@dataclass(frozen=True)
class Listing:
    """A chain's product as its site shows it (name, brand and size text in the chain's own spelling)."""

    sku: str
    product: str  # the scenario's product id: the same for every chain selling it (truth only)
    brand: str
    name: str
    size: str  # size text as shown, e.g. "6 x 375mL"
    size_value: Decimal  # total quantity in size_unit, e.g. 2250
    size_unit: str  # g, ml or each
    category: str
    barcode: str | None  # EAN-13 as shown; None when the site does not show it
    base_price: Decimal  # the chain's regular price on day 0 before zone deviations
    show_unit_price: bool = True


@dataclass(frozen=True)
class Chain:
    code: str
    name: str
    layout: str  # grid, table or jsonld
    page_size: int
    unit_basis: int  # unit prices per 100 g/mL (100) or per 1 kg/L (1000)
    zones: tuple[Zone, ...]
    stores: tuple[Store, ...]
    listings: tuple[Listing, ...]  # in catalogue order
    robots_disallow: tuple[str, ...] = ()
    app: str | None = None  # api or nextdata: the app layout served beside `layout`, scraped by the demo

    @property
    def scraped_layout(self) -> str:
        """The layout whose shipped profile the demo registers this chain with."""
        return self.app or self.layout


@dataclass(frozen=True)
class Event:
    """A scripted event; see docs/demo-site.md for what each kind does."""

    kind: str
    chain: str
    day: int | None = None  # None: every day
    store: str | None = None
    zone: str | None = None  # store_moves: the new zone; zones_converge: the zone that adopts another's prices
    into: str | None = None  # zones_converge: the zone whose prices it adopts
    count: int | None = None  # rate_limit / server_error: responses before it recovers (None: never)
    retry_after: int | None = None  # rate_limit: seconds
    delay: float | None = None  # slow: seconds
    page: int | None = None  # slow / malformed / layout_changed: 1-based page (None: every page / page 1)
    fraction: float | None = None  # truncated: share of items still served
    mode: str | None = None  # store_closes: "404" or "page"

    def applies_on(self, day: int) -> bool:
        if self.day is None:
            return True
        return self.day == day if self.kind in HTTP_EVENTS else self.day <= day

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class TruePrice:
    """What the site shows for one listing at one store on one day."""

    price: Decimal
    was_price: Decimal | None = None
    on_special: bool = False
    promo_text: str | None = None
    multibuy_qty: int | None = None
    multibuy_price: Decimal | None = None
    unit_price: Decimal | None = None
    unit_measure: str | None = None  # 100g, 100mL, 1kg, 1L or each


@dataclass(frozen=True)
class Item:
    """A listing with its price: one product tile / row / JSON-LD Product."""

    listing: Listing
    price: TruePrice
