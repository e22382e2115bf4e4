"""App layout "api" (valueway): a JSON API, the store chosen by a request header, offset/limit pages.

    GET /{chain}/api/v1/stores?offset=0&limit=25    every store, closed ones with "status": "closed"
    GET /{chain}/api/v1/products?offset=0&limit=80  X-Store-Id: VW001  (or ?store=VW001)

Money is in whole cents. A page holds `items`, `count`, `total`, `offset`,
`limit` and `links.next` (a relative URL, null on the last page), so every
JSON pagination kind can be tried on it: offset with the total, `?page=N`
(also accepted) until an empty page, or the next link.
"""

from __future__ import annotations

import json
from typing import Any

from pricegroups.demo.layouts.common import CatalogueView
from pricegroups.demo.model import Chain, Item, Store

LOCATOR = "/api/v1/stores"
CATALOGUE = "/api/v1/products"
STORE_HEADER = "X-Store-Id"
STORE_PARAM = "store"
KEY_HEADER = "X-Api-Key"  # checked only when the site is started with an API key
MAX_LIMIT = 200
LOCATOR_LIMIT = 25
CONTENT_TYPE = "application/json"


def store_of(headers: dict[str, str], query: dict[str, str]) -> str | None:
    """The store a request asks for: its X-Store-Id header, else ?store= (None: neither)."""
    return headers.get(STORE_HEADER.lower()) or query.get(STORE_PARAM) or None


def window(query: dict[str, str], page_size: int) -> tuple[int, int, int]:
    """(1-based page number, 0-based start, limit) from ?offset=&limit= or ?page=&limit=."""
    limit = int(query.get("limit", page_size))
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")
    if "page" in query:
        number = int(query["page"])
        if number < 1:
            raise ValueError("page must be >= 1")
        return number, (number - 1) * limit, limit
    offset = int(query.get("offset", "0"))
    if offset < 0:
        raise ValueError("offset must be >= 0")
    return offset // limit + 1, offset, limit


def _cents(value: Any) -> int | None:
    return None if value is None else int((value * 100).to_integral_value())


def _item(item: Item) -> dict[str, Any]:
    lst, p = item.listing, item.price
    unit = None if p.unit_price is None else {"cents": _cents(p.unit_price), "per": p.unit_measure}
    return {
        "id": lst.sku, "ean": lst.barcode, "brand": lst.brand, "name": lst.name, "size": lst.size,
        "category": lst.category,
        "price": {"cents": _cents(p.price), "wasCents": _cents(p.was_price), "unit": unit,
                  "promotion": p.promo_text, "onSpecial": p.on_special},
    }


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def render_locator(stores: list[tuple[Store, bool]], offset: int, limit: int) -> str:
    """One page of the store list: (store, open) pairs, closed stores included and marked."""
    shown = stores[offset:offset + limit]
    following = offset + len(shown)
    return _dump({
        "stores": [{"id": s.code, "name": s.name, "address": s.address, "status": "open" if is_open else "closed"}
                   for s, is_open in shown],
        "total": len(stores), "offset": offset, "limit": limit,
        "links": {"next": f"?offset={following}&limit={limit}" if following < len(stores) else None},
    })


def page_data(view: CatalogueView, limit: int) -> dict[str, Any]:
    following = view.start + len(view.items)
    return {
        "store": {"id": view.store.code, "name": view.store.name, "status": "open"},
        "items": [_item(i) for i in view.items],
        "count": len(view.items), "total": view.total, "offset": view.start, "limit": limit,
        "links": {"next": f"?offset={following}&limit={limit}" if following < view.total else None},
    }


def render_catalogue(view: CatalogueView) -> str:
    return _dump(page_data(view, view.size or view.chain.page_size))


def render_closed(chain: Chain, store: Store) -> str:
    return _dump({"store": {"id": store.code, "name": store.name, "status": "closed"}, "items": [], "count": 0,
                  "total": 0, "offset": 0, "limit": chain.page_size, "links": {"next": None}})


def render_malformed(view: CatalogueView) -> str:
    """The body cut off half-way, as a proxy dropping the connection would leave it."""
    text = render_catalogue(view)
    return text[: len(text) // 2]


def error(message: str) -> str:
    return _dump({"error": message})
