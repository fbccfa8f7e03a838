-- Contract (rename orders.item to orders.sku, step 3 of 3): once no release in any environment
-- reads or writes `item` (the service spec's `after`: that release runs in prod), the old
-- column and the trigger that kept it filled go, and sku becomes required.
DROP TRIGGER IF EXISTS orders_item_sku_sync ON orders;
DROP FUNCTION IF EXISTS orders_item_sku_sync();
ALTER TABLE orders DROP COLUMN IF EXISTS item;
ALTER TABLE orders ALTER COLUMN sku SET NOT NULL;
