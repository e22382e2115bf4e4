"""Reconcilers: merge duplicate brands and products (DESIGN.md §4 step 4).

One mechanism (BaseReconciler): find duplicate sets -> choose a survivor ->
move references -> delete the rest -> log each merge in catalogue_merges.
Sets are merged in batches (`MERGE_BATCH` sets a transaction), set-based: a
handful of statements per batch over a (merged row -> survivor) map, whatever
the number of sets, like resolve. Each batch runs under the catalogue lock
after re-reading its rows, so a merge is all-or-nothing and a second pass
finds nothing left to merge (idempotent). BrandReconciler and
ProductReconciler only say what a duplicate is, which one survives and what
points at them.
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

MERGE_BATCH = 1_000  # duplicate sets merged in one transaction


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
    def merge(self, cur: psycopg.Cursor, dups: list[DuplicateSet], rows: dict[int, dict[str, Any]]) -> Counter:
        """Move every reference of the sets' merged rows to their survivors and delete them, set-based (the sets
        are disjoint); count what moved."""

    def run(self) -> ReconcileResult:
        result = ReconcileResult(moved=Counter(dict.fromkeys(self.moved_kinds, 0)))
        with self.conn.transaction(), self.conn.cursor() as cur:
            sets = self.find_duplicate_sets(cur)
            result.flags = record_flags(cur, self.run_id, self.flags)
        result.sets = len(sets)
        for start in range(0, len(sets), MERGE_BATCH):
            with self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", CATALOGUE_LOCK)
                batch = sets[start:start + MERGE_BATCH]
                rows = self._lock_rows(cur, tuple(i for dup in batch for i in (dup.survivor_id, *dup.merged_ids)))
                ready = []
                for dup in batch:
                    present = tuple(i for i in dup.merged_ids if i in rows)
                    if dup.survivor_id not in rows or not present:
                        result.skipped += 1
                        continue
                    ready.append(DuplicateSet(dup.survivor_id, present, dup.reason, dup.detail))
                if not ready:
                    continue
                result.moved.update(self.merge(cur, ready, rows))
                self._log(cur, ready, rows)
                result.merged += sum(len(dup.merged_ids) for dup in ready)
        log.info("%s reconcile %s: %d sets, %d merged", self.entity, self.run_id, result.sets, result.merged)
        return result

    def _lock_rows(self, cur: psycopg.Cursor, ids: tuple[int, ...]) -> dict[int, dict[str, Any]]:
        cur.execute(
            f"SELECT * FROM {self.table} WHERE {self.id_column} = ANY(%s) ORDER BY 1 FOR UPDATE", (list(ids),)
        )
        return {row[self.id_column]: row for row in cur.fetchall()}

    def _log(self, cur: psycopg.Cursor, dups: list[DuplicateSet], rows: dict[int, dict[str, Any]]) -> None:
        merged = [(dup, i) for dup in dups for i in dup.merged_ids]
        cur.execute(
            """INSERT INTO catalogue_merges (run_id, entity, survivor_id, merged_id, reason, detail)
               SELECT %s, %s, m.survivor, m.id, m.reason, m.detail
               FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::jsonb[])
                    WITH ORDINALITY AS m(survivor, id, reason, detail, ord)
               ORDER BY m.ord""",
            (self.run_id, self.entity, [dup.survivor_id for dup, _ in merged], [i for _, i in merged],
             [dup.reason for dup, _ in merged],
             [json.dumps({**dup.detail, "merged_row": rows[i]}, default=str, ensure_ascii=False) for dup, i in merged]),
        )


def _merge_map(dups: list[DuplicateSet]) -> dict[str, list[int]]:
    """The batch's (merged row -> survivor) map as two arrays, for unnest."""
    pairs = [(i, dup.survivor_id) for dup in dups for i in dup.merged_ids]
    return {"merged": [i for i, _ in pairs], "survivor": [s for _, s in pairs]}


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

    def merge(self, cur: psycopg.Cursor, dups: list[DuplicateSet], rows: dict[int, dict[str, Any]]) -> Counter:
        m = _merge_map(dups)
        cur.execute(
            """UPDATE products p SET brand_id = m.survivor, updated_at = now()
               FROM unnest(%(merged)s::bigint[], %(survivor)s::bigint[]) AS m(merged, survivor)
               WHERE p.brand_id = m.merged""", m)
        moved = Counter(products_moved=cur.rowcount)
        cur.execute("DELETE FROM brands WHERE brand_id = ANY(%s)", (m["merged"],))
        # after every merged brand is gone: a survivor may take the key one of them held
        cur.execute(
            """UPDATE brands b SET key = k.key FROM unnest(%s::bigint[], %s::text[]) AS k(brand_id, key)
               WHERE b.brand_id = k.brand_id AND b.key <> k.key""",
            ([dup.survivor_id for dup in dups], [dup.detail["key"] for dup in dups]))
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

    def merge(self, cur: psycopg.Cursor, dups: list[DuplicateSet], rows: dict[int, dict[str, Any]]) -> Counter:
        m = _merge_map(dups)
        # every product of a set, the survivor too, with its set's survivor
        everyone = {"product": [*m["merged"], *(d.survivor_id for d in dups)],
                    "survivor": [*m["survivor"], *(d.survivor_id for d in dups)]}
        moved: Counter = Counter()
        # per set and store the newest price wins; on a tie the survivor's own row stays
        cur.execute(
            """DELETE FROM prices p
               USING (SELECT pr.product_id, pr.store_id,
                             row_number() OVER (PARTITION BY e.survivor, pr.store_id
                                                ORDER BY pr.scraped_at DESC, pr.product_id = e.survivor DESC,
                                                         pr.product_id) AS rank
                      FROM prices pr
                      JOIN unnest(%(product)s::bigint[], %(survivor)s::bigint[]) AS e(product_id, survivor)
                        USING (product_id)) r
               WHERE r.rank > 1 AND p.product_id = r.product_id AND p.store_id = r.store_id""",
            everyone,
        )
        moved["prices_dropped"] = cur.rowcount
        for table, kind in (("prices", "prices_moved"), ("listings", "listings_moved"),
                            ("listing_absences", None), ("catalogue_flags", None)):
            if table == "listing_absences":  # one absence per (product, store): the survivor's, else the oldest
                cur.execute(
                    """DELETE FROM listing_absences a
                       USING (SELECT la.product_id, la.store_id,
                                     row_number() OVER (PARTITION BY e.survivor, la.store_id
                                                        ORDER BY la.product_id = e.survivor DESC, la.product_id) AS rank
                              FROM listing_absences la
                              JOIN unnest(%(product)s::bigint[], %(survivor)s::bigint[]) AS e(product_id, survivor)
                                USING (product_id)) r
                       WHERE r.rank > 1 AND a.product_id = r.product_id AND a.store_id = r.store_id""",
                    everyone,
                )
            cur.execute(
                f"""UPDATE {table} t SET product_id = m.survivor
                    FROM unnest(%(merged)s::bigint[], %(survivor)s::bigint[]) AS m(merged, survivor)
                    WHERE t.product_id = m.merged""", m)  # table names from the fixed tuple above
            if kind:
                moved[kind] = cur.rowcount
        cur.execute("DELETE FROM products WHERE product_id = ANY(%s)", (m["merged"],))
        kept = [_fill_from(rows[d.survivor_id], [rows[i] for i in sorted(d.merged_ids)], d.detail.get("barcode"))
                for d in dups]
        cur.execute(
            """UPDATE products p SET barcode = k.barcode, category = k.category, brand_id = k.brand_id,
                      size_value = k.size_value, size_unit = k.size_unit, attributes = k.attributes,
                      updated_at = now()
               FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[], %s::numeric[], %s::text[], %s::jsonb[])
                    AS k(product_id, barcode, category, brand_id, size_value, size_unit, attributes)
               WHERE p.product_id = k.product_id""",
            ([k["product_id"] for k in kept], [k["barcode"] for k in kept], [k["category"] for k in kept],
             [k["brand_id"] for k in kept], [k["size_value"] for k in kept], [k["size_unit"] for k in kept],
             [json.dumps(k["attributes"], ensure_ascii=False) for k in kept]),
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
