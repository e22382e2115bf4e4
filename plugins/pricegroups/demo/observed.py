"""What the pipeline stores for a price the demo site shows, without fetching it.

Loading a scenario's history straight into PostgreSQL (demo/preload.py) needs
the very rows a scrape would have staged and the upsert written: a row that
differs in a unit price or a promotion text from what the next real scrape
sees is a "changed" price, and a day of them is no normal day. So nothing is
re-derived here: the items are rendered by the chain's layout and parsed by
its shipped site profile, exactly as the site and the scraper do, and the
unit price a page does not show is computed as enrich does (per 100 g /
100 ml / each from the product's size).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Mapping, NamedTuple

from pricegroups.demo.layouts import APP_MODULES, LAYOUT_MODULES
from pricegroups.demo.layouts.common import CatalogueView
from pricegroups.demo.model import Chain, Item, TruePrice
from pricegroups.scrape.fields import ScrapedItem
from pricegroups.scrape.parse import parse_page
from pricegroups.scrape.profile import compile_profile, load_profile_file

PAGE_ITEMS = 400  # items per rendered page: big pages parse faster, any size parses the same
_PLACES = Decimal("0.0001")


class Size(NamedTuple):
    """A product's size as the catalogue stores it (products.size_value, size_unit)."""

    value: Decimal
    unit: str


class PriceFields(NamedTuple):
    """The columns of a `prices` row that the upsert compares (and `scraped_items` carries after enrich)."""

    price: Decimal
    was_price: Decimal | None
    unit_price: Decimal | None
    unit_measure: str | None
    on_special: bool
    promo_text: str | None


def parsed_items(chain: Chain, wanted: Iterable[tuple[str, TruePrice]]) -> dict[tuple[str, TruePrice], ScrapedItem]:
    """{(sku, price): the item a scrape stages} for the chain's listings at those prices.

    A SKU appears at most once per rendered page (a catalogue never lists one twice).
    """
    scraped = chain.scraped_layout  # the layout and profile the demo scrapes the chain by
    layout = APP_MODULES[scraped] if chain.app else LAYOUT_MODULES[scraped]
    profile = compile_profile(load_profile_file(scraped))
    listings = {lst.sku: lst for lst in chain.listings}
    store = chain.stores[0]
    path = f"/{chain.code}{layout.CATALOGUE}" if chain.app else layout.catalogue_path(chain, store.code)
    url = "http://demo.invalid" + path
    found: dict[tuple[str, TruePrice], ScrapedItem] = {}
    for page in _pages(sorted(set(wanted), key=lambda k: (k[0], repr(k[1])))):
        items = [Item(listings[sku], price) for sku, price in page]
        view = CatalogueView(chain, store, items, 1, 1, len(items), 0)
        result = parse_page(layout.render_catalogue(view).encode(), url, profile)
        if len(result.items) != len(page) or [i.sku for i in result.items] != [sku for sku, _ in page]:
            raise ValueError(f"{chain.code}: a rendered page did not parse item for item ({len(result.dropped)} dropped)")
        found.update(zip(page, result.items))
    return found


def _pages(keys: list[tuple[str, TruePrice]]) -> Iterable[list[tuple[str, TruePrice]]]:
    """Pages of at most PAGE_ITEMS keys, no SKU twice on a page."""
    rounds: dict[int, list[tuple[str, TruePrice]]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    for key in keys:
        rounds[seen[key[0]]].append(key)
        seen[key[0]] += 1
    for keys_of_round in rounds.values():
        for start in range(0, len(keys_of_round), PAGE_ITEMS):
            yield keys_of_round[start:start + PAGE_ITEMS]


def enriched(item: ScrapedItem, size: Size | None) -> ScrapedItem:
    """The item after enrich: a unit price computed from the product's size where the page showed none."""
    if item.unit_price is not None or size is None or size.value <= 0:
        return item
    per = Decimal(1) if size.unit == "each" else Decimal(100)
    value = (item.price * per / size.value).quantize(_PLACES, rounding=ROUND_HALF_UP)
    if not 0 < value < Decimal("1e10"):
        return item
    return item._replace(unit_price=value, unit_measure="each" if size.unit == "each" else f"per 100{size.unit}")


def price_fields(item: ScrapedItem) -> PriceFields:
    """The compared columns of the `prices` row the upsert writes for a (enriched) item."""
    unit = None if item.unit_price is None else item.unit_price.quantize(_PLACES, rounding=ROUND_HALF_UP)
    return PriceFields(item.price, item.was_price, unit, item.unit_measure, item.on_special, item.promo_text)


def stored_fields(
    items: Mapping[tuple[str, TruePrice], ScrapedItem], sizes: Mapping[str, Size | None]
) -> dict[tuple[str, TruePrice], PriceFields]:
    """{(sku, price): the compared `prices` columns}, given each SKU's product size."""
    return {key: price_fields(enriched(item, sizes.get(key[0]))) for key, item in items.items()}
