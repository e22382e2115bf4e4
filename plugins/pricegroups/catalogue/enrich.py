"""ProductEnricher: fill product attributes from all listings (DESIGN.md §4 step 5).

Runs after resolve and reconcile, before the price upsert, on the products of
one run. Size comes from the listings' size texts and names (the size most
listings agree on); barcode and category come from other listings of the same
product when the product has none. Unit prices: when the site gives none, the
staged item gets one computed per 100 g / 100 ml / each (the upsert carries it
into prices); when the site gives one, it is compared with the computed one
and a large disagreement is flagged, never overwritten.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass

import psycopg

from pricegroups.catalogue.flags import Flag, flag_from_query, record_flags
from pricegroups.catalogue.resolve import CATALOGUE_LOCK
from pricegroups.catalogue.sizes import Size, parse_size
from pricegroups.runlog import ALL, record_step
from pricegroups.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class EnrichResult:
    sizes_filled: int = 0
    barcodes_filled: int = 0
    categories_filled: int = 0
    unit_prices_computed: int = 0
    unit_prices_compared: int = 0
    unit_prices_flagged: int = 0
    flags: int = 0

    def as_counts(self) -> dict[str, int]:
        return asdict(self)


_CURRENCY = re.compile(r"[$€£¥]|\b(?:aud|usd|nzd|eur|gbp)\b", re.IGNORECASE)


def parse_measure(text: str | None) -> Size | None:
    """The quantity a site's unit price is quoted for: 'per 100g' -> 100 g, '$/kg' -> 1000 g, 'each' -> 1."""
    if not text:
        return None
    cleaned = _CURRENCY.sub(" ", text).strip()
    return parse_size(cleaned).size


def choose_size(candidates: list[Size]) -> Size | None:
    """The size most listings agree on; ties go to the smallest unit name, then value (deterministic)."""
    if not candidates:
        return None
    counts = Counter(candidates)
    return min(counts, key=lambda s: (-counts[s], s.unit, s.value))


_RUN_PRODUCTS = """
CREATE TEMP TABLE _run_products ON COMMIT DROP AS
SELECT DISTINCT product_id FROM scraped_items WHERE run_id = %(run)s AND product_id IS NOT NULL
"""

_SIZELESS_LISTINGS = """
SELECT p.product_id, l.chain_id, l.sku, l.size_text, l.name
FROM products p JOIN _run_products USING (product_id) JOIN listings l USING (product_id)
WHERE p.size_value IS NULL
ORDER BY p.product_id, l.chain_id, l.sku
"""

_FILL_SIZES = """
UPDATE products p SET size_value = s.size_value, size_unit = s.size_unit, updated_at = now()
FROM _sizes s WHERE p.product_id = s.product_id AND p.size_value IS NULL
"""

# a barcode all of a product's listings agree on, that no other product or listing claims
_FILL_BARCODES = """
UPDATE products p SET barcode = c.barcode, updated_at = now()
FROM (SELECT l.product_id, min(l.barcode) AS barcode
      FROM listings l JOIN _run_products USING (product_id)
      WHERE l.barcode IS NOT NULL
      GROUP BY l.product_id HAVING count(DISTINCT l.barcode) = 1) c
WHERE p.product_id = c.product_id AND p.barcode IS NULL
  AND NOT EXISTS (SELECT 1 FROM products o WHERE o.barcode = c.barcode)
  AND NOT EXISTS (SELECT 1 FROM listings o WHERE o.barcode = c.barcode AND o.product_id <> c.product_id)
"""

_FILL_CATEGORIES = """
UPDATE products p SET category = c.category, updated_at = now()
FROM (SELECT l.product_id, mode() WITHIN GROUP (ORDER BY l.category) AS category
      FROM listings l JOIN _run_products USING (product_id)
      WHERE l.category IS NOT NULL AND btrim(l.category) <> ''
      GROUP BY l.product_id) c
WHERE p.product_id = c.product_id AND p.category IS NULL
"""

_UNIT_VALUE = "round(si.price * CASE p.size_unit WHEN 'each' THEN 1 ELSE 100 END / p.size_value, 4)"
_COMPUTE_UNIT_PRICES = f"""
UPDATE scraped_items si
SET unit_price = {_UNIT_VALUE},
    unit_measure = CASE p.size_unit WHEN 'each' THEN 'each' ELSE 'per 100' || p.size_unit END
FROM products p
WHERE si.run_id = %(run)s AND si.product_id = p.product_id AND si.unit_price IS NULL
  AND p.size_value IS NOT NULL AND {_UNIT_VALUE} > 0 AND {_UNIT_VALUE} < 1e10
"""

