-- One heartbeat row per running node. A lease is live while its node heart-beats: the
-- node updates this one row each beat instead of every lease row it holds (at 90,000
-- awake campaigns that was 18,000 lease-row updates a second, each a new row version in
-- every index of campaign_leases, since heartbeat_at was indexed). The reaper takes back
-- the leases of nodes whose row is stale, or that have no row, and then deletes the row.
-- Node ids are new at every start, so rows of stopped nodes go; the table stays as small
-- as the number of nodes.
CREATE TABLE engine_nodes (
    node_id       uuid PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

-- campaign_leases.heartbeat_at: NULL for a lease whose liveness is its node's row (every
-- lease taken from now on). Nodes of the previous version still insert now() and update
-- it, and stay live by it during a rolling restart: the new reaper reaps a lease only when
-- its node is silent, it is older than the ttl, and its own heartbeat_at is NULL or stale;
-- the old reaper (`heartbeat_at < now() - ttl`) never matches a NULL, so it leaves new
-- nodes' leases alone (but cannot reap them if a new node dies before an old one does:
-- the new nodes' reapers do).
ALTER TABLE campaign_leases ALTER COLUMN heartbeat_at DROP NOT NULL;

-- The reaper finds lease-holding nodes through campaign_leases_node, so this index (every
-- live lease, keyed by the timestamp the heartbeat rewrote) has no reader left but the
-- old version's reaper during a rolling restart, which scans instead for those minutes.
DROP INDEX IF EXISTS campaign_leases_live;
