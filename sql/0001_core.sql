-- pricegroups core schema: chains, stores, groups, catalogue, prices.
-- Forward-only: never edit this file once applied; add a new numbered file.

CREATE TABLE chains (
    chain_id      serial PRIMARY KEY,
    code          text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
    name          text NOT NULL,
    base_url      text,
    site_profile  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A group and its stores reference each other (the anchor is a store, every
-- store is in a group), so both foreign keys are DEFERRABLE: a transaction may
-- move stores and anchors around freely and is checked at COMMIT.
CREATE TABLE store_groups (
    group_id         bigserial PRIMARY KEY,
    chain_id         integer NOT NULL REFERENCES chains,
    anchor_store_id  integer NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL,
    created_run_id   text,
    -- target of stores' (group_id, chain_id) FK: a store's group is of its chain
    UNIQUE (group_id, chain_id)
);

CREATE TABLE stores (
    store_id              serial PRIMARY KEY,
    chain_id              integer NOT NULL REFERENCES chains,
    code                  text NOT NULL,
    name                  text,
    address               text,
    active                boolean NOT NULL DEFAULT true,
    group_id              bigint NOT NULL,
    last_scraped_at       timestamptz,
    last_verified_at      timestamptz,
    consecutive_failures  integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain_id, code),
    -- target of the anchor FK: the anchor must be a store of that very group
    UNIQUE (store_id, group_id, chain_id),
    FOREIGN KEY (group_id, chain_id) REFERENCES store_groups (group_id, chain_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX stores_group_idx ON stores (group_id);

-- anchor_store_id belongs to the group and to the group's chain.
ALTER TABLE store_groups
    ADD FOREIGN KEY (anchor_store_id, group_id, chain_id)
        REFERENCES stores (store_id, group_id, chain_id)
        DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE brands (
    brand_id    serial PRIMARY KEY,
    name        text NOT NULL,
    key         text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- User-editable: a normalised variant key that must resolve to a brand key.
CREATE TABLE brand_aliases (
    alias_key   text PRIMARY KEY,
    brand_key   text NOT NULL,
    note        text,
    CHECK (alias_key <> brand_key)
);

CREATE TABLE products (
    product_id   bigserial PRIMARY KEY,
    brand_id     integer REFERENCES brands,
    name         text NOT NULL,
    name_key     text NOT NULL,
    size_value   numeric(14, 3) CHECK (size_value > 0),
    size_unit    text CHECK (size_unit IN ('g', 'ml', 'each')),
    barcode      text UNIQUE CHECK (barcode ~ '^[0-9]{14}$'),
    category     text,
    attributes   jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((size_value IS NULL) = (size_unit IS NULL))
);
CREATE INDEX products_identity_idx ON products (brand_id, name_key, size_unit, size_value);

-- A chain's own identifier (SKU) for a product.
CREATE TABLE listings (
    chain_id       integer NOT NULL REFERENCES chains,
    sku            text NOT NULL,
    product_id     bigint NOT NULL REFERENCES products,
    name           text,
    brand_text     text,
    size_text      text,
    barcode        text,
    category       text,
    first_seen_at  timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    PRIMARY KEY (chain_id, sku)
);
CREATE INDEX listings_product_idx ON listings (product_id);

-- The latest price of one product at one store; no history.
-- scraped_at is when this value was observed; an unchanged re-observation does
-- not rewrite the row (stores.last_scraped_at carries the store's freshness).
-- No foreign keys here on purpose: a per-row RI check on every inserted price
-- cost about a third of the bulk upsert's time. The upsert rejects unknown
-- products and stores set-based instead, and the triggers below stop a product
-- or store from being deleted while prices still point at it.
-- fillfactor leaves room on each page so a changed price is a HOT update.
CREATE TABLE prices (
    product_id    bigint NOT NULL,
    store_id      integer NOT NULL,
    price         numeric(12, 2) NOT NULL CHECK (price > 0 AND price <> 'NaN'),
    was_price     numeric(12, 2) CHECK (was_price > 0 AND was_price <> 'NaN'),
    unit_price    numeric(14, 4) CHECK (unit_price > 0 AND unit_price <> 'NaN'),
    unit_measure  text,
    on_special    boolean NOT NULL DEFAULT false,
    promo_text    text,
    scraped_at    timestamptz NOT NULL,
    run_id        text NOT NULL,
    PRIMARY KEY (product_id, store_id)
) WITH (fillfactor = 85);
CREATE INDEX prices_store_idx ON prices (store_id);

CREATE FUNCTION refuse_delete_with_prices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'products' AND EXISTS (SELECT 1 FROM prices WHERE product_id = OLD.product_id) THEN
        RAISE EXCEPTION 'product % still has prices; move or delete them first', OLD.product_id
            USING ERRCODE = 'foreign_key_violation';
    ELSIF TG_TABLE_NAME = 'stores' AND EXISTS (SELECT 1 FROM prices WHERE store_id = OLD.store_id) THEN
        RAISE EXCEPTION 'store % still has prices; delete them first', OLD.store_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER products_keep_prices_consistent BEFORE DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION refuse_delete_with_prices();
CREATE TRIGGER stores_keep_prices_consistent BEFORE DELETE ON stores
    FOR EACH ROW EXECUTE FUNCTION refuse_delete_with_prices();
