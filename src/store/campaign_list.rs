//! A tenant's campaigns a page at a time (the API's `GET /api/v1/campaigns`): newest
//! first, by keyset (`created_at`, `id`), so a page never repeats or skips a campaign
//! while others are created (those land before the first page).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::campaigns::{record, COLUMNS};
use super::{CampaignRecord, Store, StoreError};
use crate::domain::campaign::CampaignStatus;

impl Store {
    /// Up to `limit` of the tenant's campaigns after `after` (the last one of the page
    /// before), newest first, only those in `status` when given.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn campaign_page(
        &self,
        tenant_id: Uuid,
        status: Option<CampaignStatus>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<CampaignRecord>, StoreError> {
        let client = self.pool.get().await?;
        let (at, id) = after.unzip();
        let status = status.map(CampaignStatus::as_str);
        // Row comparison in the order of the index `campaigns_tenant_page` (V51).
        let sql = format!(
            "SELECT {COLUMNS} FROM campaigns
             WHERE tenant_id = $1
               AND ($2::text IS NULL OR status = $2)
               AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let rows = client
            .query(
                &client.prepare_cached(&sql).await?,
                &[&tenant_id, &status, &at, &id, &limit],
            )
            .await?;
        rows.iter().map(record).collect()
    }
}
