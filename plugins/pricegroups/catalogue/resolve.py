"""ProductResolver: every staged item of a run gets its product (DESIGN.md §4 step 3).

Order: the chain's listing (SKU) first; then the barcode (GTIN-14, check digit
verified, global numbers only); then the key of brand + name + size. Missing
brands, products and listings are created. Set-based: the run's items are
folded to one row per (chain, SKU), the new ones are keyed in Python (pure
functions in text/sizes/barcodes) and sent back with one COPY, and each
resolution pass is one statement over all of them.

A listing whose barcode changes and two SKUs of one chain claiming one barcode
are flagged (catalogue_flags) for the reconciler and for users, not guessed.
An item that cannot be resolved is recorded in rejected_items (stage
'resolve'), so every staged item ends resolved or rejected with a reason.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Iterable

import psycopg

from pricegroups.catalogue.barcodes import normalize_gtin
from pricegroups.catalogue.flags import Flag, flag_from_query, record_flags
from pricegroups.catalogue.sizes import Size, parse_size
from pricegroups.catalogue.text import brand_key, canonical_brand_key, name_key
from pricegroups.runlog import ALL, record_step
from pricegroups.settings import Settings

log = logging.getLogger(__name__)

CATALOGUE_LOCK = (0x6361, 0x7431)  # advisory lock: one catalogue writer (resolve, reconcile) at a time
RESTRICTED = "restricted-circulation"


@dataclass
class ResolveResult:
    staged: int = 0
    by_listing: int = 0  # staged items whose listing existed before this call
    by_barcode: int = 0  # new listings attached to a known product by barcode
    by_key: int = 0  # new listings attached to a known product by brand + name + size
    created_products: int = 0
    created_brands: int = 0
    created_listings: int = 0
    newly_resolved: int = 0  # staged items resolved through a new listing
    rejected: int = 0
    flags: int = 0

    def as_counts(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ItemKey:
    """What the resolver derives from one new (chain, SKU)."""

    gtin: str | None
    brand_key: str | None
    name_key: str
    size: Size | None
    reject: str | None
    flags: tuple[Flag, ...]


def key_item(chain_id: int, sku: str, name: str, brand: str | None, size_text: str | None,
             barcode: str | None, aliases: dict[str, str]) -> ItemKey:
    """Pure: the identity of a new listing, its rejection reason, and anything to flag."""
    flags: list[Flag] = []
    gtin, problem = normalize_gtin(barcode)
    if problem and not problem.startswith(RESTRICTED):
        flags.append(Flag("invalid_barcode", f"{chain_id}/{sku}/{barcode}", chain_id, None, sku, None,
                          {"barcode": barcode, "problem": problem}))
    parsed = parse_size(size_text)
    if parsed.size is None and parsed.problem is None:
        parsed = parse_size(name)
    if parsed.problem:
        flags.append(Flag("absurd_size", f"{chain_id}/{sku}/{size_text or name}", chain_id, None, sku, None,
                          {"size_text": size_text, "name": name, "problem": parsed.problem}))
    reject = None if name.strip() else "blank product name"
    return ItemKey(
        gtin=gtin,
        brand_key=canonical_brand_key(brand_key(brand), aliases),
        name_key=name_key(name, brand),
        size=parsed.size,
        reject=reject,
        flags=tuple(flags),
    )


_SEEN = """
CREATE TEMP TABLE _seen ON COMMIT DROP AS
SELECT DISTINCT ON (chain_id, sku) chain_id, sku, name, brand, size_text, barcode, category, scraped_at
FROM scraped_items WHERE run_id = %(run)s
ORDER BY chain_id, sku, scraped_at DESC, store_id
"""

_ATTACH = """
UPDATE scraped_items si SET product_id = l.product_id
FROM listings l
WHERE si.run_id = %(run)s AND si.product_id IS NULL AND l.chain_id = si.chain_id AND l.sku = si.sku
"""

# candidates for a barcode change: cheap digit comparison, verified in Python
_BARCODE_CANDIDATES = """
SELECT s.chain_id, s.sku, s.barcode, l.barcode, l.product_id
FROM _seen s JOIN listings l USING (chain_id, sku)
WHERE s.barcode IS NOT NULL AND s.scraped_at >= l.last_seen_at
  AND lpad(regexp_replace(s.barcode, '[^0-9]', '', 'g'), 14, '0') IS DISTINCT FROM l.barcode
"""

# text of a listing follows its newest observation; a backfill only widens first_seen_at
_REFRESH_LISTINGS = """
UPDATE listings l
SET name = CASE WHEN s.scraped_at >= l.last_seen_at THEN s.name ELSE l.name END,
    brand_text = CASE WHEN s.scraped_at >= l.last_seen_at THEN s.brand ELSE l.brand_text END,
    size_text = CASE WHEN s.scraped_at >= l.last_seen_at THEN s.size_text ELSE l.size_text END,
    category = CASE WHEN s.scraped_at >= l.last_seen_at THEN coalesce(s.category, l.category)
                    ELSE l.category END,
    first_seen_at = least(l.first_seen_at, s.scraped_at),
    last_seen_at = greatest(l.last_seen_at, s.scraped_at)
