//! Stock leases: how several nodes share one campaign's stock with Postgres as the only
//! coordinator. See `migrations/V2__campaign_engine.sql` for the accounting invariant.
//!
//! Locking: a claim batch takes `FOR KEY SHARE` on the leases it spends and checks they are
//! live; every release takes `FOR UPDATE` first. So a release waits for batches in flight
//! and counts their coupons, and a batch that loses the race finds its lease released and
//! rolls back instead of issuing stock that was given back.
//!
//! Lock order, one for everybody: the campaign row (`FOR NO KEY UPDATE`), then its leases
//! (`FOR UPDATE`, by id). Taking a lease, releasing one, reaping and lowering a limit all
//! follow it, so none of them can deadlock another. A claim batch locks only leases: the
//! `FOR KEY SHARE` its foreign key takes on the campaign row never conflicts with
//! `FOR NO KEY UPDATE`, so a batch never waits for the campaign row. A node's heartbeat
//! locks only its own `engine_nodes` row; the reaper touches those rows last and skips
//! locked ones, so it never waits for one.
//!
//! Liveness: a lease is live (issuable) while `released_at IS NULL`. Its node keeps it so
//! by heart-beating its one `engine_nodes` row; lease rows are written only when taken and
//! released, however long they are held.

use std::time::Duration;

use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{Store, StoreError};

/// A block of stock granted to this node.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub id: Uuid,
    pub size: i64,
    /// Stock nobody holds after this grant; the lease policy shrinks blocks as it nears 0.
    pub unallocated: i64,
}

/// A lease the reaper took back from a node that stopped heart-beating.
#[derive(Debug, Clone, Copy)]
pub struct ReapedLease {
    pub lease_id: Uuid,
    pub campaign_id: Uuid,
    pub returned: i64,
}

