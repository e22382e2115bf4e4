-- What the site serves: every active store's prices without knowing groups.
-- A store's own row wins (observed, or an override kept after deduplication);
-- otherwise its group anchor's row stands for it (inferred).
CREATE VIEW effective_prices AS
SELECT s.store_id, s.chain_id, p.product_id, p.price, p.was_price, p.unit_price,
       p.unit_measure, p.on_special, p.promo_text, p.scraped_at,
       'observed'::text AS source, s.store_id AS source_store_id
FROM stores s
JOIN prices p ON p.store_id = s.store_id
WHERE s.active
UNION ALL
SELECT s.store_id, s.chain_id, ap.product_id, ap.price, ap.was_price, ap.unit_price,
       ap.unit_measure, ap.on_special, ap.promo_text, ap.scraped_at,
       'inferred'::text AS source, g.anchor_store_id AS source_store_id
FROM stores s
JOIN store_groups g ON g.group_id = s.group_id AND g.anchor_store_id <> s.store_id
JOIN prices ap ON ap.store_id = g.anchor_store_id
WHERE s.active
  AND NOT EXISTS (SELECT 1 FROM prices own
                  WHERE own.store_id = s.store_id AND own.product_id = ap.product_id);

-- Products on special at each group's anchor, with the discount.
CREATE VIEW bargains AS
SELECT g.group_id, g.chain_id, g.anchor_store_id, p.product_id, p.price, p.was_price,
       round(100 * (p.was_price - p.price) / p.was_price, 1) AS discount_pct,
       p.promo_text, p.scraped_at
FROM store_groups g
JOIN prices p ON p.store_id = g.anchor_store_id
WHERE p.on_special AND p.was_price > p.price;
