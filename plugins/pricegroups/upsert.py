"""Bulk upsert of the latest price per (product, store): the price store's unit of work.

Design (figures measured on a 2-core machine, 1M rows; bench/upsert.py):

* Rows go to the server with binary COPY into a temporary staging table; any
  per-row protocol (executemany 7k rows/s, VALUES lists 20-40k rows/s) is an
  order of magnitude slower. Amounts cross as text and are read as numeric by
  the chunk statement: psycopg's binary numeric encoding was most of the
  client's time, and the client alone works while COPY runs. On the way, a
  set of products per store sizes the stores and notes whether any (product,
  store) comes twice: only then does SQL rank duplicates (a window, a sort of
  each chunk). Rows from scraped_items are staged by one INSERT ... SELECT
  and always ranked.
* The staged rows are applied in chunks of whole stores, at most
  `Settings.upsert_batch_rows` rows each (a bigger store is a chunk of its
  own). A store is never split: its rows are classified against its
  `last_scraped_at` and advance it in one statement, exactly as if the run
  were applied at once, so the counts summed over chunks are the one-shot
  counts. Server memory and lock time are bounded by a chunk.
* One statement per chunk classifies its rows against `prices` (new /
  changed / unchanged / older / rejected), inserts the new rows and sends the
  changed ones through INSERT ... ON CONFLICT DO UPDATE, each in primary-key
  order. It reads only its stores' rows (an index on staging,
  prices_store_idx). Unchanged and older rows are never touched: ON CONFLICT
  would lock and WAL-log every conflicting row even when its WHERE guard skips
  the update. Changed rows use ON CONFLICT rather than UPDATE ... FROM because
  it finds each row by the primary key; a join would read the stores' prices a
  second time.
* New rows take a plain INSERT: ON CONFLICT's speculative insertion costs a
  second index probe and a confirmation record per row (measured: the chunk
  statements used 17% less server CPU without it). A key that another writer
  (a catalogue merge moving prices) inserts under the statement fails it with a
  unique violation on prices_pkey; the chunk's block is then rolled back and
  the chunk applied again with new rows through ON CONFLICT as well, which
  sees the other writer's row.
* Why not MERGE: on PostgreSQL 15 it has no RETURNING (no exact created vs
  updated counts) and it raises a unique violation when another session
  inserts the same key concurrently, as the plain INSERT does.
* Concurrency: the classification reads a snapshot, so two upserts of one
  store must not interleave. Each chunk first takes transaction-scoped
  advisory locks on its stores' lock buckets, in sorted order, in one
  statement; its main statement starts after they are granted and therefore
  sees everything the other upsert committed. Chunks are cut from the stores
  in bucket order, so chunks sharing one transaction also lock in ascending
  order (no deadlock). Upserts of different stores run in parallel.
* Freshness: an unchanged price keeps its row (and xmin); the store's
  `last_scraped_at` records when it was last observed. A row older than the
  stored price or than its store's last observation is ignored, so a backfill
  never makes a price older. A regular-price change (no special before or
  after) keeps the price it replaced in `previous_price`: what a store that
  is late with changes still charges (grouping/lateness.py).

Transactions: staging, then each chunk, runs in its own `conn.transaction()`
block, and psycopg decides what that block is:

* Called with no transaction open, each block commits. A chunk's locks are
  held for that chunk only. A failure or crash between chunks leaves the
  committed chunks' stores fully applied (prices, `last_scraped_at`, their
  rejections) and every other store untouched; running the same upsert
  again converges (the applied stores come out unchanged, the others are
  applied). Only its counts differ, and the applied stores' rejections, like
  those of rows rejected before COPY, are recorded a second time.
* Called inside a transaction (the caller has executed statements, or wraps
  the call in `conn.transaction()`), the blocks are savepoints: nothing is
  committed here, the whole run is atomic with the caller's work, and the
  locks are held until the caller ends its transaction.
"""
from __future__ import annotations

import json
import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Iterator, NamedTuple, Sequence

import psycopg

