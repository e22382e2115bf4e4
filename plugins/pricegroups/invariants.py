"""DESIGN.md §6 invariants, checked in SQL on one state of the database.

`check_invariants(conn)` returns one `InvariantResult` per invariant that a
database state can show; an empty `violations` list means it holds. Each check
asserts only what the code guarantees (docs/operations.md lists the rules and
what cannot be decided from the database). Used by `python -m pricegroups
check`, by tests after real runs, and by operators after an incident.

"A stored price never gets older" needs two states: take `price_times(conn)`
before and after, then `regressions(before, after)`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator

import psycopg
from psycopg.pq import TransactionStatus

from pricegroups.errors import MigrationError
from pricegroups.grouping.rules.serving import SOURCES
from pricegroups.settings import Settings, load_settings

DEFAULT_EXAMPLES = 10


def _utc(expr: str) -> str:
    """A timestamp in a message, the same whatever the server's TimeZone."""
    return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI\"Z\"')"


@dataclass
class InvariantResult:
    """One invariant: its violations (at most the examples asked for), their total, and what was skipped."""

    name: str
    description: str
    violations: list[str] = field(default_factory=list)
    count: int = 0
    skipped: list[str] = field(default_factory=list)  # what could not be decided from the database, and why

    @property
    def ok(self) -> bool:
        return self.count == 0


# -- 1. groups ---------------------------------------------------------------

_STORE_WITHOUT_GROUP = """
SELECT format('store %%s (id %%s, %%s) is in group %%s, which does not exist',
              s.code, s.store_id, CASE WHEN s.active THEN 'active' ELSE 'inactive' END, s.group_id)
FROM stores s
WHERE NOT EXISTS (SELECT 1 FROM store_groups g WHERE g.group_id = s.group_id)
ORDER BY s.store_id
"""

_BAD_ANCHOR = """
SELECT CASE
           WHEN a.store_id IS NULL
               THEN format('group %%s: its anchor %%s is not a store', g.group_id, g.anchor_store_id)
           WHEN a.group_id <> g.group_id
               THEN format('group %%s: its anchor %%s (id %%s) is in group %%s',
                           g.group_id, a.code, a.store_id, a.group_id)
           ELSE format('group %%s: its anchor %%s (id %%s) is of another chain',
                       g.group_id, a.code, a.store_id)
       END
FROM store_groups g
LEFT JOIN stores a ON a.store_id = g.anchor_store_id
WHERE a.store_id IS NULL OR a.group_id <> g.group_id OR a.chain_id <> g.chain_id
ORDER BY g.group_id
"""

_EMPTY_GROUP = """
SELECT format('group %%s has no store', g.group_id)
FROM store_groups g
WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.group_id = g.group_id)
ORDER BY g.group_id
"""

_SPANNING_GROUP = """
SELECT format('group %%s (chain %%s) holds store %%s (id %%s) of chain %%s',
              g.group_id, gc.code, s.code, s.store_id, sc.code)
FROM stores s
JOIN store_groups g ON g.group_id = s.group_id
JOIN chains gc ON gc.chain_id = g.chain_id
LEFT JOIN chains sc ON sc.chain_id = s.chain_id
WHERE s.chain_id <> g.chain_id
ORDER BY g.group_id, s.store_id
"""


def check_groups(conn: psycopg.Connection, run_id: str | None, examples: int) -> InvariantResult:
    """§6.1 on the rows: the deferred foreign keys enforce it at COMMIT, unless someone bypassed them."""
    result = InvariantResult(
        "groups",
        "§6.1 every store is in exactly one existing group; every group has one anchor, a store of that "
        "group and chain; no group is empty; no group spans chains. An inactive anchor is allowed: its "
        "rows keep serving its members until a health check hands the role to the freshest active member "
        "(rules/anchors.plan_succession).",
    )
    _collect(conn, result, [_STORE_WITHOUT_GROUP, _BAD_ANCHOR, _EMPTY_GROUP, _SPANNING_GROUP], {}, examples)
    return result


# -- 2. group changes and their evidence -------------------------------------

_EMPTY_EVIDENCE = """
SELECT format('event %%s (%%s, group %%s, run %%s) has no evidence', e.event_id, e.kind, e.group_id, e.run_id)
FROM group_events e
WHERE (jsonb_typeof(e.evidence) <> 'object' OR e.evidence = '{}'::jsonb)
  AND (%(run)s::text IS NULL OR e.run_id = %(run)s)
ORDER BY e.event_id
"""

