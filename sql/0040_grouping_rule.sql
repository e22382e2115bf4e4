-- Grouping by "a different list, or noise?" (docs/grouping.md, DESIGN.md §5 and §9).

-- When a store was first scraped: an anchor price first observed after this is a
-- *change* (timing), one observed at the first scrape is not.
ALTER TABLE stores ADD COLUMN first_scraped_at timestamptz;
UPDATE stores s SET first_scraped_at = f.first_seen
FROM (SELECT store_id, min(scraped_at) AS first_seen FROM prices GROUP BY store_id) f
WHERE s.store_id = f.store_id;

-- Comparisons keep how their disagreements were classified; a row judged under
-- another rule (rule IS NULL: the fixed agreement rate) is never re-used.
ALTER TABLE comparisons
    ADD COLUMN shared    integer NOT NULL DEFAULT 0,
    ADD COLUMN own       integer NOT NULL DEFAULT 0,
    ADD COLUMN other_own integer NOT NULL DEFAULT 0,
    ADD COLUMN timing    integer NOT NULL DEFAULT 0,
    ADD COLUMN rule      text;

-- Continuous verification (§9): why each member was scraped in a run, and what
-- its verification found: of the prices served for it just before (from its
-- anchor and its overrides), how many it really charged differently.
CREATE TABLE verifications (
    run_id          text NOT NULL,
    store_id        integer NOT NULL REFERENCES stores ON DELETE CASCADE,
    chain_id        integer NOT NULL REFERENCES chains,
    reason          text NOT NULL CHECK (reason IN ('random', 'risk', 'forced', 'named', 'bootstrap')),
    planned_at      timestamptz NOT NULL,
    baseline_taken  boolean NOT NULL DEFAULT false,
    group_id        bigint,
    anchor_store_id integer,
    checked         integer,
    wrong           integer,
    measured_at     timestamptz,
    PRIMARY KEY (run_id, store_id)
);
CREATE INDEX verifications_measured_idx ON verifications (chain_id, measured_at) WHERE checked IS NOT NULL;

-- A member's own rows as they were before this run's scrape overwrote them: the
-- overrides that were being served for it (the baseline of the measurement).
CREATE TABLE served_overrides (
    run_id      text NOT NULL,
    store_id    integer NOT NULL REFERENCES stores ON DELETE CASCADE,
    product_id  integer NOT NULL,
    price       numeric(10, 2) NOT NULL,
    on_special  boolean NOT NULL,
    scraped_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, store_id, product_id)
);

-- What the site serves (the same rule as plugins/pricegroups/grouping/effective.py,
-- kept equal by tests/integration/grouping/test_effective_rule.py). A member's own
-- rows are *observed* until its next verification; after it they are its
-- *overrides* (its deviations the verification kept), served unless the anchor's
-- price for the product changed since, or within 48 hours before the
-- verification (then the difference is timing: the anchor's price is served,
-- source 'stale_override'). An override for a product the anchor does not carry
-- gives way to a fresher row of another store of the group (source 'inferred').
CREATE OR REPLACE VIEW effective_prices AS
WITH member AS (
    SELECT s.store_id, s.chain_id, s.group_id, g.anchor_store_id, s.last_scraped_at, s.last_verified_at,
           a.first_scraped_at AS anchor_first_scraped_at,
           s.store_id <> g.anchor_store_id AND s.last_verified_at IS NOT NULL
               AND coalesce(s.last_scraped_at, '-infinity') <= s.last_verified_at AS override_mode
    FROM stores s
    JOIN store_groups g ON g.group_id = s.group_id
    LEFT JOIN stores a ON a.store_id = g.anchor_store_id
    WHERE s.active
)
SELECT m.store_id, m.chain_id, p.product_id, p.price, p.was_price, p.unit_price,
       p.unit_measure, p.on_special, p.promo_text, p.scraped_at,
       CASE WHEN m.override_mode THEN 'override' ELSE 'observed' END AS source,
       m.store_id AS source_store_id
FROM member m
JOIN prices p ON p.store_id = m.store_id
LEFT JOIN prices ap ON ap.store_id = m.anchor_store_id AND ap.product_id = p.product_id
WHERE NOT (m.override_mode AND ap.product_id IS NOT NULL
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
SELECT m.store_id, m.chain_id, ap.product_id, ap.price, ap.was_price, ap.unit_price,
       ap.unit_measure, ap.on_special, ap.promo_text, ap.scraped_at,
       CASE WHEN own.product_id IS NULL THEN 'inferred' ELSE 'stale_override' END AS source,
       m.anchor_store_id AS source_store_id
FROM member m
JOIN prices ap ON ap.store_id = m.anchor_store_id
LEFT JOIN prices own ON own.store_id = m.store_id AND own.product_id = ap.product_id
WHERE m.store_id <> m.anchor_store_id
  AND (own.product_id IS NULL
       OR (m.override_mode
           AND ap.scraped_at > coalesce(m.anchor_first_scraped_at, '-infinity')
           AND ap.scraped_at >= m.last_verified_at - interval '48 hours'));
