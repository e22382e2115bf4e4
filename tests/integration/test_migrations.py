"""The migration runner: idempotent, concurrent-safe, refuses edited history."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from pricegroups.errors import MigrationError
from pricegroups.migrate import applied_versions, discover, migrate


def _schema_fingerprint(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public' ORDER BY 1, 2"""
    ).fetchall()


def test_migrate_applies_every_file_then_nothing_on_second_run(empty_db_url):
    with psycopg.connect(empty_db_url) as conn:
        first = migrate(conn)
        fingerprint = _schema_fingerprint(conn)
        conn.commit()
        second = migrate(conn)
        assert first == [m.version for m in discover()]
        assert second == []
        assert _schema_fingerprint(conn) == fingerprint
        assert applied_versions(conn) == first


def test_edited_applied_migration_is_refused(empty_db_url, tmp_path: Path):
    sql_copy = tmp_path / "sql"
    shutil.copytree(Path(discover()[0].path).parent, sql_copy)
    with psycopg.connect(empty_db_url) as conn:
        migrate(conn, sql_copy)
        first = sorted(sql_copy.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
        with pytest.raises(MigrationError, match="edited after it was applied"):
            migrate(conn, sql_copy)


def test_missing_applied_migration_is_refused(empty_db_url, tmp_path: Path):
    sql_copy = tmp_path / "sql"
    shutil.copytree(Path(discover()[0].path).parent, sql_copy)
    with psycopg.connect(empty_db_url) as conn:
        migrate(conn, sql_copy)
        sorted(sql_copy.glob("*.sql"))[-1].unlink()
        with pytest.raises(MigrationError, match="missing from disk"):
            migrate(conn, sql_copy)


def test_new_file_is_applied_in_its_own_transaction_and_a_failing_one_rolls_back(empty_db_url, tmp_path: Path):
    sql_copy = tmp_path / "sql"
    shutil.copytree(Path(discover()[0].path).parent, sql_copy)
    with psycopg.connect(empty_db_url) as conn:
        migrate(conn, sql_copy)
        (sql_copy / "9001_add_note.sql").write_text("CREATE TABLE note (id int);")
        (sql_copy / "9002_broken.sql").write_text("CREATE TABLE half (id int);\nSELECT no_such_function();")
        with pytest.raises(psycopg.errors.UndefinedFunction):
            migrate(conn, sql_copy)
        conn.rollback()
        assert 9001 in applied_versions(conn)
        assert 9002 not in applied_versions(conn)
        assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None


def test_badly_named_file_is_refused(tmp_path: Path):
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lower_snake"):
        discover(tmp_path)


def test_concurrent_runners_apply_each_migration_once(empty_db_url):
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(empty_db_url) as conn:
                results.append(migrate(conn))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in discover()]
