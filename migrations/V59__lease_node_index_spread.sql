-- campaign_leases_node was keyed by node_id alone: every lease a node takes has the same
-- key, so every insert went to the same rightmost leaf page, and a crowd of first claims
-- (each takes a lease) queued on that page's lock (`LWLock:BufferContent` was 42 % of
-- PostgreSQL's waits in the load-test kit's idle-campaigns phase). With campaign_id second
-- the inserts spread over the index, and every reader still finds what it did: the
-- reaper's skip scan (`ORDER BY node_id LIMIT 1`), a node's leases (`node_id = $1`), and a
-- node's leases on one campaign.
DROP INDEX IF EXISTS campaign_leases_node;
CREATE INDEX campaign_leases_node ON campaign_leases (node_id, campaign_id) WHERE released_at IS NULL;
