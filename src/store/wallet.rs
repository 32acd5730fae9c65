//! What consumer pages read: a consumer's claims and coupons, and a merchant's theme.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::campaign::Discount;

/// A coupon as its owner sees it.
#[derive(Debug, Clone)]
pub struct WalletCoupon {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub campaign_id: Uuid,
    pub campaign_name: String,
    pub campaign_slug: String,
    pub discount: Option<Discount>,
    pub terms: String,
    pub code: String,
    pub claimed_at: DateTime<Utc>,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub uses_left: i32,
    pub uses_per_coupon: i32,
    pub secret: Vec<u8>,
    /// The latest use that was not undone.
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub tenant_name: String,
    pub brand_color: String,
    pub accent_color: String,
    pub logo_image_id: Option<Uuid>,
    /// Sign-in providers the merchant accepts; empty means all configured ones.
    pub signin_providers: Vec<String>,
    pub require_check_code: bool,
}

const WALLET_COLUMNS: &str = "c.id, c.tenant_id, c.campaign_id, k.name, k.slug, k.discount, k.terms, c.code, \
    c.claimed_at, c.valid_from, c.expires_at, c.uses_left, k.uses_per_coupon, c.secret, \
    (SELECT max(r.redeemed_at) FROM redemptions r WHERE r.coupon_id = c.id AND r.undone_at IS NULL)";

fn wallet_coupon(r: &tokio_postgres::Row) -> WalletCoupon {
    let campaign_id: Uuid = r.get(2);
    // One unreadable discount must not hide the consumer's whole wallet: log it, show none.
    let discount = r
        .get::<_, Option<serde_json::Value>>(5)
        .and_then(|v| match serde_json::from_value::<Discount>(v) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!(campaign = %campaign_id, error = %e, "stored discount does not parse");
                None
            }
        });
    WalletCoupon {
        id: r.get(0),
        tenant_id: r.get(1),
        campaign_id,
        campaign_name: r.get(3),
        campaign_slug: r.get(4),
        discount,
        terms: r.get(6),
        code: r.get(7),
        claimed_at: r.get(8),
        valid_from: r.get(9),
        expires_at: r.get(10),
        uses_left: r.get(11),
        uses_per_coupon: r.get(12),
        secret: r.get(13),
        last_used_at: r.get(14),
    }
}

impl Store {
    /// The consumer's attempts on a campaign: (coupon id, won), oldest first.
    #[tracing::instrument(level = "debug", skip_all, fields(campaign_id = %campaign_id))]
    pub async fn consumer_claims(
        &self,
        campaign_id: Uuid,
        consumer: &str,
    ) -> Result<Vec<(Uuid, bool)>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, won FROM coupons WHERE campaign_id = $1 AND consumer = $2 ORDER BY seq",
            )
            .await?;
        let rows = client.query(&stmt, &[&campaign_id, &consumer]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Every coupon the consumer won, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn wallet(&self, consumer: &str) -> Result<Vec<WalletCoupon>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {WALLET_COLUMNS} FROM coupons c JOIN campaigns k ON k.id = c.campaign_id
             WHERE c.consumer = $1 AND c.won ORDER BY c.claimed_at DESC LIMIT 200"
        );
        Ok(client
            .query(&sql, &[&consumer])
            .await?
            .iter()
            .map(wallet_coupon)
            .collect())
    }

    /// One of the consumer's coupons; someone else's is None.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub async fn wallet_coupon(
        &self,
        consumer: &str,
        id: Uuid,
    ) -> Result<Option<WalletCoupon>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {WALLET_COLUMNS} FROM coupons c JOIN campaigns k ON k.id = c.campaign_id
             WHERE c.id = $1 AND c.consumer = $2 AND c.won"
        );
        Ok(client
            .query_opt(&sql, &[&id, &consumer])
            .await?
            .as_ref()
            .map(wallet_coupon))
    }

    /// Stores a confirm-form token (its SHA-256) for one use of `coupon_id`, valid for
    /// `ttl_secs`. The coupon's expired tokens go at the same time, so they cannot pile up.
    #[tracing::instrument(level = "debug", skip_all, fields(coupon_id = %coupon_id))]
    pub async fn issue_use_token(
        &self,
        coupon_id: Uuid,
        token_hash: &[u8],
        ttl_secs: f64,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "WITH gone AS (
                     DELETE FROM coupon_use_tokens WHERE coupon_id = $1 AND expires_at < now()
                 )
                 INSERT INTO coupon_use_tokens (token_hash, coupon_id, expires_at)
                 VALUES ($2, $1, now() + make_interval(secs => $3))",
                &[&coupon_id, &token_hash, &ttl_secs],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn theme(&self, tenant_id: Uuid) -> Result<Option<Theme>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT name, brand_color, accent_color, logo_image_id, signin_providers, require_check_code
                 FROM tenants WHERE id = $1",
                &[&tenant_id],
            )
            .await?;
        Ok(row.map(|r| Theme {
            tenant_name: r.get(0),
            brand_color: r.get(1),
            accent_color: r.get(2),
            logo_image_id: r.get(3),
            signin_providers: r.get(4),
            require_check_code: r.get(5),
        }))
    }
}
