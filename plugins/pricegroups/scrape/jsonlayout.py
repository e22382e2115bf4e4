"""The `json` layout: items, markers, pagination and stores read by JMESPath from a JSON document.

The document is the response body (an API) or the text of one script element
of an HTML page (app state embedded as JSON, e.g. `__NEXT_DATA__`). Pure
functions of (document, page URL, profile), like the rest of the parse
engine; parse.py turns bytes into the document and validates the raw items.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import urljoin

from lxml import etree

from pricegroups.errors import ParseError
from pricegroups.scrape.fields import clean_text
from pricegroups.scrape.jmes import search, truthy
from pricegroups.scrape.profile import JsonLocator, JsonRules, Pagination, SiteProfile
from pricegroups.scrape.urls import query_value, with_query

KEYS_SHOWN = 12  # top-level keys listed when an items path matched nothing


def load_document(body: bytes, url: str, script: etree.XPath | None,
                  html: Callable[[bytes, str], etree._Element], key: str) -> Any:
    """The page's JSON: the body itself, or the text of the element `script` (profile `key`) selects."""
    if script is None:
        text: str | bytes = body
        where = "the response"
    else:
        found = script(html(body, url))
        node = found[0] if isinstance(found, list) and found else found
        if isinstance(node, etree._Element):
            text = node.text or ""
        elif isinstance(node, str):
            text = node
        else:
            raise ParseError(f"{url}: no element matches {key} {script.path!r} (not the page expected?)")
        where = f"the element of {key}"
    if not text or not text.strip():
        raise ParseError(f"{url}: {where} is empty; expected JSON")
    try:
        return json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        start = text[:60] if isinstance(text, str) else text[:60].decode("utf-8", "replace")
        raise ParseError(f"{url}: {where} is not JSON ({exc}); it starts {start!r}") from None


def raw_items(document: Any, url: str, profile: SiteProfile) -> list[dict[str, Any]]:
    """One dict of raw field values per element of the items list."""
    rules = profile.json
    found = search(rules.items, document)
    if found is None:
        return []
    if not isinstance(found, list):
        raise ParseError(f"{url}: items.path {profile.source['items']['path']!r} gives a"
                         f" {type(found).__name__}, not a list of items")
    fields = [(rule.name, rule.expr) for rule in profile.fields]
    return [{name: search(expr, node) for name, expr in fields} for node in found]


def declared_count(document: Any, rules: JsonRules) -> Any:
    return None if rules.count is None else search(rules.count, document)


def is_closed(document: Any, rules: JsonRules) -> bool:
    return rules.closed_marker is not None and truthy(search(rules.closed_marker, document))


def check_marker(document: Any, url: str, rules: JsonRules) -> None:
    if rules.page_marker is not None and not truthy(search(rules.page_marker, document)):
        raise ParseError(f"{url}: not a catalogue page (page marker missing)")


def first_url(url: str, pagination: Pagination) -> str:
    """The first page's URL: with the page size asked for, when the profile sets one."""
    if pagination.limit_param is None:
        return url
    return with_query(url, **{pagination.limit_param: pagination.limit})


def _whole(value: Any, url: str, what: str) -> int:
    try:
        number = Decimal(str(value))
        if number != number.to_integral_value():
            raise ArithmeticError
        return int(number)
    except ArithmeticError:
        raise ParseError(f"{url}: {what} {value!r} is not a whole number") from None


def next_url(document: Any, url: str, pagination: Pagination, found: int) -> str | None:
    """The next page's URL, or None at the end: every kind ends on a page without items."""
    kind = pagination.kind
    if kind == "none" or not found:
        return None
    if kind == "next_link":
        href = clean_text(search(pagination.expr, document))
        return urljoin(url, href) if href else None
    if kind == "cursor":
        cursor = search(pagination.expr, document)
        cursor = None if cursor is None or cursor is False else clean_text(cursor)
        return with_query(url, **{pagination.param: cursor}) if cursor else None
    if kind == "page_param":
        if pagination.expr is not None and not truthy(search(pagination.expr, document)):
            return None
        current = query_value(url, pagination.param)
        number = pagination.start if current is None else _whole(current, url, f"page parameter {pagination.param}")
        return with_query(url, **{pagination.param: number + 1})
    # offset: the next page starts after this page's items; the total, when read, ends the walk
    current = query_value(url, pagination.param)
    offset = 0 if current is None else _whole(current, url, f"offset parameter {pagination.param}")
    following = offset + found
    if pagination.total is not None:
        total = search(pagination.total, document)
        if total is None:
            raise ParseError(f"{url}: pagination total_path matched nothing (the total is needed to stop)")
        if following >= _whole(total, url, "the total"):
            return None
    return with_query(url, **{pagination.param: following})


def located_stores(document: Any, url: str, rule: JsonLocator) -> list[tuple[str, str | None, str | None,
                                                                            str | None, bool]]:
    """(code, name, address, absolute catalogue URL, closed) of every store on one locator page."""
    found = search(rule.stores, document)
    if found is None:
        return []
    if not isinstance(found, list):
        raise ParseError(f"{url}: locator.stores gives a {type(found).__name__}, not a list of stores")
    stores = []
    for node in found:
        code = clean_text(search(rule.code, node))
        if not code:
            raise ParseError(f"{url}: a store entry has no code (locator.code)")
        link = clean_text(search(rule.catalogue, node)) if rule.catalogue is not None else None
        stores.append((
            code,
            clean_text(search(rule.name, node)) if rule.name is not None else None,
            clean_text(search(rule.address, node)) if rule.address is not None else None,
            urljoin(url, link) if link else None,
            rule.closed is not None and truthy(search(rule.closed, node)),
        ))
    return stores


def explain_empty(document: Any, profile: SiteProfile) -> str:
    """Why a JSON page gave no items, in words a profile author can act on."""
    path = profile.source.get("items", {}).get("path")
    found = search(profile.json.items, document)
    if isinstance(found, list):
        return f"items.path {path!r} matched an empty list"
    if isinstance(document, dict):
        keys = list(document)
        shown = ", ".join(map(str, keys[:KEYS_SHOWN])) + (f", ... ({len(keys)} keys)" if len(keys) > KEYS_SHOWN else "")
        return f"the response was JSON but items.path {path!r} matched nothing; its top-level keys: {shown or '(none)'}"
    kind = "a list" if isinstance(document, list) else type(document).__name__
    return f"the response was JSON ({kind} at the top level) but items.path {path!r} matched nothing"
