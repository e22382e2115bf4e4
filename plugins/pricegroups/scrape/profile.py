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
from typing import Any, Callable, Mapping

from lxml import etree

from pricegroups.errors import ConfigError
from pricegroups.scrape.context import NO_REQUEST, STORE_FIELD, RequestSpec, compile_request, template_fields
from pricegroups.scrape.fields import DEFAULT_PARSER, DEFAULT_PRICE_CEILING, EXTRACTABLE, PARSERS, minor_units
from pricegroups.scrape.jmes import Expression, compile_expression, optional_expression

FORMAT_VERSION = 1
LAYOUTS = ("html", "jsonld", "json")
# json: the pages are JSON (an API) or hold it in a script element (embedded app state)
PAGINATION_KINDS = ("page_param", "next_link", "none")
JSON_PAGINATION_KINDS = ("page_param", "offset", "cursor", "next_link", "none")
MAX_SCALE = 6  # the `cents` parser's scale: digits of minor units (2: cents)
PROFILES_DIR = Path(__file__).with_name("profiles")
HOOK_PREFIX = "pricegroups."  # hooks are project code, never arbitrary modules named in the database


@dataclass(frozen=True)
class FieldRule:
    name: str
    parser: str
    xpath: etree.XPath | None = None
    path: tuple[tuple["PathStep", ...], ...] = ()  # JSON-LD: alternatives, each a key path
    expr: Expression | None = None  # json: a JMESPath relative to the item
    scale: int | None = None  # the `cents` parser's digits of minor units
    call: Callable[[Any, str], dict[str, Any]] | None = field(default=None, compare=False)


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
    expr: Expression | None = None  # json: next_link's URL, cursor's cursor, page_param's has-next
    total: Expression | None = None  # json offset: the number of items of the whole list
    limit_param: str | None = None  # json: a page-size parameter set on every request...
    limit: int | None = None  # ...to this value


@dataclass(frozen=True)
class JsonLocator:
    """A store locator read from JSON (an API, or app state embedded in a page), paginated."""

    path: str
    script: etree.XPath | None
    stores: Expression
    code: Expression
    name: Expression | None
    address: Expression | None
    catalogue: Expression | None
    closed: Expression | None  # true for a store the locator lists as closed
    pagination: Pagination
    max_pages: int


@dataclass(frozen=True)
class JsonRules:
    """Where a `json` layout page's items and markers are: JMESPaths on the page's JSON document."""

    script: etree.XPath | None  # the element holding the JSON in an HTML page; None: the body is JSON
    items: Expression
    count: Expression | None
    page_marker: Expression | None
    closed_marker: Expression | None


@dataclass(frozen=True)
class SiteProfile:
    """A compiled, validated profile. `source` is the JSON it came from."""

    source: Mapping[str, Any]
    layout: str
    locator: LocatorRule | JsonLocator | None
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
    request: RequestSpec = NO_REQUEST
    json: JsonRules | None = None


# Keys a profile may hold, per object. A key starting with "_" is ignored anywhere (a note, a hook's
# own setting); any other unknown key is refused, because a misspelt optional key (a closed marker, a
# count check) would otherwise switch a safety check off without a word.
TOP_KEYS = ("format", "layout", "locator", "catalogue", "items", "hook", "request")
LOCATOR_KEYS = ("path", "stores", "code", "name", "address", "catalogue")
JSON_LOCATOR_KEYS = LOCATOR_KEYS + ("script", "closed", "pagination", "max_pages")
CATALOGUE_KEYS = ("url_template", "pagination", "max_pages", "page_marker", "closed_marker")
PAGINATION_KEYS = {"page_param": ("kind", "param", "start", "has_next_xpath"), "next_link": ("kind", "xpath"),
                   "none": ("kind",)}
