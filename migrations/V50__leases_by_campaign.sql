-- A campaign actor looks up this node's live leases of its campaign when it starts, and a
-- lowered limit revokes a campaign's leases. Without this index both scanned every live
-- lease of the node (`campaign_leases_node`), so starting the n-th actor cost O(n): with
-- 20,000 campaigns awake, first claims had slowed to a fifth of their starting rate.
CREATE INDEX campaign_leases_campaign ON campaign_leases (campaign_id, node_id) WHERE released_at IS NULL;
