"""Reconcilers: merge duplicate brands and products (DESIGN.md §4 step 4).

One mechanism (BaseReconciler): find duplicate sets -> choose a survivor ->
move references -> delete the rest -> log each merge in catalogue_merges.
Each set is merged in its own transaction under the catalogue lock, after
re-reading its rows, so a merge is all-or-nothing and a second pass finds
nothing left to merge (idempotent). BrandReconciler and ProductReconciler only
say what a duplicate is, which one survives and what points at them.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pricegroups.catalogue.flags import Flag, record_flags
from pricegroups.catalogue.resolve import CATALOGUE_LOCK
from pricegroups.catalogue.text import brand_key, canonical_brand_key
from pricegroups.runlog import record_step
from pricegroups.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DuplicateSet:
    survivor_id: int
    merged_ids: tuple[int, ...]
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReconcileResult:
    sets: int = 0
    merged: int = 0
    skipped: int = 0  # sets found but gone or changed by the time they were merged
    moved: Counter = field(default_factory=Counter)  # references moved, per kind
    flags: int = 0

    def as_counts(self, prefix: str) -> dict[str, int]:
        counts = {f"{prefix}_sets": self.sets, f"{prefix}_merged": self.merged,
                  f"{prefix}_skipped": self.skipped, f"{prefix}_flags": self.flags}
        counts.update({f"{prefix}_{k}": v for k, v in sorted(self.moved.items())})
        return counts


class BaseReconciler(ABC):
    entity: str  # 'brand' or 'product', as logged
    table: str
    id_column: str
    moved_kinds: tuple[str, ...]  # what merge() counts, reported even when zero

    def __init__(self, conn: psycopg.Connection, run_id: str, settings: Settings | None = None):
        self.conn = conn
        self.run_id = run_id
        self.settings = settings or Settings()
        self.flags: list[Flag] = []

    @abstractmethod
    def find_duplicate_sets(self, cur: psycopg.Cursor) -> list[DuplicateSet]:
        """Every set of rows that are one thing, each with its survivor and the reason."""

    @abstractmethod
    def merge(self, cur: psycopg.Cursor, dup: DuplicateSet, rows: dict[int, dict[str, Any]]) -> Counter:
        """Move every reference of the merged rows to the survivor and delete them; count what moved."""

    def run(self) -> ReconcileResult:
        result = ReconcileResult(moved=Counter(dict.fromkeys(self.moved_kinds, 0)))
        with self.conn.transaction(), self.conn.cursor() as cur:
            sets = self.find_duplicate_sets(cur)
            result.flags = record_flags(cur, self.run_id, self.flags)
        result.sets = len(sets)
        for dup in sets:
            with self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", CATALOGUE_LOCK)
                rows = self._lock_rows(cur, (dup.survivor_id, *dup.merged_ids))
                present = tuple(i for i in dup.merged_ids if i in rows)
                if dup.survivor_id not in rows or not present:
                    result.skipped += 1
                    continue
                dup = DuplicateSet(dup.survivor_id, present, dup.reason, dup.detail)
                result.moved.update(self.merge(cur, dup, rows))
                self._log(cur, dup, rows)
                result.merged += len(present)
        log.info("%s reconcile %s: %d sets, %d merged", self.entity, self.run_id, result.sets, result.merged)
        return result

    def _lock_rows(self, cur: psycopg.Cursor, ids: tuple[int, ...]) -> dict[int, dict[str, Any]]:
        cur.execute(
            f"SELECT * FROM {self.table} WHERE {self.id_column} = ANY(%s) ORDER BY 1 FOR UPDATE", (list(ids),)
        )
        return {row[self.id_column]: row for row in cur.fetchall()}

    def _log(self, cur: psycopg.Cursor, dup: DuplicateSet, rows: dict[int, dict[str, Any]]) -> None:
        details = [json.dumps({**dup.detail, "merged_row": rows[i]}, default=str, ensure_ascii=False)
                   for i in dup.merged_ids]
        cur.execute(
            """INSERT INTO catalogue_merges (run_id, entity, survivor_id, merged_id, reason, detail)
               SELECT %s, %s, %s, m.id, %s, m.detail
               FROM unnest(%s::bigint[], %s::jsonb[]) AS m(id, detail)""",
            (self.run_id, self.entity, dup.survivor_id, dup.reason, list(dup.merged_ids), details),
        )


class BrandReconciler(BaseReconciler):
    """Brands whose names fold to one key, or that the alias table says are one."""

    entity, table, id_column = "brand", "brands", "brand_id"
    moved_kinds = ("products_moved",)

    def find_duplicate_sets(self, cur: psycopg.Cursor) -> list[DuplicateSet]:
        cur.execute("SELECT alias_key, brand_key FROM brand_aliases")
        aliases = dict(cur.fetchall())
        cur.execute(
            """SELECT b.brand_id, b.name, b.key, count(p.product_id)
               FROM brands b LEFT JOIN products p ON p.brand_id = b.brand_id
               GROUP BY b.brand_id ORDER BY b.brand_id"""
        )
        by_key: dict[str, list[tuple[int, str, str, int]]] = defaultdict(list)
        for brand_id, name, key, products in cur.fetchall():
            canonical = canonical_brand_key(brand_key(name) or key, aliases)
            by_key[canonical].append((brand_id, name, key, products))
        sets = []
        for canonical, brands in sorted(by_key.items()):
            if len(brands) == 1 and brands[0][2] == canonical:
                continue
            # the brand already holding the key survives, else the one with most products
            ranked = sorted(brands, key=lambda b: (b[2] != canonical, -b[3], b[0]))
            aliased = sorted({b[2] for b in brands if aliases.get(b[2]) or aliases.get(brand_key(b[1]) or "")})
            reason = f"brand key {canonical!r}" + (f" (aliases {', '.join(aliased)})" if aliased else "")
            sets.append(DuplicateSet(ranked[0][0], tuple(b[0] for b in ranked[1:]), reason,
                                     {"key": canonical, "names": [b[1] for b in ranked]}))
        return sets

    def merge(self, cur: psycopg.Cursor, dup: DuplicateSet, rows: dict[int, dict[str, Any]]) -> Counter:
        losers = list(dup.merged_ids)
        cur.execute("UPDATE products SET brand_id = %s, updated_at = now() WHERE brand_id = ANY(%s)",
                    (dup.survivor_id, losers))
        moved = Counter(products_moved=cur.rowcount)
        cur.execute("DELETE FROM brands WHERE brand_id = ANY(%s)", (losers,))
        cur.execute("UPDATE brands SET key = %s WHERE brand_id = %s AND key <> %s",
                    (dup.detail["key"], dup.survivor_id, dup.detail["key"]))
        return moved


_PRODUCT_CANDIDATES = """
WITH claims AS (
    SELECT product_id, barcode FROM products WHERE barcode IS NOT NULL
    UNION
    SELECT product_id, barcode FROM listings WHERE barcode IS NOT NULL
),
shared AS (
    SELECT 'barcode'::text AS why, barcode AS label, array_agg(product_id ORDER BY product_id) AS ids
    FROM claims GROUP BY barcode HAVING count(*) > 1
),
keyed AS (
    SELECT 'key'::text, concat_ws('/', brand_id, name_key, size_value, size_unit),
           array_agg(product_id ORDER BY product_id)
    FROM products
    GROUP BY coalesce(brand_id, 0), brand_id, name_key, coalesce(size_unit, ''), size_unit,
             coalesce(size_value, 0), size_value
    HAVING count(*) > 1
)
SELECT * FROM shared UNION ALL SELECT * FROM keyed
"""

_PRODUCT_FACTS = """
SELECT p.product_id, p.barcode,
       (SELECT array_agg(DISTINCT c.barcode) FROM (
            SELECT p.barcode WHERE p.barcode IS NOT NULL
            UNION SELECT l.barcode FROM listings l WHERE l.product_id = p.product_id AND l.barcode IS NOT NULL
        ) c(barcode)) AS claims,
       (SELECT count(*) FROM listings l WHERE l.product_id = p.product_id) AS listings,
       (SELECT count(*) FROM prices pr WHERE pr.product_id = p.product_id) AS prices