from pricegroups.settings import Settings

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x7072  # advisory lock class id for price-store locks
LOCK_BUCKETS = 1024
MAX_INT = 2**31
MAX_BIGINT = 2**63
WRITTEN = ("new", "changed", "unchanged", "older")  # outcomes that are not rejections


class PriceRow(NamedTuple):
    """One observed price; scraped_at is the store scrape's time (one value per store and run)."""

    product_id: int
    store_id: int
    price: Decimal
    scraped_at: datetime
    was_price: Decimal | None = None
    unit_price: Decimal | None = None
    unit_measure: str | None = None
    on_special: bool = False
    promo_text: str | None = None


@dataclass(frozen=True)
class Rejection:
    index: int  # position of the row in the input
    product_id: object
    store_id: object
    reason: str


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ignored_older: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    chunks: int = 0  # transactions (or savepoints) the rows were applied in

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + self.ignored_older + self.rejected

    def as_counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "ignored_older": self.ignored_older,
            "rejected": self.rejected,
        }


# Not ON COMMIT DROP: when chunks commit, the staging table must outlive the first commit.
# Amounts are text when they come by COPY (see _copy_rows), numeric from scraped_items.
_STAGING_DDL = """
CREATE TEMP TABLE _price_staging (
    seq           bigint NOT NULL,
    product_id    bigint NOT NULL,
    store_id      integer NOT NULL,
    price         {amount} NOT NULL,
    scraped_at    timestamptz NOT NULL,
    was_price     {amount},
    unit_price    {amount},
    unit_measure  text,
    on_special    boolean NOT NULL,
    promo_text    text
)
"""
_COPY = (
    "COPY _price_staging (seq, product_id, store_id, price, scraped_at, was_price, unit_price,"
    " unit_measure, on_special, promo_text) FROM STDIN (FORMAT BINARY)"
)
# same order as PriceRow, after the input position; amounts as text: see _copy_rows
_COPY_TYPES = ["int8", "int8", "int4", "text", "timestamptz", "text", "text", "text", "bool", "text"]
# Decimal's text in this exponent range is what numeric input accepts (it refuses exponents past 1000)
MAX_EXPONENT = 1000

_FROM_SCRAPED_ITEMS = """
INSERT INTO _price_staging (seq, product_id, store_id, price, scraped_at, was_price, unit_price,
                            unit_measure, on_special, promo_text)
SELECT row_number() OVER (ORDER BY store_id, sku) - 1, product_id, store_id, price, scraped_at,
       was_price, unit_price, unit_measure, on_special, promo_text
FROM scraped_items
WHERE run_id = %s AND product_id IS NOT NULL
  AND (%s::int[] IS NULL OR store_id = ANY(%s::int[]))
"""

_STORE_SIZES = "SELECT store_id, count(*) FROM _price_staging GROUP BY store_id"

# Granted in array order, which is sorted; work_mem is the chunk transaction's own.
_LOCK_BUCKETS = """
SELECT set_config('work_mem', '256MB', true), count(pg_advisory_xact_lock(%(ns)s, b))
FROM unnest(%(buckets)s::int[]) AS b
"""

_VALUES = "price, was_price, unit_price, unit_measure, on_special, promo_text"


def _money_checks(column: str) -> str:
    """CASE branches rejecting a bad amount; value checks run in SQL, set-based, not per row in Python."""
    return f"""
               WHEN st.{column} = 'NaN' THEN '{column} is NaN'
               WHEN st.{column} IN ('Infinity', '-Infinity') THEN '{column} is ' || st.{column}
               WHEN st.{column} <= 0 THEN format('{column} %%s is not positive', st.{column})
               WHEN st.{column} > %(ceiling)s THEN format('{column} %%s is above the ceiling %%s', st.{column}, %(ceiling)s)
               WHEN scale(st.{column}) > 2 AND st.{column} <> round(st.{column}, 2)
                   THEN format('{column} %%s has fractions of a cent', st.{column})"""


_REJECTED = "outcome NOT IN ('" + "', '".join(WRITTEN) + "')"

