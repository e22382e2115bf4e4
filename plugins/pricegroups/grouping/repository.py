"""PostgreSQL side of grouping: load states and current pricing, record comparisons, apply decisions.

Reads use binary COPY parsed straight into numpy (fixed-width int columns, so
every tuple has the same layout). Writes are set-based: one statement per kind
of decision per batch, inside the caller's transaction.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Iterable, Sequence

import numpy as np
import psycopg

from pricegroups.errors import BadData
from pricegroups.grouping import storage
from pricegroups.grouping.merging import needing_verification
from pricegroups.grouping.model import Decision, Eject, GroupState, Merge, ReplaceAnchor, StoreState, Verify
from pricegroups.grouping.pgstorage import PostgresStorage
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.grouping.rules.cadence import Cadence
from pricegroups.grouping.rules.compare import Counts, judge
from pricegroups.settings import Settings

log = logging.getLogger(__name__)

# One COPY row per store, its prices as arrays: a chain's read is a few thousand rows for the
# client to walk instead of millions, and numpy parses each array. The server's work is per price,
# so each price is one int8 (product id << 32 | price key); the rare was-prices come as a short
# second array, and the times (as stored, 8-byte microseconds; hours here) only for the stores
# whose times are used.
_PRICES_COPY = """
COPY (SELECT p.store_id,
             array_agg((p.product_id << 32) | ((p.price * 200)::int4 + p.on_special::int4)),
             array_agg((p.product_id << 32) | (p.was_price * 100)::int4) FILTER (WHERE p.was_price IS NOT NULL){times}
      FROM prices p WHERE p.store_id = ANY(%s::int[])
      GROUP BY p.store_id) TO STDOUT (FORMAT BINARY)
"""
_TIMES = ",\n             array_agg(p.scraped_at)"
_STORES_PER_COPY = 250  # bounds the server's aggregation memory (a few thousand prices per store)
_PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's epoch (2000-01-01) in microseconds since the Unix epoch
_HOUR_US = 3_600_000_000
_LOW = (1 << 32) - 1
_HEADER = 19  # PGCOPY signature (11) + flags (4) + extension length (4)


# -- reading ---------------------------------------------------------------

def load_states(
    conn: psycopg.Connection, chain_ids: Sequence[int] | None = None, group_ids: Sequence[int] | None = None
) -> tuple[dict[int, GroupState], dict[int, StoreState]]:
    """Active stores and their groups (optionally of some chains or groups only)."""
    rows = conn.execute(
        """SELECT s.store_id, s.group_id, s.last_scraped_at, s.last_verified_at, s.consecutive_failures,
                  s.active, g.chain_id, g.anchor_store_id, g.created_at, s.late_changes, s.timely_changes
           FROM stores s JOIN store_groups g ON g.group_id = s.group_id
           WHERE (s.active OR s.store_id = g.anchor_store_id)
             AND (%(chains)s::int[] IS NULL OR g.chain_id = ANY(%(chains)s))
             AND (%(groups)s::bigint[] IS NULL OR g.group_id = ANY(%(groups)s))
           ORDER BY s.store_id""",
        {"chains": list(chain_ids) if chain_ids is not None else None,
         "groups": list(group_ids) if group_ids is not None else None},
    ).fetchall()
    stores: dict[int, StoreState] = {}
    members: dict[int, list[int]] = {}
    heads: dict[int, tuple] = {}
    for store, group, scraped, verified, failures, active, chain, anchor, created, late, on_time in rows:
        stores[store] = StoreState(store, group, scraped, verified, failures, active, late, on_time)
        heads[group] = (chain, anchor, created)
        if store != anchor:
            members.setdefault(group, []).append(store)
    groups = {
        g: GroupState(g, chain, anchor, tuple(members.get(g, ())), created) for g, (chain, anchor, created) in heads.items()
    }
    return groups, stores


def load_matrix(
    conn: psycopg.Connection, stores: dict[int, StoreState], store_ids: Iterable[int],
    observed_for: Iterable[int] | None = None,
) -> PriceMatrix:
    """Current prices of `store_ids` as a PriceMatrix (binary COPY, arrays per store, a few hundred stores a time).

    When each price was first seen is read only for `observed_for` (default:
    every store; support.py needs it for anchors of groups with members); the
    others' PriceMatrix.observed rows are 0 (unknown).
    """
    ids = sorted(set(store_ids))
    timed = set(ids) if observed_for is None else set(observed_for) & set(ids)
    _check_packable(conn)
    rows: list[tuple[int, list[np.ndarray]]] = []  # (store, [codes, was, times]) with timed stores first
    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '256MB'")  # each batch's arrays are built in one hash table
        for group, times in (([s for s in ids if s in timed], True), ([s for s in ids if s not in timed], False)):
            statement = _PRICES_COPY.format(times=_TIMES if times else "")
            for start in range(0, len(group), _STORES_PER_COPY):
                data = _copy_bytes(conn, statement, (group[start:start + _STORES_PER_COPY],))
                rows.extend(_array_rows(data, 3 if times else 2))
    store_of = np.array([store for store, _ in rows], dtype=np.int64)
    product, key = _halves([arrays[0] for _, arrays in rows])
    was_product, was_cents = _halves([arrays[1] for _, arrays in rows])
    seen = [arrays[2] for _, arrays in rows if len(arrays) > 2]
    observed = None
    if seen:  # hours since the epoch for the timed stores' prices (they come first), 0 (unknown) after them
        observed = np.zeros(len(key), dtype=np.int32)
        hours = (np.concatenate(seen).astype(np.int64) + _PG_EPOCH_US) // _HOUR_US
        observed[:len(hours)] = hours
    return PriceMatrix.from_long(
        np.repeat(store_of, [len(arrays[0]) for _, arrays in rows]), product, key, None,
        {s: stores[s].scraped_at for s in ids}, stores=ids, observed=observed,
        was_entries=(np.repeat(store_of, [len(arrays[1]) for _, arrays in rows]), was_product, was_cents),
    )


def _check_packable(conn: psycopg.Connection) -> None:
    """Product ids must fit in 31 bits: the COPY packs each with its price key into one int8."""
    high = conn.execute("SELECT max(product_id) FROM products").fetchone()[0]
    if high is not None and high >= 1 << 31:
        raise BadData(f"product id {high} does not fit the packed price read (below 2^31)")


def _halves(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The high and low 32 bits of big-endian int8 values (product id, and price key or cents)."""
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    values = np.concatenate(parts).astype(np.int64)
    return values >> 32, (values & _LOW).astype(np.int32)


