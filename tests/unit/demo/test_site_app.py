"""SiteApp routes and admin rules, in-process (no sockets)."""

from __future__ import annotations

import json

import pytest

from pricegroups.demo.site import SiteApp
from tests.unit.demo.test_scenario_doc import example


@pytest.fixture
def app() -> SiteApp:
    return SiteApp(example(), day=0)


def test_routes_of_a_grid_chain(app):
    assert app.handle("GET", "/cornerstore/stores").status == 200
    assert app.handle("GET", "/cornerstore/store/CS1/products", "page=2").status == 200
    assert app.handle("GET", "/cornerstore/store/ZZ9/products").status == 404
    assert app.handle("GET", "/elsewhere/stores").status == 404
    assert app.handle("POST", "/cornerstore/stores").status == 405
    robots = app.handle("GET", "/robots.txt")
    assert robots.content_type.startswith("text/plain") and b"Disallow: /cornerstore/checkout" in robots.body


def test_admin_day_accepts_json_or_query_and_rejects_junk(app):
    assert json.loads(app.handle("POST", "/_admin/day", body=b'{"day": 4}').body) == {"day": 4}
    assert json.loads(app.handle("POST", "/_admin/day", query="day=2").body) == {"day": 2}
    assert app.day == 2
    assert app.handle("POST", "/_admin/day", body=b"{nope").status == 400
    assert app.handle("POST", "/_admin/day", body=b'{"day": "x"}').status == 400
    assert app.handle("GET", "/_admin/unknown").status == 404
    assert app.stats()["total"] == 0, "admin calls are not counted"


def test_the_scripted_rate_limit_of_the_example_holds_on_its_day_only(app):
    app.set_day(3)
    statuses = [app.handle("GET", "/cornerstore/store/CS1/products").status for _ in range(3)]
    assert statuses == [429, 429, 200]
    assert app.handle("GET", "/cornerstore/store/CS2/products").status == 200


def test_pages_are_cached_per_day(app):
    first = app.handle("GET", "/cornerstore/store/CS1/products").body
    assert app.handle("GET", "/cornerstore/store/CS1/products").body is first
    app.set_day(1)
    assert app.handle("GET", "/cornerstore/store/CS1/products").body is not first