# Ranking duplicates needs a sort of the whole chunk; skipped when the rows are known to have none.
# Amounts are read as numeric (a no-op on numeric staging) and the unit price rounded to the scale
# it is stored and compared at; OFFSET 0 keeps the subquery whole so each is computed once per row.
_STAGED_COLUMNS = """s.seq, s.product_id, s.store_id, s.price::numeric AS price, s.scraped_at,
           s.was_price::numeric AS was_price, s.unit_price::numeric AS unit_price,
           round(s.unit_price::numeric, 4) AS unit_price_4, s.unit_measure, s.on_special, s.promo_text"""
_RANKED = f"""
    SELECT {_STAGED_COLUMNS},
           row_number() OVER (PARTITION BY s.product_id, s.store_id
                              ORDER BY s.scraped_at DESC, s.seq DESC) > 1 AS loser
    FROM _price_staging s WHERE s.store_id = ANY(%(stores)s::int[]) OFFSET 0"""
_UNRANKED = f"""
    SELECT {_STAGED_COLUMNS}, false AS loser
    FROM _price_staging s WHERE s.store_id = ANY(%(stores)s::int[]) OFFSET 0"""

# One statement per chunk: check, classify, write new and changed rows, advance store freshness, count.
_UPSERT_CHUNK = f"""
WITH staged AS ({{staged}}),
classified AS (
    SELECT st.seq, st.product_id, st.store_id, st.price, st.was_price,
           st.unit_price_4 AS unit_price, st.unit_measure, st.on_special, st.promo_text, st.scraped_at,
           CASE
               WHEN st.loser THEN 'duplicate (product, store) in batch; the newest row was kept'
               {_money_checks("price")}
               {_money_checks("was_price")}
               WHEN st.on_special AND st.was_price < st.price
                   THEN format('was_price %%s is lower than price %%s on a special', st.was_price, st.price)
               WHEN st.unit_price = 'NaN' OR st.unit_price IN ('Infinity', '-Infinity')
                    OR st.unit_price <= 0 OR st.unit_price >= 1e10
                   THEN format('unit_price %%s is not a positive amount', st.unit_price)
               WHEN pr.product_id IS NULL THEN 'unknown product'
               WHEN sto.store_id IS NULL THEN 'unknown store'
               WHEN p.product_id IS NULL AND st.scraped_at < sto.last_scraped_at THEN 'older'
               WHEN p.product_id IS NULL THEN 'new'
               WHEN st.scraped_at < greatest(p.scraped_at, sto.last_scraped_at) THEN 'older'
               WHEN (st.price, st.was_price, st.unit_price_4, st.unit_measure, st.on_special, st.promo_text)
                    IS NOT DISTINCT FROM
                    (p.price, p.was_price, p.unit_price, p.unit_measure, p.on_special, p.promo_text)
                   THEN 'unchanged'
               ELSE 'changed'
           END AS outcome
    FROM staged st
    LEFT JOIN products pr ON pr.product_id = st.product_id
    LEFT JOIN stores sto ON sto.store_id = st.store_id
    LEFT JOIN prices p ON p.product_id = st.product_id AND p.store_id = st.store_id
                      AND p.store_id = ANY(%(stores)s::int[])
),
inserted AS ({{insert_new}}),
written AS (
    INSERT INTO prices AS p (product_id, store_id, {_VALUES}, scraped_at, run_id)
    SELECT product_id, store_id, {_VALUES}, scraped_at, %(run_id)s
    FROM classified
    WHERE outcome IN ({{upserted}})
    ORDER BY product_id, store_id
    ON CONFLICT (product_id, store_id) DO UPDATE
        SET price = EXCLUDED.price, was_price = EXCLUDED.was_price,
            unit_price = EXCLUDED.unit_price, unit_measure = EXCLUDED.unit_measure,
            on_special = EXCLUDED.on_special, promo_text = EXCLUDED.promo_text,
            scraped_at = EXCLUDED.scraped_at, run_id = EXCLUDED.run_id,
            previous_price = CASE WHEN NOT p.on_special AND NOT EXCLUDED.on_special AND p.price <> EXCLUDED.price
                                  THEN p.price END
        WHERE EXCLUDED.scraped_at >= p.scraped_at
          AND (p.price, p.was_price, p.unit_price, p.unit_measure, p.on_special, p.promo_text)
              IS DISTINCT FROM
              (EXCLUDED.price, EXCLUDED.was_price, EXCLUDED.unit_price, EXCLUDED.unit_measure,
               EXCLUDED.on_special, EXCLUDED.promo_text)
    RETURNING (xmax = 0) AS inserted
),
tally AS MATERIALIZED (
    SELECT store_id, outcome, count(*) AS n, max(scraped_at) AS newest,
           array_agg(seq) FILTER (WHERE {_REJECTED}) AS seqs,
           array_agg(product_id) FILTER (WHERE {_REJECTED}) AS product_ids
    FROM classified GROUP BY store_id, outcome
),
observed AS (
    UPDATE stores s SET last_scraped_at = f.newest, first_scraped_at = coalesce(s.first_scraped_at, f.newest)
    FROM (SELECT store_id, max(newest) AS newest FROM tally
          WHERE outcome IN ('new', 'changed', 'unchanged') GROUP BY store_id) f
    WHERE s.store_id = f.store_id AND (s.last_scraped_at IS NULL OR s.last_scraped_at < f.newest)
)
SELECT outcome, n, store_id, seqs, product_ids FROM tally
UNION ALL
SELECT CASE WHEN inserted THEN 'created' ELSE 'updated' END, count(*), NULL, NULL, NULL
FROM (SELECT inserted FROM written UNION ALL SELECT inserted FROM inserted) w GROUP BY 1
"""
# New rows take a plain INSERT: no speculative insertion (a second index probe and a confirm
# record per row). A key inserted under the statement by another writer fails it; the chunk is
# then run again with the safe form, where new rows go through ON CONFLICT as well.
_INSERT_NEW = f"""
    INSERT INTO prices (product_id, store_id, {_VALUES}, scraped_at, run_id)
    SELECT product_id, store_id, {_VALUES}, scraped_at, %(run_id)s
    FROM classified WHERE outcome = 'new'
    ORDER BY product_id, store_id
    RETURNING true AS inserted"""