def _array_rows(data: bytes, arrays_per_row: int):
    """Parse binary COPY rows of (int4, then 8-byte int arrays, NULL = empty) without a Python step per element."""
    view = memoryview(data)
    pos = _HEADER
    end = len(data) - 2  # the trailer is a field count of -1
    while pos < end:
        fields = int.from_bytes(view[pos:pos + 2], "big", signed=True)
        pos += 2
        if fields != 1 + arrays_per_row:
            raise psycopg.DataError(f"unexpected COPY row with {fields} fields")
        pos += 4  # length of the int4
        store = int.from_bytes(view[pos:pos + 4], "big", signed=True)
        pos += 4
        arrays = []
        for _ in range(arrays_per_row):
            length = int.from_bytes(view[pos:pos + 4], "big", signed=True)
            pos += 4
            if length < 0:  # NULL: an aggregate whose FILTER kept nothing
                arrays.append(np.zeros(0, dtype=">i8"))
                continue
            arrays.append(_int8_array(view[pos:pos + length]))
            pos += length
        yield store, arrays


def _int8_array(raw: memoryview) -> np.ndarray:
    """A one-dimensional, NULL-free binary array of 8-byte values: header, then (length, value) per element."""
    ndim = int.from_bytes(raw[0:4], "big")
    if ndim == 0:
        return np.zeros(0, dtype=">i8")
    if ndim != 1 or int.from_bytes(raw[4:8], "big") != 0:
        raise psycopg.DataError("expected a one-dimensional array without NULLs")
    count = int.from_bytes(raw[12:16], "big")
    return np.frombuffer(raw, dtype=[("len", ">i4"), ("value", ">i8")], count=count, offset=20)["value"]


def _copy_bytes(conn: psycopg.Connection, statement: str, params: tuple) -> bytes:
    with conn.cursor() as cur, cur.copy(statement, params) as copy:
        return b"".join(copy)


def rule_fingerprint(settings: Settings) -> str:
    """The settings a stored comparison was judged under; incomplete results are re-used only under the same."""
    return (f"v2;m={settings.max_member_deviation};s={settings.shared_deviation_tolerance};"
            f"o={settings.min_overlap_products},{settings.min_overlap_share};w={settings.window_hours}")


