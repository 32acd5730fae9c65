//! The audit trail of admin actions: who did what to what, from where, when. Every
//! console and CLI action that changes users, settings, campaigns or stores writes here,
//! through [`Store::audit`] only.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

pub struct AuditEntry<'a> {
    pub tenant_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    /// The actor's e-mail (or "cli", "api-key eck_…") at the time.
    pub actor: &'a str,
    /// Dotted, stable: `user.invite`, `campaign.update`, `settings.allowlist` …
    pub action: &'a str,
    pub target: &'a str,
    pub ip: &'a str,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    pub detail: serde_json::Value,
}

impl Store {
    #[tracing::instrument(level = "debug", skip_all, fields(action = e.action))]
    pub async fn audit(&self, e: AuditEntry<'_>) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO audit_log (tenant_id, actor_id, actor, action, target, ip, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &e.tenant_id,
                    &e.actor_id,
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.ip,
                    &e.detail,
                ],
            )
            .await?;
        Ok(())
    }

    /// The latest entries of a tenant, newest first.
    pub async fn recent_audit(
        &self,
        tenant_id: Uuid,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, at, actor, action, target, ip, detail FROM audit_log
                 WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
                &[&tenant_id, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRecord {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                target: r.get(4),
                ip: r.get(5),
                detail: r.get(6),
            })
            .collect())
    }
}
