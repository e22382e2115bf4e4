-- A chain's own politeness limit (requests per second per host; NULL = the settings' default,
-- 0 = none, for the loopback demo site) and the Airflow run type that decided a run's semantics.
ALTER TABLE chains ADD COLUMN IF NOT EXISTS requests_per_second double precision
    CHECK (requests_per_second IS NULL OR requests_per_second >= 0);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS run_type text NOT NULL DEFAULT 'manual';
ALTER TABLE runs ADD COLUMN IF NOT EXISTS backfill boolean NOT NULL DEFAULT false;