def load_known(
    conn: psycopg.Connection, store_ids: Sequence[int], settings: Settings
) -> dict[tuple, tuple[int, int, Counts]]:
    """Remembered comparisons between the given stores, judged under the current rule and settings."""
    rows = conn.execute(
        """SELECT store_id, other_store_id, signature, other_signature, overlap, agreeing, size, other_size, complete,
                  shared, own, other_own, timing
           FROM comparisons
           WHERE store_id = ANY(%(ids)s) AND other_store_id = ANY(%(ids)s) AND rule = %(rule)s""",
        {"ids": list(store_ids), "rule": rule_fingerprint(settings)},
    ).fetchall()
    return {(a, b): (sa, sb, Counts(o, g, na, nb, c, sh, oa, ob, t))
            for a, b, sa, sb, o, g, na, nb, c, sh, oa, ob, t in rows}


def change_rates(conn: psycopg.Connection, chain_ids: Sequence[int] | None, settings: Settings) -> dict[int, float]:
    """Each chain's observed daily rate of price changes, from its anchors' last scrapes (storage.change_rates:
    the rule the offline book applies too). Chains without an anchor scraped twice far enough apart are left
    out: the `daily_change_rate` prior applies (rules/compare.chain_change_rate)."""
    cadence = Cadence.of_hours(settings.run_interval_hours)
    return storage.change_rates(PostgresStorage(conn, cadence, chain_ids=chain_ids))


def rates_before(conn: psycopg.Connection, as_of: datetime) -> dict[int, float]:
    """The chains' change rates as the latest earlier run measured them (`runs.summary` "change_rates").

    What an ordinary run changes is judged against these (rules/compare.changed_en_masse): this run's own
    rate would count a repricing of one of few anchors as ordinary. A chain without one takes the
    `daily_change_rate` prior (the caller's default).
    """
    row = conn.execute(
        """SELECT summary->'change_rates' FROM runs
           WHERE logical_date < %s AND NOT backfill AND summary ? 'change_rates'
           ORDER BY logical_date DESC LIMIT 1""", (as_of,)).fetchone()
    return {int(chain): float(rate) for chain, rate in ((row[0] if row else None) or {}).items() if rate is not None}


