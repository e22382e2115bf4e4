"""Scrape planning (DESIGN.md §4 step 1): which stores a run scrapes."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Sequence

import psycopg

from pricegroups.errors import ConfigError
from pricegroups.settings import Settings

_STORES = """
SELECT s.store_id, s.chain_id, c.code, s.store_id = g.anchor_store_id AS is_anchor,
       s.last_verified_at, s.needs_verification, count(*) OVER (PARTITION BY s.group_id) AS group_size
FROM stores s
JOIN chains c USING (chain_id)
JOIN store_groups g ON g.group_id = s.group_id
WHERE s.active AND (%(chains)s::text[] IS NULL OR c.code = ANY(%(chains)s))
ORDER BY s.store_id
"""


def plan_scrape(
    conn: psycopg.Connection,
    as_of: datetime,
    settings: Settings,
    stores: Sequence[int] | None = None,
    chains: Sequence[str] | None = None,
    full_scrape: bool = False,
) -> list[int]:
    """Store ids to scrape this run, sorted.

    * every anchor, so each group's price list is current;
    * members due for verification (not verified for `verify_interval_days`),
      oldest first, at most `verify_budget_share` of a chain's members a run;
    * members that need verification in their present group (placed by a merge
      of two groups that both had members), whatever the budget;
    * every store of a chain whose stores are all still ungrouped (bootstrap),
      or of every chain with `full_scrape`.

    `stores` restricts the run to those stores plus their groups' anchors
    (a member's verification needs its anchor's current pricing);
    `chains` restricts it to those chain codes.
    """
    rows = conn.execute(_STORES, {"chains": list(chains) if chains else None}).fetchall()
    if chains:
        unknown = set(chains) - {r[2] for r in rows}
        if unknown:
            known = {c for (c,) in conn.execute("SELECT code FROM chains WHERE code = ANY(%s)", (list(unknown),))}
            if unknown - known:
                raise ConfigError(f"unknown chain code(s): {', '.join(sorted(unknown - known))}")
    if stores is not None:
        wanted = set(stores)
        missing = wanted - {r[0] for r in rows}
        if missing:
            raise ConfigError(f"unknown or inactive store id(s) for this run: {sorted(missing)[:10]}")
        return _named_with_anchors(conn, sorted(wanted))
    due_before = as_of - timedelta(days=settings.verify_interval_days)
    by_chain: dict[int, list[tuple]] = {}
    for row in rows:
        by_chain.setdefault(row[1], []).append(row)
    plan: set[int] = set()
    for chain_rows in by_chain.values():
        if full_scrape or all(size == 1 for *_, size in chain_rows):
            plan.update(r[0] for r in chain_rows)
            continue
        members = [r for r in chain_rows if not r[3]]
        plan.update(r[0] for r in chain_rows if r[3])
        # never verified in their group (a merge of two groups with members unverifies them):
        # the integrity chain needs them checked now, whatever the budget
        plan.update(r[0] for r in members if r[5])
        budget = math.ceil(settings.verify_budget_share * len(members))
        due = [r for r in members if not r[5] and (r[4] is None or r[4] <= due_before)]
        due.sort(key=lambda r: (r[4] is not None, r[4] or as_of, r[0]))
        plan.update(r[0] for r in due[:budget])
    return sorted(plan)


def _named_with_anchors(conn: psycopg.Connection, store_ids: list[int]) -> list[int]:
    rows = conn.execute(
        """SELECT DISTINCT unnest(ARRAY[s.store_id, g.anchor_store_id])
           FROM stores s JOIN store_groups g ON g.group_id = s.group_id WHERE s.store_id = ANY(%s)""",
        (store_ids,),
    ).fetchall()
    return sorted(r[0] for r in rows)
