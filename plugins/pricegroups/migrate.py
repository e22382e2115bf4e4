"""Forward-only, versioned SQL migrations from sql/NNNN_name.sql.

Each pending file is applied in its own transaction and recorded with a
SHA-256 checksum. A session-level advisory lock makes concurrent runners
(several Airflow workers starting at once) apply each file exactly once. An
applied file that was edited or removed stops the runner: the database would
no longer match the code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pricegroups.errors import MigrationError
from pricegroups.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x70726963  # arbitrary, fixed: "pric"
FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def sql_dir() -> Path:
    return Path(os.environ.get("PRICEGROUPS_SQL_DIR") or PROJECT_ROOT / "sql")


def discover(directory: Path | None = None) -> list[Migration]:
    """The migrations on disk, in version order; stray or duplicate files are an error."""
    directory = directory or sql_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_lower_snake.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations with version {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def migrate(conn: psycopg.Connection, directory: Path | None = None) -> list[int]:
    """Apply pending migrations; return the versions applied by this call (empty if none)."""
    migrations = discover(directory)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise MigrationError("migrate() needs a connection that is not inside a transaction")
    previous_autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            return _apply_pending(conn, migrations)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    finally:
        conn.autocommit = previous_autocommit


def _apply_pending(conn: psycopg.Connection, migrations: list[Migration]) -> list[int]:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    applied = {v: (n, c) for v, n, c in conn.execute("SELECT version, name, checksum FROM schema_migrations")}
    on_disk = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = on_disk.get(version)
        if migration is None:
            raise MigrationError(f"migration {version:04d}_{name}.sql was applied but is missing from disk")
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.path.name} was edited after it was applied (checksum differs); "
                "migrations are forward-only: revert the edit and add a new file"
            )
    done: list[int] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
        log.info("applied migration %s", migration.path.name)
        done.append(migration.version)
    return done


def applied_versions(conn: psycopg.Connection) -> list[int]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
