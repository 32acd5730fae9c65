//! Counts for operators: the monthly report's claims and redemptions, and the sampled
//! gauges' look at leases and the database's size.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Store, StoreError};

/// What the gauge sampler reads from the database every few seconds.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    /// Live leases held by the asking node.
    pub leases_held: i64,
    pub database_bytes: i64,
}

/// One line of a monthly report: a merchant (whole-service report) or a campaign (one
/// merchant's report). Lottery losses are attempts but not issued coupons.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MonthRow {
    pub id: Uuid,
    pub name: String,
    pub claim_attempts: i64,
    pub coupons_issued: i64,
    /// Uses in the month that were not undone.
    pub redemptions: i64,
}

/// Per merchant: claims by claim time, redemptions by use time, in `[from, to)`.
const BY_TENANT: &str = "
    WITH c AS (SELECT tenant_id AS id, count(*) AS attempts, count(*) FILTER (WHERE won) AS issued
                 FROM coupons WHERE claimed_at >= $1 AND claimed_at < $2 GROUP BY tenant_id),
         r AS (SELECT tenant_id AS id, count(*) AS redeemed
                 FROM redemptions
                WHERE redeemed_at >= $1 AND redeemed_at < $2 AND undone_at IS NULL
                GROUP BY tenant_id)
    SELECT t.id, t.name, coalesce(c.attempts, 0), coalesce(c.issued, 0), coalesce(r.redeemed, 0)
      FROM tenants t LEFT JOIN c ON c.id = t.id LEFT JOIN r ON r.id = t.id
     WHERE c.id IS NOT NULL OR r.id IS NOT NULL
     ORDER BY 4 DESC, 2, 1";

/// Per campaign of one merchant ($3), the same counts.
const BY_CAMPAIGN: &str = "
    WITH c AS (SELECT campaign_id AS id, count(*) AS attempts, count(*) FILTER (WHERE won) AS issued
                 FROM coupons
                WHERE tenant_id = $3 AND claimed_at >= $1 AND claimed_at < $2
                GROUP BY campaign_id),
         r AS (SELECT campaign_id AS id, count(*) AS redeemed
                 FROM redemptions
                WHERE tenant_id = $3 AND redeemed_at >= $1 AND redeemed_at < $2
                  AND undone_at IS NULL
                GROUP BY campaign_id)
    SELECT k.id, k.name, coalesce(c.attempts, 0), coalesce(c.issued, 0), coalesce(r.redeemed, 0)
      FROM campaigns k LEFT JOIN c ON c.id = k.id LEFT JOIN r ON r.id = k.id
     WHERE k.tenant_id = $3 AND (c.id IS NOT NULL OR r.id IS NOT NULL)
     ORDER BY 4 DESC, 2, 1";

impl Store {
    /// This node's live leases and the database's size, in one round trip.
    pub async fn observe(&self, node: Uuid) -> Result<Observed, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM campaign_leases
                          WHERE released_at IS NULL AND node_id = $1),
                        pg_database_size(current_database())",
                &[&node],
            )
            .await?;
        Ok(Observed {
            leases_held: row.get(0),
            database_bytes: row.get(1),
        })
    }

    /// Claims and redemptions in `[from, to)`: one row per merchant, or with `tenant`, one
    /// row per campaign of that merchant. Only rows with activity.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn month_activity(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tenant: Option<Uuid>,
    ) -> Result<Vec<MonthRow>, StoreError> {
        let client = self.pool.get().await?;
        let rows = match tenant {
            None => client.query(BY_TENANT, &[&from, &to]).await?,
            Some(t) => client.query(BY_CAMPAIGN, &[&from, &to, &t]).await?,
        };
        Ok(rows
            .iter()
            .map(|r| MonthRow {
                id: r.get(0),
                name: r.get(1),
                claim_attempts: r.get(2),
                coupons_issued: r.get(3),
                redemptions: r.get(4),
            })
            .collect())
    }
}
