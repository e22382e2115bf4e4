"""Read-only queries behind the operator's views: groups, the served-price error, scrapes saved, runs.

Each function takes a psycopg connection and returns plain data (dicts,
lists, datetimes) that the pages render and the JSON endpoints return as they
are (docs/ui.md has the shapes). Parameters are always bound, never formatted
into SQL; nothing here writes.

What "all stores" means per run: the chain's stores first seen (their
`created` group event) on or before the run's logical date that are still
active, or were scraped on or after that date (a store closed since still
counts for the runs it was open).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Sequence

import psycopg

from pricegroups.errors import NotFound
from pricegroups.grouping.admin import error_estimates, show_groups
from pricegroups.grouping.verification import estimate
from pricegroups.settings import ESTIMATE_DAYS

# Group changes an operator looks for; `verified` (routine) and `created` (a new store, or the other
# half of an ejection) are counted, not listed.
DECISIONS = ("merged", "member_ejected", "anchor_replaced", "reset", "store_closed")
ROLES = ("anchor", "bootstrap", "named", "forced", "random", "risk", "spot", "complement")


def chains(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every chain with its active stores, groups and groups that have members."""
    rows = conn.execute(
        """SELECT c.code, c.name,
                  count(s.store_id) FILTER (WHERE s.active),
                  count(DISTINCT s.group_id),
                  count(DISTINCT s.group_id) FILTER (WHERE s.store_id <> g.anchor_store_id)
           FROM chains c
           LEFT JOIN stores s ON s.chain_id = c.chain_id
           LEFT JOIN store_groups g ON g.group_id = s.group_id
           GROUP BY c.chain_id ORDER BY c.code"""
    ).fetchall()
    return [{"code": code, "name": name, "stores": stores, "groups": groups, "groups_with_members": shared}
            for code, name, stores, groups, shared in rows]


