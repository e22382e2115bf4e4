"""Scrape planning (DESIGN.md §4 step 1, §9): which stores a run scrapes, and why."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Sequence

import psycopg

from pricegroups.errors import ConfigError
from pricegroups.grouping.verification import plan_verification
from pricegroups.settings import Settings

_STORES = """
SELECT s.store_id, s.chain_id, c.code, s.store_id = g.anchor_store_id AS is_anchor
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
    reasons: dict[int, str] | None = None,
) -> list[int]:
    """Store ids to scrape this run, sorted.

    * every anchor, so each group's price list is current;
    * members to verify (`plan_verification`): those that need verification in
      their present group (placed by a merge of two groups that both had
      members) whatever the budget, then a budget of `verify_budget_share` of a
      chain's members spent every run, part drawn at random (seeded by the
      logical date) for an unbiased error estimate, the rest by risk;
    * every store of a chain whose stores are all still ungrouped (bootstrap),
      or of every chain with `full_scrape`.

    `stores` restricts the run to those stores plus their groups' anchors
    (a member's verification needs its anchor's current pricing);
    `chains` restricts it to those chain codes. When `reasons` is given it is
    filled with {store_id: reason} for the members planned (and every store of
    a bootstrapping chain): "forced", "random", "risk", "named" or "bootstrap",
    for `verification.record_plan`.
    """
    rows = conn.execute(_STORES, {"chains": list(chains) if chains else None}).fetchall()
    if chains:
        unknown = set(chains) - {r[2] for r in rows}
        if unknown:
            known = {c for (c,) in conn.execute("SELECT code FROM chains WHERE code = ANY(%s)", (list(unknown),))}
            if unknown - known:
                raise ConfigError(f"unknown chain code(s): {', '.join(sorted(unknown - known))}")
    why: dict[int, str] = {}
    if stores is not None:
        wanted = set(stores)
        missing = wanted - {r[0] for r in rows}
        if missing:
            raise ConfigError(f"unknown or inactive store id(s) for this run: {sorted(missing)[:10]}")
        why = {r[0]: "named" for r in rows if r[0] in wanted and not r[3]}
        plan = _named_with_anchors(conn, sorted(wanted))
    else:
        chain_ids = sorted({r[1] for r in rows})
        why = plan_verification(conn, as_of, settings, chain_ids, seed=as_of.isoformat()) if chain_ids else {}
        plan = {r[0] for r in rows if r[3]} | set(why)
        if full_scrape:
            # the draw still stands (its measurement stays unbiased); every other member is scraped too
            why.update({r[0]: "bootstrap" for r in rows if not r[3] and r[0] not in why})
            plan = {r[0] for r in rows}
        plan = sorted(plan)
    if reasons is not None:
        reasons.clear()
        reasons.update(why)
    return plan


def _named_with_anchors(conn: psycopg.Connection, store_ids: list[int]) -> list[int]:
    rows = conn.execute(
        """SELECT DISTINCT unnest(ARRAY[s.store_id, g.anchor_store_id])
           FROM stores s JOIN store_groups g ON g.group_id = s.group_id WHERE s.store_id = ANY(%s)""",
        (store_ids,),
    ).fetchall()
    return sorted(r[0] for r in rows)


def plan_run(
    conn: psycopg.Connection,
    run_id: str,
    as_of: datetime,
    settings: Settings,
    stores: Sequence[int] | None = None,
    chains: Sequence[str] | None = None,
    full_scrape: bool = False,
    reasons: dict[int, str] | None = None,
    record: bool = True,
) -> list[int]:
    """`plan_scrape` once per run: a re-run of the run plans what its first attempt planned.

    A re-run (after a kill, a failed task, or a run cleared in Airflow) must not
    re-plan from the state its earlier attempt left (members that attempt merged
    or left due would be scraped, verified and deduplicated again: DESIGN §6.4).
    The first plan is kept with the run (`runs.planned`, written in the caller's
    transaction with its reasons) and reused while the run's restrictions are the
    same; `reasons` is then left empty, since the first attempt's reasons are
    kept (`verification.record_plan`). `record` False (a dry run) neither reads
    nor writes it.
    """
    key = {"stores": sorted(stores) if stores is not None else None,
           "chains": sorted(chains) if chains else None, "full_scrape": bool(full_scrape)}
    if record:
        row = conn.execute("SELECT planned FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        first = row[0] if row else None
        if first and first.get("key") == key:
            if reasons is not None:
                reasons.clear()
            return sorted(first["store_ids"])
    plan = plan_scrape(conn, as_of, settings, stores=stores, chains=chains, full_scrape=full_scrape,
                       reasons=reasons)
    if record:
        conn.execute("UPDATE runs SET planned = %s::jsonb WHERE run_id = %s",
                     (json.dumps({"key": key, "store_ids": plan}), run_id))
    return plan


def kept_rescrape(conn: psycopg.Connection, run_id: str) -> list[int] | None:
    """The stores the run's first attempt re-scraped in the stale-anchor branch; None before it chose.

    A re-run must re-scrape what its first attempt did: recomputed from the
    state that attempt left, an anchor it elected looks "jumped" (most of its
    prices first seen today) and its members would be scraped and verified
    again (make chaos, SEED=11 day 10; DESIGN §6.4).
    """
    row = conn.execute("SELECT planned->'rescrape' FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    return sorted(row[0]) if row and row[0] is not None else None


def keep_rescrape(conn: psycopg.Connection, run_id: str, store_ids: Sequence[int]) -> None:
    """Record the run's re-scrape set with its plan (`runs.planned`), in the caller's transaction."""
    conn.execute(
        """UPDATE runs SET planned = coalesce(planned, '{}'::jsonb) || jsonb_build_object('rescrape', %s::jsonb)
           WHERE run_id = %s""",
        (json.dumps(sorted(set(store_ids))), run_id),
    )
