"""Layout 1 (freshmart): a product grid, data in elements and attributes, paginated by ?page=N."""

from __future__ import annotations

from functools import lru_cache

from pricegroups.demo.layouts.common import CatalogueView, cut_off, escape, money, page
from pricegroups.demo.model import Chain, Listing, Store

LOCATOR = "/stores"
CATALOGUE = r"/store/(?P<store>[A-Za-z0-9]+)/products"
TRAP = "/checkout"


def catalogue_path(chain: Chain, store: str) -> str:
    return f"/{chain.code}/store/{store}/products"


def page_start(query: dict[str, str], page_size: int) -> tuple[int, int]:
    """(page number, 0-based start) from ?page=N."""
    number = int(query.get("page", "1"))
    if number < 1:
        raise ValueError("page must be >= 1")
    return number, (number - 1) * page_size


def render_locator(chain: Chain, stores: list[Store]) -> str:
    rows = "".join(
        f'<li class="store" data-store-code="{escape(s.code)}">'
        f'<a class="store-link" href="{catalogue_path(chain, s.code)}">{escape(s.name)}</a>'
        f'<address class="store-address">{escape(s.address)}</address></li>\n'
        for s in stores
    )
    body = f'<h1>Find a store</h1>\n<ul class="store-list">\n{rows}</ul>'
    return page(chain, "Stores", body, trap=f"/{chain.code}{TRAP}")


@lru_cache(maxsize=8192)
def _tile_head(code: str, lst: Listing) -> str:
    """The part of a tile that does not change with the day (escaped once)."""
    barcode = f' data-barcode="{lst.barcode}"' if lst.barcode else ""
    return (
        f'<article class="product-tile" data-sku="{escape(lst.sku)}"{barcode}'
        f' data-category="{escape(lst.category)}">'
        f'<img src="https://cdn.example.net/{code}/{escape(lst.sku)}.jpg" alt="">'
        f'<span class="brand">{escape(lst.brand)}</span>'
        f'<h3 class="name">{escape(lst.name)}</h3>'
        f'<span class="size">{escape(lst.size)}</span>'
    )


def render_catalogue(view: CatalogueView) -> str:
    code = escape(view.chain.code)
    tiles = []
    for item in view.items:
        p = item.price
        pricing = [f'<span class="price">{money(p.price)}</span>']
        if p.was_price is not None:
            pricing.append(f'<span class="was">was {money(p.was_price)}</span>')
        if p.promo_text:
            pricing.append(f'<span class="promo">{escape(p.promo_text)}</span>')
        if p.on_special:
            pricing.append('<span class="badge">Special</span>')
        if p.unit_price is not None:
            per = "each" if p.unit_measure == "each" else f"/ {p.unit_measure}"
            pricing.append(f'<span class="unit-price">{money(p.unit_price)} {per}</span>')
        tiles.append(f'{_tile_head(code, item.listing)}<div class="pricing">{"".join(pricing)}</div></article>\n')
    links = " ".join(f'<a class="page" href="?page={n}">{n}</a>' for n in range(1, view.pages + 1))
    if view.page < view.pages:
        links += f' <a class="next" rel="next" href="?page={view.page + 1}">Next</a>'
    body = (
        f'<h1 class="store-title">{escape(view.store.name)}</h1>\n'
        f'<div class="product-grid" data-page="{view.page}" data-pages="{view.pages}"'
        f' data-count="{len(view.items)}" data-total="{view.total}">\n{"".join(tiles)}</div>\n'
        f'<nav class="pagination">{links}</nav>\n'
    )
    return page(view.chain, view.store.name, body, trap=f"/{view.chain.code}{TRAP}")


def render_closed(chain: Chain, store: Store) -> str:
    body = (
        f'<h1 class="store-title">{escape(store.name)}</h1>'
        '<div class="store-closed">This store has closed. Please choose another store.</div>'
        '<div class="product-grid" data-page="1" data-pages="0" data-count="0" data-total="0"></div>'
    )
    return page(chain, store.name, body, trap=f"/{chain.code}{TRAP}")


def render_malformed(view: CatalogueView) -> str:
    """The page cut off mid-tag: fewer tiles than data-count says, no pagination."""
    return cut_off(render_catalogue(view))