def chain_id(conn: psycopg.Connection, code: str) -> int:
    row = conn.execute("SELECT chain_id FROM chains WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise NotFound(f"no chain {code!r}")
    return row[0]


def groups(conn: psycopg.Connection, chain: str) -> list[dict[str, Any]]:
    """The chain's groups, larger first: anchor, members with last verification and deviations.

    A member's `deviations` are its own prices kept at its last verification and
    served instead of the anchor's (None while its rows are freshly observed,
    i.e. it was scraped after its last verification); `last_check` is what its
    last measured verification found (served prices checked and wrong).
    """
    chain_id(conn, chain)
    return [
        {
            "group_id": v.group_id,
            "size": 1 + len(v.members),
            "anchor": {"store": v.anchor, "scraped_at": v.anchor_scraped_at},
            "members": [
                {
                    "store": m.code,
                    "verified_at": m.verified_at,
                    "scraped_at": m.scraped_at,
                    "deviations": m.overrides,
                    "last_check": (None if m.checked is None else
                                   {"checked": m.checked, "wrong": m.wrong, "measured_at": m.measured_at}),
                }
                for m in v.members
            ],
        }
        for v in show_groups(conn, chain)
    ]


def served_error(conn: psycopg.Connection, chain: str, days: int = ESTIMATE_DAYS) -> dict[str, Any] | None:
    """The chain's estimated wrong share of served prices (random verifications, `days` up to the newest).

    None when nothing was measured. share, low, high (the 95% interval),
    samples (stores), checked and wrong prices, the window's days and end.
    """
    chain_id(conn, chain)
    found, until = error_estimates(conn, chain, days)
    if chain not in found:
        return None
    return {**found[chain], "days": days, "until": until}


_RUNS = """
WITH recent AS (
    SELECT run_id, logical_date FROM runs WHERE NOT backfill
    ORDER BY logical_date DESC, run_id DESC LIMIT %(limit)s
),
first_seen AS (  -- one pass over the chain's events, not one per store
    SELECT store_id, min(created_at) AS at FROM group_events
    WHERE chain_id = %(chain)s AND kind = 'created' GROUP BY store_id
),
seen AS (
    SELECT s.store_id, s.active, s.last_scraped_at, coalesce(f.at, s.created_at) AS since
    FROM stores s LEFT JOIN first_seen f USING (store_id) WHERE s.chain_id = %(chain)s
),
attempts AS (
    SELECT DISTINCT ON (l.run_id, l.store_id) l.run_id, l.status
    FROM scrape_log l JOIN recent r USING (run_id) JOIN seen USING (store_id)
    ORDER BY l.run_id, l.store_id, l.attempt DESC
)
SELECT r.run_id, r.logical_date,
       count(a.run_id) FILTER (WHERE a.status = 'ok'),
       count(a.run_id) FILTER (WHERE a.status <> 'ok'),
       (SELECT count(*) FROM seen WHERE since <= r.logical_date
                                     AND (active OR last_scraped_at >= r.logical_date))
FROM recent r LEFT JOIN attempts a USING (run_id)
GROUP BY r.run_id, r.logical_date
ORDER BY r.logical_date, r.run_id
"""


def runs(conn: psycopg.Connection, chain: str, limit: int = 30) -> list[dict[str, Any]]:
    """The chain's newest `limit` daily runs, oldest first: stores scraped against all stores, and the error.

    Per run: scraped (last attempt ok), failed (last attempt failed or
    suspect), stores (see the module docstring), saved = stores - scraped; the
    run's own random verifications (`error`: checked, wrong, share and 95%
    interval; None when it measured nothing) and the estimate over the
    ESTIMATE_DAYS up to it (`error_window`). Backfills are left out: they
    scrape a chosen set, not a day's plan.
    """
    cid = chain_id(conn, chain)
    rows = conn.execute(_RUNS, {"chain": cid, "limit": limit}).fetchall()
    if not rows:
        return []
    samples = conn.execute(
        """SELECT v.run_id, v.measured_at, v.checked, v.wrong FROM verifications v
           WHERE v.chain_id = %s AND v.reason = 'random' AND v.checked > 0 AND v.measured_at > %s
           ORDER BY v.run_id, v.store_id""",
        (cid, rows[0][1] - timedelta(days=ESTIMATE_DAYS)),
    ).fetchall()
    out = []
    for run_id, logical_date, scraped, failed, stores in rows:
        own = [(c, w) for r, _, c, w in samples if r == run_id]
        window = [(c, w) for _, at, c, w in samples
                  if logical_date - timedelta(days=ESTIMATE_DAYS) < at <= logical_date]
        out.append({
            "run_id": run_id, "logical_date": logical_date, "scraped": scraped, "failed": failed,
            "stores": stores, "saved": max(stores - scraped, 0),
            "error": estimate(own).as_dict() if own else None,
            "error_window": estimate(window).as_dict() if window else None,
        })
    return out


def events(
    conn: psycopg.Connection,
    chain: str | None = None,
    run_id: str | None = None,
    kinds: Sequence[str] = DECISIONS,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The newest group events (of a chain, of a run, or both) of `kinds`, newest first, with their evidence."""
    cid = chain_id(conn, chain) if chain else None
    rows = conn.execute(
        """SELECT e.event_id, e.created_at, e.run_id, c.code, e.kind, e.group_id, e.other_group_id,
                  s.code, o.code, e.evidence
           FROM group_events e JOIN chains c ON c.chain_id = e.chain_id
           LEFT JOIN stores s ON s.store_id = e.store_id
           LEFT JOIN stores o ON o.store_id = e.other_store_id
           WHERE (%(chain)s::int IS NULL OR e.chain_id = %(chain)s)
             AND (%(run)s::text IS NULL OR e.run_id = %(run)s)
             AND e.kind = ANY(%(kinds)s)
           ORDER BY e.event_id DESC LIMIT %(limit)s""",
        {"chain": cid, "run": run_id, "kinds": list(kinds), "limit": limit},
    ).fetchall()
    return [{"event_id": eid, "at": at, "run_id": run, "chain": code, "kind": kind, "group_id": group,
             "other_group_id": other_group, "store": store, "other_store": other_store, "evidence": evidence}
            for eid, at, run, code, kind, group, other_group, store, other_store, evidence in rows]


def overview(conn: psycopg.Connection, chain: str, runs_limit: int = 30, events_limit: int = 20) -> dict[str, Any]:
    """Everything the Price groups page shows for one chain."""
    chain_id(conn, chain)
    return {
        "chain": next(c for c in chains(conn) if c["code"] == chain),
        "groups": groups(conn, chain),
        "error": served_error(conn, chain),
        "runs": runs(conn, chain, runs_limit),
        "events": events(conn, chain, limit=events_limit),
    }


# -- one run --------------------------------------------------------------------

_SCRAPED = """
WITH last AS (
    SELECT DISTINCT ON (l.store_id) l.store_id, l.status, l.pages, l.items, l.http_errors, l.retries,
           l.from_snapshot, l.error, l.duration_s, l.attempt
    FROM scrape_log l WHERE l.run_id = %(run)s
    ORDER BY l.store_id, l.attempt DESC
)
SELECT c.code, s.code, coalesce(v.reason, 'anchor'), l.status, l.pages, l.items, l.http_errors, l.retries,
       l.from_snapshot, l.error, l.duration_s, l.attempt
FROM last l JOIN stores s USING (store_id) JOIN chains c ON c.chain_id = s.chain_id
LEFT JOIN verifications v ON v.run_id = %(run)s AND v.store_id = l.store_id
ORDER BY c.code, s.code
"""


def run(conn: psycopg.Connection, run_id: str, run_keep_days: int | None = None) -> dict[str, Any]:
    """What one run scraped, decided and measured (the run view).

    * run: logical date, run type, backfill, params, start and end;
    * scraped: per chain, stores scraped by role (anchor, or why a member was
      planned: random, risk, forced, named, bootstrap), ok / failed / suspect,
      items, pages, HTTP errors, replayed snapshots; and every store's last attempt;
    * upsert: the run summary's created / updated / unchanged ... counts;
    * decisions: counts of every group event kind and the DECISIONS events with evidence;
    * measured: every verification of the run (reason, checked, wrong) and the
      run's own estimate from its random draws, per chain and overall.

    A run whose `runs` row retention removed (after `run_keep_days`, the
    setting's value as the caller knows it) but whose group events are kept
    gets the pruned view (`_pruned_run`), so a kept event's link still answers.
    """
    head = conn.execute(
        """SELECT run_id, logical_date, run_type, backfill, params, started_at, finished_at, summary
           FROM runs WHERE run_id = %s""",
        (run_id,),
    ).fetchone()
    if head is None:
        return _pruned_run(conn, run_id, run_keep_days)
    _, logical_date, run_type, backfill, params, started_at, finished_at, summary = head
    totals = (summary or {}).get("totals") or {}
    stores = [
        {"chain": chain, "store": store, "role": role, "status": status, "pages": pages, "items": items,
         "http_errors": errors, "retries": retries, "from_snapshot": snapshot, "error": error,
         "duration_s": round(duration, 2), "attempt": attempt}
        for chain, store, role, status, pages, items, errors, retries, snapshot, error, duration, attempt
        in conn.execute(_SCRAPED, {"run": run_id}).fetchall()
    ]
    active = dict(conn.execute(
        "SELECT c.code, count(s.store_id) FROM chains c JOIN stores s USING (chain_id) WHERE s.active GROUP BY c.code"
    ).fetchall())
    checks = [
        {"chain": chain, "store": store, "reason": reason, "group_id": group, "anchor": anchor,
         "checked": checked, "wrong": wrong, "measured_at": measured}
        for chain, store, reason, group, anchor, checked, wrong, measured in conn.execute(
            """SELECT c.code, s.code, v.reason, v.group_id, a.code, v.checked, v.wrong, v.measured_at
               FROM verifications v JOIN stores s USING (store_id) JOIN chains c ON c.chain_id = v.chain_id
               LEFT JOIN stores a ON a.store_id = v.anchor_store_id
               WHERE v.run_id = %s ORDER BY c.code, s.code""",
            (run_id,),
        ).fetchall()
    ]
    return {
        "run": {"run_id": run_id, "logical_date": logical_date, "run_type": run_type, "backfill": backfill,
                "params": params, "started_at": started_at, "finished_at": finished_at},
        "pruned": False,
        "scraped": {"chains": _scraped_by_chain(stores, active), "stores": stores},
        "upsert": {step: totals.get(step) for step in ("upsert", "rescrape_upsert") if totals.get(step)},
        "decisions": _decisions(conn, run_id),
        "measured": _measured(checks, totals.get("verification")),
    }


def _decisions(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    """The run's group events: counts of every kind, and the DECISIONS events with evidence."""
    kinds = dict(conn.execute(
        "SELECT kind, count(*) FROM group_events WHERE run_id = %s GROUP BY kind ORDER BY kind", (run_id,)
    ).fetchall())
    return {"counts": kinds, "events": events(conn, run_id=run_id, limit=1000)}


# What a pruned run's view says of each part (docs/operations.md "What is kept, and for how long").
PRUNED_NOTES = {
    "scraped": "not kept: a run's scrape log is pruned after scrape_log_keep_days, before its runs row",
    "upsert": "not kept: the counts were in the run's summary, pruned with its runs row",
    "measured": ("not kept: verifications are pruned after verification_keep_days (each store's last "
                 "measured one stays, on the Price groups page)"),
}
LOGICAL_DATE_FROM = "group_events.created_at (a run dates its group events at its logical date)"


def _pruned_run(conn: psycopg.Connection, run_id: str, run_keep_days: int | None) -> dict[str, Any]:
    """The view of a run retention removed from `runs`: what its kept group events still tell.

    group_events are kept in full, so the pages link old events to runs that
    are gone; a run neither table knows is NotFound. The logical date is the
    events' earliest created_at, said as such (`logical_date_from`).
    """
    dated, n = conn.execute(
        "SELECT min(created_at), count(*) FROM group_events WHERE run_id = %s", (run_id,)).fetchone()
    if not n:
        raise NotFound(f"no pricegroups run {run_id!r} (not started yet, another DAG's run, "
                       "or pruned without a group event)")
    return {
        "run": {"run_id": run_id, "logical_date": dated, "logical_date_from": LOGICAL_DATE_FROM,
                "run_type": None, "backfill": None, "params": None, "started_at": None, "finished_at": None},
        "pruned": True,
        "pruned_by": {"setting": "run_keep_days", "days": run_keep_days},
        "scraped": {"chains": [], "stores": [], "note": PRUNED_NOTES["scraped"]},
        "upsert": {"note": PRUNED_NOTES["upsert"]},
        "decisions": _decisions(conn, run_id),
        "measured": {"verifications": [], "checked": 0, "wrong": 0, "random": None, "random_by_chain": {},
                     f"estimate_{ESTIMATE_DAYS}d": None, "note": PRUNED_NOTES["measured"]},
    }


def _scraped_by_chain(stores: list[dict[str, Any]], active: dict[str, int]) -> list[dict[str, Any]]:
    chains_seen: dict[str, dict[str, Any]] = {}
    for s in stores:
        c = chains_seen.setdefault(s["chain"], {
            "chain": s["chain"], "stores": active.get(s["chain"], 0), "scraped": 0, "ok": 0, "failed": 0,
            "suspect": 0, "items": 0, "pages": 0, "http_errors": 0, "from_snapshot": 0,
            "roles": dict.fromkeys(ROLES, 0)})
        c["scraped"] += 1
        c[s["status"]] += 1
        c["items"] += s["items"]
        c["pages"] += s["pages"]
        c["http_errors"] += s["http_errors"]
        c["from_snapshot"] += int(s["from_snapshot"])
        c["roles"][s["role"]] = c["roles"].get(s["role"], 0) + 1
    return list(chains_seen.values())


def _measured(checks: list[dict[str, Any]], summary: dict[str, Any] | None) -> dict[str, Any]:
    drawn = [c for c in checks if c["reason"] == "random" and c["checked"]]
    per_chain: dict[str, list[tuple[int, int]]] = {}
    for c in drawn:
        per_chain.setdefault(c["chain"], []).append((c["checked"], c["wrong"]))
    return {
        "verifications": checks,
        "checked": sum(c["checked"] or 0 for c in checks),
        "wrong": sum(c["wrong"] or 0 for c in checks),
        "random": estimate([(c["checked"], c["wrong"]) for c in drawn]).as_dict() if drawn else None,
        "random_by_chain": {chain: estimate(s).as_dict() for chain, s in sorted(per_chain.items())},
        f"estimate_{ESTIMATE_DAYS}d": (summary or {}).get(f"estimate_{ESTIMATE_DAYS}d"),
    }


def newest_run(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The newest daily run: its id, logical date, counts of group events by kind, and the storage it measured
    (`storage`: the run log's db_<group>_bytes, snapshot_bytes and their changes; only when it measured them)."""
    row = conn.execute(
        """SELECT run_id, logical_date, summary #> '{steps,storage,all}' FROM runs WHERE NOT backfill
           ORDER BY logical_date DESC, run_id DESC LIMIT 1"""
    ).fetchone()
    if row is None:
        return None
    kinds = dict(conn.execute(
        "SELECT kind, count(*) FROM group_events WHERE run_id = %s GROUP BY kind ORDER BY kind", (row[0],)
    ).fetchall())
    newest = {"run_id": row[0], "logical_date": row[1], "events": kinds}
    if row[2]:
        newest["storage"] = row[2]
    return newest

