"""Plain lxml parsers of the three demo layouts, written from docs/demo-site.md, for tests only.

They turn a page into rows comparable with the scenario's truth (`expected_rows`).
The pipeline's real scraper lives in pricegroups.scrape; these are deliberately simple.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import lxml.html

from pricegroups.demo.scenario import Scenario

MONEY = re.compile(r"\$(\d+\.\d{2})")


def money(text: str | None) -> Decimal | None:
    match = MONEY.search(text or "")
    return Decimal(match.group(1)) if match else None


def unit_text(text: str) -> tuple[Decimal | None, str | None]:
    """"$0.18 / 100mL" or "$1.75 per 1L" or "$0.50 each" -> (amount, measure)."""
    text = text.strip()
    if not text:
        return None, None
    amount = money(text)
    if text.endswith("each"):
        return amount, "each"
    return amount, re.split(r" / | per ", text)[-1]


def row(sku, barcode, brand, name, size, category, price, was, promo, special, unit_price, measure) -> dict:
    return {"sku": sku, "barcode": barcode or None, "brand": brand, "name": name, "size": size,
            "category": category, "price": price, "was_price": was, "promo_text": promo or None,
            "on_special": special, "unit_price": unit_price, "unit_measure": measure}


def expected_rows(scenario: Scenario, chain: str, store: str, day: int) -> list[dict[str, Any]]:
    """The truth in the same shape as the parsers' rows, in catalogue order."""
    return [
        row(i.listing.sku, i.listing.barcode, i.listing.brand, i.listing.name, i.listing.size, i.listing.category,
            i.price.price, i.price.was_price, i.price.promo_text, i.price.on_special, i.price.unit_price,
            i.price.unit_measure)
        for i in scenario.items(chain, store, day)
    ]


def _text(el, xpath: str) -> str:
    return el.xpath(f"normalize-space({xpath})")


def parse_grid(html: bytes | str) -> tuple[list[dict], dict[str, int]]:
    doc = lxml.html.fromstring(html)
    grid = doc.xpath('//div[@class="product-grid"]')[0]
    meta = {k: int(grid.get(f"data-{k}")) for k in ("page", "pages", "count", "total")}
    rows = []
    for tile in grid.xpath('.//article[@class="product-tile"]'):
        unit_price, measure = unit_text(_text(tile, './/span[@class="unit-price"]'))
        rows.append(row(
            tile.get("data-sku"), tile.get("data-barcode"), _text(tile, './/span[@class="brand"]'),
            _text(tile, './/h3[@class="name"]'), _text(tile, './/span[@class="size"]'), tile.get("data-category"),
            money(_text(tile, './/span[@class="price"]')), money(_text(tile, './/span[@class="was"]')),
            _text(tile, './/span[@class="promo"]'), bool(tile.xpath('.//span[@class="badge"]')),
            unit_price, measure))
    return rows, meta


def parse_table(html: bytes | str) -> tuple[list[dict], str | None]:
    """Rows of one page and the href of its rel=next link (None on the last page)."""
    doc = lxml.html.fromstring(html)
    rows = []
    for tr in doc.xpath('//table[@id="product-table"]/tbody/tr'):
        unit_price, measure = unit_text(_text(tr, './td[@class="unit"]'))
        rows.append(row(
            _text(tr, './td[@class="item-no"]'), _text(tr, './td[@class="ean"]'),
            _text(tr, './/strong[@class="brand"]'), _text(tr, './/span[@class="title"]'),
            _text(tr, './td[@class="size"]'), _text(tr, './td[@class="cat"]'),
            money(_text(tr, './/span[@class="now"]')), money(_text(tr, './/del[@class="was"]')),
            _text(tr, './td[@class="offer"]'), "special" in tr.get("class").split(), unit_price, measure))
    nxt = doc.xpath('//a[@rel="next"]/@href')
    return rows, nxt[0] if nxt else None


def parse_jsonld(html: bytes | str) -> tuple[list[dict], dict[str, Any], str | None]:
    """Rows of one page, the ItemList's pageInfo (with numberOfItems as "count") and the rel=next href."""
    doc = lxml.html.fromstring(html)
    data = json.loads(doc.xpath('//script[@type="application/ld+json"]/text()')[0])
    rows = []
    for element in data["itemListElement"]:
        p = element["item"]
        offer = p["offers"]
        was = unit_price = measure = None
        for spec in offer.get("priceSpecification", []):
            if spec.get("priceType", "").endswith("StrikethroughPrice"):
                was = Decimal(spec["price"])
            else:
                unit_price, measure = Decimal(spec["price"]), spec["unitText"]
        promo = offer.get("description")
        rows.append(row(p["sku"], p.get("gtin13"), p["brand"]["name"], p["name"], p["size"], p["category"],
                        Decimal(offer["price"]), was, promo, promo is not None, unit_price, measure))
    nxt = doc.xpath('//head/link[@rel="next"]/@href')
    info = dict(data["pageInfo"], count=data["numberOfItems"])
    return rows, info, nxt[0] if nxt else None
