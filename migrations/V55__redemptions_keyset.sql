-- The API's redemption list pages newest first by keyset on (redeemed_at, id), for the
-- whole tenant or filtered by campaign or store. Each index ends in (redeemed_at, id) so a
-- page is one index range scan, however deep it is; the older indexes they replace were
-- the same without the id (the tie-breaker), and everything that used them can use these.
CREATE INDEX redemptions_tenant_keyset ON redemptions (tenant_id, redeemed_at, id);
DROP INDEX redemptions_tenant_time;
CREATE INDEX redemptions_campaign_keyset ON redemptions (campaign_id, redeemed_at, id);
DROP INDEX redemptions_campaign;
-- Still serves the stores page's per-store counts and ON DELETE SET NULL from stores.
CREATE INDEX redemptions_store_keyset ON redemptions (store_id, redeemed_at, id)
    WHERE store_id IS NOT NULL;
DROP INDEX redemptions_store;
