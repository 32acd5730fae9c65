//! Campaign editors (the console's, the API's `PATCH`): a campaign created together with
//! its image, a full-field edit under the campaign's row lock, and the stores a poster can
//! name.

use uuid::Uuid;

use super::campaigns::{
    ended_event, insert_row, record, stats, CampaignStats, EditOutcome, COLUMNS,
};
use super::{CampaignRecord, Store, StoreError};
use crate::domain::campaign::{CampaignError, CampaignStatus, NewCampaign};

/// An image already checked by content (`domain::image`).
pub struct NewImage<'a> {
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// What an edit does to the campaign's image.
pub enum ImageUpdate<'a> {
    Keep,
    Replace(NewImage<'a>),
    Remove,
}

/// Every editable field and the status, decided from the current row under its lock (the
/// total limit against coupons issued is checked after, by the store).
pub type CampaignRewrite =
    Box<dyn FnOnce(&CampaignRecord) -> Result<(NewCampaign, CampaignStatus), CampaignError> + Send>;

/// A store a per-store poster can name.
#[derive(Debug, Clone)]
pub struct PosterStore {
    pub code: String,
    pub name: String,
}

async fn insert_image(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant_id: Uuid,
    image: &NewImage<'_>,
) -> Result<Uuid, StoreError> {
    let id = Uuid::new_v4();
    tx.execute(
        "INSERT INTO images (id, tenant_id, content_type, bytes) VALUES ($1, $2, $3, $4)",
        &[&id, &tenant_id, &image.content_type, &image.bytes],
    )
    .await?;
    Ok(id)
}

impl Store {
    /// Creates a campaign and its image in one transaction: a failure leaves neither.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn insert_campaign_with_image(
        &self,
        id: Uuid,
        tenant_id: Uuid,
        slug: &str,
        campaign: &NewCampaign,
        image: Option<NewImage<'_>>,
    ) -> Result<CampaignRecord, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let image_id = match &image {
            Some(image) => Some(insert_image(&tx, tenant_id, image).await?),
            None => None,
        };
        let created = insert_row(&tx, id, tenant_id, slug, campaign, image_id).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Rewrites every editable field (not the status: that moves only by its actions) and
    /// the image, as the console's editor does.
    pub async fn edit_campaign_fields(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        fields: &NewCampaign,
        image: ImageUpdate<'_>,
    ) -> Result<EditOutcome, StoreError> {
        let fields = fields.clone();
        let edit: CampaignRewrite = Box::new(move |current| Ok((fields, current.status)));
        self.rewrite_campaign(tenant_id, id, edit, image).await
    }

    /// Rewrites every editable field, the status and the image as `edit` decides from the
    /// current row, in one transaction under the campaign's row lock, like
    /// [`Store::edit_campaign`]: the issued count it checks a lowered limit against cannot
    /// grow meanwhile, and live leases are revoked so unused leased stock fits too.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn rewrite_campaign(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        edit: CampaignRewrite,
        image: ImageUpdate<'_>,
    ) -> Result<EditOutcome, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // NO KEY UPDATE and revoke-then-count: see `Store::edit_campaign`.
        let sql = format!(
            "SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND tenant_id = $2 FOR NO KEY UPDATE"
        );
        let Some(current) = tx.query_opt(&sql, &[&id, &tenant_id]).await? else {
            return Ok(EditOutcome::NotFound);
        };
        let current = record(&current)?;
        let (fields, status) = match edit(&current) {
            Ok(decided) => decided,
            Err(e) => return Ok(EditOutcome::Refused(e)),
        };
        let rules = fields.rules();
        let returned = if rules.total_limit() < current.rules.total_limit() {
            super::leases::revoke_campaign_leases(&tx, id).await?
        } else {
            0
        };
        let counts = stats(&tx, id, current.rules.total_limit()).await?;
        if let Err(e) = current
            .rules
            .validate_limit_change(rules.total_limit(), counts.issued)
        {
            return Ok(EditOutcome::Refused(e));
        }
        let image_id = match &image {
            ImageUpdate::Keep => current.image_id,
            ImageUpdate::Replace(new) => Some(insert_image(&tx, tenant_id, new).await?),
            ImageUpdate::Remove => None,
        };
        let discount = fields
            .discount()
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("discount: {e}")))?;
        let codes = fields.codes();
        let code_length = i32::try_from(codes.length())
            .map_err(|_| StoreError::Corrupt(CampaignError::InvalidCodeLength.to_string()))?;
        let sql = format!(
            "UPDATE campaigns SET name = $2, description = $3, terms = $4, discount = $5,
                total_limit = $6, per_consumer_limit = $7, claim_starts_at = $8, claim_ends_at = $9,
                use_starts_at = $10, use_ends_at = $11, valid_for_seconds = $12, uses_per_coupon = $13,
                win_probability = $14, signin = $15, code_length = $16, code_prefix = $17,
                code_charset = $18, image_id = $19, allocated = allocated - $20, status = $21,
                updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let row = tx
            .query_one(
                &sql,
                &[
                    &id,
                    &fields.name(),
                    &fields.description(),
                    &fields.terms(),
                    &discount,
                    &rules.total_limit(),
                    &rules.per_consumer_limit(),
                    &rules.claim_starts_at(),
                    &rules.claim_ends_at(),
                    &rules.use_starts_at(),
                    &rules.use_ends_at(),
                    &rules.valid_for_seconds(),
                    &rules.uses_per_coupon(),
                    &rules.win_probability(),
                    &fields.signin().as_str(),
                    &code_length,
                    &codes.prefix(),
                    &codes.charset().as_str(),
                    &image_id,
                    &returned,
                    &status.as_str(),
                ],
            )
            .await?;
        let updated = record(&row)?;
        // The replaced image goes unless something else still shows it.
        if let Some(old) = current.image_id.filter(|old| Some(*old) != image_id) {
            tx.execute(
                "DELETE FROM images WHERE id = $1
                   AND NOT EXISTS (SELECT 1 FROM campaigns WHERE image_id = $1)
                   AND NOT EXISTS (SELECT 1 FROM tenants WHERE logo_image_id = $1)",
                &[&old],
            )
            .await?;
        }
        ended_event(&tx, &current, &updated, counts.issued).await?;
        tx.commit().await?;
        let counts = CampaignStats {
            remaining: (updated.rules.total_limit() - counts.issued).max(0),
            ..counts
        };
        Ok(EditOutcome::Updated(Box::new(updated), counts))
    }

    /// The tenant's stores, for per-store poster QR codes.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn poster_stores(&self, tenant_id: Uuid) -> Result<Vec<PosterStore>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT code, name FROM stores WHERE tenant_id = $1 ORDER BY code LIMIT 500",
                &[&tenant_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PosterStore {
                code: r.get(0),
                name: r.get(1),
            })
            .collect())
    }

    /// Whether the tenant has a store with this code (another tenant's does not count).
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn poster_store_exists(
        &self,
        tenant_id: Uuid,
        code: &str,
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM stores WHERE tenant_id = $1 AND code = $2",
                &[&tenant_id, &code],
            )
            .await?;
        Ok(row.is_some())
    }
}
