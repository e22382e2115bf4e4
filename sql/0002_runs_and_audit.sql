-- Runs, the scrape log, the audit of group changes, staging and rejects.

CREATE TABLE runs (
    run_id        text PRIMARY KEY,
    logical_date  timestamptz NOT NULL,
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    summary       jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- One row per (run, store) scrape attempt.
CREATE TABLE scrape_log (
    scrape_id     bigserial PRIMARY KEY,
    run_id        text NOT NULL,
    store_id      integer NOT NULL REFERENCES stores,
    attempt       integer NOT NULL DEFAULT 1,
    status        text NOT NULL CHECK (status IN ('ok', 'failed', 'suspect')),
    pages         integer NOT NULL DEFAULT 0,
    items         integer NOT NULL DEFAULT 0,
    dropped       integer NOT NULL DEFAULT 0,
    http_errors   integer NOT NULL DEFAULT 0,
    retries       integer NOT NULL DEFAULT 0,
    from_snapshot boolean NOT NULL DEFAULT false,
    error         text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    duration_s    double precision NOT NULL DEFAULT 0,
    UNIQUE (run_id, store_id, attempt)
);
CREATE INDEX scrape_log_store_idx ON scrape_log (store_id, started_at);

-- Append-only audit of every group change with its evidence.
CREATE TABLE group_events (
    event_id        bigserial PRIMARY KEY,
    run_id          text,
    chain_id        integer NOT NULL REFERENCES chains,
    kind            text NOT NULL CHECK (kind IN (
                        'created', 'merged', 'member_ejected', 'anchor_replaced',
                        'verified', 'reset', 'store_closed')),
    group_id        bigint NOT NULL,
    other_group_id  bigint,
    store_id        integer,
    other_store_id  integer,
    evidence        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_events_group_idx ON group_events (group_id);
CREATE INDEX group_events_run_idx ON group_events (run_id);

CREATE FUNCTION group_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'group_events is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER group_events_no_update BEFORE UPDATE OR DELETE ON group_events
    FOR EACH ROW EXECUTE FUNCTION group_events_append_only();

-- Parsed items of a run, per store, waiting for resolve / upsert.
CREATE TABLE scraped_items (
    run_id           text NOT NULL,
    store_id         integer NOT NULL REFERENCES stores,
    chain_id         integer NOT NULL REFERENCES chains,
    sku              text NOT NULL,
    name             text NOT NULL,
    brand            text,
    size_text        text,
    barcode          text,
    category         text,
    price            numeric(12, 2) NOT NULL,
    was_price        numeric(12, 2),
    unit_price       numeric(14, 4),
    unit_measure     text,
    on_special       boolean NOT NULL DEFAULT false,
    promo_text       text,
    multibuy_qty     integer,
    multibuy_price   numeric(12, 2),
    scraped_at       timestamptz NOT NULL,
    product_id       bigint,
    PRIMARY KEY (run_id, store_id, sku)
);

-- Everything dropped on the way, with a reason a user can query.
CREATE TABLE rejected_items (
    rejected_id  bigserial PRIMARY KEY,
    run_id       text,
    stage        text NOT NULL CHECK (stage IN ('parse', 'resolve', 'upsert', 'enrich')),
    chain_id     integer,
    store_id     integer,
    sku          text,
    product_id   bigint,
    reason       text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejected_items_run_idx ON rejected_items (run_id, stage);
