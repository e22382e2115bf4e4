"""The parse engine: a pure function of (page bytes, page URL, site profile).

No I/O and no clock here, so a page parses the same from the network and
from a snapshot, and parsers are tested on saved pages. A page the profile
cannot make sense of raises ParseError (the store's scrape fails); a single
item that fails validation is dropped with a reason and reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qsl, urljoin, urlsplit

from lxml import etree

from pricegroups.errors import ParseError, TooManyDropped
from pricegroups.scrape import jsonlayout
from pricegroups.scrape.fields import Dropped, ScrapedItem, build_item, clean_text
from pricegroups.scrape.profile import ROW_SEPARATOR, JsonLocator, PathStep, SiteProfile, compile_profile
from pricegroups.scrape.urls import with_query

_HTML_PARSER = etree.HTMLParser(recover=True, remove_comments=True)
# Without a declared charset libxml2 assumes Latin-1; the web (and the snapshots) are UTF-8 by default.
_UTF8_HTML_PARSER = etree.HTMLParser(recover=True, remove_comments=True, encoding="utf-8")
_JSONLD = etree.XPath("//script[@type='application/ld+json']/text()", smart_strings=False)


@dataclass(frozen=True)
class PageResult:
    """What one catalogue page holds: valid items, dropped ones (with reasons), the next page."""

    url: str
    items: tuple[ScrapedItem, ...]
    dropped: tuple[Dropped, ...]
    next_url: str | None
    closed: bool = False
    note: str | None = None  # why a page gave no items, when the layout can tell (json)


@dataclass(frozen=True)
class LocatedStore:
    """A store as the chain's store locator lists it."""

    code: str
    name: str | None
    address: str | None
    catalogue_url: str | None
    closed: bool = False  # listed, but as closed (a json locator's `closed` rule)


@dataclass(frozen=True)
class LocatorPage:
    """One page of a store locator: its stores and the next page's URL (json locators paginate)."""

    stores: tuple[LocatedStore, ...]
    next_url: str | None


def _document(body: bytes, url: str) -> etree._Element:
    if not body or not body.strip():
        raise ParseError(f"{url}: empty page")
    declared = b"charset" in body[:4096].lower()
    try:
        root = etree.fromstring(body, _HTML_PARSER if declared else _UTF8_HTML_PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ParseError(f"{url}: not parseable as HTML: {exc}") from exc
    if root is None:
        raise ParseError(f"{url}: not parseable as HTML")
    return root


def _value(result: Any) -> Any:
    """An XPath result as one value: first node's text, first string, or a boolean/number."""
    if isinstance(result, list):
        if not result:
            return None
        first = result[0]
        if isinstance(first, str):
            return first
        if isinstance(first, etree._Element):
            return "".join(first.itertext())
        return first
    if isinstance(result, float) and result.is_integer():
        return int(result)
    return result


def _validate(raw_items: list[dict[str, Any]], profile: SiteProfile, url: str,
              ) -> tuple[list[ScrapedItem], list[Dropped]]:
    items: list[ScrapedItem] = []
    dropped: list[Dropped] = []
    fix = getattr(profile.hook, "fix_item", None)
    parsers = {rule.name: rule.parser for rule in profile.fields}
    calls = {rule.name: rule.call for rule in profile.fields}
    for raw in raw_items:
        values: dict[str, Any] = {}
        try:
            if fix is not None:
                raw = fix(raw, url)
                if raw is None:
                    continue  # the hook says this node is not a product (e.g. an ad tile)
            for name, value in raw.items():
                kind = parsers.get(name, "text")
                if kind == "text":  # the common case, inlined: most fields are plain text
                    if isinstance(value, str):
                        values[name] = " ".join(value.split()) or None
                    else:
                        values[name] = clean_text(value)
                    continue
                parser = calls[name]
                if name == "barcode":
                    # a bad barcode costs the item its barcode, not its price
                    try:
                        values.update(parser(value, name))
                    except ValueError as exc:
                        reason = f"barcode dropped: {exc}"
                        dropped.append(Dropped(_sku(raw), reason, _jsonable(raw), kept=True))
                    continue
                values.update(parser(value, name))
            items.append(build_item(values, profile.price_ceiling))
        except ValueError as exc:
            dropped.append(Dropped(_sku(raw), str(exc), _jsonable(raw)))
    return items, dropped


def _sku(raw: Mapping[str, Any]) -> str | None:
    return clean_text(raw.get("sku"))


def _jsonable(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, bool, type(None))) else str(v)) for k, v in raw.items()}


