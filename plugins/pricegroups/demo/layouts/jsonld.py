"""Layout 3 (greengrocer): product data in one JSON-LD ItemList of schema.org Products, ?p=N."""

from __future__ import annotations

import json
from typing import Any

from pricegroups.demo.layouts.common import CatalogueView, escape, money, page
from pricegroups.demo.model import Chain, Item, Store

LOCATOR = "/locations"
CATALOGUE = r"/shop/(?P<store>[A-Za-z0-9]+)"
TRAP = "/account"

SCHEMA = "https://schema.org"
_UNIT_CODES = {"g": "GRM", "ml": "MLT", "each": "EA"}
_REFERENCE = {"100g": 100, "100mL": 100, "1kg": 1000, "1L": 1000, "each": 1}


def catalogue_path(chain: Chain, store: str) -> str:
    return f"/{chain.code}/shop/{store}"


def page_start(query: dict[str, str], page_size: int) -> tuple[int, int]:
    """(page number, 0-based start) from ?p=N."""
    number = int(query.get("p", "1"))
    if number < 1:
        raise ValueError("p must be >= 1")
    return number, (number - 1) * page_size


def render_locator(chain: Chain, stores: list[Store]) -> str:
    cards = "".join(
        f'<div class="location-card" data-store-id="{escape(s.code)}">'
        f'<h3 class="location-name">{escape(s.name)}</h3><p class="location-address">{escape(s.address)}</p>'
        f'<a class="shop-link" href="{catalogue_path(chain, s.code)}">Shop online</a></div>\n'
        for s in stores
    )
    return page(chain, "Our locations", f'<h1>Our locations</h1>\n<div class="locations">\n{cards}</div>',
                trap=f"/{chain.code}{TRAP}")


def _product(item: Item) -> dict[str, Any]:
    lst, p = item.listing, item.price
    offer: dict[str, Any] = {
        "@type": "Offer",
        "price": f"{p.price:.2f}",
        "priceCurrency": "AUD",
        "availability": f"{SCHEMA}/InStock",
    }
    if p.promo_text:
        offer["description"] = p.promo_text
    specs = []
    if p.was_price is not None:
        specs.append({"@type": "UnitPriceSpecification", "priceType": f"{SCHEMA}/StrikethroughPrice",
                      "price": f"{p.was_price:.2f}", "priceCurrency": "AUD"})
    if p.unit_price is not None:
        reference = _REFERENCE[p.unit_measure]
        specs.append({"@type": "UnitPriceSpecification", "price": f"{p.unit_price:.2f}", "priceCurrency": "AUD",
                      "unitText": p.unit_measure,
                      "referenceQuantity": {"@type": "QuantitativeValue", "value": reference,
                                            "unitCode": _UNIT_CODES[lst.size_unit]}})
    if specs:
        offer["priceSpecification"] = specs
    product: dict[str, Any] = {"@type": "Product", "sku": lst.sku}
    if lst.barcode:
        product["gtin13"] = lst.barcode
    product.update({
        "name": lst.name,
        "brand": {"@type": "Brand", "name": lst.brand},
        "category": lst.category,
        "size": lst.size,
        "image": f"https://cdn.example.net/greengrocer/{lst.sku}.jpg",
        "offers": offer,
    })
    return product


def _script(data: Any) -> str:
    # "</" inside a script element would end it early
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def item_list(view: CatalogueView) -> dict[str, Any]:
    return {
        "@context": SCHEMA,
        "@type": "ItemList",
        "name": view.store.name,
        "numberOfItems": len(view.items),
        "pageInfo": {"page": view.page, "pages": view.pages, "total": view.total},
        "itemListElement": [
            {"@type": "ListItem", "position": view.start + i + 1, "item": _product(item)}
            for i, item in enumerate(view.items)
        ],
    }


def render_catalogue(view: CatalogueView, broken: bool = False) -> str:
    path = catalogue_path(view.chain, view.store.code)
    data = _script(item_list(view))
    if broken:  # a malformed page: the JSON is cut off (the HTML around it is fine)
        data = data[: len(data) // 2]
    head = f'<script type="application/ld+json">{data}</script>'
    if view.page < view.pages:
        head = f'<link rel="next" href="{path}?p={view.page + 1}">' + head
    cards = "".join(
        f'<li class="card"><span class="card-name">{escape(i.listing.name)}</span> '
        f'<span class="card-price">{money(i.price.price)}</span>'
        + (f' <s class="card-was">was {money(i.price.was_price)}</s>' if i.price.was_price is not None else "")
        + (f' <em class="card-promo">{escape(i.price.promo_text)}</em>' if i.price.promo_text else "")
        + "</li>\n"
        for i in view.items
    )
    pages = " ".join(f'<a href="{path}?p={n}">{n}</a>' for n in range(1, view.pages + 1))
    body = (
        f'<h1 class="store-title">{escape(view.store.name)}</h1>\n<ul class="cards">\n{cards}</ul>\n'
        f'<nav class="pages">{pages}</nav>\n'
    )
    return page(view.chain, view.store.name, body, head=head, trap=f"/{view.chain.code}{TRAP}")


def render_closed(chain: Chain, store: Store) -> str:
    data = {"@context": SCHEMA, "@type": "ItemList", "name": store.name, "numberOfItems": 0,
            "pageInfo": {"page": 1, "pages": 0, "total": 0}, "itemListElement": []}
    body = f'<h1 class="store-title">{escape(store.name)}</h1><div class="store-closed">This store has closed.</div>'
    head = f'<script type="application/ld+json">{_script(data)}</script>'
    return page(chain, store.name, body, head=head, trap=f"/{chain.code}{TRAP}")


def render_malformed(view: CatalogueView) -> str:
    return render_catalogue(view, broken=True)
