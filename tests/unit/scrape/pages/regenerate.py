"""Regenerate the saved demo pages and their expected items (run by hand, then review the diff).

    .venv/bin/python tests/unit/scrape/pages/regenerate.py

The pages are what the demo site's layouts render for the default scenario;
the expected items are the scenario's ground truth written in the scraper's
terms. The unit tests read only the saved files, so they stay pure.
"""

from __future__ import annotations

import json
from pathlib import Path

from pricegroups.demo.generate import default_scenario
from pricegroups.demo.layouts import grid, jsonld, table
from pricegroups.demo.layouts.common import CatalogueView

HERE = Path(__file__).parent
LAYOUTS = {"freshmart": ("grid", grid), "valueway": ("table", table), "greengrocer": ("jsonld", jsonld)}
DAY = 3


def expected(item) -> dict:
    lst, p = item.listing, item.price
    return {
        "sku": lst.sku, "name": lst.name, "brand": lst.brand, "size_text": lst.size, "category": lst.category,
        "barcode": lst.barcode.zfill(14) if lst.barcode else None, "price": str(p.price),
        "was_price": None if p.was_price is None else str(p.was_price), "on_special": p.on_special,
        "promo_text": p.promo_text, "multibuy_qty": p.multibuy_qty,
        "multibuy_price": None if p.multibuy_price is None else str(p.multibuy_price),
        "unit_price": None if p.unit_price is None else str(p.unit_price),
        "unit_measure": None if p.unit_measure is None else p.unit_measure.lower(),
    }


def main() -> None:
    scenario = default_scenario()
    for code, (name, module) in LAYOUTS.items():
        chain = scenario.chain(code)
        store = chain.stores[0]
        items = scenario.items(code, store.code, DAY)
        size = chain.page_size
        pages = -(-len(items) // size)
        (HERE / f"{name}_locator.html").write_text(module.render_locator(chain, list(chain.stores[:5])))
        for number in (1, pages):
            view = CatalogueView(chain, store, items[(number - 1) * size: number * size], number, pages,
                                 len(items), (number - 1) * size)
            (HERE / f"{name}_page{'1' if number == 1 else '_last'}.html").write_text(module.render_catalogue(view))
            (HERE / f"{name}_page{'1' if number == 1 else '_last'}.json").write_text(
                json.dumps([expected(i) for i in view.items], indent=0))
        view = CatalogueView(chain, store, items[:size], 1, pages, len(items), 0)
        (HERE / f"{name}_malformed.html").write_text(module.render_malformed(view))
        (HERE / f"{name}_closed.html").write_text(module.render_closed(chain, store))
        (HERE / f"{name}_meta.json").write_text(json.dumps(
            {"store": store.code, "pages": pages, "page_size": size, "total": len(items)}))


if __name__ == "__main__":
    main()
