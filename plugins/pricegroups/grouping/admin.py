"""Operator actions on groups: reset a chain to ungrouped stores, and show the groups and their measured error."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import psycopg

from pricegroups.errors import ConfigError
from pricegroups.grouping.verification import error_report
from pricegroups.settings import ESTIMATE_DAYS

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


class MemberView(NamedTuple):
    code: str
    verified_at: datetime | None
    scraped_at: datetime | None
    overrides: int | None  # own rows served instead of the anchor's; None while its rows are observed
    checked: int | None  # its last measured verification: prices checked ...
    wrong: int | None  # ... and how many of the served ones were wrong
    measured_at: datetime | None


@dataclass
class GroupView:
    chain: str
    group_id: int
    anchor: str
    anchor_scraped_at: datetime | None
    members: list[MemberView] = field(default_factory=list)


def show_groups(conn: psycopg.Connection, chain_code: str | None = None) -> list[GroupView]:
    """Groups with their anchor and members (last verification, overrides), larger groups first."""
    chain_id = _chain_id(conn, chain_code) if chain_code else None
    rows = conn.execute(
        """SELECT c.code, g.group_id, a.code, a.last_scraped_at, s.code, s.last_verified_at, s.last_scraped_at,
                  s.store_id = g.anchor_store_id,
                  CASE WHEN s.store_id <> g.anchor_store_id AND s.last_verified_at IS NOT NULL
                            AND (s.last_scraped_at IS NULL OR s.last_scraped_at <= s.last_verified_at)
                       THEN (SELECT count(*) FROM prices p WHERE p.store_id = s.store_id) END,
                  lv.checked, lv.wrong, lv.measured_at
           FROM store_groups g
           JOIN chains c ON c.chain_id = g.chain_id
           JOIN stores a ON a.store_id = g.anchor_store_id
           JOIN stores s ON s.group_id = g.group_id
           LEFT JOIN (SELECT DISTINCT ON (store_id) store_id, checked, wrong, measured_at FROM verifications
                      WHERE checked IS NOT NULL AND (%(chain)s::int IS NULL OR chain_id = %(chain)s)
                      ORDER BY store_id, measured_at DESC) lv ON lv.store_id = s.store_id
           WHERE %(chain)s::int IS NULL OR g.chain_id = %(chain)s
           ORDER BY c.code, g.group_id, s.code""",
        {"chain": chain_id},
    ).fetchall()
    views: dict[int, GroupView] = {}
    for chain, group, anchor, anchor_seen, code, verified, scraped, is_anchor, *rest in rows:
        view = views.setdefault(group, GroupView(chain, group, anchor, anchor_seen))
        if not is_anchor:
            view.members.append(MemberView(code, verified, scraped, *rest))
    return sorted(views.values(), key=lambda v: (v.chain, -len(v.members), v.group_id))


def error_estimates(
    conn: psycopg.Connection, chain_code: str | None = None, days: int = ESTIMATE_DAYS
) -> tuple[dict[str, dict[str, Any]], datetime | None]:
    """Per chain, the estimated wrong share of served prices (`verification.estimates` "served"), and its end.

    The window is the `days` up to the newest measurement (not the wall clock: a
    backfill or the demo's simulated days measure at their logical dates).
    """
    chain_id = _chain_id(conn, chain_code) if chain_code else None
    newest = conn.execute(
        "SELECT max(measured_at) FROM verifications WHERE (%(c)s::int IS NULL OR chain_id = %(c)s)", {"c": chain_id}
    ).fetchone()[0]
    if newest is None:
        return {}, None
    report = error_report(conn, [chain_id] if chain_id else None, since=newest - timedelta(days=days))
    return report["served"]["chains"], newest


def _chain_id(conn: psycopg.Connection, code: str) -> int:
    row = conn.execute("SELECT chain_id FROM chains WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise ConfigError(f"unknown chain code {code!r}")
    return row[0]
