-- The run cadence (grouping/rules/cadence.py): the rules' time windows come from how often the DAG runs,
-- not from constants written for daily runs. One row, written by each run's start (pipeline.start) from
-- the DAG's schedule (or the run_interval_hours setting); the effective_prices view and
-- grouping/served.py read the same `fresh` and `horizon`, so the view and the Python rule stay one rule.
-- The defaults are the daily cadence's windows, which sql/0047 wrote as literals.
CREATE TABLE IF NOT EXISTS run_cadence (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    run_interval interval NOT NULL,
    fresh interval NOT NULL,
    horizon interval NOT NULL,
    CHECK (run_interval > interval '0' AND fresh > interval '0' AND horizon > interval '0'),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO run_cadence (run_interval, fresh, horizon) VALUES (interval '1 day', interval '12 hours', interval '48 hours')
ON CONFLICT (singleton) DO NOTHING;

-- sql/0047's view, its 12-hour and 48-hour literals replaced by the cadence's windows.
CREATE OR REPLACE VIEW effective_prices AS
WITH member AS NOT MATERIALIZED (
    SELECT s.store_id, s.chain_id, s.group_id, g.anchor_store_id, s.last_scraped_at, s.last_verified_at,
           a.first_scraped_at AS anchor_first_scraped_at,
           s.store_id <> g.anchor_store_id AND s.last_verified_at IS NOT NULL
               AND coalesce(s.last_scraped_at, '-infinity') <= s.last_verified_at AS override_mode,
           s.store_id <> g.anchor_store_id AND s.late_changes >= 3 AND s.late_changes > s.timely_changes AS late,
           clock.latest - w.fresh AS fresh_since,
           coalesce(s.last_scraped_at >= clock.latest - w.fresh, false) AS scraped_today,
           w.horizon
    FROM stores s
    CROSS JOIN run_cadence w  -- one row, always (this migration inserts it; nothing deletes it)
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
           AND ap.scraped_at >= m.last_verified_at - m.horizon)
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
           AND ap.scraped_at >= m.last_verified_at - m.horizon));

-- A verified member's last scrape before the run that verifies it (verification.record_plan): the
-- self-measured error serves the member as it was before that scrape (grouping/served.py's `before`).
ALTER TABLE verifications ADD COLUMN IF NOT EXISTS scraped_before timestamptz;
