//! Coupon lookups for the API: one coupon by code, or a consumer's coupons in a campaign.
//! They exist so that a till that lost the answer to a claim can find the coupon again.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

/// A won coupon as the API shows it. `status` is judged against the database clock, like
/// every other time rule.
#[derive(Debug, Clone)]
pub struct CouponLookup {
    pub id: Uuid,
    pub code: String,
    pub campaign_id: Uuid,
    pub consumer: String,
    pub status: String,
    pub claimed_at: DateTime<Utc>,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub uses_left: i32,
    pub redemptions: Vec<CouponRedemption>,
}

#[derive(Debug, Clone)]
pub struct CouponRedemption {
    pub id: Uuid,
    pub redeemed_at: DateTime<Utc>,
    pub store: Option<String>,
    pub store_id: Option<Uuid>,
    pub staff: Option<String>,
    pub undone_at: Option<DateTime<Utc>>,
}

/// A claim's row by id, lottery losers included (`code` None): what an idempotent retry
/// of a claim whose answer was lost answers with.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    pub id: Uuid,
    pub code: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub uses_left: i32,
}

// Lottery losers have no code and are not coupons to the caller, so `won` is required.
const COUPON_COLUMNS: &str = "c.id, c.code, c.campaign_id, c.consumer,
    CASE WHEN c.uses_left = 0 THEN 'used'
         WHEN c.expires_at IS NOT NULL AND c.expires_at <= now() THEN 'expired'
         WHEN c.valid_from > now() THEN 'not_yet_valid'
         ELSE 'active' END,
    c.claimed_at, c.valid_from, c.expires_at, c.uses_left";

impl Store {
    /// The tenant's coupon with this (already normalised) code; another tenant's is `None`.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn coupon_by_code(
        &self,
        tenant_id: Uuid,
        code: &str,
    ) -> Result<Option<CouponLookup>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COUPON_COLUMNS} FROM coupons c
                     WHERE c.tenant_id = $1 AND c.code = $2 AND c.won"
                ),
                &[&tenant_id, &code],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut coupons = vec![coupon(&row)];
        attach_redemptions(&client, tenant_id, &mut coupons).await?;
        Ok(coupons.pop())
    }

    /// The consumer's won coupons in the tenant's campaign, oldest first; `None` when the
    /// campaign is not the tenant's (so the caller can answer 404 rather than an empty list).
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, campaign_id = %campaign_id))]
    pub async fn consumer_coupons(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        consumer: &str,
    ) -> Result<Option<Vec<CouponLookup>>, StoreError> {
        let client = self.pool.get().await?;
        let exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND tenant_id = $2)",
                &[&campaign_id, &tenant_id],
            )
            .await?
            .get(0);
        if !exists {
            return Ok(None);
        }
        // coupons_consumer_seq (campaign_id, consumer, seq) serves this.
        let rows = client
            .query(
                &format!(
                    "SELECT {COUPON_COLUMNS} FROM coupons c
                     WHERE c.campaign_id = $1 AND c.tenant_id = $2 AND c.consumer = $3 AND c.won
                     ORDER BY c.seq"
                ),
                &[&campaign_id, &tenant_id, &consumer],
            )
            .await?;
        let mut coupons: Vec<CouponLookup> = rows.iter().map(coupon).collect();
        attach_redemptions(&client, tenant_id, &mut coupons).await?;
        Ok(Some(coupons))
    }
}

impl Store {
    /// The claim row `id` of the tenant's campaign, if it was written.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, campaign_id = %campaign_id))]
    pub async fn claimed_coupon(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        id: Uuid,
    ) -> Result<Option<ClaimedRow>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT id, CASE WHEN won THEN code END, expires_at, uses_left FROM coupons
                 WHERE id = $1 AND tenant_id = $2 AND campaign_id = $3",
                &[&id, &tenant_id, &campaign_id],
            )
            .await?;
        Ok(row.map(|r| ClaimedRow {
            id: r.get(0),
            code: r.get(1),
            expires_at: r.get(2),
            uses_left: r.get(3),
        }))
    }
}

fn coupon(r: &tokio_postgres::Row) -> CouponLookup {
    CouponLookup {
        id: r.get(0),
        code: r.get(1),
        campaign_id: r.get(2),
        consumer: r.get(3),
        status: r.get(4),
        claimed_at: r.get(5),
        valid_from: r.get(6),
        expires_at: r.get(7),
        uses_left: r.get(8),
        redemptions: Vec::new(),
    }
}

/// One query for all the coupons' redemptions, rather than one per coupon.
async fn attach_redemptions(
    client: &deadpool_postgres::Client,
    tenant_id: Uuid,
    coupons: &mut [CouponLookup],
) -> Result<(), StoreError> {
    if coupons.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = coupons.iter().map(|c| c.id).collect();
    let rows = client
        .query(
            "SELECT coupon_id, id, redeemed_at, store, store_id, staff, undone_at
             FROM redemptions WHERE tenant_id = $1 AND coupon_id = ANY($2)
             ORDER BY redeemed_at, id",
            &[&tenant_id, &ids],
        )
        .await?;
    for r in rows {
        let coupon_id: Uuid = r.get(0);
        if let Some(c) = coupons.iter_mut().find(|c| c.id == coupon_id) {
            c.redemptions.push(CouponRedemption {
                id: r.get(1),
                redeemed_at: r.get(2),
                store: r.get(3),
                store_id: r.get(4),
                staff: r.get(5),
                undone_at: r.get(6),
            });
        }
    }
    Ok(())
}