JSON_PAGINATION_KEYS = {
    "page_param": ("kind", "param", "start", "has_next_path", "limit_param", "limit"),
    "offset": ("kind", "param", "limit_param", "limit", "total_path"),
    "cursor": ("kind", "param", "path", "limit_param", "limit"),
    "next_link": ("kind", "path"),
    "none": ("kind",),
}
ITEMS_KEYS = ("xpath", "jsonld_type", "count_xpath", "count_path", "fields", "max_drop_share", "price_ceiling",
              "path", "script")
REQUIRED_FIELDS = ("sku", "name", "price")
_MISSING = object()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(key: str, expected: str, got: Any = _MISSING) -> ConfigError:
    """The one shape of a profile error: which key, what was expected, what was found."""
    found = "" if got is _MISSING else f", got {_shown(got)}"
    return ConfigError(f"profile key {key!r}: expected {expected}{found}")


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _object(spec: Any, key: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    """`spec` as an object holding only `allowed` keys (and ignored `_notes`)."""
    if not isinstance(spec, Mapping):
        raise _bad(key or "(top level)", "an object", spec)
    for name in spec:
        if not isinstance(name, str) or (name not in allowed and not name.startswith("_")):
            raise ConfigError(f"profile key {_join(key, str(name))!r}: unknown key;"
                              f" expected one of {', '.join(allowed)}")
    return spec


def _text(spec: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> str:
    value = spec.get(key, default)
    if value is _MISSING:
        raise _bad(_join(where, key), "a non-empty string (required)")
    if not isinstance(value, str) or not value.strip():
        raise _bad(_join(where, key), "a non-empty string", value)
    return value


def _integer(spec: Mapping[str, Any], key: str, where: str, default: int, least: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _bad(_join(where, key), f"an integer of at least {least}", value)
    return value


def _number(spec: Mapping[str, Any], key: str, where: str, default: Any) -> Decimal:
    value = spec.get(key, default)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise ArithmeticError
        number = Decimal(str(value))
        if not number.is_finite():
            raise ArithmeticError
    except ArithmeticError:
        raise _bad(_join(where, key), "a number", value) from None
    return number


def _xpath(expr: Any, key: str) -> etree.XPath:
    if expr is None:
        raise _bad(key, "a non-empty XPath string (required)")
    if not isinstance(expr, str) or not expr.strip():
        raise _bad(key, "a non-empty XPath string", expr)
    try:
        return etree.XPath(expr, smart_strings=False)
    except etree.XPathSyntaxError as exc:
        raise ConfigError(f"profile key {key!r}: expected an XPath 1.0 expression, got {_shown(expr)}"
                          f" (invalid XPath: {exc})") from exc


def _optional_xpath(expr: Any, key: str) -> etree.XPath | None:
    return None if expr is None else _xpath(expr, key)


def _field_rule(name: str, spec: Any, layout: str) -> FieldRule:
    key = f"items.fields.{name}"
    if name not in EXTRACTABLE:
        known = ", ".join(sorted(EXTRACTABLE))
        raise ConfigError(f"profile key {key!r}: unknown item field {name!r}; expected one of {known}")
    where = "xpath" if layout == "html" else "path"  # an XPath, a JSON-LD path or a JMESPath, by layout
    language = {"html": "XPath", "jsonld": "JSON-LD path", "json": "JMESPath"}[layout]
    if isinstance(spec, str):
        spec = {where: spec}
    if not isinstance(spec, Mapping):
        raise _bad(key, f"a string (the {language}) or an object {{{where!r}: ..., 'parser': ...}}", spec)
    _object(spec, key, (where, "parser", "scale"))
    parser = spec.get("parser") or DEFAULT_PARSER.get(name, "text")
    if not isinstance(parser, str) or parser not in PARSERS:
        known = ", ".join(PARSERS)
        raise ConfigError(f"profile key '{key}.parser': unknown parser {parser!r}; expected one of {known}")
    scale = None
    if "scale" in spec:
        if parser != "cents":
            raise ConfigError(f"profile key '{key}.scale': only the 'cents' parser takes a scale"
                              f" (this field's parser is {parser!r})")
        scale = _integer(spec, "scale", key, 2, least=0)
        if scale > MAX_SCALE:
            raise _bad(f"{key}.scale", f"digits of minor units, from 0 to {MAX_SCALE}", scale)
    call = minor_units(scale) if scale is not None else PARSERS[parser]
    if layout == "json":
        return FieldRule(name, parser, expr=compile_expression(spec.get("path"), f"{key}.path"), scale=scale,
                         call=call)
    if layout == "jsonld":
        path = spec.get("path")
        if not isinstance(path, str) or not path:
            raise _bad(f"{key}.path", "a JSON-LD path like 'offers.price'", path)
        return FieldRule(name, parser, path=parse_path(path, f"{key}.path"), call=call)
    return FieldRule(name, parser, xpath=_xpath(spec.get("xpath"), f"{key}.xpath"), call=call)


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
                raise ConfigError(f"profile key {where!r}: expected a JSON-LD path like 'offers.price',"
                                  f" got {text!r} (bad step {part!r})")
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
        raise _bad("hook", f"a module under {HOOK_PREFIX!r} (hooks are project code)", name)
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(f"profile key 'hook': module {name!r} cannot be imported: {exc}") from exc
    if not hasattr(module, "extract_items") and not hasattr(module, "fix_item"):
        raise ConfigError(f"profile key 'hook': module {name!r} defines neither extract_items nor fix_item")
    return module


def _json_locator(spec: Any) -> JsonLocator:
    spec = _object(spec, "locator", JSON_LOCATOR_KEYS)

    def optional(name: str) -> Expression | None:
        return optional_expression(spec.get(name), f"locator.{name}")

    return JsonLocator(
        path=_text(spec, "path", "locator"),
        script=_optional_xpath(spec.get("script"), "locator.script"),
        stores=compile_expression(spec.get("stores"), "locator.stores"),
        code=compile_expression(spec.get("code"), "locator.code"),
        name=optional("name"), address=optional("address"), catalogue=optional("catalogue"), closed=optional("closed"),
        pagination=_pagination(spec.get("pagination"), "json", "locator.pagination"),
        max_pages=_integer(spec, "max_pages", "locator", 50, least=1),
    )


def _locator(spec: Any, layout: str = "html") -> LocatorRule | JsonLocator | None:
    if spec is None:
        return None
    if layout == "json":
        return _json_locator(spec)
    spec = _object(spec, "locator", LOCATOR_KEYS)
    return LocatorRule(
        path=_text(spec, "path", "locator"),
        stores=_xpath(spec.get("stores"), "locator.stores"),
        code=_xpath(spec.get("code"), "locator.code"),
        name=_optional_xpath(spec.get("name"), "locator.name"),
        address=_optional_xpath(spec.get("address"), "locator.address"),
        catalogue=_optional_xpath(spec.get("catalogue"), "locator.catalogue"),
    )


def _json_pagination(spec: Mapping[str, Any], key: str) -> Pagination:
    kind = spec.get("kind")
    if kind not in JSON_PAGINATION_KINDS:
        raise _bad(f"{key}.kind", f"a pagination kind of the json layout, one of {', '.join(JSON_PAGINATION_KINDS)}",
                   kind)
    _object(spec, key, JSON_PAGINATION_KEYS[kind])
    limit_param = _text(spec, "limit_param", key) if "limit_param" in spec else None
    limit = _integer(spec, "limit", key, 0, least=1) if "limit" in spec else None
    if (limit_param is None) != (limit is None):
        raise _bad(f"{key}.limit" if limit is None else f"{key}.limit_param",
                   "both 'limit_param' and 'limit' (the page size asked for), or neither")
    common = {"limit_param": limit_param, "limit": limit}
    if kind == "page_param":
        return Pagination(kind, param=_text(spec, "param", key, "page"), start=_integer(spec, "start", key, 1, least=0),
                          expr=optional_expression(spec.get("has_next_path"), f"{key}.has_next_path"), **common)
    if kind == "offset":
        return Pagination(kind, param=_text(spec, "param", key, "offset"), start=0,
                          total=optional_expression(spec.get("total_path"), f"{key}.total_path"), **common)
    if kind == "cursor":
        return Pagination(kind, param=_text(spec, "param", key, "cursor"),
                          expr=compile_expression(spec.get("path"), f"{key}.path"), **common)
    if kind == "next_link":
        return Pagination(kind, expr=compile_expression(spec.get("path"), f"{key}.path"))
    return Pagination(kind)


def _pagination(spec: Any, layout: str = "html", key: str = "catalogue.pagination") -> Pagination:
    spec = {"kind": "none"} if spec is None else spec
    if not isinstance(spec, Mapping):
        raise _bad(key, "an object like {'kind': 'none'}", spec)
    if layout == "json":
        return _json_pagination(spec, key)
    kind = spec.get("kind")
    if kind not in PAGINATION_KINDS:
        raise _bad(f"{key}.kind", f"a pagination kind, one of {', '.join(PAGINATION_KINDS)}"
                   + (" (offset and cursor are json layout kinds)" if kind in JSON_PAGINATION_KINDS else ""), kind)
    _object(spec, key, PAGINATION_KEYS[kind])
    if kind == "next_link":
        return Pagination(kind, next_xpath=_xpath(spec.get("xpath"), f"{key}.xpath"))
    if kind == "page_param":
        return Pagination(
            kind,
            param=_text(spec, "param", key, "page"),
            start=_integer(spec, "start", key, 1, least=0),
            has_next_xpath=_optional_xpath(spec.get("has_next_xpath"), f"{key}.has_next_xpath"),
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
    spec = _object(json.loads(key), "", TOP_KEYS)
    if spec.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise _bad("format", f"{FORMAT_VERSION} (the only profile format)", spec.get("format"))
    layout = spec.get("layout", "html")
    if layout not in LAYOUTS:
        raise _bad("layout", f"one of {', '.join(LAYOUTS)}", layout)
    if "catalogue" not in spec:
        raise _bad("catalogue", "an object with at least 'url_template' (required)")
    catalogue = _object(spec["catalogue"], "catalogue", CATALOGUE_KEYS)
    request = compile_request(spec.get("request"))
    template = _url_template(catalogue.get("url_template"), request)
    if "items" not in spec:
        raise _bad("items", "an object with 'fields' (required)")
    items = _object(spec["items"], "items", ITEMS_KEYS)
    field_specs = items.get("fields", {})
    if not isinstance(field_specs, Mapping):
        raise _bad("items.fields", "an object: field name -> rule", field_specs)
    rules = tuple(_field_rule(name, rule, layout) for name, rule in field_specs.items() if not name.startswith("_"))
    hook = _hook(spec.get("hook"))
    extracts = hook is not None and hasattr(hook, "extract_items")
    missing = [name for name in REQUIRED_FIELDS if name not in {r.name for r in rules}]
    if missing and not extracts:
        raise ConfigError(f"profile key 'items.fields': expected rules for {', '.join(REQUIRED_FIELDS)};"
                          f" lacks {', '.join(missing)}")
    if layout == "html" and not items.get("xpath") and not extracts:
        raise _bad("items.xpath", "an XPath selecting one node per product (required for the html layout)",
                   items.get("xpath", _MISSING))
    if layout == "json" and extracts:
        raise ConfigError("profile key 'hook': extract_items reads HTML (the html and jsonld layouts);"
                          " a json layout hook may define fix_item only")
    json_rules = _json_rules(items, catalogue) if layout == "json" else None
    for name in ("path", "script"):
        if name in items and layout != "json":
            raise ConfigError(f"profile key 'items.{name}': a key of the json layout, not of {layout!r}")
    share = _number(items, "max_drop_share", "items", 0.5)
    if not 0 <= share <= 1:
        raise _bad("items.max_drop_share", "a share from 0 to 1", items["max_drop_share"])
    ceiling = _number(items, "price_ceiling", "items", DEFAULT_PRICE_CEILING)
    if ceiling <= 0:
        raise _bad("items.price_ceiling", "a positive amount", items["price_ceiling"])
    html = layout != "json"  # the markers, items and count of the html and jsonld layouts are XPaths
    return SiteProfile(
        source=spec,
        layout=layout,
        locator=_locator(spec.get("locator"), layout),
        url_template=template,
        pagination=_pagination(catalogue.get("pagination"), layout),
        max_pages=_integer(catalogue, "max_pages", "catalogue", 200, least=1),
        page_marker=_optional_xpath(catalogue.get("page_marker"), "catalogue.page_marker") if html else None,
        closed_marker=_optional_xpath(catalogue.get("closed_marker"), "catalogue.closed_marker") if html else None,
        item_xpath=_optional_xpath(items.get("xpath"), "items.xpath"),
        row_xpath=_row_xpath(rules) if layout == "html" and rules else None,
        count_xpath=_optional_xpath(items.get("count_xpath"), "items.count_xpath"),
        count_path=parse_path(_text(items, "count_path", "items"), "items.count_path")
        if "count_path" in items and layout == "jsonld" else (),
        jsonld_type=_text(items, "jsonld_type", "items", "Product"),
        fields=rules,
        max_drop_share=float(share),
        price_ceiling=ceiling,
        hook=hook,
        request=request,
        json=json_rules,
    )


def _url_template(template: Any, request: RequestSpec) -> str:
    """The catalogue URL template: it names {store_code} unless a header or cookie carries the store."""
    key = "catalogue.url_template"
    if not isinstance(template, str) or not template.strip():
        raise _bad(key, "a path containing {store_code}, e.g. '/shop/{store_code}'", template)
    try:
        names = template_fields(template, key, (STORE_FIELD,))
    except ConfigError as exc:
        if "{secret}" in template:
            raise ConfigError(f"profile key {key!r}: a secret goes in a header or a cookie"
                              " ('request'), never in a URL (URLs are logged and kept in snapshots)") from None
        raise exc
    if STORE_FIELD not in names and not request.names_store():
        raise _bad(key, "a path containing {store_code}, e.g. '/shop/{store_code}' (or a header or cookie"
                        " in 'request' naming {store_code})", template)
    return template


def _json_rules(items: Mapping[str, Any], catalogue: Mapping[str, Any]) -> JsonRules:
    for name in ("xpath", "count_xpath", "jsonld_type"):
        if name in items:
            raise ConfigError(f"profile key 'items.{name}': not a key of the json layout"
                              " (it takes path, script, count_path)")
    return JsonRules(
        script=_optional_xpath(items.get("script"), "items.script"),
        items=compile_expression(items.get("path"), "items.path"),
        count=optional_expression(items.get("count_path"), "items.count_path"),
        page_marker=optional_expression(catalogue.get("page_marker"), "catalogue.page_marker"),
        closed_marker=optional_expression(catalogue.get("closed_marker"), "catalogue.closed_marker"),
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


def read_profile_file(path: str | Path) -> dict[str, Any]:
    """A user's profile from a JSON file, validated; every error names the file (and the key)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"profile file {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"profile file {str(path)!r}: cannot be read: {exc}") from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"profile file {str(path)!r}: not valid JSON at line {exc.lineno}"
                          f" column {exc.colno}: {exc.msg}") from None
    try:
        compile_profile(spec)
    except ConfigError as exc:
        raise ConfigError(f"profile file {str(path)!r}: {exc}") from None
    return spec