FROM products p WHERE p.product_id = ANY(%s)
"""


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, ids: list[int]) -> None:
        roots = sorted({self.find(i) for i in ids})
        for r in roots[1:]:
            self.parent[r] = roots[0]


class ProductReconciler(BaseReconciler):
    """Products sharing a barcode (their own or their listings'), or one brand + name + size
    with no conflicting barcode."""

    entity, table, id_column = "product", "products", "product_id"
    moved_kinds = ("prices_dropped", "prices_moved", "listings_moved")

    def find_duplicate_sets(self, cur: psycopg.Cursor) -> list[DuplicateSet]:
        cur.execute(_PRODUCT_CANDIDATES)
        groups = cur.fetchall()
        if not groups:
            return []
        involved = sorted({i for _, _, ids in groups for i in ids})
        cur.execute(_PRODUCT_FACTS, (involved,))
        facts = {row[0]: row for row in cur.fetchall()}
        claims = {pid: set(row[2] or ()) for pid, row in facts.items()}

        joined = _UnionFind()
        why: dict[int, set[str]] = defaultdict(set)  # product -> reasons it was joined
        for kind, label, ids in groups:
            ids = [i for i in ids if i in facts]
            barcodes = set().union(*(claims[i] for i in ids)) if ids else set()
            if kind == "key" and len(barcodes) > 1:
                self._flag_ambiguous(ids, f"same brand, name and size but barcodes {sorted(barcodes)}")
                continue
            joined.union(ids)
            for i in ids:
                why[i].add(f"same barcode {label}" if kind == "barcode" else "same brand, name and size")

        components: dict[int, list[int]] = defaultdict(list)
        for pid in involved:
            if pid in facts and pid in joined.parent:
                components[joined.find(pid)].append(pid)
        sets = []
        for ids in sorted(components.values()):
            if len(ids) < 2:
                continue
            barcodes = set().union(*(claims[i] for i in ids))
            if len(barcodes) > 1:
                self._flag_ambiguous(ids, f"linked products claim barcodes {sorted(barcodes)}")
                continue
            # a product with a barcode survives, else the best known one; ties: the oldest
            ranked = sorted(ids, key=lambda i: (facts[i][1] is None, -facts[i][3], -facts[i][4], i))
            reasons = sorted(set().union(*(why[i] for i in ids)))
            sets.append(DuplicateSet(ranked[0], tuple(ranked[1:]), "; ".join(reasons),
                                     {"barcode": next(iter(barcodes), None)}))
        return sets

    def _flag_ambiguous(self, ids: list[int], why: str) -> None:
        ids = sorted(ids)
        self.flags.append(Flag("ambiguous_duplicates", "products " + ",".join(map(str, ids)),
                               product_id=ids[0], detail={"product_ids": ids, "why": why}))

    def merge(self, cur: psycopg.Cursor, dup: DuplicateSet, rows: dict[int, dict[str, Any]]) -> Counter:
        survivor, losers = dup.survivor_id, list(dup.merged_ids)
        everyone = [survivor, *losers]
        moved: Counter = Counter()
        # the newest price per store wins; on a tie the survivor's own row stays
        cur.execute(
            """DELETE FROM prices p
               USING (SELECT product_id, store_id,
                             row_number() OVER (PARTITION BY store_id
                                                ORDER BY scraped_at DESC, product_id = %(s)s DESC, product_id) AS rank
                      FROM prices WHERE product_id = ANY(%(all)s)) r
               WHERE r.rank > 1 AND p.product_id = r.product_id AND p.store_id = r.store_id""",
            {"s": survivor, "all": everyone},
        )
        moved["prices_dropped"] = cur.rowcount
        cur.execute("UPDATE prices SET product_id = %s WHERE product_id = ANY(%s)", (survivor, losers))
        moved["prices_moved"] = cur.rowcount
        cur.execute("UPDATE listings SET product_id = %s WHERE product_id = ANY(%s)", (survivor, losers))
        moved["listings_moved"] = cur.rowcount
        cur.execute(
            """DELETE FROM listing_absences a WHERE a.product_id = ANY(%(l)s)
                 AND EXISTS (SELECT 1 FROM listing_absences s WHERE s.product_id = %(s)s AND s.store_id = a.store_id)""",
            {"s": survivor, "l": losers},
        )
        cur.execute("UPDATE listing_absences SET product_id = %s WHERE product_id = ANY(%s)", (survivor, losers))
        cur.execute("UPDATE catalogue_flags SET product_id = %s WHERE product_id = ANY(%s)", (survivor, losers))
        cur.execute("DELETE FROM products WHERE product_id = ANY(%s)", (losers,))
        kept = _fill_from(rows[survivor], [rows[i] for i in sorted(losers)], dup.detail.get("barcode"))
        cur.execute(
            """UPDATE products SET barcode = %(barcode)s, category = %(category)s, brand_id = %(brand_id)s,
                      size_value = %(size_value)s, size_unit = %(size_unit)s, attributes = %(attributes)s,
                      updated_at = now()
               WHERE product_id = %(product_id)s""",
            {**kept, "attributes": json.dumps(kept["attributes"], ensure_ascii=False)},
        )
        return moved


def _fill_from(survivor: dict[str, Any], others: list[dict[str, Any]], barcode: str | None) -> dict[str, Any]:
    """The survivor's row, its gaps filled from the merged rows (oldest first)."""
    kept = dict(survivor)
    kept["barcode"] = kept["barcode"] or barcode
    for other in others:
        for column in ("category", "brand_id"):
            if kept[column] is None:
                kept[column] = other[column]
        if kept["size_value"] is None and other["size_value"] is not None:
            kept["size_value"], kept["size_unit"] = other["size_value"], other["size_unit"]
        kept["attributes"] = {**other["attributes"], **kept["attributes"]}
    return kept


def reconcile(conn: psycopg.Connection, run_id: str, settings: Settings | None = None) -> dict[str, int]:
    """DAG service: merge duplicate brands, then duplicate products; counts out.

    Writes brands/products (merged rows deleted, survivors' gaps filled), listings,
    prices (the newest per store kept), scraped_items.product_id, listing_absences,
    catalogue_merges (one row per merged row), catalogue_flags ('ambiguous_duplicates')
    and runs.summary steps.reconcile. Brands first: merging brands can make products duplicates.
    """
    counts = {**BrandReconciler(conn, run_id, settings).run().as_counts("brand"),
              **ProductReconciler(conn, run_id, settings).run().as_counts("product")}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_REPOINT_STAGED, {"run": run_id})
        counts["staged_items_repointed"] = cur.rowcount
        record_step(cur, run_id, "reconcile", counts, context=())
    return counts


# One statement for the whole run rather than one per merge: the run's staged items
# are found by run_id, the primary key's prefix (an index on product_id would double
# the cost of resolve's UPDATE). Survivors are never merged in the same pass, and
# older runs' merges are followed too, so re-running is safe.
_REPOINT_STAGED = """
WITH RECURSIVE chain (merged_id, survivor_id) AS (
    SELECT merged_id, survivor_id FROM catalogue_merges WHERE entity = 'product'
),
final (merged_id, survivor_id, depth) AS (
    SELECT c.merged_id, c.survivor_id, 1 FROM chain c
    UNION ALL
    SELECT f.merged_id, c.survivor_id, f.depth + 1 FROM final f JOIN chain c ON c.merged_id = f.survivor_id
    WHERE f.depth < 50
)
UPDATE scraped_items si SET product_id = f.survivor_id
FROM (SELECT DISTINCT ON (merged_id) merged_id, survivor_id FROM final ORDER BY merged_id, depth DESC) f
WHERE si.run_id = %(run)s AND si.product_id = f.merged_id
"""
