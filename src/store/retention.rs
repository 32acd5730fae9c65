//! Retention: usage and access records older than the configured period, deleted in small
//! batches (each its own transaction, so no delete holds locks for long or blocks claims).
//!
//! What counts as such a record, and when one is old enough:
//! - a claim (`coupons`, with its `redemptions`) once it can no longer matter: claimed
//!   before the cut-off, and lost, used up or expired before the cut-off, in a campaign
//!   that takes no more claims and on a lease already given back (so per-consumer limits
//!   and stock accounting never see it go);
//! - console sign-ins (`merchant_sessions`) and consumer sign-ins (`signin_requests`)
//!   started before the cut-off;
//! - notice mail (`mail_outbox`, which names its recipients) sent before the cut-off.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// Rows deleted per table by one retention run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RetentionCounts {
    pub coupons: u64,
    pub redemptions: u64,
    pub merchant_sessions: u64,
    pub signin_requests: u64,
    pub mail_outbox: u64,
}

const OLD_CLAIMS: &str = "SELECT k.id FROM coupons k
    WHERE k.claimed_at < $1
      AND (NOT k.won OR k.uses_left = 0 OR k.expires_at < $1)
      AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = k.campaign_id
                  AND (c.status = 'ended' OR c.claim_ends_at < $1))
      AND NOT EXISTS (SELECT 1 FROM campaign_leases l
                      WHERE l.id = k.lease_id AND l.released_at IS NULL)
    LIMIT $2
    FOR UPDATE OF k SKIP LOCKED";

impl Store {
    /// One batch of old claims and their redemptions; returns (coupons, redemptions).
    pub async fn delete_old_claims(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<(u64, u64), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let ids: Vec<uuid::Uuid> = tx
            .query(OLD_CLAIMS, &[&before, &batch])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let redemptions = tx
            .execute("DELETE FROM redemptions WHERE coupon_id = ANY($1)", &[&ids])
            .await?;
        let coupons = tx
            .execute("DELETE FROM coupons WHERE id = ANY($1)", &[&ids])
            .await?;
        tx.commit().await?;
        Ok((coupons, redemptions))
    }

    /// One batch of old console sessions.
    pub async fn delete_old_sessions(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "DELETE FROM merchant_sessions WHERE id_hash IN
                     (SELECT id_hash FROM merchant_sessions WHERE created_at < $1 LIMIT $2)",
                &[&before, &batch],
            )
            .await?)
    }

    /// One batch of old consumer sign-in records.
    pub async fn delete_old_signins(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "DELETE FROM signin_requests WHERE state_hash IN
                     (SELECT state_hash FROM signin_requests WHERE created_at < $1 LIMIT $2)",
                &[&before, &batch],
            )
            .await?)
    }

    /// One batch of notice mail sent long ago.
    pub async fn delete_old_mail(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "DELETE FROM mail_outbox WHERE id IN
                     (SELECT id FROM mail_outbox WHERE sent_at < $1 LIMIT $2)",
                &[&before, &batch],
            )
            .await?)
    }

    /// The database's clock, which retention cut-offs are measured against.
    pub async fn database_now(&self) -> Result<DateTime<Utc>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client.query_one("SELECT now()", &[]).await?.get(0))
    }
}
