"""A minimal crawler of the demo layouts for tests: fetch every catalogue page of a store."""

from __future__ import annotations

from urllib.parse import urljoin

import requests

from tests.unit.demo.parsers import parse_grid, parse_jsonld, parse_table

PATHS = {
    "grid": "/{chain}/store/{store}/products",
    "table": "/{chain}/catalogue/{store}",
    "jsonld": "/{chain}/shop/{store}",
}


def catalogue_url(base_url: str, layout: str, chain: str, store: str) -> str:
    return base_url + PATHS[layout].format(chain=chain, store=store)


def fetch_catalogue(session: requests.Session, base_url: str, layout: str, chain: str, store: str) -> tuple[list, int]:
    """(rows of every page in order, pages fetched); raises on any non-200 answer."""
    url = catalogue_url(base_url, layout, chain, store)
    rows, pages = [], 0
    if layout == "grid":
        number, last = 1, 1
        while number <= last:
            response = session.get(url, params={"page": number}, timeout=10)
            response.raise_for_status()
            page_rows, meta = parse_grid(response.content)
            assert meta["count"] == len(page_rows) and meta["page"] == number
            rows += page_rows
            last, number, pages = meta["pages"], number + 1, pages + 1
        return rows, pages
    while url:
        response = session.get(url, timeout=10)
        response.raise_for_status()
        if layout == "table":
            page_rows, nxt = parse_table(response.content)
        else:
            page_rows, info, nxt = parse_jsonld(response.content)
            assert info["count"] == len(page_rows)
        rows += page_rows
        pages += 1
        url = urljoin(url, nxt) if nxt else None
    return rows, pages