# What each kind of change must show: a conclusive comparison (outcome match or mismatch, which the comparer
# gives only when both sides have current pricing) of exactly the two stores the event names.
_WEAK_EVIDENCE = """
SELECT format('event %%s (%%s, group %%s, run %%s): %%s', e.event_id, e.kind, e.group_id, e.run_id, e.problem)
FROM (
    SELECT e.*,
           CASE
               WHEN e.kind IN ('merged', 'verified') AND e.evidence->>'outcome' IS DISTINCT FROM 'match'
                   THEN format('its comparison is not a match (%%s)',
                               coalesce(e.evidence->>'outcome', 'none'))
               WHEN e.kind = 'member_ejected'
                    AND coalesce(e.evidence->>'outcome', '') NOT IN ('match', 'mismatch')
                   THEN format('no conclusive comparison (%%s)', coalesce(e.evidence->>'outcome', 'none'))
               WHEN e.kind IN ('merged', 'verified', 'member_ejected')
                    AND NOT coalesce(e.evidence->'stores' @> jsonb_build_array(e.store_id, e.other_store_id),
                                     false)
                   THEN format('its comparison is of stores %%s, not %%s and %%s',
                               coalesce(e.evidence->>'stores', 'none'), e.store_id, e.other_store_id)
               WHEN e.kind = 'anchor_replaced'
                    AND coalesce(e.evidence->>'reason', '')
                        NOT IN ('anchor_drift', 'anchor_failed', 'representative', 'coverage', 'punctual')
                   THEN format('unknown reason %%s', coalesce(e.evidence->>'reason', 'none'))
               WHEN e.kind = 'anchor_replaced' AND e.evidence->>'reason' = 'anchor_drift'
                    AND coalesce(e.evidence #>> '{old_vs_new,outcome}', '') NOT IN ('match', 'mismatch')
                   THEN 'an anchor drift without a conclusive comparison of the old and the new anchor'
               WHEN e.kind = 'anchor_replaced' AND e.evidence->>'reason' IN ('representative', 'coverage', 'punctual')
                    AND NOT e.evidence ? 'off_consensus'
                   THEN 'an anchor election without the consensus counts'
               WHEN e.kind = 'anchor_replaced' AND e.evidence->>'reason' = 'anchor_failed'
                    AND NOT e.evidence ? 'anchor_failures'
                   THEN 'an anchor succession without the failure count'
           END AS problem
    FROM group_events e
    WHERE (%(run)s::text IS NULL OR e.run_id = %(run)s)
      AND e.kind IN ('merged', 'verified', 'member_ejected', 'anchor_replaced')
      AND jsonb_typeof(e.evidence) = 'object' AND e.evidence <> '{}'::jsonb
) e
WHERE e.problem IS NOT NULL
ORDER BY e.event_id
"""

# A store's group follows from its events: its last `created` or `reset` event places it (a new store, an
# ejected store, a reset), then each `merged` event of that group moves it on. Group ids are never reused.
_UNEXPLAINED_MEMBERSHIP = """
WITH RECURSIVE placed AS (
    SELECT DISTINCT ON (e.store_id) e.store_id, e.group_id, e.event_id
    FROM group_events e
    WHERE e.kind IN ('created', 'reset') AND e.store_id IS NOT NULL
    ORDER BY e.store_id, e.event_id DESC
),
followed (store_id, group_id, event_id) AS (
    SELECT store_id, group_id, event_id FROM placed
    UNION ALL
    SELECT f.store_id, m.group_id, m.event_id
    FROM followed f
    JOIN group_events m ON m.kind = 'merged' AND m.other_group_id = f.group_id AND m.event_id > f.event_id
),
explained AS (
    SELECT DISTINCT ON (store_id) store_id, group_id FROM followed ORDER BY store_id, event_id DESC
)
SELECT CASE
           WHEN x.store_id IS NULL
               THEN format('store %%s (id %%s) is in group %%s without a created or reset event',
                           s.code, s.store_id, s.group_id)
           ELSE format('store %%s (id %%s) is in group %%s, but its events put it in group %%s',
                       s.code, s.store_id, s.group_id, x.group_id)
       END
FROM stores s
JOIN store_groups g ON g.group_id = s.group_id
LEFT JOIN explained x ON x.store_id = s.store_id
WHERE x.group_id IS DISTINCT FROM s.group_id
ORDER BY s.store_id
"""

