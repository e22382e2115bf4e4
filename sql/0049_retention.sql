-- Retention (plugins/pricegroups/retention.py; docs/operations.md "What is kept, and for how long").
-- Per-run tables are pruned by their run's logical date: their primary keys start with run_id, so the
-- runs to prune are found here and each table's rows by its own key. Comparisons are pruned by when
-- they were made, runs by their date, and verifications keep each store's last measured one.
CREATE INDEX IF NOT EXISTS runs_logical_date_idx ON runs (logical_date);
CREATE INDEX IF NOT EXISTS comparisons_compared_at_idx ON comparisons (compared_at);
CREATE INDEX IF NOT EXISTS verifications_store_measured_idx ON verifications (store_id, measured_at)
    WHERE checked IS NOT NULL;
