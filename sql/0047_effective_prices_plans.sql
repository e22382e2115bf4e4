-- The effective_prices view of sql/0045, same rows, with plans that stay index-driven for one store and
-- for one chain (DESIGN.md §10; tests/integration/grouping/test_effective_plans.py asserts their shape):
-- * the `member` CTE is NOT MATERIALIZED: referenced three times it was materialised, so a filter on
--   store_id or chain_id could not reach the stores it starts from, and every branch hashed the whole
--   prices table;
-- * the `fresher` branch's DISTINCT ON leads with chain_id (a store has one chain: the same rows), so a
--   filter on chain_id is pushed into it;
-- * "a fresher group-mate has the product" is a LATERAL join (LIMIT 1) instead of an EXISTS in the
--   WHERE clause: the sub-plan in the join filter kept the anchor's rows from being looked up by index.
CREATE OR REPLACE VIEW effective_prices AS
WITH member AS NOT MATERIALIZED (
    SELECT s.store_id, s.chain_id, s.group_id, g.anchor_store_id, s.last_scraped_at, s.last_verified_at,
           a.first_scraped_at AS anchor_first_scraped_at,
           s.store_id <> g.anchor_store_id AND s.last_verified_at IS NOT NULL
               AND coalesce(s.last_scraped_at, '-infinity') <= s.last_verified_at AS override_mode,
           s.store_id <> g.anchor_store_id AND s.late_changes >= 3 AND s.late_changes > s.timely_changes AS late,
           clock.latest - interval '12 hours' AS fresh_since,
           coalesce(s.last_scraped_at >= clock.latest - interval '12 hours', false) AS scraped_today
    FROM stores s
    JOIN store_groups g ON g.group_id = s.group_id
    LEFT JOIN stores a ON a.store_id = g.anchor_store_id
    LEFT JOIN (SELECT chain_id, max(last_scraped_at) AS latest FROM stores GROUP BY chain_id) clock
           ON clock.chain_id = s.chain_id
    WHERE s.active
)
SELECT m.store_id, m.chain_id, p.product_id, p.price, p.was_price, p.unit_price,
       p.unit_measure, p.on_special, p.promo_text, p.scraped_at,
       CASE WHEN m.override_mode THEN 'override' ELSE 'observed' END AS source,
       m.store_id AS source_store_id
FROM member m
JOIN prices p ON p.store_id = m.store_id
LEFT JOIN prices ap ON ap.store_id = m.anchor_store_id AND ap.product_id = p.product_id
LEFT JOIN LATERAL (SELECT true AS found FROM stores o JOIN prices q ON q.store_id = o.store_id
                   WHERE m.override_mode AND ap.product_id IS NULL  -- a one-time filter: most rows never look
                     AND o.group_id = m.group_id AND o.active AND q.product_id = p.product_id
                     AND coalesce(o.last_scraped_at, '-infinity') > coalesce(m.last_scraped_at, '-infinity')
                   LIMIT 1) mate ON true
WHERE NOT (m.override_mode AND ap.product_id IS NOT NULL AND NOT m.scraped_today
           AND ap.scraped_at > coalesce(m.anchor_first_scraped_at, '-infinity')
           AND ap.scraped_at >= m.last_verified_at - interval '48 hours')
  AND mate.found IS NULL
UNION ALL
SELECT * FROM (
    SELECT DISTINCT ON (m.chain_id, m.store_id, p.product_id)
           m.store_id, m.chain_id, q.product_id, q.price, q.was_price, q.unit_price,
           q.unit_measure, q.on_special, q.promo_text, q.scraped_at,
           'inferred' AS source, o.store_id AS source_store_id
    FROM member m
    JOIN prices p ON p.store_id = m.store_id
    JOIN stores o ON o.group_id = m.group_id AND o.active
    JOIN prices q ON q.store_id = o.store_id AND q.product_id = p.product_id
    WHERE m.override_mode
      AND NOT EXISTS (SELECT 1 FROM prices ap WHERE ap.store_id = m.anchor_store_id AND ap.product_id = p.product_id)
      AND coalesce(o.last_scraped_at, '-infinity') > coalesce(m.last_scraped_at, '-infinity')
    ORDER BY m.chain_id, m.store_id, p.product_id, o.last_scraped_at DESC, o.store_id
) fresher
UNION ALL
SELECT m.store_id, m.chain_id, ap.product_id, lagged.price::numeric(12, 2), lagged.was_price::numeric(12, 2),
       lagged.unit_price::numeric(14, 4),
       ap.unit_measure, lagged.on_special, lagged.promo_text, ap.scraped_at,
       CASE WHEN lagged.late THEN 'late' WHEN own.product_id IS NULL THEN 'inferred' ELSE 'stale_override' END
           AS source,
       m.anchor_store_id AS source_store_id
FROM member m
JOIN prices ap ON ap.store_id = m.anchor_store_id
LEFT JOIN prices own ON own.store_id = m.store_id AND own.product_id = ap.product_id
CROSS JOIN LATERAL (
    SELECT m.late AND ap.previous_price IS NOT NULL AND NOT ap.on_special AND ap.scraped_at >= m.fresh_since AS late
) l
CROSS JOIN LATERAL (
    SELECT l.late,
           CASE WHEN l.late THEN ap.previous_price ELSE ap.price END AS price,
           CASE WHEN l.late THEN NULL ELSE ap.was_price END AS was_price,
           CASE WHEN l.late THEN round(ap.unit_price * ap.previous_price / ap.price, 4) ELSE ap.unit_price END
               AS unit_price,
           ap.on_special,
           CASE WHEN l.late THEN NULL ELSE ap.promo_text END AS promo_text
) lagged
WHERE m.store_id <> m.anchor_store_id
  AND (own.product_id IS NULL
       OR (m.override_mode AND NOT m.scraped_today
           AND ap.scraped_at > coalesce(m.anchor_first_scraped_at, '-infinity')
           AND ap.scraped_at >= m.last_verified_at - interval '48 hours'));
