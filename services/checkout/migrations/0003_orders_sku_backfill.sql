-- Migrate (rename orders.item to orders.sku, step 2 of 3): rows written before the expand get
-- their sku (the trigger fills every row written since). In batches, so no statement holds
-- row locks on the whole table while the service serves.
DO $$
DECLARE
    moved integer;
BEGIN
    LOOP
        UPDATE orders SET sku = item
        WHERE id IN (SELECT id FROM orders WHERE sku IS NULL LIMIT 5000);
        GET DIAGNOSTICS moved = ROW_COUNT;
        EXIT WHEN moved = 0;
    END LOOP;
END $$;
