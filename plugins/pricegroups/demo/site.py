"""The demo site's request handling, without sockets: (method, path, query, body) -> Response.

Routing, the simulated day, HTTP events (429/500 bursts, slow, malformed,
truncated, closed stores), request statistics and the page cache live here;
server.py only moves bytes. Keeping it socket-free makes every rule testable
in-process, while the integration tests still go through real HTTP.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from http.cookies import CookieError, SimpleCookie
from types import ModuleType
from typing import Any, Mapping
from urllib.parse import parse_qs

from pricegroups.demo.layouts import APP_MODULES, LAYOUT_MODULES, api
from pricegroups.demo.layouts.common import CatalogueView, escape, page
from pricegroups.demo.model import EVENT_KINDS, Chain, Event, Item, Listing, TruePrice
from pricegroups.demo.scenario import Scenario
from pricegroups.errors import ConfigError

HTML = "text/html; charset=utf-8"
_DATED = re.compile(r"^/on/(?P<date>[^/]+)(?P<rest>/.*)?$")
_PAGE_CACHE_LIMIT = 2500  # a whole day of the built-in scenario is ~1,930 pages (~54 MB)

# "layout_changed": the element each layout's site profile takes as its page marker, renamed
# (scrape/profiles/*.json `page_marker`), as after a site redesign.
_REDESIGNED = {
    "grid": (b'<div class="product-grid"', b'<div class="product-grid-2026"'),
    "table": (b'<table id="product-table"', b'<table id="product-list"'),
    "jsonld": (b'<script type="application/ld+json"', b'<script type="application/vnd.shop+json"'),
    "api": (b'"items":', b'"results":'),
    "nextdata": (b'"catalogue":{', b'"catalog":{'),
}

# "junk_items": (sku, brand, name, price, was_price) served after a store's real items. Absurd prices
# (zero, a billion, negative, a was-price below the price) must be rejected by the scraper; the
# hostile or unusual names with ordinary prices must be stored exactly as served.
JUNK_ITEMS = (
    ("JUNK-ZERO", "Chaos", "Free Lunch", "0.00", None),
    ("JUNK-BILLION", "Chaos", "Golden Loaf", "1000000000.00", None),
    ("JUNK-NEGATIVE", "Chaos", "Pay Me To Take It", "-2.50", None),
    ("JUNK-WAS-BELOW", "Chaos", "Backwards Special", "5.00", "4.00"),
    ("JUNK-SQL", "Bobby Tables", "Robert'); DROP TABLE prices;--", "4.20", None),
    ("JUNK-QUOTE'1", "O'Brien & Sons", "Quote ' \" ` \\ %s %(x)s $1 <b>bold</b> &amp; semi;colon",
     "3.30", None),
    ("JUNK-UNICODE", "Pâtisserie «Noël»", "Crème brûlée 🍮 \u202ereversed\u202c ﬁ Ω zero\u200bwidth",
     "6.95", None),
)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (the "slow" event)


def _html(status: int, text: str, **headers: str) -> Response:
    return Response(status, text.encode(), HTML, dict(headers))


def _json(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, indent=1).encode(), "application/json")


def _not_found(what: str = "page") -> Response:
    return _html(404, f"<!DOCTYPE html><html><body><h1>Not found</h1><p>No such {escape(what)}.</p></body></html>\n")


def _layout_name(layout: ModuleType) -> str:
    return layout.__name__.rsplit(".", 1)[-1]


def _cookies(headers: Mapping[str, str]) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


class SiteApp:
    """One demo site: a scenario (plus events added at run time) served for a settable day."""

    def __init__(self, scenario: Scenario, day: int = 0, api_key: str | None = None) -> None:
        self.api_key = api_key  # when set, the `api` app answers only requests carrying it (X-Api-Key)
        self._base = scenario
        self.scenario = scenario
        self._day = day
        self._added: list[Event] = []
        self._lock = threading.Lock()
        self._hits: Counter[tuple[Event, int]] = Counter()  # burst counters: (event, day) -> responses sent
        self._stats: Counter[tuple[str, int]] = Counter()  # (path, status) -> requests
        self._store_hits: Counter[str] = Counter()  # "chain/store" -> catalogue requests (the store by path or not)
        self._pages: dict[tuple, bytes] = {}
        self._items: dict[tuple[str, str, int], list[Item]] = {}
        self._routes = self._build_routes(scenario)

    # ---- control (Python API and admin endpoints) --------------------------------------------

    @property
    def day(self) -> int:
        return self._day

    def set_day(self, day: int) -> None:
        with self._lock:
            if day != self._day:
                self._day = day
                self._pages.clear()
                self._items.clear()

    def add_event(self, *events: Event) -> None:
        """Switch on events at run time (validated like scenario events); truth follows them too."""
        with self._lock:
            added = self._added + list(events)
            self.scenario = self._base.with_events(self._base.events + tuple(added))
            self._added = added
            self._pages.clear()
            self._items.clear()

    def clear_events(self) -> None:
        with self._lock:
            self._added = []
            self.scenario = self._base
            self._pages.clear()
            self._items.clear()

    def added_events(self) -> list[Event]:
        return list(self._added)

    def reset(self) -> None:
        """Zero the request statistics and the burst counters."""
        with self._lock:
            self._stats.clear()
            self._hits.clear()
            self._store_hits.clear()

    def stats(self) -> dict[str, Any]:
        """Request counts (admin requests excluded): total, by status, by path, by chain, and catalogue
        requests by store ("chain/store": an app's store is in a header or cookie, not the path)."""
        with self._lock:
            counts = dict(self._stats)
            by_store = dict(self._store_hits)
        by_status: Counter[str] = Counter()
        by_chain: Counter[str] = Counter()
        by_path: dict[str, dict[str, int]] = {}
        for (path, status), n in counts.items():
            by_status[str(status)] += n
            chain = path.strip("/").split("/", 1)[0]
            if chain in self.scenario.chains:
                by_chain[chain] += n
            by_path.setdefault(path, {})[str(status)] = n
        return {"total": sum(counts.values()), "by_status": dict(by_status), "by_path": by_path,
                "by_chain": dict(by_chain), "by_store": by_store}

    # ---- requests ----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str = "", body: bytes = b"",
               headers: Mapping[str, str] | None = None) -> Response:
        """Answer one request; `headers` by lower-case name (the app layouts read the store from them)."""
        if path.startswith("/_admin/"):
            return self._admin(method, path, query, body)
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        dated = _DATED.match(path)
        if dated:
            response = self._serve_dated(method, dated["date"], dated["rest"], query, headers)
        else:
            response = self._serve(method, path, {k: v[0] for k, v in parse_qs(query).items()}, self._day, headers)
        with self._lock:
            self._stats[(path, response.status)] += 1
        return response

    def day_of(self, on: date) -> int:
        """The simulated day a calendar date is: days since the scenario's start date (the demo epoch)."""
        return (on - self.scenario.start_date).days

    def _serve_dated(self, method: str, on: str, rest: str, query: str, headers: dict[str, str]) -> Response:
        """`/on/YYYY-MM-DD/...`: the site as it was on that date, links kept under the prefix.

        A scheduler's runs (any logical date, backfills too) see their own day this way,
        while the settable day serves undated paths (the in-process demo and tests).
        """
        try:
            day = self.day_of(date.fromisoformat(on))
        except ValueError:
            return _not_found(f"date {on}")
        if day < 0:
            return _not_found(f"day before the demo epoch {self.scenario.start_date}")
        response = self._serve(method, rest or "/", {k: v[0] for k, v in parse_qs(query).items()}, day, headers)
        if response.content_type == HTML:
            response = replace(response, body=response.body.replace(b'href="/', f'href="/on/{on}/'.encode()))
        return response

    def _serve(self, method: str, path: str, query: dict[str, str], day: int,
               headers: dict[str, str] | None = None) -> Response:
        if method not in ("GET", "HEAD"):
            return _html(405, "<html><body>Method not allowed</body></html>", Allow="GET, HEAD")
        if path == "/robots.txt":
            return Response(200, self.robots_txt().encode(), "text/plain; charset=utf-8")
        if path == "/":
            links = "".join(f'<li><a href="/{c}/">{escape(ch.name)}</a></li>' for c, ch in self.scenario.chains.items())
            return _html(200, f"<!DOCTYPE html><html><body><h1>Demo chains</h1><ul>{links}</ul></body></html>\n")
        parts = path.split("/", 2)
        chain = self.scenario.chains.get(parts[1])
        if chain is None:
            return _not_found()
        rest = "/" + parts[2] if len(parts) > 2 else "/"
        layout, locator, catalogue, trap = self._routes[chain.code]
        for kind in ("rate_limit", "server_error"):  # chain-wide bursts (events without a store)
            failed = self._burst(chain, None, kind, day)
            if failed:
                return failed
        if chain.app is not None and rest.startswith(("/api/", "/app/")):
            return self._serve_app(chain, rest, query, day, headers or {})
        if rest == "/":
            body = f'<h1>{escape(chain.name)}</h1><p><a href="/{chain.code}{locator}">Find a store</a></p>'
            return _html(200, layout_page(chain, body, trap))
        if rest == locator:
            return _html(200, layout.render_locator(chain, self.scenario.stores(chain.code, day)))
        if rest == trap:
            return _html(200, layout_page(chain, "<h1>Your trolley</h1><p>Sign in to continue.</p>", trap))
        match = catalogue.fullmatch(rest)
        if match is None:
            return _not_found()
        return self._catalogue(chain, match["store"], query, day)

    def _serve_app(self, chain: Chain, rest: str, query: dict[str, str], day: int,
                   headers: dict[str, str]) -> Response:
        """The chain's app: the store locator and a store's catalogue, the store named by a header or cookie."""
        app = APP_MODULES[chain.app]
        if app is api:
            if self.api_key is not None and headers.get(api.KEY_HEADER.lower()) != self.api_key:
                return Response(401, api.error(f"missing or wrong {api.KEY_HEADER}").encode(), api.CONTENT_TYPE)
            store_code = api.store_of(headers, query)
        else:
            store_code = app.store_of(_cookies(headers), query)
        every = [(s, self.scenario.is_open(chain.code, s.code, day)) for s in self.scenario.stores(chain.code)]
        if rest == app.LOCATOR:
            if app is not api:
                return _html(200, app.render_locator(chain, every))
            try:
                _, offset, limit = api.window(query, api.LOCATOR_LIMIT)
            except ValueError as exc:
                return Response(400, api.error(str(exc)).encode(), api.CONTENT_TYPE)
            return Response(200, api.render_locator(every, offset, limit).encode(), api.CONTENT_TYPE)
        if rest != app.CATALOGUE:
            return self._app_error(app, 404, "no such page")
        if store_code is None:
            how = f"the {api.STORE_HEADER} header" if app is api else f"the {app.STORE_COOKIE} cookie"
            return self._app_error(app, 400, f"no store chosen: send {how}")
        return self._catalogue(chain, store_code, query, day, app)

    @staticmethod
    def _app_error(app: ModuleType, status: int, message: str) -> Response:
        if app is api:
            return Response(status, api.error(message).encode(), api.CONTENT_TYPE)
        return _html(status, f"<html><body><h1>{escape(message)}</h1></body></html>")

    def _catalogue(self, chain: Chain, store_code: str, query: dict[str, str], day: int,
                   layout: ModuleType | None = None) -> Response:
        scenario = self.scenario
        layout = layout or self._routes[chain.code][0]
        content_type = getattr(layout, "CONTENT_TYPE", HTML)
        with self._lock:
            self._store_hits[f"{chain.code}/{store_code}"] += 1
        try:
            store = scenario.store(chain.code, store_code)
        except ConfigError:
            return self._app_error(layout, 404, "no such store") if layout is api else _not_found("store")
        closing = [e for e in scenario.events_on(day, chain.code, store_code) if e.kind == "store_closes"]
        if closing:
            if (closing[0].mode or "404") == "404":
                if layout is api:
                    return self._app_error(layout, 404, "no such store (this store has closed)")
                return _not_found("store (this store has closed)")
            return Response(200, layout.render_closed(chain, store).encode(), content_type)
        for kind in ("rate_limit", "server_error"):
            failed = self._burst(chain, store_code, kind, day)
            if failed:
                return failed
        try:
            if hasattr(layout, "window"):  # the apps: a page size of their own (an API's limit)
                number, start, size = layout.window(query, chain.page_size)
            else:
                (number, start), size = layout.page_start(query, chain.page_size), chain.page_size
        except ValueError:
            if layout is api:
                return self._app_error(layout, 400, "bad page parameter")
            return _html(400, "<html><body>Bad page parameter</body></html>")
        events = scenario.events_on(day, chain.code, store_code)
        delay = max((e.delay if e.delay is not None else 1.5 for e in events
                     if e.kind == "slow" and e.page in (None, number)), default=0.0)
        fraction = min((e.fraction if e.fraction is not None else 0.4 for e in events if e.kind == "truncated"),
                       default=None)
        broken = any(e.kind == "malformed" and (e.page or 1) == number for e in events)
        # these two also apply chain-wide (store None)
        either = [e for e in scenario.events_on(day, chain.code) if e.store in (None, store_code)]
        redesigned = any(e.kind == "layout_changed" and e.page in (None, number) for e in either)
        junk = any(e.kind == "junk_items" for e in either)
        key = (chain.code, _layout_name(layout), store_code, day, start, size, fraction, broken, redesigned, junk)
        body = self._pages.get(key)
        if body is None:
            items = self._store_items(chain.code, store_code, day)
            if fraction is not None:
                items = items[: math.ceil(len(items) * fraction)]
            total = len(items)
            pages = math.ceil(total / size)
            shown = items[start : start + size]
            if junk and number == max(pages, 1):  # on the last page: no later page's offset moves
                shown = shown + junk_items(chain)
            view = CatalogueView(chain, store, shown, number, pages, total, start, size)
            body = (layout.render_malformed(view) if broken else layout.render_catalogue(view)).encode()
            if redesigned:
                old, new = _REDESIGNED[_layout_name(layout)]
                body = body.replace(old, new)
            with self._lock:
                if len(self._pages) >= _PAGE_CACHE_LIMIT:
                    self._pages.clear()
                self._pages[key] = body
        return Response(200, body, content_type, delay=delay)

    def _store_items(self, chain: str, store: str, day: int) -> list[Item]:
        key = (chain, store, day)
        items = self._items.get(key)
        if items is None:
            items = self._items[key] = self.scenario.items(chain, store, day)
        return items

    def _burst(self, chain: Chain, store: str | None, kind: str, day: int) -> Response | None:
        """A 429/500 if an event of `kind` for this store (or the whole chain) still has responses to send."""
        for event in self.scenario.events_on(day, chain.code):
            if event.kind != kind or event.store != store:
                continue
            with self._lock:
                sent = self._hits[(event, day)]
                if event.count is not None and sent >= event.count:
                    continue
                self._hits[(event, day)] = sent + 1
            if kind == "rate_limit":
                retry = str(event.retry_after if event.retry_after is not None else 1)
                return _html(429, "<html><body><h1>Too many requests</h1></body></html>", **{"Retry-After": retry})
            return _html(500, "<html><body><h1>Internal server error</h1></body></html>")
        return None

    def robots_txt(self) -> str:
        lines = ["User-agent: BadBot", "Disallow: /", "", "User-agent: *", "Disallow: /_admin/"]
        for chain in self.scenario.chains.values():
            layout = self._routes[chain.code][0]
            trap = f"/{chain.code}{layout.TRAP}"  # always disallowed: every page links to it
            lines += [f"Disallow: {rule}" for rule in dict.fromkeys((trap, *chain.robots_disallow))]
            for event in self.scenario.events_on(self._day, chain.code):
                if event.kind == "robots_disallow":
                    path = layout.catalogue_path(chain, event.store)
                    lines.append(f"Disallow: {path.removesuffix('products')}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _build_routes(scenario: Scenario) -> dict[str, tuple]:
        routes = {}
        for chain in scenario.chains.values():
            layout = LAYOUT_MODULES[chain.layout]
            routes[chain.code] = (layout, layout.LOCATOR, re.compile(layout.CATALOGUE), layout.TRAP)
        return routes

    # ---- admin ---------------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, query: str, body: bytes) -> Response:
        try:
            data = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as exc:
            return _json({"error": f"body is not JSON: {exc}"}, 400)
        params = {k: v[0] for k, v in parse_qs(query).items()}
        try:
            if path == "/_admin/day":
                if method == "POST":
                    self.set_day(int(params.get("day", data.get("day") if isinstance(data, dict) else None)))
                return _json({"day": self._day})
            if path == "/_admin/stats" and method == "GET":
                return _json(self.stats())
            if path == "/_admin/reset" and method == "POST":
                self.reset()
                return _json({"reset": True})
            if path == "/_admin/events":
                if method == "POST":
                    raw = data if isinstance(data, list) else [data]
                    self.add_event(*(Event(**e) for e in raw))
                elif method == "DELETE":
                    self.clear_events()
                return _json({"added": [e.to_dict() for e in self._added], "kinds": list(EVENT_KINDS)})
        except (TypeError, ValueError, ConfigError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"error": f"no admin endpoint {method} {path}"}, 404)


def junk_items(chain: Chain) -> list[Item]:
    """The "junk_items" event's items in this chain's SKU style (JUNK_ITEMS)."""
    return [
        Item(
            Listing(sku=f"{chain.code[:2].upper()}-{sku}", product=f"junk:{sku}", brand=brand, name=name,
                    size="each", size_value=Decimal(1), size_unit="each", category="Chaos", barcode=None,
                    base_price=Decimal("1.00"), show_unit_price=False),
            TruePrice(price=Decimal(price), was_price=None if was is None else Decimal(was),
                      on_special=was is not None, promo_text=None if was is None else "Save big"),
        )
        for sku, brand, name, price, was in JUNK_ITEMS
    ]


def layout_page(chain: Chain, body: str, trap: str) -> str:
    return page(chain, chain.name, body, trap=f"/{chain.code}{trap}")
