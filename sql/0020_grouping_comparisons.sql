-- Grouping: remembered comparisons, so that a pair whose prices did not change
-- is not compared again. One row per store pair (smaller id first), latest only.
-- The signatures are 64-bit hashes of each side's current prices at the time;
-- the counts are enough to re-judge the pair under other thresholds.

CREATE TABLE comparisons (
    store_id         integer NOT NULL REFERENCES stores ON DELETE CASCADE,
    other_store_id   integer NOT NULL REFERENCES stores ON DELETE CASCADE,
    signature        bigint NOT NULL,
    other_signature  bigint NOT NULL,
    overlap          integer NOT NULL CHECK (overlap >= 0),
    agreeing         integer NOT NULL CHECK (agreeing >= 0 AND agreeing <= overlap),
    size             integer NOT NULL CHECK (size >= 0),
    other_size       integer NOT NULL CHECK (other_size >= 0),
    outcome          text NOT NULL CHECK (outcome IN ('match', 'mismatch', 'inconclusive')),
    run_id           text,
    compared_at      timestamptz NOT NULL,
    PRIMARY KEY (store_id, other_store_id),
    CHECK (store_id < other_store_id)
);
CREATE INDEX comparisons_other_idx ON comparisons (other_store_id);