_NOTHING = "SELECT true AS inserted WHERE false"


def _chunk_statement(ranked: bool, safe: bool) -> str:
    """The chunk statement: duplicates ranked or not; new rows plainly inserted or (safe) upserted."""
    return (
        _UPSERT_CHUNK.replace("{staged}", _RANKED if ranked else _UNRANKED)
        .replace("{insert_new}", _NOTHING if safe else _INSERT_NEW)
        .replace("{upserted}", "'new', 'changed'" if safe else "'changed'")
    )


# (fast, safe) statements, without and with duplicate ranking
_STATEMENTS = {ranked: (_chunk_statement(ranked, False), _chunk_statement(ranked, True)) for ranked in (False, True)}


def check_row(row: object) -> tuple[tuple | None, str | None]:
    """The row to COPY (with ints as Decimals) or why it cannot be sent.

    Only types and ranges that COPY or numeric input would choke on are checked
    here, once per row, on a fast path for well-formed rows; amounts are judged
    in SQL.
    """
    try:
        product_id, store_id, price, scraped_at, was_price, unit_price, unit_measure, on_special, promo_text = row  # type: ignore[misc]
    except (TypeError, ValueError):
        return None, "not a price row (expected 9 fields: product_id, store_id, price, scraped_at, ...)"
    if (
        _sendable(price)
        and type(product_id) is int
        and type(store_id) is int
        and type(on_special) is bool
        and type(scraped_at) is datetime
        and scraped_at.tzinfo is not None
        and (was_price is None or _sendable(was_price))
        and (unit_price is None or _sendable(unit_price))
        and (unit_measure is None or (type(unit_measure) is str and "\x00" not in unit_measure))
        and (promo_text is None or (type(promo_text) is str and "\x00" not in promo_text))
        and 0 < product_id < MAX_BIGINT
        and 0 < store_id < MAX_INT
    ):
        return row, None  # type: ignore[return-value]
    return _slow_check(product_id, store_id, price, scraped_at, was_price, unit_price, unit_measure, on_special, promo_text)


