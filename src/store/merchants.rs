//! Merchant users, their console sessions and invitations.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::merchant::{IpAllowList, Role};

/// A merchant user as the console sees them, with the tenant settings every request needs.
#[derive(Debug, Clone)]
pub struct MerchantUser {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub must_change_password: bool,
    pub totp_enabled: bool,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub tenant_require_mfa: bool,
    pub tenant_allowlist: IpAllowList,
}

const USER_COLUMNS: &str = "u.id, u.tenant_id, t.name, u.email, u.role, u.disabled, \
    u.must_change_password, u.totp_enabled, u.last_sign_in_at, u.created_at, t.require_mfa, t.ip_allowlist";

fn user(r: &tokio_postgres::Row) -> Result<MerchantUser, StoreError> {
    let role: &str = r.get(4);
    let allowlist: Vec<String> = r.get(11);
    Ok(MerchantUser {
        id: r.get(0),
        tenant_id: r.get(1),
        tenant_name: r.get(2),
        email: r.get(3),
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("merchant user role {role:?}")))?,
        disabled: r.get(5),
        must_change_password: r.get(6),
        totp_enabled: r.get(7),
        last_sign_in_at: r.get(8),
        created_at: r.get(9),
        tenant_require_mfa: r.get(10),
        tenant_allowlist: IpAllowList::from_stored(&allowlist),
    })
}

/// What checking a sign-in needs beyond the user.
#[derive(Debug, Clone)]
pub struct SignInCandidate {
    pub user: MerchantUser,
    pub password_hash: String,
    pub blocked_until: Option<DateTime<Utc>>,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
}

/// A console session found by its id.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: MerchantUser,
    pub csrf: String,
    pub mfa_pending: bool,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub struct NewSession<'a> {
    pub id_hash: &'a [u8],
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub csrf: &'a str,
    pub mfa_pending: bool,
    pub expires_at: DateTime<Utc>,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

#[derive(Debug, Clone)]
pub struct InviteRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// Why a change to a user was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Done,
    NotFound,
    /// It would leave the tenant without an active owner.
    LastOwner,
}

/// Failed sign-ins before the account starts waiting, and the longest wait.
const FREE_FAILURES: i32 = 5;
const MAX_BLOCK_SECONDS: f64 = 900.0;

