"""Operator actions on groups: reset a chain to ungrouped stores, and show the groups."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from pricegroups.errors import ConfigError

_RESET = """
WITH moving AS (
    SELECT s.store_id, s.chain_id, s.group_id AS old_group,
           nextval(pg_get_serial_sequence('store_groups', 'group_id')) AS group_id
    FROM stores s JOIN store_groups g ON g.group_id = s.group_id
    WHERE s.store_id <> g.anchor_store_id AND (%(chain)s::int IS NULL OR s.chain_id = %(chain)s)
),
made AS (
    INSERT INTO store_groups (group_id, chain_id, anchor_store_id, created_at, created_run_id)
    SELECT group_id, chain_id, store_id, %(at)s, %(run)s FROM moving
),
moved AS (
    UPDATE stores s SET group_id = m.group_id FROM moving m WHERE s.store_id = m.store_id
)
INSERT INTO group_events (run_id, chain_id, kind, group_id, other_group_id, store_id, evidence, created_at)
SELECT %(run)s, chain_id, 'reset', group_id, old_group, store_id, %(evidence)s::jsonb, %(at)s FROM moving
RETURNING store_id
"""


def reset_groups(conn: psycopg.Connection, chain_code: str | None, at: datetime, run_id: str | None = None) -> int:
    """Put every store of a chain (or of every chain) alone in a group of its own; returns stores moved.

    Anchors keep their group; every member moves to a new group it anchors.
    A member's deduplicated rows come back with its next scrape (the plan
    bootstraps a chain whose stores are all ungrouped). Logged as `reset` events.
    """
    chain_id = _chain_id(conn, chain_code) if chain_code else None
    evidence = json.dumps({"reason": "groups reset by operator", "chain": chain_code})
    with conn.transaction():
        rows = conn.execute(_RESET, {"chain": chain_id, "at": at, "run": run_id, "evidence": evidence}).fetchall()
    return len(rows)


@dataclass
class GroupView:
    chain: str
    group_id: int
    anchor: str
    anchor_scraped_at: datetime | None
    members: list[tuple[str, datetime | None, datetime | None]] = field(default_factory=list)  # code, verified, scraped


def show_groups(conn: psycopg.Connection, chain_code: str | None = None) -> list[GroupView]:
    """Groups with their anchor and members, larger groups first."""
    chain_id = _chain_id(conn, chain_code) if chain_code else None
    rows = conn.execute(
        """SELECT c.code, g.group_id, a.code, a.last_scraped_at, s.code, s.last_verified_at, s.last_scraped_at,
                  s.store_id = g.anchor_store_id
           FROM store_groups g
           JOIN chains c ON c.chain_id = g.chain_id
           JOIN stores a ON a.store_id = g.anchor_store_id
           JOIN stores s ON s.group_id = g.group_id
           WHERE %(chain)s::int IS NULL OR g.chain_id = %(chain)s
           ORDER BY c.code, g.group_id, s.code""",
        {"chain": chain_id},
    ).fetchall()
    views: dict[int, GroupView] = {}
    for chain, group, anchor, anchor_seen, code, verified, scraped, is_anchor in rows:
        view = views.setdefault(group, GroupView(chain, group, anchor, anchor_seen))
        if not is_anchor:
            view.members.append((code, verified, scraped))
    return sorted(views.values(), key=lambda v: (v.chain, -len(v.members), v.group_id))


def _chain_id(conn: psycopg.Connection, code: str) -> int:
    row = conn.execute("SELECT chain_id FROM chains WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise ConfigError(f"unknown chain code {code!r}")
    return row[0]