def _sendable(value: object) -> bool:
    """A Decimal whose text numeric input reads back as the same number: finite, exponent in range."""
    return type(value) is Decimal and value.is_finite() and -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT


def _slow_check(product_id, store_id, price, scraped_at, was_price, unit_price, unit_measure, on_special, promo_text):  # type: ignore[no-untyped-def]
    if type(product_id) is not int or type(store_id) is not int:
        return None, "product_id and store_id must be integers"
    if not (0 < product_id < MAX_BIGINT and 0 < store_id < MAX_INT):
        return None, "product_id or store_id out of range"
    amounts = []
    for name, value, optional in (("price", price, False), ("was_price", was_price, True), ("unit_price", unit_price, True)):
        if type(value) is int:
            value = Decimal(value)
        if value is None and optional:
            amounts.append(None)
        elif type(value) is Decimal and value.is_nan():
            amounts.append(Decimal("NaN"))  # sNaN and -NaN too: SQL says why NaN is refused
        elif type(value) is Decimal and (value.is_infinite() or _sendable(value)):
            amounts.append(value)
        elif type(value) is Decimal:
            return None, f"{name} {value} is out of range"
        elif type(value) is float and math.isnan(value):
            return None, f"{name} is NaN"
        else:
            return None, f"{name} must be a Decimal, got {type(value).__name__} {value!r}"
    if type(on_special) is not bool:
        return None, f"on_special must be a bool, got {on_special!r}"
    if not isinstance(scraped_at, datetime) or scraped_at.tzinfo is None:
        return None, f"scraped_at must be a timezone-aware datetime, got {scraped_at!r}"
    for name, text in (("unit_measure", unit_measure), ("promo_text", promo_text)):
        if text is not None and (type(text) is not str or "\x00" in text):
            return None, f"{name} must be text without NUL characters"
    price, was_price, unit_price = amounts
    return (product_id, store_id, price, scraped_at, was_price, unit_price, unit_measure, on_special, promo_text), None


def upsert_prices(
    conn: psycopg.Connection,
    rows: Iterable[PriceRow | tuple],
    run_id: str,
    settings: Settings | None = None,
) -> UpsertResult:
    """Write a run's prices in chunks of whole stores; return exact per-outcome counts.

    Bad rows are rejected with a reason (returned and recorded in rejected_items)
    and never abort the good ones. Chunks commit unless the caller has a
    transaction open (see the module docstring).
    """
    settings = settings or Settings()
    with _staging(conn, "text") as cur:
        with conn.transaction():
            staged = _copy_rows(cur, rows)
            chunks = _prepare_chunks(cur, settings.upsert_batch_rows, staged.store_sizes)
            _record_rejections(cur, run_id, staged.rejected)
        return _apply_chunks(conn, cur, run_id, settings, chunks, staged)


def upsert_scraped_items(
    conn: psycopg.Connection,
    run_id: str,
    settings: Settings | None = None,
    store_ids: Iterable[int] | None = None,
) -> UpsertResult:
    """Upsert a run's resolved items from scraped_items without a round trip through Python.

    Items without a product (unresolved) are left out: resolve has recorded why.
    Rejection indexes are positions in (store_id, sku) order of the run's items.
    Chunks and transactions as in upsert_prices.
    """
    settings = settings or Settings()
    stores = sorted(set(store_ids)) if store_ids is not None else None
    with _staging(conn, "numeric") as cur:
        with conn.transaction():
            cur.execute(_FROM_SCRAPED_ITEMS, (run_id, stores, stores))
            chunks = _prepare_chunks(cur, settings.upsert_batch_rows, None)
        return _apply_chunks(conn, cur, run_id, settings, chunks, _Staged())


@dataclass
class _Staged:
    """What staging learnt on the way: rows COPY could not take, rows per store, duplicate keys."""

    rejected: list[Rejection] = field(default_factory=list)
    store_sizes: dict[int, int] | None = None  # None: count them in the staging table
    duplicates: bool = True  # unknown counts as possible: rank them in SQL


