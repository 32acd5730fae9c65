//! Tenants, merchant users and API keys.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::api_key::{NewApiKey, SCOPES_ALL};
use crate::domain::tenant::{hash_password, Email, GeneratedPassword, Role, TenantName};

/// What `tenant create` hands out once: the plaintext secrets are not stored anywhere.
pub struct CreatedTenant {
    pub tenant_id: Uuid,
    pub owner_email: String,
    pub owner_password: GeneratedPassword,
    pub api_key: String,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub scopes: Vec<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Creates a tenant with its owner and a first API key, in one transaction.
    pub async fn create_tenant(
        &self,
        name: &TenantName,
        owner: &Email,
    ) -> Result<CreatedTenant, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let created = insert_tenant(&tx, name, owner).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Creates the demo tenant if, and only if, the database has no tenant yet. Two nodes
    /// starting together serialise on a transaction-scoped advisory lock.
    pub async fn create_demo_tenant_if_empty(&self) -> Result<Option<CreatedTenant>, StoreError> {
        const DEMO_LOCK: i64 = 0x6563_6f75_706f_6e02;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DEMO_LOCK])
            .await?;
        let any: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM tenants)", &[])
            .await?
            .get(0);
        if any {
            return Ok(None);
        }
        let name =
            TenantName::parse("Demo Shop").map_err(|e| StoreError::Conflict(e.to_string()))?;
        let owner =
            Email::parse("owner@demo.example").map_err(|e| StoreError::Conflict(e.to_string()))?;
        let created = insert_tenant(&tx, &name, &owner).await?;
        tx.commit().await?;
        Ok(Some(created))
    }

    pub async fn find_api_key(&self, key_hash: &[u8]) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT k.id, k.tenant_id, t.name, k.scopes, k.revoked_at
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
        }))
    }

    /// Records use at minute granularity, so a hot key does not write on every request.
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
    name: &TenantName,
    owner: &Email,
) -> Result<CreatedTenant, StoreError> {
    let tenant_id = Uuid::new_v4();
    let password = GeneratedPassword::generate();
    let key = NewApiKey::generate();
    let scopes: Vec<String> = SCOPES_ALL.iter().map(|s| s.to_string()).collect();
    // Argon2 takes tens of milliseconds of CPU; keep it off the async workers.
    let plain = password.expose().to_string();
    let phc = tokio::task::spawn_blocking(move || hash_password(&plain))
        .await
        .map_err(|e| StoreError::Conflict(format!("password hashing failed: {e}")))?;
    tx.execute(
        "INSERT INTO tenants (id, name) VALUES ($1, $2)",
        &[&tenant_id, &name.as_str()],
    )
    .await?;
    tx.execute(
        "INSERT INTO merchant_users (id, tenant_id, email, role, password_hash) VALUES ($1, $2, $3, $4, $5)",
        &[&Uuid::new_v4(), &tenant_id, &owner.as_str(), &Role::Owner.as_str(), &phc],
    )
    .await?;
    tx.execute(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes) VALUES ($1, $2, 'default', $3, $4, $5)",
        &[&Uuid::new_v4(), &tenant_id, &key.prefix, &key.hash, &scopes],
    )
    .await?;
    Ok(CreatedTenant {
        tenant_id,
        owner_email: owner.as_str().to_string(),
        owner_password: password,
        api_key: key.plaintext,
    })
}