impl Store {
    /// Takes up to `want` units of stock as lease `lease_id` (chosen by the caller, so that
    /// after a failure whose outcome is unknown it can release the lease by id, a no-op
    /// when it was never written). `None`: nothing is left to lease.
    #[tracing::instrument(level = "debug", skip_all, fields(campaign_id = %campaign_id, want))]
    pub async fn take_lease(
        &self,
        lease_id: Uuid,
        campaign_id: Uuid,
        node_id: Uuid,
        want: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let client = self.pool.get().await?;
        // One statement, sent with its BEGIN and COMMIT in one pipeline and committed
        // without waiting for its WAL flush: the campaign row stays locked for one
        // statement, not four round trips and a flush. Losing the grant in a crash is
        // harmless: every coupon that carries it commits durably later, which flushes the
        // grant first (WAL is flushed in order); a grant that is lost was never spent, and
        // a batch that names it finds it missing, as it would a revoked one.
        let stmt = client
            .prepare_cached(
                "WITH cur AS (
                     SELECT id, LEAST($2::bigint, total_limit - allocated) AS grant_size
                     FROM campaigns WHERE id = $1 FOR NO KEY UPDATE
                 ), granted AS (
                     UPDATE campaigns c SET allocated = c.allocated + cur.grant_size
                     FROM cur WHERE c.id = cur.id AND cur.grant_size > 0
                     RETURNING cur.grant_size, c.total_limit - c.allocated AS unallocated
                 ), lease AS (
                     INSERT INTO campaign_leases (id, campaign_id, node_id, size, heartbeat_at)
                     SELECT $3, $1, $4, grant_size, NULL FROM granted
                 )
                 SELECT grant_size, unallocated FROM granted",
            )
            .await?;
        let rows =
            super::lazily_committed(&client, &stmt, &[&campaign_id, &want, &lease_id, &node_id])
                .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Lease {
            id: lease_id,
            size: row.get(0),
            unallocated: row.get(1),
        }))
    }

    /// Gives back what a lease of `campaign_id` did not use. Returns the units given back
    /// (0 if it was already released, e.g. by the reaper or a lowered limit).
    ///
    /// The hot path's release (every spent lease goes through here), so the whole
    /// transaction is one pipeline: BEGIN, the campaign row's lock, the lease's lock, the
    /// count-and-credit, COMMIT, sent before any answer comes back. The server still runs
    /// them one after another, so the count's snapshot is taken after the lease lock is
    /// granted, as [`release_rows`] explains. It commits without waiting for its WAL flush:
    /// a release lost in a crash leaves stock leased that was free (the lease keeper's
    /// sweep releases it again), never the other way round.
    #[tracing::instrument(level = "debug", skip_all, fields(campaign_id = %campaign_id, lease_id = %lease_id))]
    pub async fn release_lease(
        &self,
        campaign_id: Uuid,
        lease_id: Uuid,
    ) -> Result<i64, StoreError> {
        let client = self.pool.get().await?;
        let lock_campaign = client
            .prepare_cached("SELECT 1 FROM campaigns WHERE id = $1 FOR NO KEY UPDATE")
            .await?;
        let lock_lease = client
            .prepare_cached(
                "SELECT 1 FROM campaign_leases
                 WHERE id = $1 AND campaign_id = $2 AND released_at IS NULL FOR UPDATE",
            )
            .await?;
        // The sold-out webhook fires on the release of a campaign's last live lease, all of
        // it used (as in `release_where`): the campaign row is locked, so no other lease of
        // it is taken or released meanwhile, and this one still looks live to this
        // statement's snapshot, hence `l.id <> $1`.
        let release = client
            .prepare_cached(concat!(
                "WITH released AS (
                     UPDATE campaign_leases l
                     SET released_at = now(),
                         returned = l.size - (SELECT count(*) FROM coupons c WHERE c.lease_id = l.id)
                     WHERE l.id = $1 AND l.campaign_id = $2 AND l.released_at IS NULL
                     RETURNING l.returned
                 ), credited AS (
                     UPDATE campaigns c SET allocated = c.allocated - r.returned
                     FROM released r WHERE c.id = $2 AND r.returned > 0
                 ), hook AS (",
                super::webhooks::insert_sold_out_event!(),
                "
                     FROM released r, campaigns c JOIN webhook_endpoints e
                          ON e.tenant_id = c.tenant_id AND 'campaign.sold_out' = ANY(e.events)
                     WHERE r.returned = 0 AND c.id = $2 AND c.allocated = c.total_limit
                       AND NOT EXISTS (SELECT 1 FROM campaign_leases l
                                       WHERE l.campaign_id = c.id AND l.released_at IS NULL
                                         AND l.id <> $1)
                 )
                 SELECT returned FROM released"
            ))
            .await?;
        let (campaign_param, lease_params): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 2]) =
            ([&campaign_id], [&lease_id, &campaign_id]);
        let (begin, campaign, lease, released, commit) = futures_util::join!(
            client.batch_execute("BEGIN; SET LOCAL synchronous_commit TO off"),
            client.query(&lock_campaign, &campaign_param),
            client.query(&lock_lease, &lease_params),
            client.query(&release, &lease_params),
            // Rolls back if anything before it failed.
            client.batch_execute("COMMIT"),
        );
        begin?;
        campaign?;
        lease?;
        let released = released?;
        commit?;
        Ok(released.iter().map(|r| r.get::<_, i64>(0)).sum())
    }

    /// Keeps this node's leases alive: one row per node, whatever it holds. A lease is live
    /// while its node's row is fresh (see `migrations/V58__engine_nodes.sql`). Recreates
    /// the row if a reaper deleted it while this node was frozen.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn heartbeat_node(&self, node_id: Uuid) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO engine_nodes (node_id) VALUES ($1)
                 ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now()",
            )
            .await?;
        client.execute(&stmt, &[&node_id]).await?;
        Ok(())
    }

    /// Releases every live lease of this node in one transaction: a graceful stop's last
    /// step, for the leases its actors could not return themselves (with 100,000 actors
    /// stopping at once most of them find no pooled connection in time).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn release_node_leases(&self, node_id: Uuid) -> Result<Vec<ReapedLease>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let released = release_where(&tx, "node_id = $1", &[&node_id]).await?;
        tx.commit().await?;
        Ok(released)
    }

    /// A node that stopped gracefully (its leases returned) leaves at once; the reaper
    /// would otherwise delete its row once stale.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn forget_node(&self, node_id: Uuid) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM engine_nodes WHERE node_id = $1", &[&node_id])
            .await?;
        Ok(())
    }

    /// Takes back the unused stock of leases whose node has been silent for `ttl` (its
    /// row is that old, or gone) and that are themselves older than `ttl` (so a lease taken
    /// by a node just back from a freeze waits for that node's next beat), then deletes
    /// the rows of silent nodes that hold nothing any more. A lease's own `heartbeat_at`
    /// is NULL unless a node of the previous version took it (see V58).
    ///
    /// Costs O(nodes), not O(leases): the nodes holding live leases are found by skipping
    /// through `campaign_leases_node`, one index probe per node. Several nodes may reap at
    /// once: row locks make each lease go back exactly once.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn reap_leases(&self, ttl: Duration) -> Result<Vec<ReapedLease>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let silent: Vec<Uuid> = tx
            .query(
                "WITH RECURSIVE holders AS (
                     (SELECT node_id FROM campaign_leases WHERE released_at IS NULL
                      ORDER BY node_id LIMIT 1)
                     UNION ALL
                     SELECT (SELECT l.node_id FROM campaign_leases l
                             WHERE l.released_at IS NULL AND l.node_id > h.node_id
                             ORDER BY l.node_id LIMIT 1)
                     FROM holders h WHERE h.node_id IS NOT NULL
                 )
                 SELECT h.node_id FROM holders h
                 WHERE h.node_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM engine_nodes n WHERE n.node_id = h.node_id
                                   AND n.heartbeat_at >= now() - make_interval(secs => $1::bigint / 1000.0))",
                &[&ttl_ms],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let reaped = if silent.is_empty() {
            Vec::new()
        } else {
            release_where(
                &tx,
                "node_id = ANY($1) AND taken_at < now() - make_interval(secs => $2::bigint / 1000.0)
                 AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => $2::bigint / 1000.0))",
                &[&silent, &ttl_ms],
            )
            .await?
        };
        // A row locked by a heartbeat (or another reaper) is skipped: it is fresh, or the
        // next round deletes it. A node that heart-beats after this delete waits for it
        // and recreates its row.
        tx.execute(
            "DELETE FROM engine_nodes WHERE node_id IN (
                 SELECT n.node_id FROM engine_nodes n
                 WHERE n.heartbeat_at < now() - make_interval(secs => $1::bigint / 1000.0)
                   AND NOT EXISTS (SELECT 1 FROM campaign_leases l
                                   WHERE l.node_id = n.node_id AND l.released_at IS NULL)
                 ORDER BY n.node_id FOR UPDATE SKIP LOCKED)",
            &[&ttl_ms],
        )
        .await?;
        tx.commit().await?;
        Ok(reaped)
    }

    /// This node's live leases, with their campaigns: the lease keeper releases those no
    /// actor of this node holds any more (an actor that stopped while the database was
    /// away could not return them, and nobody reaps the leases of a live node).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn all_node_leases(&self, node_id: Uuid) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, campaign_id FROM campaign_leases WHERE node_id = $1 AND released_at IS NULL",
                &[&node_id],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// This node's live leases on a campaign: an actor restarted after a crash releases
    /// the ones its predecessor held.
    #[tracing::instrument(level = "debug", skip_all, fields(campaign_id = %campaign_id))]
    pub async fn node_leases(
        &self,
        node_id: Uuid,
        campaign_id: Uuid,
    ) -> Result<Vec<Uuid>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id FROM campaign_leases WHERE node_id = $1 AND campaign_id = $2 AND released_at IS NULL",
            )
            .await?;
        let rows = client.query(&stmt, &[&node_id, &campaign_id]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// Revokes every live lease of a campaign (when its limit is lowered). Returns the units
/// given back; the caller holds the campaign's row lock (the lock order: campaign, then
/// leases) and subtracts them from `allocated`.
pub(super) async fn revoke_campaign_leases(
    tx: &deadpool_postgres::Transaction<'_>,
    campaign_id: Uuid,
) -> Result<i64, StoreError> {
    let released = release_rows(tx, "campaign_id = $1", &[&campaign_id], &[campaign_id]).await?;
    Ok(released.iter().map(|r| r.returned).sum())
}

/// Locks the campaigns of matching live leases, then the leases (the one lock order),
/// counts their coupons, marks them released and credits the unused units back.
/// `filter` numbers its parameters from $1 (`params`).
async fn release_where(
    tx: &deadpool_postgres::Transaction<'_>,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<ReapedLease>, StoreError> {
    // `filter` is one of the fixed strings above, never input.
    let find = format!(
        "SELECT DISTINCT campaign_id FROM campaign_leases WHERE {filter} AND released_at IS NULL"
    );
    let campaigns: Vec<Uuid> = tx
        .query(&find, params)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if campaigns.is_empty() {
        return Ok(Vec::new());
    }
    tx.query(
        "SELECT 1 FROM campaigns WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        &[&campaigns],
    )
    .await?;
    let released = release_rows(tx, filter, params, &campaigns).await?;
    // One statement for all: a reaped node or a stopping one may release tens of thousands
    // of leases here, and a round trip each would hold every campaign lock that long.
    let (ids, returned): (Vec<Uuid>, Vec<i64>) = released
        .iter()
        .filter(|r| r.returned > 0)
        .map(|r| (r.campaign_id, r.returned))
        .unzip();
    if !ids.is_empty() {
        tx.execute(
            "UPDATE campaigns c SET allocated = c.allocated - r.returned
             FROM (SELECT id, sum(n)::bigint AS returned
                   FROM unnest($1::uuid[], $2::bigint[]) AS u (id, n) GROUP BY id) r
             WHERE c.id = r.id",
            &[&ids, &returned],
        )
        .await?;
    }
    // The release of a campaign's last live lease, all of it used, is when it sells out.
    let mut campaigns: Vec<Uuid> = released
        .iter()
        .filter(|r| r.returned == 0)
        .map(|r| r.campaign_id)
        .collect();
    campaigns.sort();
    campaigns.dedup();
    for campaign in campaigns {
        super::webhooks::enqueue_if_sold_out(tx, campaign).await?;
    }
    Ok(released)
}

/// Locks the matching live leases of `campaigns` (whose rows the caller has locked),
/// counts their coupons and marks them released.
async fn release_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
    campaigns: &[Uuid],
) -> Result<Vec<ReapedLease>, StoreError> {
    // Two statements on purpose. The lock waits for batches in flight on these leases; only
    // a statement started after it has a snapshot that sees their coupons. Counting in the
    // locking statement would miss them and give back stock that was already issued.
    // `filter` is one of the fixed strings above, never input. A lease that matches only
    // now, of a campaign not locked, waits for the next round: locking it here would break
    // the lock order.
    let lock = format!(
        "SELECT id FROM campaign_leases WHERE {filter} AND released_at IS NULL
         AND campaign_id = ANY(${}) ORDER BY id FOR UPDATE",
        params.len() + 1
    );
    let campaigns = campaigns.to_vec();
    let mut with_campaigns = params.to_vec();
    with_campaigns.push(&campaigns);
    let ids: Vec<Uuid> = tx
        .query(&lock, &with_campaigns)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = tx
        .query(
            "UPDATE campaign_leases l
             SET released_at = now(),
                 returned = l.size - (SELECT count(*) FROM coupons c WHERE c.lease_id = l.id)
             WHERE l.id = ANY($1) AND l.released_at IS NULL
             RETURNING l.id, l.campaign_id, l.returned",
            &[&ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ReapedLease {
            lease_id: r.get(0),
            campaign_id: r.get(1),
            returned: r.get(2),
        })
        .collect())
}