@contextmanager
def _staging(conn: psycopg.Connection, amount: str) -> Iterator[psycopg.Cursor]:
    """A cursor over a fresh _price_staging (amounts of type amount), dropped afterwards: it outlives chunk commits."""
    with conn.cursor() as cur:
        with conn.transaction():
            cur.execute("DROP TABLE IF EXISTS pg_temp._price_staging")  # left by a call that failed mid-way
            cur.execute(_STAGING_DDL.format(amount=amount))
        try:
            yield cur
        finally:
            if not conn.broken:
                with conn.transaction():
                    cur.execute("DROP TABLE IF EXISTS pg_temp._price_staging")


def _copy_rows(cur: psycopg.Cursor, rows: Iterable[PriceRow | tuple]) -> _Staged:
    """Stream the rows into staging with their input position, noting each store's products.

    Amounts go as text (str of the Decimal), read as numeric in SQL: psycopg's
    binary numeric dumper took 0.75 s of the client's 1.2 s per 1M rows, str()
    and the server's numeric input much less. The products seen are kept per
    store (rows come store by store: one dict lookup per store, a set probe per
    row): per 1M rows 0.25 s, against 1 s for a (product, store) key per row and
    2 s for a hash aggregate per chunk in SQL. The sets also size the stores for
    the chunk plan.
    """
    staged = _Staged(duplicates=False)
    seen: dict[int, set[int]] = {}
    current, products = None, set()
    with cur.copy(_COPY) as copy:
        copy.set_types(_COPY_TYPES)
        write = copy.write_row
        for seq, row in enumerate(rows):
            clean, reason = check_row(row)
            if reason is not None:
                fields = row if isinstance(row, tuple) else ()
                staged.rejected.append(Rejection(seq, _field(fields, 0), _field(fields, 1), reason))
                continue
            product_id, store_id, price, scraped_at, was_price, unit_price, unit_measure, on_special, promo = clean  # type: ignore[misc]
            write((seq, product_id, store_id, str(price), scraped_at, None if was_price is None else str(was_price),
                   None if unit_price is None else str(unit_price), unit_measure, on_special, promo))
            if store_id != current:
                current, products = store_id, seen.setdefault(store_id, set())
            if product_id in products:
                staged.duplicates = True
            products.add(product_id)
    if not staged.duplicates:
        staged.store_sizes = {store_id: len(products) for store_id, products in seen.items()}
    return staged


def _prepare_chunks(
    cur: psycopg.Cursor, batch_rows: int, store_sizes: dict[int, int] | None
) -> list[list[int]]:
    """Plan the chunks from the staged stores' sizes; index and analyze staging for them."""
    if store_sizes is None:
        store_sizes = dict(cur.execute(_STORE_SIZES).fetchall())
    chunks = plan_chunks(store_sizes.items(), batch_rows)
    if len(chunks) > 1:  # each chunk picks its stores' rows; without an index that is a full scan each
        cur.execute("CREATE INDEX ON _price_staging (store_id)")
    cur.execute("ANALYZE _price_staging")  # temp tables are never auto-analyzed
    return chunks


def plan_chunks(store_sizes: Iterable[tuple[int, int]], batch_rows: int) -> list[list[int]]:
    """Whole stores packed greedily, in lock-bucket order, into chunks of at most batch_rows rows.

    A store bigger than batch_rows is a chunk of its own. Bucket order makes the
    chunks' lock requests ascending across chunks too, so chunks that share a
    transaction cannot deadlock with another upsert.
    """
    chunks: list[list[int]] = []
    filled = batch_rows
    for store_id, rows in sorted(store_sizes, key=lambda s: (s[0] % LOCK_BUCKETS, s[0])):
        if filled + rows > batch_rows:
            chunks.append([])
            filled = 0
        chunks[-1].append(store_id)
        filled += rows
    return chunks


