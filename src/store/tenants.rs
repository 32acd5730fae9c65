//! Tenants, merchant users and API keys.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::api_key::SCOPES_KNOWN;
use crate::domain::merchant::{IpAllowList, Role};
use crate::domain::tenant::NewTenant;

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub scopes: Vec<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The tenant's IP allow-list, read with the key so that checking it costs nothing
    /// more (and is cached with the key).
    pub ip_allowlist: IpAllowList,
}

impl Store {
    /// Creates a tenant with its owner and a first API key, in one transaction.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant.id))]
    pub async fn insert_tenant(&self, tenant: &NewTenant) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        insert_tenant(&tx, tenant).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates `tenant` if, and only if, the database has no tenant yet (the demo on a
    /// first start). Two nodes starting together serialise on a transaction-scoped
    /// advisory lock. Returns whether it was created.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %tenant.id))]
    pub async fn insert_tenant_if_none(&self, tenant: &NewTenant) -> Result<bool, StoreError> {
        const FIRST_TENANT_LOCK: i64 = 0x6563_6f75_706f_6e02;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FIRST_TENANT_LOCK])
            .await?;
        let any: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM tenants)", &[])
            .await?
            .get(0);
        if any {
            return Ok(false);
        }
        insert_tenant(&tx, tenant).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn tenant_exists(&self, tenant_id: Uuid) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)",
                &[&tenant_id],
            )
            .await?;
        Ok(row.get(0))
    }

    pub async fn find_api_key(&self, key_hash: &[u8]) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT k.id, k.tenant_id, t.name, k.scopes, k.revoked_at, t.ip_allowlist
                 FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
                 WHERE k.key_hash = $1",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&key_hash]).await?;
        Ok(row.map(|r| ApiKeyRecord {
            key_id: r.get(0),
            tenant_id: r.get(1),
            tenant_name: r.get(2),
            scopes: r.get(3),
            revoked_at: r.get(4),
            ip_allowlist: IpAllowList::from_stored(&r.get::<_, Vec<String>>(5)),
        }))
    }

    /// Records use at minute granularity, so a hot key does not write on every request.
    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %key_id))]
    pub async fn touch_api_key(&self, key_id: Uuid) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE api_keys SET last_used_at = now()
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            )
            .await?;
        client.execute(&stmt, &[&key_id]).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, key_id = %key_id))]
    pub async fn revoke_api_key(&self, tenant_id: Uuid, key_id: Uuid) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
                &[&key_id, &tenant_id],
            )
            .await?;
        Ok(n == 1)
    }
}

async fn insert_tenant(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: &NewTenant,
) -> Result<(), StoreError> {
    let scopes: Vec<String> = SCOPES_KNOWN.iter().map(|s| s.to_string()).collect();
    tx.execute(
        "INSERT INTO tenants (id, name) VALUES ($1, $2)",
        &[&tenant.id, &tenant.name.as_str()],
    )
    .await?;
    tx.execute(
        // A generated password was printed somewhere: the owner must replace it at first sign-in.
        "INSERT INTO merchant_users (id, tenant_id, email, role, password_hash, must_change_password)
         VALUES ($1, $2, $3, $4, $5, true)",
        &[&Uuid::new_v4(), &tenant.id, &tenant.owner.as_str(), &Role::Owner.as_str(), &tenant.owner_password_hash],
    )
    .await?;
    tx.execute(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes) VALUES ($1, $2, 'default', $3, $4, $5)",
        &[&Uuid::new_v4(), &tenant.id, &tenant.api_key.prefix, &tenant.api_key.hash, &scopes],
    )
    .await?;
    Ok(())
}
