"""Layout 2 (valueway): an HTML table per page, the next page reached by a rel=next link (?offset=N)."""

from __future__ import annotations

from functools import lru_cache

from pricegroups.demo.layouts.common import CatalogueView, cut_off, escape, money, page
from pricegroups.demo.model import Chain, Listing, Store

LOCATOR = "/store-locator"
CATALOGUE = r"/catalogue/(?P<store>[A-Za-z0-9]+)"
TRAP = "/cart"


def catalogue_path(chain: Chain, store: str) -> str:
    return f"/{chain.code}/catalogue/{store}"


def page_start(query: dict[str, str], page_size: int) -> tuple[int, int]:
    """(page number, 0-based start) from ?offset=N."""
    offset = int(query.get("offset", "0"))
    if offset < 0:
        raise ValueError("offset must be >= 0")
    return offset // page_size + 1, offset


def render_locator(chain: Chain, stores: list[Store]) -> str:
    rows = "".join(
        f'<tr class="store-row" data-store="{escape(s.code)}"><td class="store-code">{escape(s.code)}</td>'
        f'<td class="store-name">{escape(s.name)}</td><td class="store-address">{escape(s.address)}</td>'
        f'<td><a class="store-link" href="{catalogue_path(chain, s.code)}">Shop this store</a></td></tr>\n'
        for s in stores
    )
    body = (
        '<h1>Store locator</h1>\n<table class="store-table"><thead><tr><th>Store</th><th>Name</th>'
        f"<th>Address</th><th></th></tr></thead><tbody>\n{rows}</tbody></table>"
    )
    return page(chain, "Store locator", body, trap=f"/{chain.code}{TRAP}")


@lru_cache(maxsize=8192)
def _row_head(lst: Listing) -> str:
    """The cells that do not change with the day (escaped once)."""
    return (
        f'<td class="item-no">{escape(lst.sku)}</td><td class="ean">{lst.barcode or ""}</td>'
        f'<td class="desc"><strong class="brand">{escape(lst.brand)}</strong>'
        f' <span class="title">{escape(lst.name)}</span></td>'
        f'<td class="size">{escape(lst.size)}</td><td class="cat">{escape(lst.category)}</td>'
    )


def render_catalogue(view: CatalogueView) -> str:
    rows = []
    for item in view.items:
        lst, p = item.listing, item.price
        price = f'<span class="now">{money(p.price)}</span>'
        if p.was_price is not None:
            price += f' <del class="was">{money(p.was_price)}</del>'
        if p.unit_price is None:
            unit = ""
        elif p.unit_measure == "each":
            unit = f"{money(p.unit_price)} each"
        else:
            unit = f"{money(p.unit_price)} per {p.unit_measure}"
        rows.append(
            f'<tr class="product-row{" special" if p.on_special else ""}">{_row_head(lst)}'
            f'<td class="price">{price}</td><td class="unit">{unit}</td>'
            f'<td class="offer">{escape(p.promo_text or "")}</td></tr>\n'
        )
    end = view.start + len(view.items)
    if end < view.total:
        path = catalogue_path(view.chain, view.store.code)
        pager = f'<a class="next" rel="next" href="{path}?offset={end}">Next &rsaquo;</a>'
    else:
        pager = '<span class="next disabled">Next &rsaquo;</span>'
    shown = f"{view.start + 1}-{end}" if view.items else "0"
    body = (
        f'<h1 class="store-title">{escape(view.store.name)}</h1>\n'
        f'<p class="result-count">Showing {shown} of {view.total} products</p>\n'
        f'<table id="product-table" data-count="{len(view.items)}"><thead><tr><th>Item</th><th>Barcode</th>'
        "<th>Description</th><th>Size</th><th>Category</th><th>Price</th><th>Unit price</th><th>Offer</th>"
        f'</tr></thead><tbody>\n{"".join(rows)}</tbody></table>\n<div class="pager">{pager}</div>\n'
    )
    return page(view.chain, view.store.name, body, trap=f"/{view.chain.code}{TRAP}")


def render_closed(chain: Chain, store: Store) -> str:
    body = (
        f'<h1 class="store-title">{escape(store.name)}</h1>'
        '<div class="store-closed">This store is permanently closed.</div>'
        '<p class="result-count">Showing 0 of 0 products</p>'
        '<table id="product-table" data-count="0"><tbody></tbody></table>'
    )
    return page(chain, store.name, body, trap=f"/{chain.code}{TRAP}")


def render_malformed(view: CatalogueView) -> str:
    """The page cut off mid-tag: fewer tiles than data-count says, no pagination."""
    return cut_off(render_catalogue(view))