# A group's anchor is the store its last `created`/`reset` event names, or the new anchor of a later
# `anchor_replaced`. Groups whose anchor is not one of their stores are §6.1's (check_groups).
_UNEXPLAINED_ANCHOR = """
SELECT CASE
           WHEN last.store_id IS NULL THEN format('group %%s has no created or reset event', g.group_id)
           ELSE format('group %%s: its anchor is store %%s (id %%s), but its events name store %%s',
                       g.group_id, a.code, a.store_id, last.store_id)
       END
FROM store_groups g
JOIN stores a ON a.store_id = g.anchor_store_id AND a.group_id = g.group_id
LEFT JOIN LATERAL (
    SELECT e.store_id FROM group_events e
    WHERE e.group_id = g.group_id AND e.kind IN ('created', 'reset', 'anchor_replaced')
    ORDER BY e.event_id DESC LIMIT 1
) last ON true
WHERE last.store_id IS DISTINCT FROM g.anchor_store_id
ORDER BY g.group_id
"""


def check_group_events(conn: psycopg.Connection, run_id: str | None, examples: int) -> InvariantResult:
    """§6.2: a group changes only through an event carrying its evidence, so every change can be audited."""
    result = InvariantResult(
        "group_events",
        "§6.2 every group event has evidence; a merge or a verification shows a MATCH and an ejection a "
        "conclusive comparison (both sides current) of exactly its two stores; an anchor change gives its "
        "reason and figures; every store's group and every group's anchor follow from the events.",
    )
    queries = [_EMPTY_EVIDENCE, _WEAK_EVIDENCE, _UNEXPLAINED_MEMBERSHIP, _UNEXPLAINED_ANCHOR]
    _collect(conn, result, queries, {"run": run_id}, examples)
    if run_id is not None:
        result.skipped.append(
            "evidence checked for this run's events only; memberships and anchors for the whole state")
    return result


# -- 3. no half-applied store ------------------------------------------------

_LAST_OK = """
WITH last_ok AS (
    SELECT DISTINCT ON (l.run_id, l.store_id) l.run_id, l.store_id, l.items,
           coalesce(l.logical_date, r.logical_date) AS day
    FROM scrape_log l LEFT JOIN runs r ON r.run_id = l.run_id
    WHERE l.status = 'ok' AND (%(run)s::text IS NULL OR l.run_id = %(run)s)
    ORDER BY l.run_id, l.store_id, l.attempt DESC
),
staged AS (
    SELECT run_id, store_id, count(*) AS n FROM scraped_items
    WHERE %(run)s::text IS NULL OR run_id = %(run)s
    GROUP BY run_id, store_id
)
"""

# Staging is deleted per run and store at once (post-process, by the run's logical date), so nothing staged
# is "expired" only when the date is older than the newest run's minus staging_keep_days.
_PARTLY_STAGED = _LAST_OK + """
SELECT format('run %%s, store %%s (id %%s): its ok scrape logged %%s items but %%s are staged',
              o.run_id, s.code, o.store_id, o.items, coalesce(st.n, 0))
FROM last_ok o
JOIN stores s ON s.store_id = o.store_id
LEFT JOIN staged st ON st.run_id = o.run_id AND st.store_id = o.store_id
WHERE coalesce(st.n, 0) <> o.items
  AND NOT (st.n IS NULL AND coalesce(o.day < (SELECT max(logical_date) FROM runs)
                                              - make_interval(days => %(keep)s), true))
ORDER BY o.run_id, o.store_id
"""

_STAGED_WITHOUT_OK = _LAST_OK + """
SELECT format('run %%s, store %%s (id %%s): %%s items staged without an ok scrape',
              st.run_id, s.code, st.store_id, st.n)
FROM staged st
JOIN stores s ON s.store_id = st.store_id
WHERE NOT EXISTS (SELECT 1 FROM last_ok o WHERE o.run_id = st.run_id AND o.store_id = st.store_id)
ORDER BY st.run_id, st.store_id
"""

_NOT_OK = """
WITH not_ok AS (
    SELECT run_id, store_id FROM scrape_log
    WHERE %(run)s::text IS NULL OR run_id = %(run)s
    GROUP BY run_id, store_id HAVING bool_and(status <> 'ok')
)
"""

