-- A store's consecutive_failures counts runs, not scrape attempts (anchor succession
-- waits for anchor_failures_before_succession runs in a row): a re-run of a run, a
-- retried task or the same run's stale-anchor re-scrape must not count a failure twice.
-- The run whose failure was counted last; cleared by a successful scrape.
ALTER TABLE stores ADD COLUMN last_failed_run_id text;