FROM _seen s
WHERE l.chain_id = s.chain_id AND l.sku = s.sku
  AND (s.scraped_at > l.last_seen_at OR s.scraped_at < l.first_seen_at
       OR (s.scraped_at = l.last_seen_at
           AND (l.name, l.brand_text, l.size_text, l.category)
               IS DISTINCT FROM (s.name, s.brand, s.size_text, coalesce(s.category, l.category))))
"""

_NEW_ITEMS = """
SELECT s.chain_id, s.sku, s.name, s.brand, s.size_text, s.barcode, s.category, s.scraped_at
FROM _seen s
WHERE NOT EXISTS (SELECT 1 FROM listings l WHERE l.chain_id = s.chain_id AND l.sku = s.sku)
  AND NOT EXISTS (SELECT 1 FROM rejected_items r
                  WHERE r.run_id = %(run)s AND r.stage = 'resolve' AND r.chain_id = s.chain_id AND r.sku = s.sku)
"""

_NEW_DDL = """
CREATE TEMP TABLE _new (
    chain_id     integer NOT NULL,
    sku          text NOT NULL,
    name         text NOT NULL,
    brand        text,
    brand_key    text,
    name_key     text NOT NULL,
    size_value   numeric(14, 3),
    size_unit    text,
    gtin         text,
    category     text,
    size_text    text,
    scraped_at   timestamptz NOT NULL,
    reject       text,
    brand_id     integer,
    product_id   bigint,
    via          text
) ON COMMIT DROP
"""
_NEW_COPY = (
    "COPY _new (chain_id, sku, name, brand, brand_key, name_key, size_value, size_unit, gtin, category,"
    " size_text, scraped_at, reject) FROM STDIN (FORMAT BINARY)"
)
_NEW_TYPES = ["int4", "text", "text", "text", "text", "text", "numeric", "text", "text", "text", "text",
              "timestamptz", "text"]

_CREATE_BRANDS = """
INSERT INTO brands (name, key)
SELECT DISTINCT ON (brand_key) btrim(brand), brand_key FROM _new
WHERE brand_key IS NOT NULL AND reject IS NULL
ORDER BY brand_key, chain_id, sku
ON CONFLICT (key) DO NOTHING
"""
_BRAND_IDS = "UPDATE _new n SET brand_id = b.brand_id FROM brands b WHERE b.key = n.brand_key"

_OPEN = "n.product_id IS NULL AND n.reject IS NULL"
# the identity key; coalesce keeps the join hashable (IS NOT DISTINCT FROM would not be)
_SAME_KEY = """coalesce(p.brand_id, 0) = coalesce(n.brand_id, 0) AND p.name_key = n.name_key
    AND coalesce(p.size_unit, '') = coalesce(n.size_unit, '') AND coalesce(p.size_value, 0) = coalesce(n.size_value, 0)"""

_BY_BARCODE = f"""
UPDATE _new n SET product_id = p.product_id, via = %(via)s
FROM products p WHERE {_OPEN} AND n.gtin IS NOT NULL AND p.barcode = n.gtin
"""

# A barcode item may take a barcode-less product of its key only when neither
# side is contested (one barcode for the product, one product for the barcode).
_BY_KEY_WITH_BARCODE = f"""
WITH candidate AS (
    SELECT n.chain_id, n.sku, n.gtin, min(p.product_id) AS product_id
    FROM _new n JOIN products p ON {_SAME_KEY}
    WHERE {_OPEN} AND n.gtin IS NOT NULL AND p.barcode IS NULL
    GROUP BY n.chain_id, n.sku, n.gtin
),
uncontested AS (
    SELECT c.* FROM candidate c
    WHERE c.product_id IN (SELECT product_id FROM candidate GROUP BY product_id HAVING count(DISTINCT gtin) = 1)
      AND c.gtin IN (SELECT gtin FROM candidate GROUP BY gtin HAVING count(DISTINCT product_id) = 1)
),
claimed AS (
    UPDATE products p SET barcode = u.gtin, updated_at = now()
    FROM (SELECT DISTINCT product_id, gtin FROM uncontested) u
    WHERE p.product_id = u.product_id AND p.barcode IS NULL
)
UPDATE _new n SET product_id = u.product_id, via = 'key'
FROM uncontested u WHERE n.chain_id = u.chain_id AND n.sku = u.sku
"""

_BY_KEY = f"""
UPDATE _new n SET product_id = m.product_id, via = %(via)s
FROM (SELECT n.chain_id, n.sku, min(p.product_id) AS product_id
      FROM _new n JOIN products p ON {_SAME_KEY}
      WHERE {_OPEN} AND n.gtin IS NULL
      GROUP BY n.chain_id, n.sku) m