def _html_raw_items(root: etree._Element, profile: SiteProfile) -> list[dict[str, Any]]:
    nodes = profile.item_xpath(root)
    if not isinstance(nodes, list):
        raise ParseError("items.xpath must select nodes")
    rules = [(rule.name, rule.xpath) for rule in profile.fields]
    names = [name for name, _ in rules]
    raw_items = []
    for node in nodes:
        values = profile.row_xpath(node).split(ROW_SEPARATOR)
        if len(values) == len(names):
            raw_items.append(dict(zip(names, values)))
        else:  # the separator occurs in the text itself: evaluate field by field
            raw_items.append({name: _value(xpath(node)) for name, xpath in rules})
    return raw_items


def _jsonld_objects(root: etree._Element, url: str) -> list[Any]:
    blocks = []
    for text in _JSONLD(root):
        try:
            blocks.append(json.loads(text, parse_float=Decimal))
        except json.JSONDecodeError as exc:
            raise ParseError(f"{url}: malformed JSON-LD block: {exc}") from exc
    return blocks


def _walk_typed(node: Any, wanted: str) -> Iterator[Mapping[str, Any]]:
    """Every JSON-LD object whose @type is `wanted`, without looking inside a match."""
    if isinstance(node, list):
        for child in node:
            yield from _walk_typed(child, wanted)
    elif isinstance(node, dict):  # json.loads gives dicts; typing.Mapping checks are slow here
        kind = node.get("@type")
        if kind == wanted or (isinstance(kind, list) and wanted in kind):
            yield node
            return
        for child in node.values():
            if isinstance(child, (list, dict)):
                yield from _walk_typed(child, wanted)


def _step(node: Any, step: PathStep) -> Any:
    if isinstance(node, list):
        node = node[0] if node else None
    node = node.get(step.key) if isinstance(node, dict) else None
    if node is None or step.where is None:
        return node
    candidates = node if isinstance(node, list) else [node]
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get(step.where) is not None:
            if step.equals is None or str(candidate[step.where]) == step.equals:
                return candidate
    return None


def _lookup(obj: Any, alternatives: tuple[tuple[PathStep, ...], ...]) -> Any:
    """The first alternative path that leads to a scalar (a list yields its first element)."""
    for path in alternatives:
        node = obj
        for step in path:
            node = _step(node, step)
            if node is None:
                break
        if isinstance(node, list):
            node = node[0] if node else None
        if node is None or isinstance(node, (dict, list)):
            continue
        return node if isinstance(node, (bool, str)) else str(node)
    return None


def _jsonld_raw_items(
    root: etree._Element, url: str, profile: SiteProfile
) -> tuple[list[dict[str, Any]], Any]:
    blocks = _jsonld_objects(root, url)
    rules = [(rule.name, rule.path) for rule in profile.fields]
    products = _walk_typed(blocks, profile.jsonld_type)
    raw = [{name: _lookup(obj, path) for name, path in rules} for obj in products]
    declared = None
    if profile.count_path:
        declared = next((v for v in (_lookup(b, profile.count_path) for b in blocks) if v is not None), None)
    return raw, declared


def _check_count(url: str, declared: Any, found: int) -> None:
    """A page that says how many items it holds must hold that many (else it was cut off)."""
    if declared is None or declared == "":
        return
    try:
        expected = int(Decimal(str(declared)))
    except (ArithmeticError, ValueError) as exc:
        raise ParseError(f"{url}: item count {declared!r} is not a number") from exc
    if expected != found:
        raise ParseError(f"{url}: page says it holds {expected} items but {found} were found (cut off?)")


def page_number(url: str, profile: SiteProfile) -> int:
    """The page number a page_param URL asks for (the profile's start page when absent)."""
    pagination = profile.pagination
    for key, value in parse_qsl(urlsplit(url).query):
        if key == pagination.param:
            try:
                return int(value)
            except ValueError as exc:
                raise ParseError(f"{url}: page parameter {value!r} is not a number") from exc
    return pagination.start


def _next_url(root: etree._Element, url: str, profile: SiteProfile, found_items: bool) -> str | None:
    pagination = profile.pagination
    if pagination.kind == "next_link":
        href = clean_text(_value(pagination.next_xpath(root)))
        return urljoin(url, href) if href else None
    if pagination.kind == "page_param":
        if not found_items:
            return None
        if pagination.has_next_xpath is not None and not _truthy(pagination.has_next_xpath(root)):
            return None
        return with_query(url, **{pagination.param: page_number(url, profile) + 1})
    return None


def _truthy(result: Any) -> bool:
    value = _value(result)
    return bool(value) and str(value).strip().lower() not in ("0", "false", "no")


