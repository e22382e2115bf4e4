"""The operator's views as a FastAPI app: HTML pages and the same data as JSON (docs/ui.md).

`create_app(connect, guard, dag_id)` takes its dependencies as arguments, so
the library never imports Airflow: the Airflow plugin passes Airflow's own
authentication and authorization dependency as `guard` (applied to every
route) and a `connect` that opens the `pricegroups_db` connection. `settings`
(default: `load_settings()`, the PRICEGROUPS_* variables the runs read too)
only names the `run_keep_days` that pruned a run the pages are asked for. Every
request reads in one READ ONLY transaction with a statement timeout; query
parameters are validated by pattern and bound as SQL parameters. There are
no OpenAPI or docs routes: every route is guarded.

Routes (under the mount prefix, "/pricegroups" in Airflow):

    GET /groups?chain=CODE          the Price groups page (every chain without `chain`)
    GET /runs/{run_id}?dag_id=ID    the run view
    GET /api/chains                 chains with stores and groups
    GET /api/groups?chain=CODE      {"chain": CODE, "groups": [...]}
    GET /api/overview?chain=CODE    one chain's page data: chain, groups, error, runs, events
    GET /api/events?chain=&run_id=&limit=   group changes with evidence
    GET /api/runs/{run_id}          one run's data: run, pruned, scraped, upsert, decisions, measured
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import Any, Callable, Iterator

import psycopg
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from pricegroups.settings import Settings, load_settings
from pricegroups.ui import pages, queries

CHAIN_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"  # as the chains table allows
DAG_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"  # as Airflow allows
STATEMENT_TIMEOUT = "15s"
# Inline styles and SVG only: no script, nothing from elsewhere; framed by the Airflow UI (same origin) only.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}

Connect = Callable[[], AbstractContextManager[psycopg.Connection]]


def create_app(
    connect: Connect, guard: Callable[..., Any], dag_id: str, settings: Settings | None = None,
) -> FastAPI:
    """The app; `guard` is a FastAPI dependency that raises 401/403 for a caller who may not read."""
    run_keep_days = (settings or load_settings()).run_keep_days  # said on a pruned run's view
    app = FastAPI(title="pricegroups", dependencies=[Depends(guard)], docs_url=None, redoc_url=None,
                  openapi_url=None)
    served = dag_id  # the route below has a query parameter of that name

    @contextmanager
    def reading() -> Iterator[psycopg.Connection]:
        with connect() as conn:
            conn.read_only = True  # nothing is written through these views, whatever a query does
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (STATEMENT_TIMEOUT,))
            yield conn

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(queries.NotFound)
    async def not_found(request: Request, exc: queries.NotFound) -> Response:
        if "/api/" in request.url.path:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return HTMLResponse(pages.message_page("Not found", str(exc)), status_code=404)

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        return RedirectResponse(pages.groups_href(base(request)), status_code=307)

    @app.get("/groups", response_class=HTMLResponse)
    def groups_page(
        request: Request,
        chain: str = Query("", max_length=64, pattern=r"^([a-z0-9][a-z0-9_-]*)?$"),
    ) -> HTMLResponse:
        with reading() as conn:
            every = queries.chains(conn)
            shown = [chain] if chain else [c["code"] for c in every]
            overviews = [queries.overview(conn, code) for code in shown]
            newest = queries.newest_run(conn)
        return HTMLResponse(pages.groups_page(base(request), every, chain or None, overviews, newest))

    @app.get("/runs/{run_id:path}", response_class=HTMLResponse)
    def run_page(
        request: Request,
        run_id: str,
        dag_id: str | None = Query(None, max_length=250, pattern=DAG_ID_PATTERN),
    ) -> HTMLResponse:
        if dag_id is not None and dag_id != served:
            return HTMLResponse(pages.message_page(
                "Price groups", f"This tab shows what {served} runs scraped, decided and measured; "
                                f"{dag_id} is another DAG."))
        _check_run_id(run_id)
        with reading() as conn:
            view = queries.run(conn, run_id, run_keep_days)
        return HTMLResponse(pages.run_page(base(request), view))

    @app.get("/api/chains")
    def api_chains() -> list[dict[str, Any]]:
        with reading() as conn:
            return queries.chains(conn)

    @app.get("/api/groups")
    def api_groups(chain: str = Query(..., max_length=64, pattern=CHAIN_PATTERN)) -> dict[str, Any]:
        with reading() as conn:
            return {"chain": chain, "groups": queries.groups(conn, chain)}

    @app.get("/api/overview")
    def api_overview(
        chain: str = Query(..., max_length=64, pattern=CHAIN_PATTERN),
        runs: int = Query(30, ge=1, le=400),
        events: int = Query(20, ge=0, le=1000),
    ) -> dict[str, Any]:
        with reading() as conn:
            return queries.overview(conn, chain, runs, events)

    @app.get("/api/events")
    def api_events(
        chain: str | None = Query(None, max_length=64, pattern=CHAIN_PATTERN),
        run_id: str | None = Query(None, min_length=1, max_length=250),
        limit: int = Query(20, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        with reading() as conn:
            return queries.events(conn, chain, run_id, limit=limit)

    @app.get("/api/runs/{run_id:path}")
    def api_run(run_id: str) -> dict[str, Any]:
        _check_run_id(run_id)
        with reading() as conn:
            return queries.run(conn, run_id, run_keep_days)

    return app


def _check_run_id(run_id: str) -> None:
    """A run id is a short printable string (Airflow's are at most 250 characters)."""
    if not run_id or len(run_id) > 250 or not run_id.isprintable():
        raise queries.NotFound(f"no pricegroups run {run_id[:60]!r}")