WHERE n.chain_id = m.chain_id AND n.sku = m.sku
"""

_CREATE_WITH_BARCODE = f"""
INSERT INTO products (brand_id, name, name_key, size_value, size_unit, barcode, category)
SELECT DISTINCT ON (gtin) brand_id, name, name_key, size_value, size_unit, gtin, category
FROM _new n WHERE {_OPEN} AND n.gtin IS NOT NULL
ORDER BY gtin, chain_id, sku
ON CONFLICT (barcode) DO NOTHING
"""

_CREATE_BY_KEY = f"""
INSERT INTO products (brand_id, name, name_key, size_value, size_unit, category)
SELECT DISTINCT ON (coalesce(brand_id, 0), name_key, coalesce(size_unit, ''), coalesce(size_value, 0))
       brand_id, name, name_key, size_value, size_unit, category
FROM _new n WHERE {_OPEN}
ORDER BY coalesce(brand_id, 0), name_key, coalesce(size_unit, ''), coalesce(size_value, 0), chain_id, sku
"""

_CREATE_LISTINGS = """
INSERT INTO listings (chain_id, sku, product_id, name, brand_text, size_text, barcode, category,
                      first_seen_at, last_seen_at)
SELECT chain_id, sku, product_id, name, brand, size_text, gtin, category, scraped_at, scraped_at
FROM _new WHERE product_id IS NOT NULL
ON CONFLICT (chain_id, sku) DO NOTHING
"""

_VIA_COUNTS = "SELECT via, count(*) FROM _new WHERE product_id IS NOT NULL GROUP BY via"

_SHARED_BARCODES = """
SELECT 'barcode_shared', l.chain_id || '/' || l.barcode, l.chain_id, NULL::integer, NULL::text,
       min(l.product_id), jsonb_build_object('barcode', l.barcode, 'skus', array_agg(l.sku ORDER BY l.sku))
FROM listings l
WHERE l.barcode IN (SELECT gtin FROM _new WHERE gtin IS NOT NULL UNION SELECT gtin FROM _barcode_updates)
GROUP BY l.chain_id, l.barcode HAVING count(*) > 1
"""

_REJECT = """
INSERT INTO rejected_items (run_id, stage, chain_id, store_id, sku, reason, detail)
SELECT si.run_id, 'resolve', si.chain_id, si.store_id, si.sku, n.reject,
       jsonb_build_object('name', si.name, 'brand', si.brand, 'barcode', si.barcode)
FROM scraped_items si JOIN _new n ON n.chain_id = si.chain_id AND n.sku = si.sku
WHERE si.run_id = %(run)s AND si.product_id IS NULL AND n.reject IS NOT NULL
"""

# nothing may stay unresolved without a reason (a safety net: the passes above leave none)
_REJECT_LEFTOVERS = """
INSERT INTO rejected_items (run_id, stage, chain_id, store_id, sku, reason, detail)
SELECT si.run_id, 'resolve', si.chain_id, si.store_id, si.sku, 'no product could be resolved or created',
       jsonb_build_object('name', si.name, 'brand', si.brand, 'barcode', si.barcode)
FROM scraped_items si
WHERE si.run_id = %(run)s AND si.product_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM rejected_items r WHERE r.run_id = si.run_id AND r.stage = 'resolve'
                  AND r.chain_id = si.chain_id AND r.store_id = si.store_id AND r.sku = si.sku)
