"""catalogue_flags: what the catalogue noticed but would not guess about, one row per subject."""

from __future__ import annotations

import json
from typing import Any, Iterable, NamedTuple

import psycopg


class Flag(NamedTuple):
    kind: str
    subject: str  # the stable identity of what is flagged: the same problem is one row
    chain_id: int | None = None
    store_id: int | None = None
    sku: str | None = None
    product_id: int | None = None
    detail: dict[str, Any] | None = None


_COLUMNS = "kind, subject, chain_id, store_id, sku, product_id, detail"

_INSERT = f"""
WITH found (kind, subject, chain_id, store_id, sku, product_id, detail) AS ({{query}}),
written AS (
    INSERT INTO catalogue_flags AS f ({_COLUMNS}, first_run_id, last_run_id)
    SELECT DISTINCT ON (kind, subject) {_COLUMNS}, %(run)s, %(run)s FROM found
    ORDER BY kind, subject
    ON CONFLICT (kind, subject) DO UPDATE SET last_run_id = EXCLUDED.last_run_id
        WHERE f.last_run_id IS DISTINCT FROM EXCLUDED.last_run_id
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) FROM written
"""


def flag_from_query(cur: psycopg.Cursor, run_id: str, query: str, params: dict[str, Any] | None = None) -> int:
    """Record the flags a SELECT of (kind, subject, chain_id, store_id, sku, product_id, detail) finds.

    Returns how many are new; a flag already recorded only has its last_run_id moved.
    """
    cur.execute(_INSERT.format(query=query), {**(params or {}), "run": run_id})
    return cur.fetchone()[0]


def record_flags(cur: psycopg.Cursor, run_id: str, flags: Iterable[Flag]) -> int:
    """Record flags computed in Python (one COPY, one statement)."""
    flags = list(flags)
    if not flags:
        return 0
    cur.execute("DROP TABLE IF EXISTS _flags")
    cur.execute(
        "CREATE TEMP TABLE _flags (kind text, subject text, chain_id integer, store_id integer,"
        " sku text, product_id bigint, detail jsonb) ON COMMIT DROP"
    )
    with cur.copy(f"COPY _flags ({_COLUMNS}) FROM STDIN") as copy:
        for flag in flags:
            copy.write_row((*flag[:6], json.dumps(flag.detail or {}, ensure_ascii=False)))
    return flag_from_query(cur, run_id, f"SELECT {_COLUMNS} FROM _flags")
