//! Signed-in consumers and sign-ins in progress (`consumers`, `signin_requests`).
//!
//! A sign-in row is made at `/auth/{provider}/start`, used once by the provider's callback
//! (found by the hash of `state`), and finished once at `/auth/complete` (found by the hash
//! of a one-time token). Secrets sent to browsers or providers are stored only as hashes.

use std::time::Duration;

use uuid::Uuid;

use super::{Store, StoreError};

/// How long a finished callback's `/auth/complete` link stays good.
const COMPLETE_WITHIN_SECONDS: f64 = 120.0;
/// Old rows are kept this long after they expire, so a late replay is told apart from junk.
const KEEP_EXPIRED_SECONDS: f64 = 3600.0;

pub struct NewSigninRequest<'a> {
    pub state_hash: &'a [u8],
    pub provider: &'a str,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub return_to: &'a str,
    pub browser_hash: &'a [u8],
    pub ttl: Duration,
}

/// What the callback needs from the row made at start.
#[derive(Debug, Clone)]
pub struct PendingSignin {
    pub nonce: String,
    pub pkce_verifier: String,
}

#[derive(Debug)]
pub enum TakeSignin {
    Taken(PendingSignin),
    /// No such state (or another provider's).
    Unknown,
    /// The callback already came once.
    Used,
    Expired,
}

#[derive(Debug, Clone)]
pub struct CompletedSignin {
    pub provider: String,
    pub subject: String,
    pub return_to: String,
    pub browser_hash: Vec<u8>,
}

impl Store {
    /// Records a sign-in in progress, and clears out rows long expired.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_signin_request(
        &self,
        new: &NewSigninRequest<'_>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "WITH purge AS (
                     DELETE FROM signin_requests
                     WHERE expires_at < now() - make_interval(secs => $8)
                 )
                 INSERT INTO signin_requests
                     (state_hash, provider, nonce, pkce_verifier, return_to, browser_hash, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
            )
            .await?;
        let ttl = new.ttl.as_secs_f64();
        client
            .execute(
                &stmt,
                &[
                    &new.state_hash,
                    &new.provider,
                    &new.nonce,
                    &new.pkce_verifier,
                    &new.return_to,
                    &new.browser_hash,
                    &ttl,
                    &KEEP_EXPIRED_SECONDS,
                ],
            )
            .await?;
        Ok(())
    }

    /// Uses a sign-in's state, once: a second callback with the same state gets `Used`.
    #[tracing::instrument(level = "debug", skip_all, fields(provider = %provider))]
    pub async fn take_signin_request(
        &self,
        state_hash: &[u8],
        provider: &str,
    ) -> Result<TakeSignin, StoreError> {
        let client = self.pool.get().await?;
        let take = client
            .prepare_cached(
                "UPDATE signin_requests SET used_at = now()
                 WHERE state_hash = $1 AND provider = $2 AND used_at IS NULL AND expires_at > now()
                 RETURNING nonce, pkce_verifier",
            )
            .await?;
        if let Some(row) = client.query_opt(&take, &[&state_hash, &provider]).await? {
            return Ok(TakeSignin::Taken(PendingSignin {
                nonce: row.get(0),
                pkce_verifier: row.get(1),
            }));
        }
        // Not taken: say why (only on this failure path).
        let why = client
            .prepare_cached(
                "SELECT used_at IS NOT NULL, expires_at <= now() FROM signin_requests
                 WHERE state_hash = $1 AND provider = $2",
            )
            .await?;
        Ok(
            match client.query_opt(&why, &[&state_hash, &provider]).await? {
                None => TakeSignin::Unknown,
                Some(row) if row.get::<_, bool>(0) => TakeSignin::Used,
                Some(_) => TakeSignin::Expired,
            },
        )
    }

    /// The provider vouched for `subject`: records the consumer (or when they were last
    /// seen) and arms the one-time completion token. Returns the consumer's id.
    #[tracing::instrument(level = "debug", skip_all, fields(provider = %provider))]
    pub async fn finish_signin(
        &self,
        state_hash: &[u8],
        provider: &str,
        subject: &str,
        completion_hash: &[u8],
    ) -> Result<Uuid, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "WITH consumer AS (
                     INSERT INTO consumers (id, provider, subject) VALUES ($1, $2, $3)
                     ON CONFLICT (provider, subject) DO UPDATE SET last_seen_at = now()
                     RETURNING id
                 )
                 UPDATE signin_requests
                 SET consumer_id = (SELECT id FROM consumer), completion_hash = $4
                 WHERE state_hash = $5 AND provider = $2
                 RETURNING consumer_id",
            )
            .await?;
        let row = client
            .query_opt(
                &stmt,
                &[
                    &Uuid::new_v4(),
                    &provider,
                    &subject,
                    &completion_hash,
                    &state_hash,
                ],
            )
            .await?;
        row.map(|r| r.get(0))
            .ok_or_else(|| StoreError::Conflict("the sign-in request vanished".into()))
    }

    /// Uses a completion token, once, within two minutes of the callback.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn complete_signin(
        &self,
        completion_hash: &[u8],
    ) -> Result<Option<CompletedSignin>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE signin_requests r SET completed_at = now()
                 FROM consumers c
                 WHERE r.completion_hash = $1 AND r.completed_at IS NULL
                   AND r.used_at > now() - make_interval(secs => $2)
                   AND c.id = r.consumer_id
                 RETURNING c.provider, c.subject, r.return_to, r.browser_hash",
            )
            .await?;
        let row = client
            .query_opt(&stmt, &[&completion_hash, &COMPLETE_WITHIN_SECONDS])
            .await?;
        Ok(row.map(|r| CompletedSignin {
            provider: r.get(0),
            subject: r.get(1),
            return_to: r.get(2),
            browser_hash: r.get(3),
        }))
    }
}