impl Store {
    /// Users with this e-mail (sign-in is by e-mail; the same address may exist in a few
    /// tenants created before addresses were kept unique).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn sign_in_candidates(
        &self,
        email: &str,
    ) -> Result<Vec<SignInCandidate>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {USER_COLUMNS}, u.password_hash, u.sign_in_blocked_until, u.totp_secret, u.totp_last_step
             FROM merchant_users u JOIN tenants t ON t.id = u.tenant_id
             WHERE lower(u.email) = lower($1) ORDER BY u.created_at LIMIT 5"
        );
        let rows = client.query(&sql, &[&email]).await?;
        rows.iter()
            .map(|r| {
                Ok(SignInCandidate {
                    user: user(r)?,
                    password_hash: r.get(12),
                    blocked_until: r.get(13),
                    totp_secret: r.get(14),
                    totp_last_step: r.get(15),
                })
            })
            .collect()
    }

    /// Counts a failed sign-in; past a few, the account waits 2, 4, 8 … seconds (at most
    /// 15 minutes) before the next try is even checked. Shared by every node.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
    pub async fn record_sign_in_failure(&self, user_id: Uuid) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE merchant_users SET failed_sign_ins = failed_sign_ins + 1,
                    sign_in_blocked_until = CASE WHEN failed_sign_ins + 1 >= $2::int
                        THEN now() + make_interval(secs => least($3::float8,
                            power(2::float8, failed_sign_ins + 2 - $2::int)))
                        ELSE NULL END
                 WHERE id = $1",
                &[&user_id, &FREE_FAILURES, &MAX_BLOCK_SECONDS],
            )
            .await?;
        Ok(())
    }

    /// Until when the user must wait after failed sign-ins (None: not waiting).
    pub async fn sign_in_blocked_until(
        &self,
        user_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT sign_in_blocked_until FROM merchant_users WHERE id = $1",
                &[&user_id],
            )
            .await?;
        Ok(row.get(0))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
    pub async fn record_sign_in_success(&self, user_id: Uuid) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE merchant_users SET failed_sign_ins = 0, sign_in_blocked_until = NULL,
                    last_sign_in_at = now() WHERE id = $1",
                &[&user_id],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %s.user_id))]
    pub async fn create_session(&self, s: NewSession<'_>) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO merchant_sessions (id_hash, user_id, tenant_id, csrf, mfa_pending, expires_at, ip, user_agent)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&s.id_hash, &s.user_id, &s.tenant_id, &s.csrf, &s.mfa_pending, &s.expires_at, &s.ip, &s.user_agent],
            )
            .await?;
        // Sessions past their absolute timeout are dead anyway; clear a few out now and
        // then, so the table stays the size of the live ones.
        client
            .execute(
                "DELETE FROM merchant_sessions WHERE id_hash IN
                    (SELECT id_hash FROM merchant_sessions WHERE expires_at < now() LIMIT 100)",
                &[],
            )
            .await?;
        Ok(())
    }

    /// The live session with this id, if its user is still enabled. Notes the visit at most
    /// once a minute (the idle timeout is counted in minutes).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf, s.mfa_pending, s.created_at, s.last_seen_at, s.expires_at
             FROM merchant_sessions s
             JOIN merchant_users u ON u.id = s.user_id
             JOIN tenants t ON t.id = u.tenant_id
             WHERE s.id_hash = $1 AND s.expires_at > now() AND NOT u.disabled"
        );
        let stmt = client.prepare_cached(&sql).await?;
        let Some(r) = client.query_opt(&stmt, &[&id_hash]).await? else {
            return Ok(None);
        };
        let record = SessionRecord {
            user: user(&r)?,
            csrf: r.get(12),
            mfa_pending: r.get(13),
            created_at: r.get(14),
            last_seen_at: r.get(15),
            expires_at: r.get(16),
        };
        if Utc::now() - record.last_seen_at > chrono::TimeDelta::seconds(60) {
            client
                .execute(
                    "UPDATE merchant_sessions SET last_seen_at = now() WHERE id_hash = $1",
                    &[&id_hash],
                )
                .await?;
        }
        Ok(Some(record))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_session(&self, id_hash: &[u8]) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM merchant_sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await?;
        Ok(())
    }

    /// Ends every session of a user (disabled, password changed, signed out everywhere).
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
    pub async fn delete_user_sessions(&self, user_id: Uuid) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "DELETE FROM merchant_sessions WHERE user_id = $1",
                &[&user_id],
            )
            .await?)
    }

    /// Sets a new password hash; every session of the user ends with it.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
    pub async fn set_password(&self, user_id: Uuid, password_hash: &str) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE merchant_users SET password_hash = $2, must_change_password = false,
                password_changed_at = now(), failed_sign_ins = 0, sign_in_blocked_until = NULL
             WHERE id = $1",
            &[&user_id, &password_hash],
        )
        .await?;
        tx.execute(
            "DELETE FROM merchant_sessions WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A tenant's users, owners first.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn users(&self, tenant_id: Uuid) -> Result<Vec<MerchantUser>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM merchant_users u JOIN tenants t ON t.id = u.tenant_id
             WHERE u.tenant_id = $1
             ORDER BY array_position(ARRAY['owner','admin','manager','staff'], u.role), lower(u.email)"
        );
        client
            .query(&sql, &[&tenant_id])
            .await?
            .iter()
            .map(user)
            .collect()
    }

    /// Changes a user's role or enabled state, never leaving the tenant without an active
    /// owner. Owners are locked first, so two admins demoting the last two owners at once
    /// cannot both succeed. Disabling ends the user's sessions in the same transaction.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, user_id = %user_id))]
    pub async fn change_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        role: Role,
        disabled: bool,
    ) -> Result<UserChange, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let owners = tx
            .query(
                "SELECT id FROM merchant_users WHERE tenant_id = $1 AND role = 'owner' AND NOT disabled
                 ORDER BY id FOR UPDATE",
                &[&tenant_id],
            )
            .await?;
        let Some(current) = tx
            .query_opt(
                "SELECT role FROM merchant_users WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
                &[&user_id, &tenant_id],
            )
            .await?
        else {
            return Ok(UserChange::NotFound);
        };
        let was_owner = owners.iter().any(|r| r.get::<_, Uuid>(0) == user_id);
        let stays_owner = role == Role::Owner && !disabled;
        if was_owner && !stays_owner && owners.len() <= 1 {
            return Ok(UserChange::LastOwner);
        }
        let _: String = current.get(0);
        tx.execute(
            "UPDATE merchant_users SET role = $2, disabled = $3 WHERE id = $1",
            &[&user_id, &role.as_str(), &disabled],
        )
        .await?;
        if disabled {
            tx.execute(
                "DELETE FROM merchant_sessions WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(UserChange::Done)
    }

    /// Whether any user (in any tenant) already signs in with this address.
    pub async fn email_taken(&self, email: &str) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM merchant_users WHERE lower(email) = lower($1))",
                &[&email],
            )
            .await?;
        Ok(row.get(0))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn create_invite(
        &self,
        tenant_id: Uuid,
        email: &str,
        role: Role,
        token_hash: &[u8],
        created_by: Option<Uuid>,
        expires_at: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let client = self.pool.get().await?;
        let id = Uuid::new_v4();
        client
            .execute(
                "INSERT INTO merchant_invites (id, tenant_id, email, role, token_hash, created_by, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&id, &tenant_id, &email, &role.as_str(), &token_hash, &created_by, &expires_at],
            )
            .await?;
        Ok(id)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn invite(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT i.id, i.tenant_id, t.name, i.email, i.role, i.expires_at, i.used_at
                 FROM merchant_invites i JOIN tenants t ON t.id = i.tenant_id WHERE i.token_hash = $1",
                &[&token_hash],
            )
            .await?;
        row.map(|r| invite(&r)).transpose()
    }

    /// Open invitations of a tenant, newest first.
    pub async fn invites(&self, tenant_id: Uuid) -> Result<Vec<InviteRecord>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT i.id, i.tenant_id, t.name, i.email, i.role, i.expires_at, i.used_at
                 FROM merchant_invites i JOIN tenants t ON t.id = i.tenant_id
                 WHERE i.tenant_id = $1 AND i.used_at IS NULL AND i.expires_at > now()
                 ORDER BY i.created_at DESC LIMIT 100",
                &[&tenant_id],
            )
            .await?
            .iter()
            .map(invite)
            .collect()
    }

    /// Uses an invitation once: creates the user with `password_hash`. None when the
    /// invitation is unknown, used or expired, or the address already signs in.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn accept_invite(
        &self,
        token_hash: &[u8],
        password_hash: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT tenant_id, email, role FROM merchant_invites
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() FOR UPDATE",
                &[&token_hash],
            )
            .await?
        else {
            return Ok(None);
        };
        let (tenant_id, email, role): (Uuid, String, String) = (row.get(0), row.get(1), row.get(2));
        let taken: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM merchant_users WHERE lower(email) = lower($1))",
                &[&email],
            )
            .await?
            .get(0);
        if taken {
            return Ok(None);
        }
        let id = Uuid::new_v4();
        tx.execute(
            "INSERT INTO merchant_users (id, tenant_id, email, role, password_hash) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &tenant_id, &email, &role, &password_hash],
        )
        .await?;
        tx.execute(
            "UPDATE merchant_invites SET used_at = now() WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }
}

fn invite(r: &tokio_postgres::Row) -> Result<InviteRecord, StoreError> {
    let role: &str = r.get(4);
    Ok(InviteRecord {
        id: r.get(0),
        tenant_id: r.get(1),
        tenant_name: r.get(2),
        email: r.get(3),
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("invite role {role:?}")))?,
        expires_at: r.get(5),
        used_at: r.get(6),
    })
}
