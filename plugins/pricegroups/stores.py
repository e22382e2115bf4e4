"""Chains and stores as the pipeline knows them; every new store starts alone in its own group."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

import psycopg
from psycopg.types.json import Jsonb

from pricegroups.errors import ConfigError

# What a chain code may be: the DAG's trigger form, the run params and `chains add` check it with this; the
# chains table's CHECK constraint (sql/0001_core.sql, migrations are forward-only) says the same, and a test
# holds the two together.
CHAIN_CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


def check_chain_code(code: str) -> str:
    """`code` when it is a valid chain code, else a ConfigError saying what a chain code may be."""
    if not isinstance(code, str) or not re.match(CHAIN_CODE_PATTERN, code):
        raise ConfigError(f"chain code: expected text matching {CHAIN_CODE_PATTERN!r}, got {code!r}")
    return code


@dataclass(frozen=True)
class StoreInfo:
    code: str
    name: str | None = None
    address: str | None = None


def ensure_chain(
    conn: psycopg.Connection,
    code: str,
    name: str,
    base_url: str | None = None,
    site_profile: Mapping[str, Any] | None = None,
    requests_per_second: float | None = None,
) -> int:
    """Insert or update a chain by code; return its chain_id. None keeps what is stored."""
    row = conn.execute(
        """INSERT INTO chains (code, name, base_url, site_profile, requests_per_second) VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (code) DO UPDATE
               SET name = EXCLUDED.name,
                   base_url = coalesce(EXCLUDED.base_url, chains.base_url),
                   requests_per_second = coalesce(EXCLUDED.requests_per_second, chains.requests_per_second),
                   site_profile = CASE WHEN EXCLUDED.site_profile = '{}'::jsonb
                                       THEN chains.site_profile ELSE EXCLUDED.site_profile END
           RETURNING chain_id""",
        (code, name, base_url, Jsonb(dict(site_profile or {})), requests_per_second),
    ).fetchone()
    return row[0]


def ensure_stores(
    conn: psycopg.Connection,
    chain_id: int,
    stores: Iterable[StoreInfo],
    at: datetime,
    run_id: str | None = None,
) -> dict[str, int]:
    """Add the stores a chain does not have yet, each as the anchor of a new group of one.

    Existing stores keep their group; their name and address are refreshed.
    Returns store_id by code for every store given. Set-based: a handful of
    statements whatever the number of stores.
    """
    stores = list(stores)
    codes = [s.code for s in stores]
    names = [s.name for s in stores]
    addresses = [s.address for s in stores]
    with conn.transaction():
        conn.execute(
            """UPDATE stores s SET name = coalesce(i.name, s.name), address = coalesce(i.address, s.address)
               FROM unnest(%s::text[], %s::text[], %s::text[]) AS i(code, name, address)
               WHERE s.chain_id = %s AND s.code = i.code""",
            (codes, names, addresses, chain_id),
        )
        conn.execute(
            """WITH fresh AS (
                   SELECT i.code, i.name, i.address,
                          nextval(pg_get_serial_sequence('stores', 'store_id')) AS store_id,
                          nextval(pg_get_serial_sequence('store_groups', 'group_id')) AS group_id
                   FROM unnest(%(codes)s::text[], %(names)s::text[], %(addresses)s::text[]) AS i(code, name, address)
                   WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.chain_id = %(chain)s AND s.code = i.code)
               ),
               groups AS (
                   INSERT INTO store_groups (group_id, chain_id, anchor_store_id, created_at, created_run_id)
                   SELECT group_id, %(chain)s, store_id, %(at)s, %(run)s FROM fresh
               ),
               new_stores AS (
                   INSERT INTO stores (store_id, chain_id, code, name, address, group_id)
                   SELECT store_id, %(chain)s, code, name, address, group_id FROM fresh
               )
               INSERT INTO group_events (run_id, chain_id, kind, group_id, store_id, evidence, created_at)
               SELECT %(run)s, %(chain)s, 'created', group_id, store_id,
                      %(evidence)s::jsonb, %(at)s
               FROM fresh""",
            {
                "codes": codes,
                "names": names,
                "addresses": addresses,
                "chain": chain_id,
                "at": at,
                "run": run_id,
                "evidence": json.dumps({"reason": "new store starts ungrouped"}),
            },
        )
    rows = conn.execute(
        "SELECT code, store_id FROM stores WHERE chain_id = %s AND code = ANY(%s)", (chain_id, codes)
    ).fetchall()
    return dict(rows)
