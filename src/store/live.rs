//! What the live dashboard reads: one campaign's counts and status (when the broker has not
//! cached them yet), and where a redemption happened (for the feed).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::campaign::{CampaignError, CampaignStatus};
use crate::domain::merchant::Role;

/// A campaign's counts and status, read once and then kept current from events.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCounts {
    pub tenant_id: Uuid,
    pub status: CampaignStatus,
    pub issued: i64,
    pub redeemed: i64,
    pub remaining: i64,
}

/// One line of the redemption feed.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRedemption {
    pub at: DateTime<Utc>,
    pub store: Option<String>,
    pub staff: Option<String>,
}

impl Store {
    /// One campaign's counts (the broker's cache miss; never per event once cached).
    #[tracing::instrument(level = "debug", skip_all, fields(campaign_id = %campaign_id))]
    pub async fn live_counts(&self, campaign_id: Uuid) -> Result<Option<LiveCounts>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT c.tenant_id, c.status, c.total_limit,
                        (SELECT count(*) FROM coupons k WHERE k.campaign_id = c.id AND k.won),
                        (SELECT count(*) FROM redemptions r WHERE r.campaign_id = c.id AND r.undone_at IS NULL)
                 FROM campaigns c WHERE c.id = $1",
                &[&campaign_id],
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        let status: &str = r.get(1);
        let total_limit: i64 = r.get(2);
        let issued: i64 = r.get(3);
        Ok(Some(LiveCounts {
            tenant_id: r.get(0),
            status: status
                .parse()
                .map_err(|e: CampaignError| StoreError::Corrupt(e.to_string()))?,
            issued,
            redeemed: r.get(4),
            remaining: (total_limit - issued).max(0),
        }))
    }

    /// Where and by whom a redemption of `tenant_id` was recorded.
    #[tracing::instrument(level = "debug", skip_all, fields(redemption_id = %redemption_id))]
    pub async fn live_redemption(
        &self,
        tenant_id: Uuid,
        redemption_id: Uuid,
    ) -> Result<Option<LiveRedemption>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT r.redeemed_at, coalesce(s.name, r.store), coalesce(u.email, r.staff)
                 FROM redemptions r
                 LEFT JOIN stores s ON s.id = r.store_id
                 LEFT JOIN merchant_users u ON u.id = r.staff_user_id
                 WHERE r.id = $1 AND r.tenant_id = $2",
                &[&redemption_id, &tenant_id],
            )
            .await?;
        Ok(row.map(|r| LiveRedemption {
            at: r.get(0),
            store: r.get(1),
            staff: r.get(2),
        }))
    }
}

/// A console session still good for the live dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSessionRow {
    pub id_hash: Vec<u8>,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub role: Role,
}

impl Store {
    /// Which of `hashes` are still live sessions of enabled users past their second factor:
    /// one query a second for every socket of this node.
    #[tracing::instrument(level = "debug", skip_all, fields(sessions = hashes.len()))]
    pub async fn live_sessions(
        &self,
        hashes: &[Vec<u8>],
        idle_timeout: std::time::Duration,
    ) -> Result<Vec<LiveSessionRow>, StoreError> {
        let idle_seconds = idle_timeout.as_secs_f64();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT s.id_hash, u.id, u.tenant_id, u.role
                 FROM merchant_sessions s JOIN merchant_users u ON u.id = s.user_id
                 WHERE s.id_hash = ANY($1) AND s.expires_at > now() AND NOT s.mfa_pending
                   AND s.last_seen_at > now() - make_interval(secs => $2)
                   AND NOT u.disabled",
                &[&hashes, &idle_seconds],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let role: &str = r.get(3);
                Ok(LiveSessionRow {
                    id_hash: r.get(0),
                    user_id: r.get(1),
                    tenant_id: r.get(2),
                    role: role
                        .parse()
                        .map_err(|_| StoreError::Corrupt(format!("merchant user role {role:?}")))?,
                })
            })
            .collect()
    }
}