def run_change_rates(
    conn: psycopg.Connection, run_id: str | None, chain_ids: Sequence[int], settings: Settings,
) -> dict[int, float | None]:
    """The chains' change rates as the run measured them first (`runs.summary` "change_rates").

    DESIGN §10: what several steps need is computed once per run and passed on.
    The first step that asks (the health-check batching, after the stale-anchor
    re-scrape) measures them with `change_rates` and keeps them with the run;
    every later task of the run, and a re-run of it, reads the same numbers,
    so the run's comparisons all allow for one rate per chain. Without a
    recorded run (a script, the bench), they are measured each time. None: no
    anchor scraped twice yet, the Comparer takes the `daily_change_rate` prior.
    """
    wanted = sorted(set(chain_ids))
    kept: dict[int, float | None] = {}
    if run_id is not None and wanted:
        row = conn.execute("SELECT summary->'change_rates' FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        kept = {int(k): v for k, v in ((row[0] if row else None) or {}).items()}
    missing = [c for c in wanted if c not in kept]
    if missing:
        measured = change_rates(conn, missing, settings)
        fresh = {c: measured.get(c) for c in missing}
        if run_id is not None:
            conn.execute(
                """UPDATE runs SET summary = summary || jsonb_build_object('change_rates',
                       coalesce(summary->'change_rates', '{}'::jsonb) || %s::jsonb)
                   WHERE run_id = %s""",
                (json.dumps({str(c): r for c, r in fresh.items()}), run_id),
            )
        kept.update(fresh)
    return {c: kept[c] for c in wanted}

# -- writing ---------------------------------------------------------------

def record_cadence(conn: psycopg.Connection, cadence: Cadence) -> None:
    """Keep the run cadence's windows where the effective_prices view and served.py read them (sql/0048)."""
    conn.execute(
        """UPDATE run_cadence SET run_interval = %s, fresh = %s, horizon = %s, updated_at = now()
           WHERE run_interval IS DISTINCT FROM %s OR fresh IS DISTINCT FROM %s OR horizon IS DISTINCT FROM %s""",
        (cadence.interval, cadence.fresh, cadence.horizon) * 2,
    )


def record_comparisons(
    conn: psycopg.Connection,
    computed: dict[tuple, tuple[int, int, Counts]],
    run_id: str | None,
    as_of: datetime,
    settings: Settings,
) -> int:
    """Upsert the comparisons computed this run (latest result per pair).

    A bootstrap records a few hundred thousand pairs: only what differs per
    pair goes through a binary COPY, what is the same for all is added by the
    INSERT.
    """
    if not computed:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            """CREATE TEMP TABLE _comparisons_staging (
                   store_id int, other_store_id int, signature bigint, other_signature bigint, overlap int,
                   agreeing int, size int, other_size int, outcome text, complete boolean,
                   shared int, own int, other_own int, timing int) ON COMMIT DROP"""
        )
        with cur.copy("COPY _comparisons_staging FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int4", "int8", "int8", "int4", "int4", "int4", "int4", "text", "bool",
                            "int4", "int4", "int4", "int4"])
            for (a, b), (sa, sb, c) in computed.items():
                outcome = judge(c, settings)[0].value if c.complete else "mismatch"  # stopped early: no match
                copy.write_row((a, b, sa, sb, c.overlap, c.agreeing, c.size_a, c.size_b, outcome, c.complete,
                                c.shared, c.own_a, c.own_b, c.timing))
        cur.execute(
            """INSERT INTO comparisons (store_id, other_store_id, signature, other_signature, overlap, agreeing, size,
                                        other_size, outcome, run_id, compared_at, complete, threshold, shared, own,
                                        other_own, timing, rule)
               SELECT store_id, other_store_id, signature, other_signature, overlap, agreeing, size, other_size,
                      outcome, %s, %s, complete, %s, shared, own, other_own, timing, %s
               FROM _comparisons_staging ORDER BY store_id, other_store_id
               ON CONFLICT (store_id, other_store_id) DO UPDATE SET
                   signature = EXCLUDED.signature, other_signature = EXCLUDED.other_signature,
                   overlap = EXCLUDED.overlap, agreeing = EXCLUDED.agreeing, size = EXCLUDED.size,
                   other_size = EXCLUDED.other_size, outcome = EXCLUDED.outcome,
                   run_id = EXCLUDED.run_id, compared_at = EXCLUDED.compared_at,
                   complete = EXCLUDED.complete, threshold = EXCLUDED.threshold,
                   shared = EXCLUDED.shared, own = EXCLUDED.own, other_own = EXCLUDED.other_own,
                   timing = EXCLUDED.timing, rule = EXCLUDED.rule""",
            (run_id, as_of, settings.max_member_deviation, rule_fingerprint(settings)),
        )
        cur.execute("DROP TABLE _comparisons_staging")
    return len(computed)


