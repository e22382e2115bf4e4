"""App layout "nextdata" (greengrocer): HTML pages whose data is app state embedded as JSON.

    GET /{chain}/app/stores                        every store in __NEXT_DATA__, closed ones with isClosed
    GET /{chain}/app/shop?cursor=...  Cookie: gg_store=GG001  (or ?store=GG001)

As a single-page app built with Next.js serves them: the page's state is in
`<script id="__NEXT_DATA__" type="application/json">`; prices are JSON
numbers; the next page is reached with the opaque `nextCursor` of the state.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pricegroups.demo.layouts.common import CatalogueView, escape, money, page
from pricegroups.demo.model import Chain, Item, Store

LOCATOR = "/app/stores"
CATALOGUE = "/app/shop"
TRAP = "/account"
STORE_COOKIE = "gg_store"
STORE_PARAM = "store"
CURSOR_PARAM = "cursor"
SCRIPT_ID = "__NEXT_DATA__"
CONTENT_TYPE = "text/html; charset=utf-8"


def store_of(cookies: dict[str, str], query: dict[str, str]) -> str | None:
    """The store a request asks for: its gg_store cookie, else ?store= (None: neither)."""
    return cookies.get(STORE_COOKIE) or query.get(STORE_PARAM) or None


def cursor_for(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def window(query: dict[str, str], page_size: int) -> tuple[int, int, int]:
    """(1-based page number, 0-based start, page size) from ?cursor= (none: the first page)."""
    cursor = query.get(CURSOR_PARAM)
    if not cursor:
        return 1, 0, page_size
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        offset = int(number)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("bad cursor") from None
    if kind != "offset" or offset < 0:
        raise ValueError("bad cursor")
    return offset // page_size + 1, offset, page_size


def _number(value: Any) -> float | None:
    """A Decimal as a JSON number (the site's app sends numbers, e.g. 3.5 for $3.50)."""
    return None if value is None else float(value)


def _product(item: Item) -> dict[str, Any]:
    lst, p = item.listing, item.price
    return {
        "sku": lst.sku, "gtin": lst.barcode, "brandName": lst.brand, "title": lst.name, "packSize": lst.size,
        "department": lst.category,
        "pricing": {"now": _number(p.price), "was": _number(p.was_price),
                    "unit": None if p.unit_price is None else {"amount": _number(p.unit_price), "per": p.unit_measure},
                    "offer": p.promo_text, "special": p.on_special},
    }


def _script(state: dict[str, Any]) -> str:
    data = {"props": {"pageProps": state}, "page": "/shop", "buildId": "demo"}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return f'<script id="{SCRIPT_ID}" type="application/json">{text}</script>'


def render_locator(chain: Chain, stores: list[tuple[Store, bool]]) -> str:
    """Every store, closed ones included and marked (the app hides them; its state does not)."""
    state = {"stores": [{"storeId": s.code, "displayName": s.name, "address": s.address, "isClosed": not is_open}
                        for s, is_open in stores]}
    items = "".join(f"<li>{escape(s.name)}</li>" for s, is_open in stores if is_open)
    return page(chain, "Stores", f'<div id="__next"><h1>Choose your store</h1><ul>{items}</ul></div>',
                head=_script(state), trap=f"/{chain.code}{TRAP}")


def state(view: CatalogueView) -> dict[str, Any]:
    following = view.start + len(view.items)
    return {
        "store": {"storeId": view.store.code, "displayName": view.store.name, "isClosed": False},
        "catalogue": {"products": [_product(i) for i in view.items], "count": len(view.items),
                      "total": view.total, "nextCursor": cursor_for(following) if following < view.total else None},
    }


def render_catalogue(view: CatalogueView, broken: bool = False) -> str:
    head = _script(state(view))
    if broken:  # the state cut off half-way (the HTML around it is fine)
        cut = len(head) // 2
        head = head[:cut] + "</script>"
    cards = "".join(f'<li class="card">{escape(i.listing.name)} {money(i.price.price)}</li>' for i in view.items)
    body = f'<div id="__next"><h1>{escape(view.store.name)}</h1><ul class="cards">{cards}</ul></div>'
    return page(view.chain, view.store.name, body, head=head, trap=f"/{view.chain.code}{TRAP}")


def render_closed(chain: Chain, store: Store) -> str:
    data = {"store": {"storeId": store.code, "displayName": store.name, "isClosed": True},
            "catalogue": {"products": [], "count": 0, "total": 0, "nextCursor": None}}
    return page(chain, store.name, '<div id="__next"><p>This store has closed.</p></div>', head=_script(data),
                trap=f"/{chain.code}{TRAP}")


def render_malformed(view: CatalogueView) -> str:
    return render_catalogue(view, broken=True)
