-- Spot checks (docs/verification.md "Spot checks"): every run, each member that
-- is not scraped reads the first catalogue page(s) of its store; what it found
-- is compared with what is served for it, and a member whose page disagrees
-- beyond timing is scraped in full in the same run (verification reason 'spot').

-- One row per member and run: what the page showed against what was served.
CREATE TABLE spot_checks (
    run_id      text NOT NULL,
    store_id    integer NOT NULL REFERENCES stores ON DELETE CASCADE,
    chain_id    integer NOT NULL REFERENCES chains,
    checked_at  timestamptz NOT NULL,
    pages       integer NOT NULL DEFAULT 0,
    items       integer NOT NULL DEFAULT 0,
    error       text,                 -- the fetch or parse failure; NULL when the page was read
    compared    integer,              -- items with a served price (NULL until compared)
    mismatched  integer,              -- of those, served price differs and timing does not explain it
    timing      integer,              -- differences explained by a recent change of the served price
    suspect     boolean,
    evidence    jsonb,
    PRIMARY KEY (run_id, store_id)
);

-- The items the page showed: kept (a spot check's prices are observations, but
-- one page of a member is not a verification, so they are not served).
CREATE TABLE spot_check_items (
    run_id      text NOT NULL,
    store_id    integer NOT NULL,
    sku         text NOT NULL,
    price       numeric(12, 2) NOT NULL,
    was_price   numeric(12, 2),
    on_special  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, store_id, sku),
    FOREIGN KEY (run_id, store_id) REFERENCES spot_checks ON DELETE CASCADE
);

ALTER TABLE verifications DROP CONSTRAINT verifications_reason_check;
ALTER TABLE verifications ADD CONSTRAINT verifications_reason_check
    CHECK (reason IN ('random', 'risk', 'forced', 'named', 'bootstrap', 'spot'));
