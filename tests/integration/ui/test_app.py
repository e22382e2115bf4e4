"""The views' app mounted like Airflow mounts it, over real PostgreSQL: guarded, validated, read-only.

Airflow's own authentication is tested with the plugin in tests/dag/test_ui_plugin.py;
here the guard is a stand-in with the same contract (raise 401 for a stranger).
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import psycopg
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from pricegroups.settings import Settings
from pricegroups.ui import queries
from pricegroups.ui.app import create_app
from tests.integration.ui.history import History, build, prune_run_0

RUN_KEEP_DAYS = 45  # not the default: the pruned view must say the app's own setting

ROUTES = ["/pricegroups/", "/pricegroups/groups", "/pricegroups/groups?chain=acme", "/pricegroups/runs/run-1",
          "/pricegroups/api/chains", "/pricegroups/api/groups?chain=acme", "/pricegroups/api/overview?chain=acme",
          "/pricegroups/api/events", "/pricegroups/api/runs/run-1",
          "/pricegroups/api/groups?chain=BAD%20CODE", "/pricegroups/api/runs/nope"]


def guard(request: Request) -> str:
    if request.headers.get("authorization") != "Bearer operator":
        raise HTTPException(status_code=401, detail="Not authenticated")
    return "operator"


@pytest.fixture
def opened() -> list[psycopg.Connection]:
    return []


@pytest.fixture
def history(conn) -> History:
    return build(conn)


@pytest.fixture
def client(db_url: str, history, opened) -> TestClient:
    @contextmanager
    def connect():
        with psycopg.connect(db_url) as c:
            opened.append(c)
            yield c

    root = FastAPI()
    root.mount("/pricegroups", create_app(connect, guard, "pricegroups_daily",
                                          Settings(run_keep_days=RUN_KEEP_DAYS)))
    return TestClient(root, headers={"Authorization": "Bearer operator"}, follow_redirects=False)


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_a_caller_without_credentials(client, path):
    response = client.get(path, headers={"Authorization": ""})
    assert response.status_code == 401, (path, response.text[:200])
    assert "acme" not in response.text


def test_no_openapi_or_docs_route_bypasses_the_guard(client):
    for path in ("/pricegroups/docs", "/pricegroups/openapi.json", "/pricegroups/redoc"):
        assert client.get(path, headers={"Authorization": ""}).status_code in (401, 404)
        assert client.get(path).status_code == 404


def test_groups_json_is_the_chains_groups(client, conn):
    response = client.get("/pricegroups/api/groups", params={"chain": "acme"})
    assert response.status_code == 200
    body = response.json()
    assert body["chain"] == "acme"
    expected = queries.groups(conn, "acme")
    assert [g["group_id"] for g in body["groups"]] == [g["group_id"] for g in expected]
    assert [m["store"] for m in body["groups"][0]["members"]] == [m["store"] for m in expected[0]["members"]]
    assert body["groups"][0]["anchor"]["scraped_at"].startswith("2026-11-01T06:00:00")


@pytest.mark.parametrize("params, status", [
    ({"chain": "ACME"}, 422), ({"chain": "acme' OR '1'='1"}, 422), ({"chain": "x" * 65}, 422), ({}, 422),
    ({"chain": "nope"}, 404),
])
def test_query_parameters_are_validated(client, params, status):
    response = client.get("/pricegroups/api/groups", params=params)
    assert response.status_code == status, response.text


def test_nothing_can_be_written_through_the_app(client, opened):
    assert client.post("/pricegroups/api/groups?chain=acme").status_code == 405
    assert client.get("/pricegroups/api/chains").status_code == 200
    assert opened and all(c.read_only for c in opened)


def test_the_page_shows_every_group_and_every_store_on_the_map(client, conn):
    response = client.get("/pricegroups/groups")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    groups = queries.groups(conn, "acme")
    assert re.findall(r"data-group='(\d+)' data-anchor='([^']+)'", page) == [
        (str(g["group_id"]), g["anchor"]["store"]) for g in groups]
    mapped = re.findall(r'class="store" data-store="([^"]+)" data-group="(\d+)"', page)
    assert sorted(mapped) == sorted((m, str(g["group_id"])) for g in groups
                                    for m in [g["anchor"]["store"]] + [x["store"] for x in g["members"]])
    assert "Stores scraped per daily run" in page and "Served prices wrong (self-measured)" in page
    assert "href='/pricegroups/runs/run-1'" in page  # links stay inside the app, under its mount prefix
    assert "<script" not in page
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_the_chain_filter_narrows_the_page(client, conn):
    conn.execute("INSERT INTO chains (code, name) VALUES ('other', 'Other')")
    conn.commit()
    assert "data-chain='other'" in client.get("/pricegroups/groups").text
    page = client.get("/pricegroups/groups", params={"chain": "acme"}).text
    assert "data-chain='acme'" in page and "data-chain='other'" not in page
    assert client.get("/pricegroups/groups", params={"chain": "nope"}).status_code == 404


def test_the_run_view_shows_what_the_run_scraped_decided_and_measured(client, history):
    page = client.get("/pricegroups/runs/run-1", params={"dag_id": "pricegroups_daily"}).text
    assert "<h1>Run run-1</h1>" in page
    assert "data-chain='acme' data-scraped='5'" in page
    assert f"data-store='{history.failed}'" in page and "HTTP 503" in page
    decisions = client.get("/pricegroups/runs/run-0").text
    assert decisions.count("data-kind='merged'") == 8
    other = client.get("/pricegroups/runs/run-1", params={"dag_id": "someone_elses_dag"})
    assert other.status_code == 200 and "another DAG" in other.text and "data-scraped" not in other.text
    missing = client.get("/pricegroups/runs/manual__2026-01-01T00:00:00+00:00")
    assert missing.status_code == 404 and "no pricegroups run" in missing.text


def test_the_run_data_as_json(client):
    body = client.get("/pricegroups/api/runs/run-1").json()
    assert set(body) == {"run", "pruned", "scraped", "upsert", "decisions", "measured"}
    assert body["pruned"] is False
    assert body["measured"]["random"]["checked"] == 40
    assert client.get("/pricegroups/api/runs/nope").status_code == 404
    events = client.get("/pricegroups/api/events", params={"run_id": "run-0", "limit": 3}).json()
    assert len(events) == 3 and {e["kind"] for e in events} == {"merged"}


def test_a_pruned_runs_page_says_why_and_shows_its_kept_group_events(client, conn):
    prune_run_0(conn, Settings(run_keep_days=RUN_KEEP_DAYS))
    response = client.get("/pricegroups/runs/run-0", params={"dag_id": "pricegroups_daily"})
    assert response.status_code == 200, response.text[:300]
    page = response.text
    assert (f"This run&#x27;s records were pruned after run_keep_days = {RUN_KEEP_DAYS} days "
            "(docs/operations.md); its group events are kept.") in page
    assert "data-pruned='true'" in page and page.count("data-kind='merged'") == 8
    assert "<table class='scraped'>" not in page and "No member was verified" not in page
    body = client.get("/pricegroups/api/runs/run-0").json()
    assert body["pruned"] is True and body["pruned_by"] == {"setting": "run_keep_days", "days": RUN_KEEP_DAYS}
    assert body["decisions"]["counts"] == {"merged": 8}
    assert body["run"]["logical_date"].startswith("2026-11-01")
    view = queries.run(conn, "run-0", RUN_KEEP_DAYS)
    assert set(body) == set(view)
    assert all(body[part] == view[part] for part in ("scraped", "upsert", "measured"))
    ids = [e["event_id"] for e in view["decisions"]["events"]]
    assert [e["event_id"] for e in body["decisions"]["events"]] == ids
    assert client.get("/pricegroups/runs/never-ran").status_code == 404
    assert client.get("/pricegroups/api/runs/never-ran").status_code == 404


def test_the_root_sends_to_the_groups_page(client):
    response = client.get("/pricegroups/")
    assert response.status_code == 307 and response.headers["location"] == "/pricegroups/groups"
