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

/// One audit row as the chain sees it: every hashed field as the database renders it, so
/// `audit verify` can rebuild the canonical content outside the database.
#[derive(Debug, Clone)]
pub struct ChainRow {
    pub id: i64,
    pub seq: i64,
    pub tenant_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    /// `at` in UTC with microseconds, as in the SQL function `audit_canonical`.
    pub at: String,
    pub at_time: DateTime<Utc>,
    pub detail: String,
    pub salt: Option<String>,
    pub content_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub erased: bool,
}

impl ChainRow {
    /// The bytes `content_hash` is the SHA-256 of; mirrors `audit_canonical` in
    /// migrations/V12__audit_chain.sql field for field.
    pub fn canonical(&self) -> Vec<u8> {
        fn field(out: &mut String, value: Option<&str>) {
            match value {
                None => out.push('~'),
                Some(v) => {
                    out.push_str(&v.len().to_string());
                    out.push(':');
                    out.push_str(v);
                }
            }
        }
        let mut out = String::from("ecoupon-audit-v1|");
        let seq = self.seq.to_string();
        for value in [
            Some(seq.as_str()),
            self.tenant_id.as_deref(),
            self.actor_id.as_deref(),
            Some(&self.actor),
            Some(&self.action),
            Some(&self.target),
            Some(&self.ip),
            Some(&self.at),
            Some(&self.detail),
            self.salt.as_deref(),
        ] {
            field(&mut out, value);
        }
        out.into_bytes()
    }
}

/// What [`Store::walk_audit_chain`] shows, in order: one `Start`, then the rows.
pub enum ChainEvent {
    Start {
        head: ChainHead,
        checkpoints: Vec<Checkpoint>,
    },
    Row(Box<ChainRow>),
}

/// The row the next insert links to.
#[derive(Debug, Clone)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// A signed record of where retention cut the chain.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: DateTime<Utc>,
    pub erased_cut: i64,
    pub declared_cut: i64,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What a retention cut would remove: everything up to `seq`, with its totals.
#[derive(Debug, Clone)]
pub struct AuditCut {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: DateTime<Utc>,
    pub rows: i64,
    pub erased: i64,
    pub declared: i64,
}

const CHAIN_COLUMNS: &str = "id, seq, tenant_id::text, actor_id::text, actor, action, target, ip,
    to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), at, detail::text,
    encode(salt, 'hex'), content_hash, hash, erased_at IS NOT NULL";

fn chain_row(r: &tokio_postgres::Row) -> ChainRow {
    ChainRow {
        id: r.get(0),
        seq: r.get(1),
        tenant_id: r.get(2),
        actor_id: r.get(3),
        actor: r.get(4),
        action: r.get(5),
        target: r.get(6),
        ip: r.get(7),
        at: r.get(8),
        at_time: r.get(9),
        detail: r.get(10),
        salt: r.get(11),
        content_hash: r.get(12),
        hash: r.get(13),
        erased: r.get(14),
    }
}

fn checkpoint(r: &tokio_postgres::Row) -> Checkpoint {
    Checkpoint {
        seq: r.get(0),
        hash: r.get(1),
        at: r.get(2),
        erased_cut: r.get(3),
        declared_cut: r.get(4),
        public_key: r.get(5),
        signature: r.get(6),
    }
}

/// How many erasures a `tenant.purge` entry declares (0 for anything else).
pub fn declared_erasures(action: &str, detail: &serde_json::Value) -> i64 {
    if action != PURGE_ACTION {
        return 0;
    }
    detail["audit_entries_erased"].as_i64().unwrap_or(0)
}

/// The action of the entry a tenant purge writes; its detail declares the erasures.
pub const PURGE_ACTION: &str = "tenant.purge";

impl Store {
    /// Calls `visit` first with the chain head and the checkpoints, then with every row in
    /// chain order (streamed: the log may be long), all from one snapshot so a concurrent
    /// insert cannot look like a broken chain. Stops early when `visit` returns false.
    pub async fn walk_audit_chain(
        &self,
        mut visit: impl FnMut(ChainEvent) -> bool,
    ) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let head = tx
            .query_one("SELECT seq, hash FROM audit_chain_head", &[])
            .await?;
        let head = ChainHead {
            seq: head.get(0),
            hash: head.get(1),
        };
        let checkpoints = tx
            .query(
                "SELECT seq, hash, at, erased_cut, declared_cut, public_key, signature
                 FROM audit_checkpoints ORDER BY seq",
                &[],
            )
            .await?
            .iter()
            .map(checkpoint)
            .collect();
        if !visit(ChainEvent::Start { head, checkpoints }) {
            return Ok(());
        }
        let sql = format!("SELECT {CHAIN_COLUMNS} FROM audit_log ORDER BY seq");
        let rows = tx
            .query_raw(
                &sql,
                std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
            )
            .await?;
        futures_util::pin_mut!(rows);
        while let Some(row) = rows.next().await {
            if !visit(ChainEvent::Row(Box::new(chain_row(&row?)))) {
                break;
            }
        }
        Ok(())
    }

    /// Every checkpoint, oldest first.
    pub async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq, hash, at, erased_cut, declared_cut, public_key, signature
                 FROM audit_checkpoints ORDER BY seq",
                &[],
            )
            .await?;
        Ok(rows.iter().map(checkpoint).collect())
    }

    /// The prefix of the chain older than `before`, if any: where a retention cut would go.
    pub async fn audit_cut(&self, before: DateTime<Utc>) -> Result<Option<AuditCut>, StoreError> {
        let client = self.pool.get().await?;
        let Some(last) = client
            .query_opt(
                "SELECT seq, hash, at FROM audit_log WHERE at < $1 ORDER BY seq DESC LIMIT 1",
                &[&before],
            )
            .await?
        else {
            return Ok(None);
        };
        let seq: i64 = last.get(0);
        let totals = client
            .query_one(
                "SELECT count(*),
                        count(*) FILTER (WHERE erased_at IS NOT NULL),
                        coalesce(sum(CASE WHEN action = $2
                                          THEN (detail->>'audit_entries_erased')::bigint END), 0)::bigint
                 FROM audit_log WHERE seq <= $1",
                &[&seq, &PURGE_ACTION],
            )
            .await?;
        Ok(Some(AuditCut {
            seq,
            hash: last.get(1),
            at: last.get(2),
            rows: totals.get(0),
            erased: totals.get(1),
            declared: totals.get(2),
        }))
    }

    /// Stores `checkpoint` and deletes every row it covers, in one transaction, so a
    /// verify never sees rows cut without their checkpoint (or the reverse).
    pub async fn cut_audit_log(&self, checkpoint: &Checkpoint) -> Result<u64, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO audit_checkpoints
                 (seq, hash, at, erased_cut, declared_cut, public_key, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &checkpoint.seq,
                &checkpoint.hash,
                &checkpoint.at,
                &checkpoint.erased_cut,
                &checkpoint.declared_cut,
                &checkpoint.public_key,
                &checkpoint.signature,
            ],
        )
        .await?;
        tx.batch_execute("SET LOCAL ecoupon.audit_retention = 'on'")
            .await?;
        let deleted = tx
            .execute("DELETE FROM audit_log WHERE seq <= $1", &[&checkpoint.seq])
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