def deduplicate(conn: psycopg.Connection, pairs: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Drop each member's price rows equal to its anchor's (rules/serving.SAME_PRICE_FIELDS); the rest stay
    as overrides."""
    return PostgresStorage(conn).deduplicate(pairs)


def apply_decisions(
    conn: psycopg.Connection,
    decisions: Sequence[Decision],
    groups: dict[int, GroupState],
    as_of: datetime,
    run_id: str | None,
    deduplicate_now: bool = True,
) -> dict[str, int]:
    """Apply a batch of decisions (anchor changes, ejections, verifications, merges) set-based.

    Order matters and is fixed: anchors are replaced first (a drifting anchor
    then leaves as an ordinary member), then ejections, verifications, merges.
    With `deduplicate_now` false, verified and merged members keep their rows
    until `deduplicate_members` runs (a separate, batched task). The caller
    owns the transaction.
    """
    events: list[tuple] = []
    counts = {"anchors_replaced": 0, "ejected": 0, "verified": 0, "merged": 0, "deduplicated": 0}
    replaced = [d for d in decisions if isinstance(d, ReplaceAnchor)]
    ejected = [d for d in decisions if isinstance(d, Eject)]
    verified = [d for d in decisions if isinstance(d, Verify)]
    merged = [d for d in decisions if isinstance(d, Merge)]
    chain = {g: s.chain for g, s in groups.items()}

    if replaced:
        conn.execute(
            """UPDATE store_groups g SET anchor_store_id = r.new_anchor
               FROM unnest(%s::bigint[], %s::int[]) AS r(group_id, new_anchor) WHERE g.group_id = r.group_id""",
            ([d.group for d in replaced], [d.new_anchor for d in replaced]),
        )
        for d in replaced:
            events.append((chain[d.group], "anchor_replaced", d.group, None, d.new_anchor, d.old_anchor,
                           {"reason": d.reason, **d.evidence}))
        counts["anchors_replaced"] = len(replaced)

    if ejected:
        new_groups = dict(conn.execute(
            """WITH fresh AS (
                   SELECT e.store_id, s.chain_id,
                          nextval(pg_get_serial_sequence('store_groups', 'group_id')) AS group_id
                   FROM unnest(%(stores)s::int[]) AS e(store_id) JOIN stores s USING (store_id)
               ),
               made AS (
                   INSERT INTO store_groups (group_id, chain_id, anchor_store_id, created_at, created_run_id)
                   SELECT group_id, chain_id, store_id, %(at)s, %(run)s FROM fresh
               ),
               moved AS (
                   UPDATE stores s SET group_id = f.group_id, needs_verification = false
                   FROM fresh f WHERE s.store_id = f.store_id
               )
               SELECT store_id, group_id FROM fresh""",
            {"stores": [d.store for d in ejected], "at": as_of, "run": run_id},
        ).fetchall())
        for d in ejected:
            new = new_groups[d.store]
            events.append((chain[d.group], "member_ejected", d.group, new, d.store, d.anchor, d.comparison.evidence()))
            events.append((chain[d.group], "created", new, d.group, d.store, None,
                           {"reason": f"ejected from group {d.group}", "stores": [d.store, d.anchor]}))
        counts["ejected"] = len(ejected)

    if verified:
        conn.execute(
            "UPDATE stores SET last_verified_at = %s, needs_verification = false WHERE store_id = ANY(%s)",
            (as_of, [d.store for d in verified]),
        )
        dropped = deduplicate(conn, [(d.store, d.anchor) for d in verified]) if deduplicate_now else {}
        for d in verified:
            evidence = {**d.comparison.evidence(), "deduplicated": dropped.get(d.store, 0)}
            events.append((chain[d.group], "verified", d.group, None, d.store, d.anchor, evidence))
        counts["verified"] = len(verified)
        counts["deduplicated"] += sum(dropped.values())

    if merged:
        conn.execute(
            """UPDATE stores s SET group_id = m.into_group
               FROM unnest(%s::bigint[], %s::bigint[]) AS m(from_group, into_group) WHERE s.group_id = m.from_group""",
            ([d.group for d in merged], [d.into for d in merged]),
        )
        conn.execute("DELETE FROM store_groups WHERE group_id = ANY(%s)", ([d.group for d in merged],))
        # Integrity chain (merging.needing_verification, the rule GroupBook applies too): planning
        # scrapes these members next, whatever the budget. Their last_verified_at stays, so they are
        # not judged on their deduplicated rows before that scrape.
        flagged = needing_verification(merged, groups)
        if flagged:
            conn.execute("UPDATE stores SET needs_verification = true WHERE store_id = ANY(%s)", (sorted(flagged),))
        conn.execute(
            "UPDATE stores SET last_verified_at = %s, needs_verification = false WHERE store_id = ANY(%s)",
            (as_of, [d.store for d in merged]),
        )
        dropped = deduplicate(conn, [(d.store, d.anchor) for d in merged]) if deduplicate_now else {}
        for d in merged:
            evidence = {**d.comparison.evidence(), "deduplicated": dropped.get(d.store, 0),
                        "sizes": [groups[d.group].size, groups[d.into].size]}
            events.append((chain[d.into], "merged", d.into, d.group, d.store, d.anchor, evidence))
        counts["merged"] = len(merged)
        counts["deduplicated"] += sum(dropped.values())

    write_events(conn, events, as_of, run_id)
    return counts


def write_events(conn: psycopg.Connection, events: Sequence[tuple], at: datetime, run_id: str | None) -> None:
    """Append group_events rows: (chain, kind, group, other_group, store, other_store, evidence)."""
    if not events:
        return
    columns = list(zip(*events))
    conn.execute(
        """INSERT INTO group_events (run_id, chain_id, kind, group_id, other_group_id, store_id,
                                     other_store_id, evidence, created_at)
           SELECT %s, e.chain_id, e.kind, e.group_id, e.other_group_id, e.store_id, e.other_store_id,
                  e.evidence::jsonb, %s
           FROM unnest(%s::int[], %s::text[], %s::bigint[], %s::bigint[], %s::int[], %s::int[], %b::text[])
                AS e(chain_id, kind, group_id, other_group_id, store_id, other_store_id, evidence)""",
        # the evidence goes binary: a text array's escaping costs more than the insert for thousands of events
        (run_id, at, *[list(c) for c in columns[:6]], [json.dumps(e, default=_json_default) for e in columns[6]]),
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")
