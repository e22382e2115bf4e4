"""The demo site's apps in-process: the store by header or cookie, their pages, events and refusals."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from pricegroups.demo.generate import compact_scenario
from pricegroups.demo.model import Event
from pricegroups.demo.scenario import Scenario
from pricegroups.demo.site import SiteApp
from pricegroups.errors import ConfigError


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return compact_scenario()


@pytest.fixture
def app(scenario) -> SiteApp:
    return SiteApp(scenario, 0)


def api(app: SiteApp, query: str = "", store: str | None = "VW001", **headers: str):
    if store:
        headers["X-Store-Id"] = store
    response = app.handle("GET", "/valueway/api/v1/products", query, headers=headers)
    return response.status, response.body


def state(body: bytes) -> dict:
    text = re.search(rb'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>', body, re.S).group(1)
    return json.loads(text)["props"]["pageProps"]


def test_two_stores_get_their_own_catalogue_from_one_url_by_header_or_cookie(app, scenario):
    for store in ("VW001", "VW002"):
        status, body = api(app, "limit=200", store)
        skus = [i["id"] for i in json.loads(body)["items"]]
        assert status == 200 and skus == [i.listing.sku for i in scenario.items("valueway", store, 0)][:200]
    for store in ("GG001", "GG002"):
        page = state(app.handle("GET", "/greengrocer/app/shop", "", headers={"Cookie": f"gg_store={store}"}).body)
        assert page["store"]["storeId"] == store
        assert page["catalogue"]["count"] == min(48, len(scenario.items("greengrocer", store, 0)))
    assert app.stats()["by_store"] == {"valueway/VW001": 1, "valueway/VW002": 1, "greengrocer/GG001": 1,
                                       "greengrocer/GG002": 1}


def test_the_api_pages_by_offset_or_page_and_links_the_next_page(app):
    first = json.loads(api(app, "limit=10")[1])
    assert (first["count"], first["offset"], first["links"]["next"]) == (10, 0, "?offset=10&limit=10")
    by_page = json.loads(api(app, "page=2&limit=10")[1])
    by_offset = json.loads(api(app, "offset=10&limit=10")[1])
    assert by_page["items"] == by_offset["items"] and by_page["offset"] == 10
    last = json.loads(api(app, f"offset={first['total'] - 3}&limit=10")[1])
    assert last["count"] == 3 and last["links"]["next"] is None
    assert json.loads(api(app, f"offset={first['total']}")[1])["items"] == []


def test_the_cursor_of_the_embedded_state_walks_the_whole_catalogue(app, scenario):
    skus, cursor = [], None
    while True:
        query = f"cursor={cursor}" if cursor else ""
        page = state(app.handle("GET", "/greengrocer/app/shop", query, headers={"Cookie": "gg_store=GG003"}).body)
        skus += [p["sku"] for p in page["catalogue"]["products"]]
        cursor = page["catalogue"]["nextCursor"]
        if cursor is None:
            break
    assert skus == [i.listing.sku for i in scenario.items("greengrocer", "GG003", 0)]


@pytest.mark.parametrize("query, store, headers, status", [
    ("", None, {}, 400),            # no store chosen
    ("", "XX999", {}, 404),         # no such store
    ("limit=0", "VW001", {}, 400),  # a page size out of range
    ("offset=-1", "VW001", {}, 400),
])
def test_the_api_refuses_what_it_cannot_answer_in_json(app, query, store, headers, status):
    got, body = api(app, query, store, **headers)
    assert got == status and "error" in json.loads(body)


def test_a_bad_cursor_is_refused(app):
    response = app.handle("GET", "/greengrocer/app/shop", "cursor=!!", headers={"Cookie": "gg_store=GG001"})
    assert response.status == 400


def test_a_site_started_with_an_api_key_answers_only_requests_carrying_it(scenario):
    keyed = SiteApp(scenario, 0, api_key="k3y")
    assert api(keyed)[0] == 401
    assert api(keyed, **{"X-Api-Key": "k3y"})[0] == 200
    assert keyed.handle("GET", "/valueway/api/v1/stores", "", headers={"X-Api-Key": "nope"}).status == 401


def test_the_store_lists_include_closed_stores_marked_closed(app, scenario):
    app.add_event(Event("store_closes", "valueway", day=0, store="VW003", mode="page"),
                  Event("store_closes", "greengrocer", day=0, store="GG002", mode="404"))
    listed = json.loads(app.handle("GET", "/valueway/api/v1/stores", "limit=200").body)
    assert len(listed["stores"]) == len(scenario.chain("valueway").stores) == listed["total"]
    assert [s["id"] for s in listed["stores"] if s["status"] == "closed"] == ["VW003"]
    stores = state(app.handle("GET", "/greengrocer/app/stores").body)["stores"]
    assert [s["storeId"] for s in stores if s["isClosed"]] == ["GG002"]
    closed = json.loads(api(app, "", "VW003")[1])
    assert closed["store"]["status"] == "closed" and closed["items"] == []
    gone = app.handle("GET", "/greengrocer/app/shop", "", headers={"Cookie": "gg_store=GG002"})
    assert gone.status == 404


def test_events_reach_the_apps_malformed_redesigned_and_truncated(app, scenario):
    app.add_event(Event("malformed", "valueway", day=0, store="VW001", page=1),
                  Event("layout_changed", "greengrocer", day=0),
                  Event("truncated", "valueway", day=0, store="VW002", fraction=0.5))
    with pytest.raises(json.JSONDecodeError):
        json.loads(api(app, "", "VW001")[1])
    body = app.handle("GET", "/greengrocer/app/shop", "", headers={"Cookie": "gg_store=GG001"}).body
    assert "catalogue" not in state(body) and "catalog" in state(body)
    total = len(scenario.items("valueway", "VW002", 0))
    assert json.loads(api(app, "", "VW002")[1])["total"] == (total + 1) // 2


def test_a_scenario_keeps_its_chains_apps_through_json_and_refuses_an_unknown_one(scenario, tmp_path):
    path = tmp_path / "scenario.json"
    scenario.save(path)
    loaded = Scenario.load(path)
    assert {c.code: c.app for c in loaded.chains.values()} == {"freshmart": None, "valueway": "api",
                                                               "greengrocer": "nextdata"}
    bad = dataclasses.replace(scenario.chain("freshmart"), app="graphql")
    with pytest.raises(ConfigError, match="app must be one of"):
        Scenario(seed=1, chains=[bad], events=(), days=14)