_WRITTEN_BY_FAILED = _NOT_OK + """
SELECT format('run %%s, store %%s (id %%s): no ok scrape, yet %%s prices were written by this run',
              n.run_id, s.code, n.store_id, w.n)
FROM not_ok n
JOIN stores s ON s.store_id = n.store_id
CROSS JOIN LATERAL (SELECT count(*) AS n FROM prices p
                    WHERE p.store_id = n.store_id AND p.run_id = n.run_id) w
WHERE w.n > 0
ORDER BY n.run_id, n.store_id
"""

_ABSENCE_BY_FAILED = _NOT_OK + """
SELECT format('run %%s, store %%s (id %%s): no ok scrape, yet it started the absence of %%s prices',
              n.run_id, s.code, n.store_id, a.n)
FROM not_ok n
JOIN stores s ON s.store_id = n.store_id
CROSS JOIN LATERAL (SELECT count(*) AS n FROM listing_absences a
                    WHERE a.store_id = n.store_id AND a.run_id = n.run_id) a
WHERE a.n > 0
ORDER BY n.run_id, n.store_id
"""

_NOT_FRESHENED = _LAST_OK + f"""
SELECT format('run %%s, store %%s (id %%s): ok scrape for %%s, but the store was last scraped %%s',
              o.run_id, s.code, o.store_id, {_utc("o.day")}, coalesce({_utc("s.last_scraped_at")}, 'never'))
FROM last_ok o
JOIN stores s ON s.store_id = o.store_id
WHERE o.day IS NOT NULL AND (s.last_scraped_at IS NULL OR s.last_scraped_at < o.day)
ORDER BY o.run_id, o.store_id
"""


def check_half_applied(
    conn: psycopg.Connection, run_id: str | None, examples: int, settings: Settings
) -> InvariantResult:
    """§4.2/§6.3: a store's scrape outcome is recorded all or nothing; only an ok scrape writes anything."""
    result = InvariantResult(
        "half_applied",
        "§4.2, §6.3 no half-applied store: an ok scrape staged exactly the items it logged and advanced "
        "the store's last_scraped_at to its date; a store without an ok scrape in a run has nothing "
        "staged, no prices written and no absence started by that run (so a failed or truncated scrape "
        "deletes nothing).",
    )
    queries = [_PARTLY_STAGED, _STAGED_WITHOUT_OK, _WRITTEN_BY_FAILED, _ABSENCE_BY_FAILED, _NOT_FRESHENED]
    _collect(conn, result, queries, {"run": run_id, "keep": settings.staging_keep_days}, examples)
    result.skipped.append(
        f"staged items of runs older than the newest run by {settings.staging_keep_days} days "
        "(staging_keep_days) may be deleted, so their absence is not a violation"
    )
    return result


# -- 4. no observed price lost ----------------------------------------------

# Runs whose upsert is done: summary (the DAG's last task, after both upserts) set finished_at, and no
# scrape of the run was logged after it (a cleared task re-running the run is not finished again yet).
_FINISHED = """
SELECT r.run_id,
       r.finished_at IS NOT NULL
       AND r.finished_at >= coalesce((SELECT max(l.started_at) FROM scrape_log l WHERE l.run_id = r.run_id),
                                     '-infinity') AS finished
FROM runs r
WHERE %(run)s::text IS NULL OR r.run_id = %(run)s
"""

