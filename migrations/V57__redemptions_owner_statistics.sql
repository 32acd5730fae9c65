-- A campaign and a store each belong to one tenant, but the planner, multiplying the
-- selectivities of `tenant_id = $1 AND campaign_id = $2`, takes a campaign's redemptions
-- for a handful: it then joins all of them and sorts, instead of reading the first page
-- off redemptions_campaign_keyset (400k rows, 2,000 in the campaign: 87 ms against 5 ms).
-- Functional-dependency statistics tell it the truth.
CREATE STATISTICS redemptions_owner (dependencies) ON tenant_id, campaign_id, store_id
    FROM redemptions;
ANALYZE redemptions;
