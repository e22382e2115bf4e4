"""Fixtures shared by every tier.

Each database test gets its own fresh database, cloned from a template that
was migrated once per set of migration files (CREATE DATABASE ... TEMPLATE
takes milliseconds; migrating from scratch would not). The server is
DATABASE_URL when set, else the embedded PostgreSQL.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import Iterator

import psycopg
import pytest
from psycopg import sql

from pricegroups import db
from pricegroups.migrate import discover, migrate
from tests import states
from tests.databases import create_database, drop_database

pytest_plugins = ["tests.demo_site_fixtures", "tests.story"]

_counter = itertools.count()
TEMPLATE_LOCK = 0x74706C  # advisory lock while one process builds the template


def _server_url() -> str:
    return os.environ.get("DATABASE_URL") or db.embedded_server_url()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controlling process: its xdist workers inherit the id
        states.new_session()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        states.clean_up(_server_url)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked slow first, in collection order otherwise: `make test` gives each file to one worker,
    and starting the longest files first keeps a long one from running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL to a maintenance database on the server tests may create databases on."""
    return _server_url()


def _migrations_digest() -> str:
    digest = hashlib.sha256()
    for migration in discover():
        digest.update(migration.path.name.encode())
        digest.update(migration.checksum.encode())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def template_database(server_url: str) -> str:
    name = f"pgt_template_{_migrations_digest()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (TEMPLATE_LOCK,))
        try:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                building = name + "_build"
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
                with psycopg.connect(db.with_database(server_url, building)) as conn:
                    migrate(conn)
                admin.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name))
                )
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (TEMPLATE_LOCK,))
    return name


@pytest.fixture(scope="session")
def states_cache(server_url: str, template_database: str) -> states.States:
    """Named database states built once per session (by whichever worker needs one first), cloned per test."""
    return states.States(server_url, template_database)


@pytest.fixture
def db_url(server_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"pgt_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        create_database(admin, name, template_database)
    try:
        yield db.with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            drop_database(admin, name)


@pytest.fixture
def empty_db_url(server_url: str) -> Iterator[str]:
    """A fresh database with no schema at all, for migration tests."""
    name = f"pgt_{os.getpid()}_{next(_counter)}_empty"
    with psycopg.connect(server_url, autocommit=True) as admin:
        create_database(admin, name)
    try:
        yield db.with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            drop_database(admin, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as connection:
        yield connection