# Every staged item of a finished run is explained: its store's row for the product (after catalogue merges)
# is this observation or a newer one, or holds the same values (an unchanged price keeps its older
# scraped_at); or the store was observed later (the upsert ignores what is older than the store's last
# observation, and retention may have retired it since); or the store was verified since (a verification
# drops a member's rows that equal its anchor's); or the item was rejected with a reason.
_LOST = """
WITH RECURSIVE merged (merged_id, survivor_id, depth) AS (
    SELECT merged_id, survivor_id, 1 FROM catalogue_merges WHERE entity = 'product'
    UNION ALL
    SELECT m.merged_id, c.survivor_id, m.depth + 1
    FROM merged m JOIN catalogue_merges c ON c.entity = 'product' AND c.merged_id = m.survivor_id
    WHERE m.depth < 50
),
survivor AS (
    SELECT DISTINCT ON (merged_id) merged_id, survivor_id FROM merged ORDER BY merged_id, depth DESC
),
finished AS (SELECT run_id FROM (""" + _FINISHED + """) f WHERE f.finished),
items AS (
    SELECT si.*, coalesce(v.survivor_id, si.product_id) AS pid
    FROM scraped_items si
    JOIN finished USING (run_id)
    LEFT JOIN survivor v ON v.merged_id = si.product_id
)
""" + f"""
SELECT format('run %%s, store %%s (id %%s), sku %%s (product %%s, %%s at %%s): %%s',
              i.run_id, s.code, i.store_id, i.sku, coalesce(i.pid::text, 'unresolved'), i.price,
              {_utc("i.scraped_at")},
              CASE WHEN p.product_id IS NULL THEN 'not in prices and not rejected'
                   ELSE format('prices hold %%s from %%s instead, and it was not rejected', p.price,
                               {_utc("p.scraped_at")})
              END)
FROM items i
JOIN stores s ON s.store_id = i.store_id
LEFT JOIN prices p ON p.product_id = i.pid AND p.store_id = i.store_id
WHERE NOT coalesce(p.scraped_at >= i.scraped_at, false)
  AND NOT (p.product_id IS NOT NULL
           AND (p.price, p.was_price, p.unit_price, p.unit_measure, p.on_special, p.promo_text)
               IS NOT DISTINCT FROM
               (i.price, i.was_price, round(i.unit_price, 4), i.unit_measure, i.on_special, i.promo_text))
  AND NOT coalesce(i.scraped_at < s.last_scraped_at, false)
  AND NOT coalesce(s.last_verified_at >= i.scraped_at, false)
  AND NOT EXISTS (SELECT 1 FROM rejected_items r
                  WHERE r.run_id = i.run_id AND r.store_id = i.store_id
                    AND r.stage IN ('resolve', 'upsert', 'enrich')
                    AND (r.sku = i.sku OR r.product_id = i.product_id))
ORDER BY i.run_id, i.store_id, i.sku
"""


