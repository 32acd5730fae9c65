//! The API's list of redemptions (`GET /api/v1/redemptions`): newest first, by keyset on
//! (redeemed_at, id), filtered by campaign, store and time. V55 gives each filter an index
//! that ends in (redeemed_at, id), so a page reads only its own rows however deep it is
//! (V57's statistics keep the planner on them when a campaign or store is named).

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{Store, StoreError};

/// What to list. `from` is inclusive, `to` exclusive; `after` is the last row of the
/// previous page.
#[derive(Debug, Default, Clone)]
pub struct RedemptionFilter {
    pub campaign_id: Option<Uuid>,
    pub store_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

#[derive(Debug, Clone)]
pub struct RedemptionListing {
    pub id: Uuid,
    pub coupon_id: Uuid,
    pub code: Option<String>,
    pub campaign_id: Uuid,
    pub redeemed_at: DateTime<Utc>,
    /// The free text given (or the chosen store's name at the time).
    pub store: Option<String>,
    /// The store it is linked to now, with its current name and code.
    pub store_id: Option<Uuid>,
    pub store_name: Option<String>,
    pub store_code: Option<String>,
    pub staff: Option<String>,
    pub undone_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Up to `limit` of the tenant's redemptions matching `filter`, newest first.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn redemptions_page(
        &self,
        tenant_id: Uuid,
        filter: &RedemptionFilter,
        limit: i64,
    ) -> Result<Vec<RedemptionListing>, StoreError> {
        // Only the conditions asked for go into the statement (each still a parameter), so
        // the planner sees which index fits instead of a generic plan full of
        // `$n IS NULL OR …` that fits none.
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant_id];
        let mut sql = String::from(
            "SELECT r.id, r.coupon_id, c.code, r.campaign_id, r.redeemed_at, r.store,
                    r.store_id, s.name, s.code, r.staff, r.undone_at
             FROM redemptions r
             JOIN coupons c ON c.id = r.coupon_id
             LEFT JOIN stores s ON s.id = r.store_id
             WHERE r.tenant_id = $1",
        );
        let conditions: [(&str, Option<&(dyn ToSql + Sync)>); 4] = [
            (
                "r.campaign_id =",
                filter.campaign_id.as_ref().map(|v| v as _),
            ),
            ("r.store_id =", filter.store_id.as_ref().map(|v| v as _)),
            ("r.redeemed_at >=", filter.from.as_ref().map(|v| v as _)),
            ("r.redeemed_at <", filter.to.as_ref().map(|v| v as _)),
        ];
        for (condition, value) in conditions {
            if let Some(value) = value {
                params.push(value);
                sql.push_str(&format!(" AND {condition} ${}", params.len()));
            }
        }
        if let Some((at, id)) = &filter.after {
            params.push(at);
            params.push(id);
            let n = params.len();
            sql.push_str(&format!(" AND (r.redeemed_at, r.id) < (${}, ${n})", n - 1));
        }
        params.push(&limit);
        sql.push_str(&format!(
            " ORDER BY r.redeemed_at DESC, r.id DESC LIMIT ${}",
            params.len()
        ));
        let client = self.pool.get().await?;
        let rows = client.query(&sql, &params).await?;
        Ok(rows
            .iter()
            .map(|r| RedemptionListing {
                id: r.get(0),
                coupon_id: r.get(1),
                code: r.get(2),
                campaign_id: r.get(3),
                redeemed_at: r.get(4),
                store: r.get(5),
                store_id: r.get(6),
                store_name: r.get(7),
                store_code: r.get(8),
                staff: r.get(9),
                undone_at: r.get(10),
            })
            .collect())
    }
}
