//! The TOTP second factor's state, for merchant users and operators alike: the secret
//! (enrolled, then enabled once a code matched) and the last step accepted, so a code
//! works once. One set of queries for both tables.

use uuid::Uuid;

use super::{Store, StoreError};

/// Whose second factor.
#[derive(Debug, Clone, Copy)]
pub enum TotpOwner {
    MerchantUser(Uuid),
    Operator(Uuid),
}

impl TotpOwner {
    /// The statements for this owner's table. Only these fixed strings are ever chosen;
    /// the id is always a parameter.
    fn sql(self) -> (&'static TotpSql, Uuid) {
        match self {
            TotpOwner::MerchantUser(id) => (&MERCHANT_USERS, id),
            TotpOwner::Operator(id) => (&OPERATORS, id),
        }
    }
}

struct TotpSql {
    state: &'static str,
    use_step: &'static str,
    set: &'static str,
}

macro_rules! totp_sql {
    ($table:literal) => {
        TotpSql {
            state: concat!(
                "SELECT totp_secret, totp_last_step FROM ",
                $table,
                " WHERE id = $1"
            ),
            use_step: concat!(
                "UPDATE ",
                $table,
                " SET totp_last_step = $2
                 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)"
            ),
            set: concat!(
                "UPDATE ",
                $table,
                " SET totp_secret = $2, totp_enabled = $3 WHERE id = $1"
            ),
        }
    };
}

const MERCHANT_USERS: TotpSql = totp_sql!("merchant_users");
const OPERATORS: TotpSql = totp_sql!("operators");

impl Store {
    /// Records `step` as used only if it is later than the last one accepted: false means
    /// the code was already used (or is older), so a code works once even when two nodes
    /// see it at the same moment.
    pub async fn use_totp_step(&self, owner: TotpOwner, step: i64) -> Result<bool, StoreError> {
        let (sql, id) = owner.sql();
        let client = self.pool.get().await?;
        let n = client.execute(sql.use_step, &[&id, &step]).await?;
        Ok(n == 1)
    }

    /// Stores a secret (`enabled` false while enrolling) or, with None, removes the factor.
    pub async fn set_totp(
        &self,
        owner: TotpOwner,
        secret: Option<&[u8]>,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let (sql, id) = owner.sql();
        let client = self.pool.get().await?;
        client
            .execute(sql.set, &[&id, &secret, &(enabled && secret.is_some())])
            .await?;
        Ok(())
    }

    /// The TOTP secret and last accepted step (for enrolment and sign-in).
    pub async fn totp_state(
        &self,
        owner: TotpOwner,
    ) -> Result<(Option<Vec<u8>>, Option<i64>), StoreError> {
        let (sql, id) = owner.sql();
        let client = self.pool.get().await?;
        let row = client.query_one(sql.state, &[&id]).await?;
        Ok((row.get(0), row.get(1)))
    }
}
