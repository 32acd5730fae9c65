//! Uploaded images and merchant settings.

use uuid::Uuid;

use super::{Store, StoreError};

impl Store {
    /// Stores an image (already checked by content) for a tenant.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, bytes = bytes.len()))]
    pub async fn insert_image(
        &self,
        tenant_id: Uuid,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<Uuid, StoreError> {
        let client = self.pool.get().await?;
        let id = Uuid::new_v4();
        client
            .execute(
                "INSERT INTO images (id, tenant_id, content_type, bytes) VALUES ($1, $2, $3, $4)",
                &[&id, &tenant_id, &content_type, &bytes],
            )
            .await?;
        Ok(id)
    }

    /// (content type, bytes)
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub async fn image(&self, id: Uuid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT content_type, bytes FROM images WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Points a tenant's campaign at an image and deletes the one it replaces (unless
    /// something else still shows it). Returns the deleted image's id.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, campaign_id = %campaign_id))]
    pub async fn set_campaign_image(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        image_id: Uuid,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let old: Option<Uuid> = tx
            .query_opt(
                "SELECT image_id FROM campaigns WHERE id = $2 AND tenant_id = $1 FOR UPDATE",
                &[&tenant_id, &campaign_id],
            )
            .await?
            .and_then(|r| r.get(0));
        tx.execute(
            "UPDATE campaigns SET image_id = $3, updated_at = now() WHERE id = $2 AND tenant_id = $1",
            &[&tenant_id, &campaign_id, &image_id],
        )
        .await?;
        let deleted = delete_unused_image(&tx, old.filter(|o| *o != image_id)).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Sets the tenant's logo and deletes the one it replaces (unless something else still
    /// shows it). Returns the deleted image's id.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn set_tenant_logo(
        &self,
        tenant_id: Uuid,
        image_id: Uuid,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let old: Option<Uuid> = tx
            .query_opt(
                "SELECT logo_image_id FROM tenants WHERE id = $1 FOR UPDATE",
                &[&tenant_id],
            )
            .await?
            .and_then(|r| r.get(0));
        tx.execute(
            "UPDATE tenants SET logo_image_id = $2 WHERE id = $1",
            &[&tenant_id, &image_id],
        )
        .await?;
        let deleted = delete_unused_image(&tx, old.filter(|o| *o != image_id)).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Changes the given settings; None leaves one as it is.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn update_tenant_settings(
        &self,
        tenant_id: Uuid,
        brand_color: Option<&str>,
        accent_color: Option<&str>,
        signin_providers: Option<&[String]>,
        require_check_code: Option<bool>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        // One statement: a PATCH changes all it names or nothing.
        client
            .execute(
                "UPDATE tenants SET brand_color = coalesce($2, brand_color),
                                    accent_color = coalesce($3, accent_color),
                                    signin_providers = coalesce($4, signin_providers),
                                    require_check_code = coalesce($5, require_check_code)
                 WHERE id = $1",
                &[
                    &tenant_id,
                    &brand_color,
                    &accent_color,
                    &signin_providers,
                    &require_check_code,
                ],
            )
            .await?;
        Ok(())
    }
}

/// Deletes a replaced image unless a campaign or a tenant still shows it: Some(id) when
/// it was deleted.
pub(super) async fn delete_unused_image(
    tx: &deadpool_postgres::Transaction<'_>,
    old: Option<Uuid>,
) -> Result<Option<Uuid>, StoreError> {
    let Some(old) = old else {
        return Ok(None);
    };
    let n = tx
        .execute(
            "DELETE FROM images WHERE id = $1
               AND NOT EXISTS (SELECT 1 FROM campaigns WHERE image_id = $1)
               AND NOT EXISTS (SELECT 1 FROM tenants WHERE logo_image_id = $1)",
            &[&old],
        )
        .await?;
    Ok((n == 1).then_some(old))
}
