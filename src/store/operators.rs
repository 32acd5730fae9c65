//! Operator accounts (see migrations/V14__operators.sql).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct Operator {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub status: String,
    pub approved_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub totp_enabled: bool,
}

const COLUMNS: &str = "o.id, o.email, o.password_hash, o.status,
    (SELECT a.email FROM operators a WHERE a.id = o.approved_by), o.created_at, o.totp_enabled";

/// For the console's list: who asked, and when they last signed in.
#[derive(Debug, Clone)]
pub struct OperatorListing {
    pub operator: Operator,
    pub requested_by: String,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

fn operator(r: &tokio_postgres::Row) -> Operator {
    Operator {
        id: r.get(0),
        email: r.get(1),
        password_hash: r.get(2),
        status: r.get(3),
        approved_by: r.get(4),
        created_at: r.get(5),
        totp_enabled: r.get(6),
    }
}

impl Store {
    pub async fn operator_by_email(&self, email: &str) -> Result<Option<Operator>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM operators o WHERE lower(o.email) = lower($1)"),
                &[&email],
            )
            .await?
            .map(|r| operator(&r)))
    }

    pub async fn operators(&self) -> Result<Vec<Operator>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                &format!("SELECT {COLUMNS} FROM operators o ORDER BY o.created_at"),
                &[],
            )
            .await?
            .iter()
            .map(operator)
            .collect())
    }

    pub async fn operator_listing(&self) -> Result<Vec<OperatorListing>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                &format!(
                    "SELECT {COLUMNS}, o.requested_by, o.last_sign_in_at
                     FROM operators o ORDER BY o.status = 'pending' DESC, o.created_at"
                ),
                &[],
            )
            .await?
            .iter()
            .map(|r| OperatorListing {
                operator: operator(r),
                requested_by: r.get(7),
                last_sign_in_at: r.get(8),
            })
            .collect())
    }

    /// Inserts a pending operator, or, with `bootstrap`, the first one as active: refused
    /// (false) when any operator exists already. The table lock makes two bootstraps at
    /// once impossible.
    pub async fn insert_operator(
        &self,
        email: &str,
        password_hash: &str,
        requested_by: &str,
        bootstrap: bool,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE operators IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        if bootstrap {
            let n: i64 = tx
                .query_one("SELECT count(*) FROM operators", &[])
                .await?
                .get(0);
            if n > 0 {
                return Ok(None);
            }
        }
        let id = Uuid::new_v4();
        let status = if bootstrap { "active" } else { "pending" };
        let inserted = tx
            .execute(
                "INSERT INTO operators (id, email, password_hash, status, requested_by)
                 SELECT $1, $2, $3, $4, $5
                 WHERE NOT EXISTS (SELECT 1 FROM operators WHERE lower(email) = lower($2))",
                &[&id, &email, &password_hash, &status, &requested_by],
            )
            .await?;
        tx.commit().await?;
        Ok((inserted == 1).then_some(id))
    }

    /// Approves a pending operator; false if it was not pending (or approver == target).
    pub async fn approve_operator(&self, id: Uuid, approver: Uuid) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE operators SET status = 'active', approved_by = $2, approved_at = now()
                 WHERE id = $1 AND status = 'pending' AND id <> $2
                   AND EXISTS (SELECT 1 FROM operators WHERE id = $2 AND status = 'active')",
                &[&id, &approver],
            )
            .await?;
        Ok(n == 1)
    }

    /// Disables an operator and ends every console session of theirs, in one transaction:
    /// their next request is already signed out.
    pub async fn disable_operator(&self, id: Uuid) -> Result<bool, StoreError> {
        self.change_ending_sessions(
            "UPDATE operators SET status = 'disabled', disabled_at = now()
             WHERE id = $1 AND status <> 'disabled'",
            id,
            &[],
        )
        .await
    }

    /// Runs `update` (on operator `$1`, with `more` as `$2`…) and deletes the operator's
    /// sessions in the same transaction, so their next request is signed out. True when
    /// the update changed the row.
    async fn change_ending_sessions(
        &self,
        update: &str,
        id: Uuid,
        more: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&id];
        params.extend_from_slice(more);
        let n = tx.execute(update, &params).await?;
        tx.execute(
            "DELETE FROM operator_sessions WHERE operator_id = $1",
            &[&id],
        )
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn operator_by_id(&self, id: Uuid) -> Result<Option<Operator>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM operators o WHERE o.id = $1"),
                &[&id],
            )
            .await?
            .map(|r| operator(&r)))
    }

    /// Until when an operator must wait before their next sign-in is even checked.
    pub async fn operator_blocked_until(
        &self,
        id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt(
                "SELECT sign_in_blocked_until FROM operators WHERE id = $1",
                &[&id],
            )
            .await?
            .and_then(|r| r.get(0)))
    }

    /// Counts a failed sign-in; past a few, the account waits 2, 4, 8 … seconds (at most
    /// 15 minutes), as merchant users do.
    pub async fn record_operator_sign_in_failure(&self, id: Uuid) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE operators SET failed_sign_ins = failed_sign_ins + 1,
                    sign_in_blocked_until = CASE WHEN failed_sign_ins + 1 >= $2::int
                        THEN now() + make_interval(secs => least($3::float8,
                            power(2::float8, failed_sign_ins + 2 - $2::int)))
                        ELSE NULL END
                 WHERE id = $1",
                &[&id, &FREE_FAILURES, &MAX_BLOCK_SECONDS],
            )
            .await?;
        Ok(())
    }

    pub async fn record_operator_sign_in_success(&self, id: Uuid) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE operators SET failed_sign_ins = 0, sign_in_blocked_until = NULL,
                    last_sign_in_at = now() WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(())
    }

    pub async fn create_operator_session(
        &self,
        s: NewOperatorSession<'_>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO operator_sessions (id_hash, operator_id, csrf, expires_at, ip, user_agent, mfa_pending)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                 WHERE EXISTS (SELECT 1 FROM operators WHERE id = $2 AND status = 'active')",
                &[&s.id_hash, &s.operator_id, &s.csrf, &s.expires_at, &s.ip, &s.user_agent, &s.mfa_pending],
            )
            .await?;
        client
            .execute(
                "DELETE FROM operator_sessions WHERE id_hash IN
                    (SELECT id_hash FROM operator_sessions WHERE expires_at < now() LIMIT 100)",
                &[],
            )
            .await?;
        Ok(())
    }

    /// The live session with this id, only while its operator is active. Notes the visit at
    /// most once a minute.
    pub async fn operator_session(
        &self,
        id_hash: &[u8],
    ) -> Result<Option<OperatorSession>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS}, s.csrf, s.last_seen_at, s.mfa_pending
                 FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
                 WHERE s.id_hash = $1 AND s.expires_at > now() AND o.status = 'active'"
            ))
            .await?;
        let Some(r) = client.query_opt(&stmt, &[&id_hash]).await? else {
            return Ok(None);
        };
        let session = OperatorSession {
            operator: operator(&r),
            csrf: r.get(7),
            last_seen_at: r.get(8),
            mfa_pending: r.get(9),
        };
        if Utc::now() - session.last_seen_at > chrono::TimeDelta::seconds(60) {
            client
                .execute(
                    "UPDATE operator_sessions SET last_seen_at = now() WHERE id_hash = $1",
                    &[&id_hash],
                )
                .await?;
        }
        Ok(Some(session))
    }

    /// Sets a new password hash; every session of the operator ends with it.
    pub async fn set_operator_password(
        &self,
        id: Uuid,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.change_ending_sessions(
            "UPDATE operators SET password_hash = $2, failed_sign_ins = 0,
                sign_in_blocked_until = NULL WHERE id = $1",
            id,
            &[&password_hash],
        )
        .await?;
        Ok(())
    }

    /// Removes an operator's second factor (a lost phone) and ends their sessions, in one
    /// transaction. False when there is no such operator.
    pub async fn reset_operator_totp(&self, id: Uuid) -> Result<bool, StoreError> {
        self.change_ending_sessions(
            "UPDATE operators SET totp_secret = NULL, totp_enabled = false WHERE id = $1",
            id,
            &[],
        )
        .await
    }

    pub async fn delete_operator_session(&self, id_hash: &[u8]) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM operator_sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await?;
        Ok(())
    }
}

/// Failed sign-ins before the account starts waiting, and the longest wait.
const FREE_FAILURES: i32 = 5;
const MAX_BLOCK_SECONDS: f64 = 900.0;

pub struct NewOperatorSession<'a> {
    pub id_hash: &'a [u8],
    pub operator_id: Uuid,
    pub csrf: &'a str,
    pub expires_at: DateTime<Utc>,
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// Password given, TOTP code not yet: the session opens no page but the code form.
    pub mfa_pending: bool,
}

/// A signed-in operator's session.
pub struct OperatorSession {
    pub operator: Operator,
    pub csrf: String,
    pub last_seen_at: DateTime<Utc>,
    pub mfa_pending: bool,
}
