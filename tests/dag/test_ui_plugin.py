"""The `pricegroups` Airflow plugin: loads with no work at import, and Airflow's own auth guards every route.

The app is the plugin's, built with Airflow's `requires_access_dag` and the
simple auth manager's real JWTs; the data comes from a real PostgreSQL through
the `pricegroups_db` connection, as in the API server.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUTES = ["/pricegroups/groups", "/pricegroups/groups?chain=acme", "/pricegroups/runs/run-1?dag_id=pricegroups_daily",
          "/pricegroups/api/chains", "/pricegroups/api/groups?chain=acme", "/pricegroups/api/overview?chain=acme",
          "/pricegroups/api/events?chain=acme", "/pricegroups/api/runs/run-1", "/pricegroups/api/groups?chain=BAD"]


def load_plugins() -> tuple[list, dict]:
    from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory

    sys.modules.pop("pricegroups_ui_plugin", None)
    return _load_plugins_from_plugin_directory(plugins_folder=str(ROOT / "plugins"))


def test_the_plugin_loads_from_the_plugins_folder_without_touching_a_database(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the plugin opened a connection at import")

    monkeypatch.setattr(psycopg, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("AIRFLOW_CONN_PRICEGROUPS_DB", raising=False)
    plugins, errors = load_plugins()
    assert errors == {}
    (plugin,) = [p for p in plugins if p.name == "pricegroups"]
    (app,) = plugin.fastapi_apps
    assert app["url_prefix"] == "/pricegroups" and callable(app["app"])
    assert app["app"]._app is None, "the app is built on the first request, not at import"
    views = {v["destination"]: v for v in plugin.external_views}
    assert views["nav"]["name"] == "Price groups" and views["nav"]["href"] == "/pricegroups/groups"
    assert views["dag_run"]["href"] == "/pricegroups/runs/{RUN_ID}?dag_id={DAG_ID}"
    assert {v["url_route"] for v in plugin.external_views} == {"price-groups", "pricegroups-run"}


def test_the_plugin_is_listed_as_the_rest_api_lists_plugins():
    from airflow.api_fastapi.core_api.datamodels.plugins import PluginResponse
    from airflow.plugins_manager import get_plugin_info

    info = [p for p in get_plugin_info() if p["name"] == "pricegroups"]
    assert len(info) == 1
    listed = PluginResponse.model_validate(info[0])  # what GET /api/v2/plugins returns for it
    assert [a.url_prefix for a in listed.fastapi_apps] == ["/pricegroups"]
    assert sorted(v.destination for v in listed.external_views) == ["dag_run", "nav"]


@pytest.fixture
def client(airflow_db, db_url, conn, monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app
    from pricegroups.db import airflow_connection_json
    from tests.integration.ui.history import build

    build(conn)
    monkeypatch.setenv("AIRFLOW_CONN_PRICEGROUPS_DB", airflow_connection_json(db_url))
    purge_cached_app()
    init_auth_manager()
    plugins, _ = load_plugins()
    (plugin,) = [p for p in plugins if p.name == "pricegroups"]
    root = FastAPI()
    root.mount("/pricegroups", plugin.fastapi_apps[0]["app"])
    yield TestClient(root)
    purge_cached_app()


def token(role: str = "admin", **kwargs) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=role, role=role), **kwargs)


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_an_unauthenticated_call(client, path):
    response = client.get(path)
    assert response.status_code == 401, response.text[:200]
    assert "acme" not in response.text


@pytest.mark.parametrize("path", ROUTES[:5])
def test_a_forged_or_expired_token_is_refused(client, path):
    forged = token()[:-4] + "AAAA"
    assert client.get(path, headers={"Authorization": f"Bearer {forged}"}).status_code == 403
    expired = token(expiration_time_in_seconds=-60)
    assert client.get(path, headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_a_signed_in_user_reads_the_groups_with_the_apis_bearer_token_or_the_uis_cookie(client, conn):
    from pricegroups.ui import queries

    expected = [g["group_id"] for g in queries.groups(conn, "acme")]
    bearer = client.get("/pricegroups/api/groups", params={"chain": "acme"},
                        headers={"Authorization": f"Bearer {token('viewer')}"})
    assert bearer.status_code == 200 and [g["group_id"] for g in bearer.json()["groups"]] == expected
    client.cookies.set("_token", token())
    page = client.get("/pricegroups/groups", params={"chain": "acme"})
    assert page.status_code == 200 and page.text.count("class='group' data-group=") == len(expected)
    run = client.get("/pricegroups/api/runs/run-1")
    assert run.status_code == 200 and run.json()["run"]["run_type"] == "scheduled"


def test_a_user_without_read_access_to_the_dags_runs_is_forbidden(client, monkeypatch):
    from airflow.api_fastapi.app import get_auth_manager

    asked = []

    def deny(**kwargs):
        asked.append(kwargs)
        return False

    monkeypatch.setattr(get_auth_manager(), "is_authorized_dag", deny)
    response = client.get("/pricegroups/api/chains", headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 403
    assert asked[0]["method"] == "GET" and asked[0]["details"].id == "pricegroups_daily"
