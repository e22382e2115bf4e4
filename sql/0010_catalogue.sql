-- Catalogue bookkeeping (issue 4): flags for the reconciler and for users, the
-- merge log, and the absences that drive retention of current prices.

-- What the catalogue steps noticed but would not guess about: a listing whose
-- barcode changed, two SKUs of one chain claiming one barcode, an invalid
-- barcode, an absurd size, a site unit price far from the computed one,
-- duplicates the reconciler would not merge. One row per distinct subject, so
-- a problem that persists day after day is one row (first and last run).
CREATE TABLE catalogue_flags (
    flag_id       bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN (
                      'barcode_changed', 'barcode_shared', 'invalid_barcode', 'absurd_size',
                      'unit_price_disagrees', 'ambiguous_duplicates')),
    subject       text NOT NULL,
    first_run_id  text,
    last_run_id   text,
    chain_id      integer,
    store_id      integer,
    sku           text,
    product_id    bigint,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, subject)
);
CREATE INDEX catalogue_flags_run_idx ON catalogue_flags (last_run_id);

-- Every brand or product merge: what went into what, and why.
CREATE TABLE catalogue_merges (
    merge_id     bigserial PRIMARY KEY,
    run_id       text,
    entity       text NOT NULL CHECK (entity IN ('brand', 'product')),
    survivor_id  bigint NOT NULL,
    merged_id    bigint NOT NULL,
    reason       text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    merged_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalogue_merges_run_idx ON catalogue_merges (run_id);

-- A price row whose product was missing from every ok scrape of its store
-- since missing_since. Only absent rows are kept, so the table stays small;
-- a price absent for longer than retention_days leaves current prices.
CREATE TABLE listing_absences (
    store_id       integer NOT NULL REFERENCES stores,
    product_id     bigint NOT NULL,
    missing_since  timestamptz NOT NULL,
    run_id         text NOT NULL,
    PRIMARY KEY (store_id, product_id)
);

-- Merges re-point staged items of the survivor's duplicates.
CREATE INDEX scraped_items_product_idx ON scraped_items (product_id);