def _checked(raw_items: list[dict[str, Any]], compiled: SiteProfile, url: str,
             ) -> tuple[list[ScrapedItem], list[Dropped]]:
    """Validated items and drops; TooManyDropped when most of the page failed."""
    items, dropped = _validate(raw_items, compiled, url)
    lost = sum(1 for d in dropped if not d.kept)
    if lost and lost > compiled.max_drop_share * (lost + len(items)):
        sample = "; ".join(sorted({d.reason for d in dropped if not d.kept})[:3])
        raise TooManyDropped(f"{url}: {lost} of {lost + len(items)} items failed validation ({sample})",
                             tuple(items), tuple(dropped))
    return items, dropped


def _json_page(body: bytes, url: str, compiled: SiteProfile) -> PageResult:
    rules = compiled.json
    document = jsonlayout.load_document(body, url, rules.script, _document, "items.script")
    if jsonlayout.is_closed(document, rules):
        return PageResult(url, (), (), None, closed=True)
    jsonlayout.check_marker(document, url, rules)
    raw_items = jsonlayout.raw_items(document, url, compiled)
    _check_count(url, jsonlayout.declared_count(document, rules), len(raw_items))
    items, dropped = _checked(raw_items, compiled, url)
    note = None if raw_items else jsonlayout.explain_empty(document, compiled)
    return PageResult(url, tuple(items), tuple(dropped),
                      jsonlayout.next_url(document, url, compiled.pagination, len(raw_items)), note=note)


def first_page_url(url: str, profile: SiteProfile) -> str:
    """A list's first page as requested: with the page size the profile asks for, if any."""
    return jsonlayout.first_url(url, profile.pagination) if profile.layout == "json" else url


def parse_page(body: bytes, url: str, profile: Mapping[str, Any] | SiteProfile) -> PageResult:
    """Parse one catalogue page into validated items, dropped items and the next page's URL."""
    compiled = compile_profile(profile)
    if compiled.layout == "json":
        return _json_page(body, url, compiled)
    root = _document(body, url)
    if compiled.closed_marker is not None and _truthy(compiled.closed_marker(root)):
        return PageResult(url, (), (), None, closed=True)
    if compiled.page_marker is not None and not _truthy(compiled.page_marker(root)):
        raise ParseError(f"{url}: not a catalogue page (page marker missing)")
    extract = getattr(compiled.hook, "extract_items", None)
    declared = _value(compiled.count_xpath(root)) if compiled.count_xpath is not None else None
    if extract is not None:
        raw_items = list(extract(root, url, compiled.source))
    elif compiled.layout == "jsonld":
        raw_items, declared = _jsonld_raw_items(root, url, compiled)
    else:
        raw_items = _html_raw_items(root, compiled)
    _check_count(url, declared, len(raw_items))
    items, dropped = _checked(raw_items, compiled, url)
    return PageResult(url, tuple(items), tuple(dropped), _next_url(root, url, compiled, bool(raw_items)))


def parse_locator_page(body: bytes, url: str, profile: Mapping[str, Any] | SiteProfile) -> LocatorPage:
    """One page of a chain's store locator: its stores (closed ones too) and the next page's URL."""
    compiled = compile_profile(profile)
    rule = compiled.locator
    if not isinstance(rule, JsonLocator):
        return LocatorPage(tuple(parse_locator(body, url, compiled)), None)
    document = jsonlayout.load_document(body, url, rule.script, _document, "locator.script")
    stores = tuple(LocatedStore(*entry) for entry in jsonlayout.located_stores(document, url, rule))
    return LocatorPage(stores, jsonlayout.next_url(document, url, rule.pagination, len(stores)))


def parse_locator(body: bytes, url: str, profile: Mapping[str, Any] | SiteProfile) -> list[LocatedStore]:
    """The stores a chain's store locator page lists (catalogue links made absolute)."""
    compiled = compile_profile(profile)
    rule = compiled.locator
    if rule is None:
        raise ParseError("site profile has no store locator rule")
    if isinstance(rule, JsonLocator):
        found = parse_locator_page(body, url, compiled).stores
        if not found:
            raise ParseError(f"{url}: the store locator lists no stores")
        return list({s.code: s for s in found}.values())
    root = _document(body, url)
    found: dict[str, LocatedStore] = {}
    for node in rule.stores(root):
        code = clean_text(_value(rule.code(node)))
        if not code:
            raise ParseError(f"{url}: a store entry has no code")
        link = clean_text(_value(rule.catalogue(node))) if rule.catalogue is not None else None
        found[code] = LocatedStore(
            code=code,
            name=clean_text(_value(rule.name(node))) if rule.name is not None else None,
            address=clean_text(_value(rule.address(node))) if rule.address is not None else None,
            catalogue_url=urljoin(url, link) if link else None,
        )
    if not found:
        raise ParseError(f"{url}: the store locator lists no stores")
    return list(found.values())
