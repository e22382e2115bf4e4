-- The stores a run's first attempt planned (and the restrictions it planned for), so
-- that a re-run of the run (after a kill, a failure or a cleared run) scrapes the same
-- stores for the same reasons instead of re-planning from the state the earlier
-- attempt left (DESIGN §6.4): {"key": {"stores", "chains", "full_scrape"}, "store_ids": [...]}.
ALTER TABLE runs ADD COLUMN planned jsonb;
