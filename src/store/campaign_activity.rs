//! What the live campaign page draws before its socket says anything: claims and
//! redemptions per minute over the last hour, the latest redemptions, and when the stock
//! ran out.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

/// Minutes in the activity chart, the current (partial) minute last.
pub const ACTIVITY_MINUTES: i64 = 60;

/// How many redemptions the feed starts with.
pub const FEED_LENGTH: i64 = 20;

/// One minute of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteActivity {
    pub minute: DateTime<Utc>,
    /// Coupons issued (lottery losers take no stock and are not counted).
    pub claims: i64,
    /// Redemptions not undone.
    pub redemptions: i64,
}

/// One line of the redemption feed.
#[derive(Debug, Clone)]
pub struct FeedRedemption {
    pub at: DateTime<Utc>,
    /// The registered store's name, else the API's free text.
    pub store: Option<String>,
    /// The staff user's email, else the API's free text.
    pub staff: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CampaignActivity {
    /// Exactly [`ACTIVITY_MINUTES`] entries, oldest first.
    pub minutes: Vec<MinuteActivity>,
    /// The latest redemptions, newest first, at most [`FEED_LENGTH`].
    pub feed: Vec<FeedRedemption>,
    /// When the coupon that took the last unit of stock was claimed, if it is gone.
    pub sold_out_at: Option<DateTime<Utc>>,
}

const MINUTES_SQL: &str = "
    WITH m AS (
        SELECT generate_series(date_trunc('minute', now()) - ($2::bigint - 1) * interval '1 minute',
                               date_trunc('minute', now()), interval '1 minute') AS minute
    ), c AS (
        SELECT date_trunc('minute', claimed_at) AS minute, count(*) AS n
        FROM coupons
        WHERE campaign_id = $1 AND won AND claimed_at >= (SELECT min(minute) FROM m)
        GROUP BY 1
    ), r AS (
        SELECT date_trunc('minute', redeemed_at) AS minute, count(*) AS n
        FROM redemptions
        WHERE campaign_id = $1 AND undone_at IS NULL AND redeemed_at >= (SELECT min(minute) FROM m)
        GROUP BY 1
    )
    SELECT m.minute, coalesce(c.n, 0), coalesce(r.n, 0)
    FROM m LEFT JOIN c USING (minute) LEFT JOIN r USING (minute)
    ORDER BY m.minute";

const FEED_SQL: &str = "
    SELECT r.redeemed_at, coalesce(s.name, r.store), coalesce(u.email, r.staff)
    FROM redemptions r
    LEFT JOIN stores s ON s.id = r.store_id
    LEFT JOIN merchant_users u ON u.id = r.staff_user_id
    WHERE r.campaign_id = $1 AND r.undone_at IS NULL
    ORDER BY r.redeemed_at DESC, r.id DESC
    LIMIT $2";

// The total_limit-th coupon issued is the one that emptied the stock.
const SOLD_OUT_SQL: &str = "
    SELECT claimed_at FROM coupons
    WHERE campaign_id = $1 AND won
    ORDER BY claimed_at, id
    OFFSET $2::bigint - 1 LIMIT 1";

impl Store {
    /// The campaign page's chart, feed and sold-out marker. `id` must already be known to
    /// belong to the caller's tenant.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub async fn campaign_activity(
        &self,
        id: Uuid,
        total_limit: i64,
    ) -> Result<CampaignActivity, StoreError> {
        let client = self.pool.get().await?;
        let minutes = client
            .query(MINUTES_SQL, &[&id, &ACTIVITY_MINUTES])
            .await?
            .into_iter()
            .map(|r| MinuteActivity {
                minute: r.get(0),
                claims: r.get(1),
                redemptions: r.get(2),
            })
            .collect();
        let feed = client
            .query(FEED_SQL, &[&id, &FEED_LENGTH])
            .await?
            .into_iter()
            .map(|r| FeedRedemption {
                at: r.get(0),
                store: r.get(1),
                staff: r.get(2),
            })
            .collect();
        let sold_out_at = client
            .query_opt(SOLD_OUT_SQL, &[&id, &total_limit.max(1)])
            .await?
            .map(|r| r.get(0));
        Ok(CampaignActivity {
            minutes,
            feed,
            sold_out_at,
        })
    }
}
