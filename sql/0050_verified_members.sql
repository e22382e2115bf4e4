-- What each run leaves served (grouping/verification.py "record_verified_members"; DESIGN.md §9): per run
-- and chain, the members the run verified (scraped in full, so served their own prices, right by
-- construction) and the rest, each weighted by the prices served to it (its anchor's rows). The random
-- draws measure the wrong share of what members are served had no check reached them; times the share of
-- served prices at members the run did not verify, that is the wrong share of what the run serves.
CREATE TABLE IF NOT EXISTS verified_members (
    run_id            text NOT NULL,
    chain_id          integer NOT NULL REFERENCES chains,
    measured_at       timestamptz NOT NULL,
    verified          integer NOT NULL CHECK (verified >= 0),
    unverified        integer NOT NULL CHECK (unverified >= 0),
    verified_prices   bigint NOT NULL CHECK (verified_prices >= 0),
    unverified_prices bigint NOT NULL CHECK (unverified_prices >= 0),
    PRIMARY KEY (run_id, chain_id)
);
CREATE INDEX IF NOT EXISTS verified_members_measured_idx ON verified_members (chain_id, measured_at);