def _apply_chunks(
    conn: psycopg.Connection,
    cur: psycopg.Cursor,
    run_id: str,
    settings: Settings,
    chunks: Sequence[list[int]],
    staged: _Staged,
) -> UpsertResult:
    """Apply each chunk in its own transaction block; sum the counts."""
    result = UpsertResult(rejections=list(staged.rejected))
    for number, stores in enumerate(chunks, 1):
        part = _apply_in_block(conn, cur, _STATEMENTS[staged.duplicates], stores, run_id, settings)
        log.debug("upsert %s chunk %d/%d (%d stores): %s", run_id, number, len(chunks), len(stores),
                  part.as_counts())
        result.created += part.created
        result.updated += part.updated
        result.unchanged += part.unchanged
        result.ignored_older += part.ignored_older
        result.rejections += part.rejections
        result.chunks += 1
    result.rejections.sort(key=lambda r: r.index)
    log.info("upsert %s: %s in %d chunk(s)", run_id, result.as_counts(), result.chunks)
    if result.rejections:
        log.warning("upsert %s rejected %d rows, e.g. %s", run_id, result.rejected, result.rejections[0])
    return result


def _apply_in_block(
    conn: psycopg.Connection,
    cur: psycopg.Cursor,
    statements: tuple[str, str],
    stores: list[int],
    run_id: str,
    settings: Settings,
) -> UpsertResult:
    """Apply one chunk in its transaction block; again with the safe statement if a key raced in."""
    fast, safe = statements
    try:
        with conn.transaction():
            part = _apply_chunk(cur, fast, stores, run_id, settings)
            _record_rejections(cur, run_id, part.rejections)
        return part
    except psycopg.errors.UniqueViolation as error:
        if error.diag.constraint_name != "prices_pkey":
            raise
        log.info("upsert %s: a price of stores %s appeared under the chunk; applying it again", run_id, stores)
    with conn.transaction():
        part = _apply_chunk(cur, safe, stores, run_id, settings)
        _record_rejections(cur, run_id, part.rejections)
    return part


def _apply_chunk(
    cur: psycopg.Cursor, statement: str, stores: list[int], run_id: str, settings: Settings
) -> UpsertResult:
    """Lock the chunk's stores, then run the one upsert statement over their staged rows."""
    buckets = sorted({store_id % LOCK_BUCKETS for store_id in stores})
    cur.execute(_LOCK_BUCKETS, {"ns": LOCK_NAMESPACE, "buckets": buckets})
    cur.execute(statement, {"stores": stores, "run_id": run_id, "ceiling": settings.price_ceiling})
    return _counts(cur.fetchall())


def _counts(tally: Iterable[tuple]) -> UpsertResult:
    """Turn the statement's (outcome, count, store, seqs, products) rows into a result."""
    result = UpsertResult()
    for outcome, count, store_id, seqs, product_ids in tally:
        if outcome == "created":
            result.created += count
        elif outcome == "updated":
            result.updated += count
        elif outcome in ("new", "changed", "unchanged"):
            # new and changed rows are counted as written above; any that were not
            # written lost a race to a newer row and count as unchanged
            result.unchanged += count
        elif outcome == "older":
            result.ignored_older += count
        else:
            result.rejections += [Rejection(s, p, store_id, outcome) for s, p in zip(seqs, product_ids)]
    result.unchanged -= result.created + result.updated
    return result


def _field(values: tuple, index: int) -> object:
    return values[index] if len(values) > index else None


def _record_rejections(cur: psycopg.Cursor, run_id: str, rejections: list[Rejection]) -> None:
    if not rejections:
        return
    with cur.copy(
        "COPY rejected_items (run_id, stage, store_id, product_id, reason, detail) FROM STDIN"
    ) as copy:
        for r in rejections:
            copy.write_row(
                (
                    run_id,
                    "upsert",
                    r.store_id if type(r.store_id) is int and 0 < r.store_id < MAX_INT else None,
                    r.product_id if type(r.product_id) is int and 0 < r.product_id < MAX_BIGINT else None,
                    r.reason,
                    json.dumps({"index": r.index, "product_id": repr(r.product_id), "store_id": repr(r.store_id)}),
                )
            )
