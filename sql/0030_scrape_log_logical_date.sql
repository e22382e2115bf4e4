-- The scrape log records the run's logical date, so that "the store's last good
-- scrape" (the baseline a truncated catalogue is measured against) is ordered by
-- the date the data is for, not by when a backfill happened to run.
ALTER TABLE scrape_log ADD COLUMN logical_date timestamptz;
CREATE INDEX scrape_log_store_ok_idx ON scrape_log (store_id, logical_date DESC) WHERE status = 'ok';
