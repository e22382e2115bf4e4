"""The `pricegroups` Airflow plugin: the Price groups page in the UI's navigation and a tab on every run.

Thin glue over `pricegroups.ui` (docs/ui.md):

* `fastapi_apps`: the views' app under /pricegroups. Airflow does not protect
  plugin endpoints, so every route depends on Airflow's own
  `requires_access_dag("GET", RUN)`: the caller is authenticated exactly as
  Airflow's REST API and UI authenticate (`get_user`: the JWT in the
  `Authorization: Bearer` header or the UI's `_token` cookie; 401 without one,
  403 for a bad one) and must be allowed to read pricegroups_daily's runs
  (403 otherwise). It reads the `pricegroups_db` connection in READ ONLY
  transactions.
* `external_views`: "Price groups" at the top of the navigation, and a
  "Price groups" tab on each DAG run's page (`{DAG_ID}` and `{RUN_ID}` are
  filled in by the UI; runs of other DAGs get a one-line note).

Airflow imports every file in plugins/ in every process (scheduler, DAG
processor, each task), so importing this file does no work: the app, FastAPI
and Airflow's API modules are only loaded on the first request to the API server.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from airflow.plugins_manager import AirflowPlugin

DAG_ID = "pricegroups_daily"
CONN_ID = "pricegroups_db"
URL_PREFIX = "/pricegroups"


@contextmanager
def _database() -> Iterator[Any]:
    """A psycopg connection to the `pricegroups_db` Airflow connection (as the DAG's tasks open it)."""
    import psycopg
    from airflow.sdk import BaseHook

    from pricegroups.db import conninfo_from_fields

    c = BaseHook.get_connection(CONN_ID)
    conninfo = conninfo_from_fields(c.host, c.port, c.login, c.password, c.schema, c.extra_dejson)
    with psycopg.connect(conninfo, application_name="pricegroups-ui") as conn:
        yield conn


def build_app() -> Any:
    """The views' FastAPI app, every route guarded by Airflow's read access to the DAG's runs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    from pricegroups.ui.app import create_app

    return create_app(_database, requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID), DAG_ID)


class BuiltOnFirstRequest:
    """An ASGI app that builds the real one when the first request arrives (never at import)."""

    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
        return self._app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        await self.app(scope, receive, send)


views = BuiltOnFirstRequest(build_app)


class PricegroupsPlugin(AirflowPlugin):
    name = "pricegroups"
    fastapi_apps = [{"app": views, "url_prefix": URL_PREFIX, "name": "pricegroups"}]
    external_views = [
        {
            "name": "Price groups",
            "href": f"{URL_PREFIX}/groups",
            "destination": "nav",
            "url_route": "price-groups",
            "nav_top_level": True,
        },
        {
            "name": "Price groups",
            "href": f"{URL_PREFIX}/runs/{{RUN_ID}}?dag_id={{DAG_ID}}",
            "destination": "dag_run",
            "url_route": "pricegroups-run",
        },
    ]
