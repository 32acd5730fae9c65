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
}

const COLUMNS: &str = "o.id, o.email, o.password_hash, o.status,
    (SELECT a.email FROM operators a WHERE a.id = o.approved_by), o.created_at";

fn operator(r: &tokio_postgres::Row) -> Operator {
    Operator {
        id: r.get(0),
        email: r.get(1),
        password_hash: r.get(2),
        status: r.get(3),
        approved_by: r.get(4),
        created_at: r.get(5),
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

    pub async fn disable_operator(&self, id: Uuid) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE operators SET status = 'disabled', disabled_at = now()
                 WHERE id = $1 AND status <> 'disabled'",
                &[&id],
            )
            .await?;
        Ok(n == 1)
    }
}
