-- refuse_delete_with_prices() (0001) fails on every product without prices:
-- PL/pgSQL plans the ELSIF expression, whose OLD.store_id does not exist on a
-- products row ("record old has no field store_id"), so no product could ever
-- be deleted (merges, orphan removal). Same rule, each table's test in its own
-- branch.
CREATE OR REPLACE FUNCTION refuse_delete_with_prices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'products' THEN
        IF EXISTS (SELECT 1 FROM prices WHERE product_id = OLD.product_id) THEN
            RAISE EXCEPTION 'product % still has prices; move or delete them first', OLD.product_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    ELSIF TG_TABLE_NAME = 'stores' THEN
        IF EXISTS (SELECT 1 FROM prices WHERE store_id = OLD.store_id) THEN
            RAISE EXCEPTION 'store % still has prices; delete them first', OLD.store_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN OLD;
END $$;
