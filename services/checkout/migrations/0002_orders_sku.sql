-- Expand (rename orders.item to orders.sku, step 1 of 3): the new column beside the old, and a
-- trigger that keeps both filled whichever release writes, so the release that reads `item`
-- and the one that reads `sku` run side by side (a canary, a rollback) on the same rows.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS sku text CHECK (length(sku) BETWEEN 1 AND 200);
ALTER TABLE orders ALTER COLUMN item DROP NOT NULL;

CREATE OR REPLACE FUNCTION orders_item_sku_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.sku IS NULL THEN
        NEW.sku := NEW.item;
    ELSIF NEW.item IS NULL OR (TG_OP = 'UPDATE' AND NEW.sku IS DISTINCT FROM OLD.sku) THEN
        NEW.item := NEW.sku;
    ELSIF TG_OP = 'UPDATE' AND NEW.item IS DISTINCT FROM OLD.item THEN
        NEW.sku := NEW.item;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS orders_item_sku_sync ON orders;
CREATE TRIGGER orders_item_sku_sync BEFORE INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_item_sku_sync();