# the site's unit price against price / size, both for the site's own quantity; taken
# before any unit price is computed, so only the site's own figures are compared
_COMPARED = """
CREATE TEMP TABLE _compared ON COMMIT DROP AS
SELECT si.chain_id, si.store_id, si.sku, si.product_id, si.price, si.unit_price, si.unit_measure,
       p.size_value, p.size_unit, round(si.price * m.quantity / p.size_value, 4) AS computed
FROM scraped_items si
JOIN products p ON p.product_id = si.product_id
JOIN _measures m ON m.unit_measure = si.unit_measure AND m.unit = p.size_unit
WHERE si.run_id = %(run)s AND si.unit_price IS NOT NULL AND p.size_value IS NOT NULL
"""
_DISAGREEING = """
SELECT 'unit_price_disagrees',
       concat_ws('/', c.chain_id, c.sku, c.price, c.unit_price, c.unit_measure, c.size_value, c.size_unit),
       c.chain_id, min(c.store_id), c.sku, c.product_id,
       jsonb_build_object('price', c.price, 'site_unit_price', c.unit_price, 'unit_measure', c.unit_measure,
                          'computed', c.computed, 'size_value', c.size_value, 'size_unit', c.size_unit,
                          'stores', count(*)) AS detail
FROM _compared c
WHERE abs(c.unit_price - c.computed) > %(tolerance)s * c.computed
GROUP BY c.chain_id, c.sku, c.product_id, c.price, c.unit_price, c.unit_measure, c.size_value, c.size_unit,
         c.computed
"""


class ProductEnricher:
    """Fills the products of one run from all their listings; see the module docstring."""

    def __init__(self, conn: psycopg.Connection, settings: Settings | None = None):
        self.conn = conn
        self.settings = settings or Settings()

    def enrich(self, run_id: str, part: str = ALL) -> EnrichResult:
        result = EnrichResult()
        params = {"run": run_id, "tolerance": self.settings.unit_price_tolerance}
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", CATALOGUE_LOCK)
            for table in ("_run_products", "_sizes", "_measures", "_compared"):
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(_RUN_PRODUCTS, params)
            cur.execute("ANALYZE _run_products")
            result.sizes_filled, result.flags = self._fill_sizes(cur, run_id)
            cur.execute(_FILL_BARCODES)
            result.barcodes_filled = cur.rowcount
            cur.execute(_FILL_CATEGORIES)
            result.categories_filled = cur.rowcount
            self._stage_measures(cur, run_id)
            cur.execute(_COMPARED, params)
            result.unit_prices_compared = cur.rowcount
            cur.execute(
                "SELECT count(*) FROM _compared WHERE abs(unit_price - computed) > %(tolerance)s * computed", params
            )
            result.unit_prices_flagged = cur.fetchone()[0]
            result.flags += flag_from_query(cur, run_id, _DISAGREEING, params)
            cur.execute(_COMPUTE_UNIT_PRICES, params)
            result.unit_prices_computed = cur.rowcount
            record_step(cur, run_id, "enrich", result.as_counts(), part,
                        context=("unit_prices_compared", "unit_prices_flagged"))
        log.info("enrich %s: %s", run_id, result.as_counts())
        return result

    def _fill_sizes(self, cur: psycopg.Cursor, run_id: str) -> tuple[int, int]:
        cur.execute(_SIZELESS_LISTINGS)
        candidates: dict[int, list[Size]] = {}
        flags: list[Flag] = []
        for product_id, chain_id, sku, size_text, name in cur.fetchall():
            parsed = parse_size(size_text)
            if parsed.size is None and parsed.problem is None:
                parsed = parse_size(name)
            if parsed.problem:
                flags.append(Flag("absurd_size", f"{chain_id}/{sku}/{size_text or name}", chain_id, None, sku,
                                  product_id, {"size_text": size_text, "name": name, "problem": parsed.problem}))
            candidates.setdefault(product_id, [])
            if parsed.size:
                candidates[product_id].append(parsed.size)
        cur.execute("CREATE TEMP TABLE _sizes (product_id bigint, size_value numeric(14, 3), size_unit text)"
                    " ON COMMIT DROP")
        chosen = [(pid, size) for pid, sizes in candidates.items() if (size := choose_size(sizes))]
        if chosen:
            with cur.copy("COPY _sizes FROM STDIN") as copy:
                for pid, size in chosen:
                    copy.write_row((pid, size.value, size.unit))
        cur.execute(_FILL_SIZES)
        return cur.rowcount, record_flags(cur, run_id, flags)

    def _stage_measures(self, cur: psycopg.Cursor, run_id: str) -> None:
        cur.execute("CREATE TEMP TABLE _measures (unit_measure text, unit text, quantity numeric) ON COMMIT DROP")
        cur.execute("SELECT DISTINCT unit_measure FROM scraped_items WHERE run_id = %s AND unit_measure IS NOT NULL",
                    (run_id,))
        measures = [(text, size) for (text,) in cur.fetchall() if (size := parse_measure(text))]
        if measures:
            with cur.copy("COPY _measures FROM STDIN") as copy:
                for text, size in measures:
                    copy.write_row((text, size.unit, size.value))


def enrich(conn: psycopg.Connection, run_id: str, settings: Settings | None = None, part: str = ALL) -> dict[str, int]:
    """DAG service: fill the run's products from their listings and the run's missing unit prices.

    Writes products (size, barcode, category where missing), scraped_items.unit_price and
    unit_measure (only where the site gave none), catalogue_flags ('absurd_size',
    'unit_price_disagrees') and runs.summary steps.enrich (pricegroups.runlog). Idempotent.
    """
    return ProductEnricher(conn, settings).enrich(run_id, part).as_counts()
