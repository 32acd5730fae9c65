//! A tenant's settings as the console's settings page reads and writes them: theme,
//! logo, check codes, MFA, accepted sign-in providers and the IP allow-list.

use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::merchant::IpAllowList;

#[derive(Debug, Clone)]
pub struct TenantSettings {
    pub brand_color: String,
    pub accent_color: String,
    pub logo_image_id: Option<Uuid>,
    /// Empty accepts every configured provider.
    pub signin_providers: Vec<String>,
    pub require_check_code: bool,
    pub require_mfa: bool,
    pub ip_allowlist: IpAllowList,
}

/// Everything the settings form sends, already checked. Colours are `#rrggbb`.
pub struct SettingsUpdate<'a> {
    pub brand_color: &'a str,
    pub accent_color: &'a str,
    /// A new logo (content type, bytes, sniffed already); None keeps the current one.
    pub logo: Option<(&'a str, &'a [u8])>,
    pub signin_providers: &'a [String],
    pub require_check_code: bool,
    pub require_mfa: bool,
    pub ip_allowlist: &'a IpAllowList,
}

impl Store {
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn tenant_settings(
        &self,
        tenant_id: Uuid,
    ) -> Result<Option<TenantSettings>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT brand_color, accent_color, logo_image_id, signin_providers,
                        require_check_code, require_mfa, ip_allowlist
                 FROM tenants WHERE id = $1",
                &[&tenant_id],
            )
            .await?;
        Ok(row.map(|r| TenantSettings {
            brand_color: r.get(0),
            accent_color: r.get(1),
            logo_image_id: r.get(2),
            signin_providers: r.get(3),
            require_check_code: r.get(4),
            require_mfa: r.get(5),
            ip_allowlist: IpAllowList::from_stored(&r.get::<_, Vec<String>>(6)),
        }))
    }

    /// Saves the whole form in one transaction, the new logo included: a failure leaves
    /// every setting as it was. Returns the new logo's id, if one was stored.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn save_tenant_settings(
        &self,
        tenant_id: Uuid,
        update: &SettingsUpdate<'_>,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let old_logo: Option<Uuid> = match update.logo {
            Some(_) => tx
                .query_opt(
                    "SELECT logo_image_id FROM tenants WHERE id = $1 FOR UPDATE",
                    &[&tenant_id],
                )
                .await?
                .and_then(|r| r.get(0)),
            None => None,
        };
        let logo = match update.logo {
            Some((content_type, bytes)) => {
                let id = Uuid::new_v4();
                tx.execute(
                    "INSERT INTO images (id, tenant_id, content_type, bytes) VALUES ($1, $2, $3, $4)",
                    &[&id, &tenant_id, &content_type, &bytes],
                )
                .await?;
                Some(id)
            }
            None => None,
        };
        let allowlist = update.ip_allowlist.entries();
        let n = tx
            .execute(
                "UPDATE tenants SET brand_color = $2, accent_color = $3,
                        logo_image_id = coalesce($4, logo_image_id), signin_providers = $5,
                        require_check_code = $6, require_mfa = $7, ip_allowlist = $8
                 WHERE id = $1",
                &[
                    &tenant_id,
                    &update.brand_color,
                    &update.accent_color,
                    &logo,
                    &update.signin_providers,
                    &update.require_check_code,
                    &update.require_mfa,
                    &allowlist,
                ],
            )
            .await?;
        if n != 1 {
            return Err(StoreError::Conflict(format!("tenant {tenant_id} is gone")));
        }
        super::images::delete_unused_image(&tx, old_logo).await?;
        tx.commit().await?;
        Ok(logo)
    }
}
