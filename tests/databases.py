"""Creating and dropping the tests' databases, in one place.

Commits in a test database do not wait for their WAL flush (`synchronous_commit`
off, set on the database, so every connection to it has it, the DAG's tasks'
included): a test database need not survive a crash of the server, and on a
disk shared with other work each flush costs milliseconds, thousands of times
per run. What a transaction sees is unchanged.
"""

from __future__ import annotations

import psycopg
from psycopg import sql


def create_database(admin: psycopg.Connection, name: str, template: str | None = None) -> None:
    """(Re)create `name`, empty or as a copy of `template`; `admin` is an autocommit connection."""
    drop_database(admin, name)
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    admin.execute(create)
    admin.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name)))


def drop_database(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