"""


class ProductResolver:
    """Resolves the staged items of one run; see the module docstring for the order."""

    def __init__(self, conn: psycopg.Connection, settings: Settings | None = None):
        self.conn = conn
        self.settings = settings or Settings()

    def resolve(self, run_id: str, part: str = ALL) -> ResolveResult:
        result = ResolveResult()
        params = {"run": run_id}
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", CATALOGUE_LOCK)
            cur.execute("SELECT set_config('work_mem', '256MB', true)")
            cur.execute("SELECT count(*) FROM scraped_items WHERE run_id = %(run)s", params)
            result.staged = cur.fetchone()[0]
            for table in ("_seen", "_new", "_barcode_updates"):
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(_SEEN, params)
            cur.execute("ANALYZE _seen")
            result.flags += self._check_listing_barcodes(cur, run_id)
            cur.execute(_REFRESH_LISTINGS)
            cur.execute(_ATTACH, params)
            result.by_listing = cur.rowcount

            cur.execute(_NEW_ITEMS, params)
            new_items = cur.fetchall()
            cur.execute("SELECT alias_key, brand_key FROM brand_aliases")
            aliases = dict(cur.fetchall())
            result.flags += self._stage_new_items(cur, run_id, new_items, aliases)
            if new_items:
                self._resolve_new(cur, result)
            result.flags += flag_from_query(cur, run_id, _SHARED_BARCODES)
            cur.execute(_ATTACH, params)
            result.newly_resolved = cur.rowcount
            cur.execute(_REJECT, params)
            result.rejected = cur.rowcount
            cur.execute(_REJECT_LEFTOVERS, params)
            if cur.rowcount:
                log.error("resolve %s: %d items left without a product (recorded as rejected)", run_id, cur.rowcount)
                result.rejected += cur.rowcount
            record_step(cur, run_id, "resolve", result.as_counts(), part, context=("staged",))
        log.info("resolve %s: %s", run_id, result.as_counts())
        return result

    def _check_listing_barcodes(self, cur: psycopg.Cursor, run_id: str) -> int:
        """Known listings whose barcode is new or changed: record it, flag a change."""
        cur.execute("CREATE TEMP TABLE _barcode_updates (chain_id integer, sku text, gtin text) ON COMMIT DROP")
        cur.execute(_BARCODE_CANDIDATES)
        updates, flags = [], []
        for chain_id, sku, raw, old, product_id in cur.fetchall():
            gtin, problem = normalize_gtin(raw)
            if problem and not problem.startswith(RESTRICTED):
                flags.append(Flag("invalid_barcode", f"{chain_id}/{sku}/{raw}", chain_id, None, sku, product_id,
                                  {"barcode": raw, "problem": problem}))
            if gtin is None or gtin == old:
                continue
            updates.append((chain_id, sku, gtin))
            if old is not None:
                flags.append(Flag("barcode_changed", f"{chain_id}/{sku}/{old}/{gtin}", chain_id, None, sku,
                                  product_id, {"old": old, "new": gtin}))
        if updates:
            with cur.copy("COPY _barcode_updates (chain_id, sku, gtin) FROM STDIN") as copy:
                for row in updates:
                    copy.write_row(row)
            cur.execute(
                """UPDATE listings l SET barcode = u.gtin FROM _barcode_updates u
                   WHERE l.chain_id = u.chain_id AND l.sku = u.sku"""
            )
        return record_flags(cur, run_id, flags)

    def _stage_new_items(self, cur: psycopg.Cursor, run_id: str, items: Iterable[tuple],
                         aliases: dict[str, str]) -> int:
        cur.execute(_NEW_DDL)
        flags: list[Flag] = []
        with cur.copy(_NEW_COPY) as copy:
            copy.set_types(_NEW_TYPES)
            for chain_id, sku, name, brand, size_text, barcode, category, scraped_at in items:
                key = key_item(chain_id, sku, name, brand, size_text, barcode, aliases)
                flags.extend(key.flags)
                copy.write_row((
                    chain_id, sku, name, brand, key.brand_key, key.name_key,
                    key.size.value if key.size else None, key.size.unit if key.size else None,
                    key.gtin, category, size_text, scraped_at, key.reject,
                ))
        cur.execute("ANALYZE _new")
        return record_flags(cur, run_id, flags)

    def _resolve_new(self, cur: psycopg.Cursor, result: ResolveResult) -> None:
        cur.execute(_CREATE_BRANDS)
        result.created_brands = cur.rowcount
        cur.execute(_BRAND_IDS)
        cur.execute(_BY_BARCODE, {"via": "barcode"})
        cur.execute(_BY_KEY_WITH_BARCODE)
        cur.execute(_BY_KEY, {"via": "key"})
        cur.execute(_CREATE_WITH_BARCODE)
        result.created_products = cur.rowcount
        cur.execute(_BY_BARCODE, {"via": "created"})
        cur.execute(_BY_KEY, {"via": "key_to_new"})  # a barcode-less item of a product created just now
        cur.execute(_CREATE_BY_KEY)
        result.created_products += cur.rowcount
        cur.execute(_BY_KEY, {"via": "created"})
        cur.execute(_CREATE_LISTINGS)
        result.created_listings = cur.rowcount
        cur.execute(_VIA_COUNTS)
        via = dict(cur.fetchall())
        result.by_barcode = via.get("barcode", 0)
        result.by_key = via.get("key", 0) + via.get("key_to_new", 0)


def resolve_run(conn: psycopg.Connection, run_id: str, settings: Settings | None = None,
                part: str = ALL) -> dict[str, int]:
    """DAG service: fill scraped_items.product_id for every item of the run (or reject it); counts out.

    Writes brands, products, listings (created; listing text and barcode refreshed),
    scraped_items.product_id, rejected_items (stage 'resolve'), catalogue_flags and
    runs.summary steps.resolve. Idempotent: a second call finds nothing left to do.
    """
    return ProductResolver(conn, settings).resolve(run_id, part).as_counts()
