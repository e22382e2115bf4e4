-- A member placed in its group without a comparison against that group's anchor
-- (a merge of two groups that both had members: one of the two anchors may have
-- moved zone) must be re-scraped and health-checked first, whatever the budget.
ALTER TABLE stores ADD COLUMN needs_verification boolean NOT NULL DEFAULT false;
CREATE INDEX stores_needs_verification_idx ON stores (store_id) WHERE needs_verification;
