//! API keys as the `key` CLI manages them: create, list, revoke by visible prefix.
//! (Looking a presented key up is `tenants.rs`, on the request path.)

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

/// A key as listed: never its secret, which is not stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKeyListing {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What `revoke_api_key_by_prefix` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixRevoke {
    Revoked(Uuid),
    AlreadyRevoked(Uuid),
    NotFound,
}

impl Store {
    /// Stores a new key for an existing tenant; `None` when there is no such tenant.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn insert_api_key(
        &self,
        tenant_id: Uuid,
        name: &str,
        prefix: &str,
        key_hash: &[u8],
        scopes: &[String],
    ) -> Result<Option<Uuid>, StoreError> {
        let client = self.pool.get().await?;
        let id = Uuid::new_v4();
        let n = client
            .execute(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes)
                 SELECT $1, t.id, $3, $4, $5, $6 FROM tenants t WHERE t.id = $2",
                &[&id, &tenant_id, &name, &prefix, &key_hash, &scopes],
            )
            .await?;
        Ok((n == 1).then_some(id))
    }

    /// Every key, or one tenant's, oldest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_api_keys(
        &self,
        tenant_id: Option<Uuid>,
    ) -> Result<Vec<ApiKeyListing>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, tenant_id, prefix, name, scopes, created_at, last_used_at, revoked_at
                 FROM api_keys WHERE $1::uuid IS NULL OR tenant_id = $1
                 ORDER BY created_at, prefix",
                &[&tenant_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ApiKeyListing {
                id: r.get(0),
                tenant_id: r.get(1),
                prefix: r.get(2),
                name: r.get(3),
                scopes: r.get(4),
                created_at: r.get(5),
                last_used_at: r.get(6),
                revoked_at: r.get(7),
            })
            .collect())
    }

    /// Revokes the key with this visible prefix. Prefixes carry 8 random characters, so
    /// two keys sharing one is not expected; should it happen, both are revoked rather
    /// than leaving one working that the operator meant to stop.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn revoke_api_key_by_prefix(&self, prefix: &str) -> Result<PrefixRevoke, StoreError> {
        let client = self.pool.get().await?;
        let revoked = client
            .query(
                "UPDATE api_keys SET revoked_at = now()
                 WHERE prefix = $1 AND revoked_at IS NULL RETURNING id",
                &[&prefix],
            )
            .await?;
        if let Some(row) = revoked.first() {
            return Ok(PrefixRevoke::Revoked(row.get(0)));
        }
        let existing = client
            .query_opt(
                "SELECT id FROM api_keys WHERE prefix = $1 LIMIT 1",
                &[&prefix],
            )
            .await?;
        Ok(match existing {
            Some(row) => PrefixRevoke::AlreadyRevoked(row.get(0)),
            None => PrefixRevoke::NotFound,
        })
    }
}

/// What revoking one of a tenant's keys found.
#[derive(Debug, Clone)]
pub enum KeyRevoke {
    Revoked(ApiKeyListing),
    AlreadyRevoked,
    NotFound,
}

impl Store {
    /// Revokes one of `tenant_id`'s keys by id (the API's `DELETE /api/v1/keys/{id}`).
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn revoke_tenant_api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
    ) -> Result<KeyRevoke, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "WITH k AS (SELECT id, revoked_at FROM api_keys WHERE id = $1 AND tenant_id = $2),
                      u AS (UPDATE api_keys a SET revoked_at = now() FROM k
                            WHERE a.id = k.id AND k.revoked_at IS NULL
                            RETURNING a.id, a.tenant_id, a.prefix, a.name, a.scopes, a.created_at,
                                      a.last_used_at, a.revoked_at)
                 SELECT (SELECT count(*) FROM k), u.* FROM (SELECT 1) one LEFT JOIN u ON true",
            )
            .await?;
        let row = client.query_one(&stmt, &[&key_id, &tenant_id]).await?;
        let found: i64 = row.get(0);
        let revoked: Option<Uuid> = row.get(1);
        Ok(match (found, revoked) {
            (0, _) => KeyRevoke::NotFound,
            (_, None) => KeyRevoke::AlreadyRevoked,
            (_, Some(id)) => KeyRevoke::Revoked(ApiKeyListing {
                id,
                tenant_id: row.get(2),
                prefix: row.get(3),
                name: row.get(4),
                scopes: row.get(5),
                created_at: row.get(6),
                last_used_at: row.get(7),
                revoked_at: row.get(8),
            }),
        })
    }
}
