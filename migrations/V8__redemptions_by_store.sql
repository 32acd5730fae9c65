-- Schema v10: uses per store. The stores page counts each store's uses, and deleting a
-- store clears its link on every redemption (ON DELETE SET NULL): both look redemptions up
-- by store, which without this index reads the whole table.
CREATE INDEX redemptions_store ON redemptions (store_id) WHERE store_id IS NOT NULL;