def check_lost_prices(conn: psycopg.Connection, run_id: str | None, examples: int) -> InvariantResult:
    """§4.6/§4.8: every observed price of a finished run is current, superseded, deduplicated or rejected."""
    result = InvariantResult(
        "lost_prices",
        "§4 no observed price lost: each staged item of a finished run is in prices (this observation, a "
        "newer one, or the same values), or its store was observed later or verified since "
        "(deduplication), or it is in rejected_items with a reason.",
    )
    params = {"run": run_id}
    _collect(conn, result, [_LOST], params, examples)
    unfinished = [r for r, finished in conn.execute(_FINISHED + " ORDER BY 1", params) if not finished]
    if unfinished:
        named = ", ".join(unfinished[:3]) + (" ..." if len(unfinished) > 3 else "")
        result.skipped.append(
            f"{len(unfinished)} run(s) not finished ({named}): no finished_at, or scraped again since;"
            " their items may still be waiting for the upsert"
        )
    known = run_id is None or conn.execute("SELECT 1 FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    if not known:
        result.skipped.append(f"run {run_id} is not in the runs table: nothing of it to check")
    return result


# -- 5. none regressed ---------------------------------------------------------

_NEWER_THAN_STORE = f"""
SELECT format('store %%s (id %%s): %%s price(s) observed after its last scrape %%s (newest %%s)',
              s.code, s.store_id, x.n, coalesce({_utc("s.last_scraped_at")}, 'never'), {_utc("x.newest")})
FROM (SELECT p.store_id, count(*) AS n, max(p.scraped_at) AS newest
      FROM prices p JOIN stores s ON s.store_id = p.store_id
      WHERE s.last_scraped_at IS NULL OR p.scraped_at > s.last_scraped_at
      GROUP BY p.store_id) x
JOIN stores s ON s.store_id = x.store_id
ORDER BY s.store_id
"""


def check_regressed(conn: psycopg.Connection, run_id: str | None, examples: int) -> InvariantResult:
    """§6.4 seen in one state: a store's freshness is never behind its own prices (it only moves forward)."""
    result = InvariantResult(
        "regressed",
        "§6.4 none regressed: no price was observed after its store's last_scraped_at (the upsert and the "
        "scrape only move freshness forward).",
    )
    _collect(conn, result, [_NEWER_THAN_STORE], {}, examples)
    result.skipped.append("a stored scraped_at never decreasing needs two states: "
                          "compare price_times(conn) before and after with regressions(before, after)")
    return result


PriceTimes = dict[str, dict[Any, datetime | None]]


def price_times(conn: psycopg.Connection) -> PriceTimes:
    """When each price and each store was last observed, to compare a state with a later one."""
    with _one_snapshot(conn):
        prices = {(p, s): t for p, s, t in conn.execute("SELECT product_id, store_id, scraped_at FROM prices")}
        stores = dict(conn.execute("SELECT store_id, last_scraped_at FROM stores").fetchall())
    return {"prices": prices, "stores": stores}


def regressions(before: PriceTimes, after: PriceTimes) -> list[str]:
    """Prices and stores whose observation time went backwards between two states (rows may leave)."""
    found = []
    for (product, store), then in sorted(before["prices"].items()):
        now = after["prices"].get((product, store))
        if now is not None and then is not None and now < then:
            found.append(f"price of product {product} at store {store}: scraped_at {then} became {now}")
    for store, then in sorted(before["stores"].items()):
        if then is None or store not in after["stores"]:
            continue
        now = after["stores"][store]
        if now is None or now < then:
            found.append(f"store {store}: last_scraped_at {then} became {now}")
    return found


# -- 6. effective prices ---------------------------------------------------------

_BAD_EFFECTIVE = """
SELECT format('store %%s, product %%s: %%s', x.store_id, x.product_id, x.problem)
FROM (
    SELECT e.store_id, e.product_id,
           CASE
               WHEN count(*) > 1 THEN format('%%s rows served (%%s)', count(*), string_agg(e.source, ', '))
               WHEN NOT coalesce(bool_and(e.source = ANY(%(sources)s)), false)
                   THEN format('unknown source %%s', coalesce(min(e.source), 'NULL'))
               WHEN NOT coalesce(bool_and(s.active), false) THEN 'served for an inactive or unknown store'
               WHEN bool_or(src.group_id IS DISTINCT FROM s.group_id)
                   THEN format('served from store %%s of another group', min(e.source_store_id))
           END AS problem
    FROM effective_prices e
    LEFT JOIN stores s ON s.store_id = e.store_id
    LEFT JOIN stores src ON src.store_id = e.source_store_id
    GROUP BY e.store_id, e.product_id
) x
WHERE x.problem IS NOT NULL
ORDER BY x.store_id, x.product_id
"""


def check_effective_prices(conn: psycopg.Connection, run_id: str | None, examples: int) -> InvariantResult:
    """§3/§5: the site serves one row per active store and product, from a known source in its group."""
    result = InvariantResult(
        "effective_prices",
        f"§3, §5 effective prices: at most one row per (store, product), only for active stores, source "
        f"one of {', '.join(SOURCES)}, served from a store of the same group.",
    )
    _collect(conn, result, [_BAD_EFFECTIVE], {"sources": list(SOURCES)}, examples)
    return result


# -- running them ----------------------------------------------------------------


def check_invariants(
    conn: psycopg.Connection,
    run_id: str | None = None,
    examples: int = DEFAULT_EXAMPLES,
    settings: Settings | None = None,
) -> list[InvariantResult]:
    """Every invariant a database state can show, read in one snapshot; `run_id` narrows the per-run checks.

    The state checks (groups, memberships, freshness, effective prices) always
    cover the whole database; with `run_id`, event evidence, scrape outcomes
    and observed prices are checked for that run only.
    """
    settings = settings or load_settings()  # staging_keep_days as the runs had it (PRICEGROUPS_* variables)
    checks: list[Callable[[psycopg.Connection, str | None, int], InvariantResult]] = [
        check_groups,
        check_group_events,
        lambda c, r, n: check_half_applied(c, r, n, settings),
        check_lost_prices,
        check_regressed,
        check_effective_prices,
    ]
    with _one_snapshot(conn):
        if conn.execute("SELECT to_regclass('effective_prices')").fetchone()[0] is None:
            raise MigrationError("the database has no pricegroups schema: run `python -m pricegroups migrate`")
        return [check(conn, run_id, examples) for check in checks]


@contextmanager
def _one_snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """A read-only repeatable-read transaction when the caller has none, so the checks see one state."""
    idle = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction():
        if idle:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _collect(
    conn: psycopg.Connection,
    result: InvariantResult,
    queries: list[str],
    params: dict[str, Any],
    examples: int,
) -> None:
    """Run queries that yield one message per violation; keep the total and the first `examples` messages."""
    for query in queries:
        rows = conn.execute(
            f"SELECT v.*, count(*) OVER () FROM ({query}) v LIMIT %(examples)s",
            {**params, "examples": max(examples, 1)},
        ).fetchall()
        if rows:
            result.count += rows[0][1]
            room = max(0, examples - len(result.violations))
            result.violations.extend(message for message, _ in rows[:room])
