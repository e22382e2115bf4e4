-- Stores late with price changes (docs/grouping.md "Late stores"; grouping/lateness.py).
--
-- Some stores apply a regular-price change a day after the rest of their zone
-- (the shelf label, or the store's web price, is updated late). For such a
-- store the anchor's price of a change first seen today is more often wrong
-- than the price it replaced, so the site serves the replaced price until the
-- change is a day old (source 'late'). Whether a store is late is learned from
-- what its own scrapes and spot checks showed on days when its anchor's price
-- had just changed.

-- The regular price a regular-price change replaced (no special before or
-- after); NULL for a new row and for any other change. Written by the upsert.
ALTER TABLE prices ADD COLUMN previous_price numeric(12, 2) CHECK (previous_price > 0 AND previous_price <> 'NaN');

-- One row per member and run in which it was observed (a full scrape or a
-- spot check) while its anchor's price had just changed on some products: on
-- how many it still charged the replaced price (late), on how many the new one.
CREATE TABLE store_lateness (
    run_id       text NOT NULL,
    store_id     integer NOT NULL REFERENCES stores ON DELETE CASCADE,
    observed_at  timestamptz NOT NULL,
    late         integer NOT NULL CHECK (late >= 0),
    on_time      integer NOT NULL CHECK (on_time >= 0),
    PRIMARY KEY (run_id, store_id)
);
CREATE INDEX store_lateness_store_idx ON store_lateness (store_id, observed_at);

-- The sums of store_lateness over the last lateness_days, kept on the store so
-- that the effective-prices view reads them directly.
ALTER TABLE stores
    ADD COLUMN late_changes   integer NOT NULL DEFAULT 0 CHECK (late_changes >= 0),
    ADD COLUMN timely_changes integer NOT NULL DEFAULT 0 CHECK (timely_changes >= 0);

-- sql/0040's rule plus two cases (effective.py says the same in Python, and
-- tests/integration/grouping/test_effective_rule.py holds them equal):
-- * for a member that is usually late (at least 3 late changes, and more late
--   than on time), a price it would be served from its anchor is replaced by
--   the price it replaced when that change is fresh: a regular-price change
--   first observed within 12 hours of the chain's latest scrape. Source 'late';
--   the unit price is scaled to the served price, and there is no was-price or
--   promotion;
-- * a member scraped within 12 hours of the chain's latest scrape (today) is
--   served what that scrape saw: its overrides are not stale on the day they
--   were observed, whatever the anchor's price did (a store that shows a change
--   late, seen doing so today, charges the old price today).
CREATE OR REPLACE VIEW effective_prices AS
WITH member AS (
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
WHERE NOT (m.override_mode AND ap.product_id IS NOT NULL AND NOT m.scraped_today
           AND ap.scraped_at > coalesce(m.anchor_first_scraped_at, '-infinity')
           AND ap.scraped_at >= m.last_verified_at - interval '48 hours')
  AND NOT (m.override_mode AND ap.product_id IS NULL
           AND EXISTS (SELECT 1 FROM stores o JOIN prices q ON q.store_id = o.store_id
                       WHERE o.group_id = m.group_id AND o.active AND q.product_id = p.product_id
                         AND coalesce(o.last_scraped_at, '-infinity') > coalesce(m.last_scraped_at, '-infinity')))
UNION ALL
SELECT * FROM (
    SELECT DISTINCT ON (m.store_id, p.product_id)
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
    ORDER BY m.store_id, p.product_id, o.last_scraped_at DESC, o.store_id
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
