"""Site profiles: the declarative description of how to scrape one chain's website.

A profile is plain JSON (stored in chains.site_profile, shipped examples in
scrape/profiles/*.json, format documented in docs/site-profiles.md). This
module validates it once and compiles its XPaths, so a bad profile fails
when it is registered, not in the middle of a run.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from lxml import etree

from pricegroups.errors import ConfigError
from pricegroups.scrape.fields import DEFAULT_PARSER, DEFAULT_PRICE_CEILING, EXTRACTABLE, PARSERS

FORMAT_VERSION = 1
LAYOUTS = ("html", "jsonld")
PAGINATION_KINDS = ("page_param", "next_link", "none")
PROFILES_DIR = Path(__file__).with_name("profiles")
HOOK_PREFIX = "pricegroups."  # hooks are project code, never arbitrary modules named in the database


@dataclass(frozen=True)
class FieldRule:
    name: str
    parser: str
    xpath: etree.XPath | None = None
    path: tuple[tuple["PathStep", ...], ...] = ()  # JSON-LD: alternatives, each a key path


@dataclass(frozen=True)
class PathStep:
    """One step of a JSON-LD path: `key`, or `key[field]` / `key[field=value]` to pick a list element."""

    key: str
    where: str | None = None
    equals: str | None = None


@dataclass(frozen=True)
class LocatorRule:
    path: str
    stores: etree.XPath
    code: etree.XPath
    name: etree.XPath | None
    address: etree.XPath | None
    catalogue: etree.XPath | None


@dataclass(frozen=True)
class Pagination:
    kind: str
    param: str = "page"
    start: int = 1
    next_xpath: etree.XPath | None = None
    has_next_xpath: etree.XPath | None = None


@dataclass(frozen=True)
class SiteProfile:
    """A compiled, validated profile. `source` is the JSON it came from."""

    source: Mapping[str, Any]
    layout: str
    locator: LocatorRule | None
    url_template: str
    pagination: Pagination
    max_pages: int
    page_marker: etree.XPath | None
    closed_marker: etree.XPath | None
    item_xpath: etree.XPath | None
    row_xpath: etree.XPath | None  # every field of one item in one evaluation (see _row_xpath)
    count_xpath: etree.XPath | None
    count_path: tuple[tuple[PathStep, ...], ...]
    jsonld_type: str
    fields: tuple[FieldRule, ...]
    max_drop_share: float
    price_ceiling: Decimal
    hook: ModuleType | None = field(default=None, compare=False)


def _xpath(expr: Any, where: str) -> etree.XPath:
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"site profile: {where} must be a non-empty XPath string")
    try:
        return etree.XPath(expr, smart_strings=False)
    except etree.XPathSyntaxError as exc:
        raise ConfigError(f"site profile: {where}: invalid XPath {expr!r}: {exc}") from exc


def _optional_xpath(expr: Any, where: str) -> etree.XPath | None:
    return None if expr is None else _xpath(expr, where)


def _field_rule(name: str, spec: Any, layout: str) -> FieldRule:
    if name not in EXTRACTABLE:
        known = ", ".join(sorted(EXTRACTABLE))
        raise ConfigError(f"site profile: unknown item field {name!r}; known: {known}")
    if isinstance(spec, str):
        spec = {"path" if layout == "jsonld" else "xpath": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"site profile: field {name!r} must be a string or an object")
    parser = spec.get("parser") or DEFAULT_PARSER.get(name, "text")
    if parser not in PARSERS:
        known = ", ".join(PARSERS)
        raise ConfigError(f"site profile: field {name!r}: unknown parser {parser!r}; known: {known}")
    if layout == "jsonld":
        path = spec.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"site profile: JSON-LD field {name!r} needs a 'path' like 'offers.price'")
        return FieldRule(name, parser, path=parse_path(path, f"field {name!r}"))
    return FieldRule(name, parser, xpath=_xpath(spec.get("xpath"), f"field {name!r}"))


_STEP_RE = re.compile(
    r"^(?P<key>[@A-Za-z0-9_:-]+)(?:\[(?P<where>[@A-Za-z0-9_:-]+)(?:=(?P<equals>[^\]]*))?\])?$"
)


def parse_path(text: str, where: str) -> tuple[tuple[PathStep, ...], ...]:
    """'a.b|c[d=e].f' -> alternatives of steps (see docs/site-profiles.md)."""
    alternatives = []
    for alt in text.split("|"):
        steps = []
        for part in _split_steps(alt.strip()):
            match = _STEP_RE.match(part)
            if not match:
                raise ConfigError(f"site profile: {where}: bad JSON-LD path step {part!r} in {text!r}")
            steps.append(PathStep(match["key"], match["where"], match["equals"]))
        alternatives.append(tuple(steps))
    return tuple(alternatives)


def _split_steps(path: str) -> list[str]:
    """Split on dots outside brackets (a filter value may be a URL with dots)."""
    parts, depth, current = [], 0, []
    for char in path:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "." and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _hook(name: Any) -> ModuleType | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name.startswith(HOOK_PREFIX):
        raise ConfigError(f"site profile: hook must be a module under {HOOK_PREFIX!r}, got {name!r}")
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(f"site profile: hook module {name!r} cannot be imported: {exc}") from exc
    if not hasattr(module, "extract_items") and not hasattr(module, "fix_item"):
        raise ConfigError(f"site profile: hook {name!r} defines neither extract_items nor fix_item")
    return module


def _locator(spec: Any) -> LocatorRule | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("path"), str):
        raise ConfigError("site profile: locator needs a 'path' (the store locator page)")
    return LocatorRule(
        path=spec["path"],
        stores=_xpath(spec.get("stores"), "locator.stores"),
        code=_xpath(spec.get("code"), "locator.code"),
        name=_optional_xpath(spec.get("name"), "locator.name"),
        address=_optional_xpath(spec.get("address"), "locator.address"),
        catalogue=_optional_xpath(spec.get("catalogue"), "locator.catalogue"),
    )


def _pagination(spec: Any) -> Pagination:
    spec = spec or {"kind": "none"}
    kind = spec.get("kind")
    if kind not in PAGINATION_KINDS:
        raise ConfigError(f"site profile: pagination kind must be one of {PAGINATION_KINDS}, got {kind!r}")
    if kind == "next_link":
        return Pagination(kind, next_xpath=_xpath(spec.get("xpath"), "pagination.xpath"))
    if kind == "page_param":
        start = spec.get("start", 1)
        if not isinstance(start, int) or start < 0:
            raise ConfigError("site profile: pagination.start must be a non-negative integer")
        return Pagination(
            kind,
            param=str(spec.get("param", "page")),
            start=start,
            has_next_xpath=_optional_xpath(spec.get("has_next_xpath"), "pagination.has_next_xpath"),
        )
    return Pagination(kind)


ROW_SEPARATOR = "\u241f"  # SYMBOL FOR UNIT SEPARATOR: never in product text, legal in XPath literals


def _row_xpath(rules: tuple[FieldRule, ...]) -> etree.XPath:
    """concat(string(f1), SEP, string(f2), ...): one libxml2 call per item instead of one per field.

    string() of a node set is its first node's text, of a boolean 'true'/'false': the same
    values the field parsers get when each field is evaluated on its own (the fallback).
    """
    parts = [f"string({rule.xpath.path})" for rule in rules]
    if len(parts) == 1:
        parts.append("''")
    return etree.XPath(f'concat({f", {chr(34)}{ROW_SEPARATOR}{chr(34)}, ".join(parts)})', smart_strings=False)


def compile_profile(source: Mapping[str, Any] | SiteProfile) -> SiteProfile:
    """Validate a profile dict and compile it (cached by content)."""
    if isinstance(source, SiteProfile):
        return source
    try:
        key = json.dumps(source, sort_keys=True)
    except TypeError as exc:
        raise ConfigError(f"site profile is not JSON-able: {exc}") from exc
    return _compile(key)


@lru_cache(maxsize=64)
def _compile(key: str) -> SiteProfile:
    spec = json.loads(key)
    if spec.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        got = spec.get("format")
        raise ConfigError(f"site profile format {got!r} is not supported (want {FORMAT_VERSION})")
    layout = spec.get("layout", "html")
    if layout not in LAYOUTS:
        raise ConfigError(f"site profile: layout must be one of {LAYOUTS}, got {layout!r}")
    catalogue = spec.get("catalogue") or {}
    template = catalogue.get("url_template")
    if not isinstance(template, str) or "{store_code}" not in template:
        raise ConfigError("site profile: catalogue.url_template must contain {store_code}")
    items = spec.get("items") or {}
    field_specs = items.get("fields") or {}
    rules = tuple(_field_rule(name, rule, layout) for name, rule in field_specs.items())
    hook = _hook(spec.get("hook"))
    missing = {"sku", "name", "price"} - {r.name for r in rules}
    if missing and not (hook and hasattr(hook, "extract_items")):
        raise ConfigError(f"site profile: items.fields lacks {', '.join(sorted(missing))}")
    if layout == "html" and not items.get("xpath") and not (hook and hasattr(hook, "extract_items")):
        raise ConfigError("site profile: items.xpath (one node per product) is required for the html layout")
    max_pages = catalogue.get("max_pages", 200)
    if not isinstance(max_pages, int) or max_pages < 1:
        raise ConfigError("site profile: catalogue.max_pages must be a positive integer")
    share = float(items.get("max_drop_share", 0.5))
    if not 0 <= share <= 1:
        raise ConfigError("site profile: items.max_drop_share must be in [0, 1]")
    return SiteProfile(
        source=spec,
        layout=layout,
        locator=_locator(spec.get("locator")),
        url_template=template,
        pagination=_pagination(catalogue.get("pagination")),
        max_pages=max_pages,
        page_marker=_optional_xpath(catalogue.get("page_marker"), "catalogue.page_marker"),
        closed_marker=_optional_xpath(catalogue.get("closed_marker"), "catalogue.closed_marker"),
        item_xpath=_optional_xpath(items.get("xpath"), "items.xpath"),
        row_xpath=_row_xpath(rules) if layout == "html" and rules else None,
        count_xpath=_optional_xpath(items.get("count_xpath"), "items.count_xpath"),
        count_path=parse_path(items["count_path"], "items.count_path") if items.get("count_path") else (),
        jsonld_type=str(items.get("jsonld_type", "Product")),
        fields=rules,
        max_drop_share=share,
        price_ceiling=Decimal(str(items.get("price_ceiling", DEFAULT_PRICE_CEILING))),
        hook=hook,
    )


def load_profile_file(name: str) -> dict[str, Any]:
    """A shipped example profile by name (scrape/profiles/NAME.json), validated."""
    path = PROFILES_DIR / f"{name}.json"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no shipped site profile {name!r} in {PROFILES_DIR}") from exc
    compile_profile(spec)
    return spec
