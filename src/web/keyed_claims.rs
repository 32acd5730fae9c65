//! `POST /api/v1/campaigns/{id}/claims` with an `Idempotency-Key`: the key is written by
//! the claim's own batch statement, in the same transaction as its coupon, so a keyed claim
//! costs a key lookup (a read) more than a plain one and no transaction of its own.
//!
//! 1. The key is looked up (with other requests' keys, one statement: `store::KeyReads`).
//!    Used before: the answer is the first request's (a stored
//!    refusal, or a claim's coupon rendered again), or 422 `idempotency_key_reused`, or
//!    409 `idempotency_key_in_use` while it runs.
//! 2. Free: the claim goes to the engine with the key. Written, the key is durable with the
//!    coupon. If the key turns out taken meanwhile (a duplicate won the race), nothing was
//!    written and step 1 answers. A refusal (`sold_out`…) is recorded under the key
//!    unless a duplicate holds it by then.
//! 3. A claim whose answer was lost (503 `outcome_unknown`) fences its key with the coupon
//!    id it was sent under: written, the retry gets that coupon; not written, its write can
//!    no longer land, and once past the statement timeout the retry claims again.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use uuid::Uuid;

use super::auth::ApiAuth;
use super::claims::{claim_error, created, lottery_lost};
use super::idempotency::{self, in_use, replay, replayed, reused};
use super::AppState;
use crate::domain::consumer::ConsumerRef;
use crate::engine::ClaimError;
use crate::store::{ClaimKey, KeyState};
use crate::web::error::AppResult;

/// Rounds of "look up, claim" before a key that keeps changing hands is answered 409.
const ROUNDS: usize = 3;

pub(super) async fn claim(
    req: &HttpRequest,
    auth: &ApiAuth,
    state: &web::Data<AppState>,
    campaign_id: Uuid,
    consumer: ConsumerRef,
    fingerprint: &[u8],
    key: String,
) -> AppResult<HttpResponse> {
    let request_hash = idempotency::request_hash(req, fingerprint);
    let store = &state.store;
    idempotency::maybe_purge(store);
    for _ in 0..ROUNDS {
        if let Some(used) = state
            .key_reads
            .state(auth.key_id, &key, &request_hash)
            .await?
        {
            match answer_used(used, auth, state, campaign_id, &key).await? {
                Some(answer) => return Ok(answer),
                // A stale row was dropped: the key is free again.
                None => continue,
            }
        }
        let tag = Arc::new(ClaimKey {
            api_key_id: auth.key_id,
            key: key.clone(),
            request_hash: request_hash.clone(),
        });
        let result = state
            .engine
            .claim_with_key(auth.tenant_id, campaign_id, consumer.clone(), Some(tag))
            .await;
        match result {
            Ok(coupon) => return Ok(created(&coupon)),
            // A duplicate holds the key: its answer is this one's (next round).
            Err(ClaimError::KeyTaken) => continue,
            Err(e @ (ClaimError::Rejected(_) | ClaimError::NotFound)) => {
                let (answer, body) =
                    idempotency::with_body(claim_error(e).error_response()).await?;
                let status = i16::try_from(answer.status().as_u16()).unwrap_or(409);
                if store
                    .record_idempotent(auth.key_id, &key, &request_hash, status, &body)
                    .await?
                {
                    return Ok(answer);
                }
            }
            Err(e @ ClaimError::OutcomeUnknown(Some(id))) => {
                if let Err(fence) = store
                    .fence_idempotent(auth.key_id, &key, &request_hash, id)
                    .await
                {
                    tracing::warn!(error = %fence, "could not hold the key of a claim whose answer was lost");
                }
                return Err(claim_error(e));
            }
            // In use on this node, or nothing written (busy): nothing stored under the key.
            Err(e) => return Err(claim_error(e)),
        }
    }
    Err(in_use())
}

/// The answer a used key gives, or `None` once a stale row was dropped (run the claim).
async fn answer_used(
    used: KeyState,
    auth: &ApiAuth,
    state: &AppState,
    campaign_id: Uuid,
    key: &str,
) -> AppResult<Option<HttpResponse>> {
    match used {
        KeyState::Replay { status, body } => replay(status, body).map(Some),
        KeyState::Reused => Err(reused()),
        KeyState::InUse => Err(in_use()),
        KeyState::Expired => {
            state
                .store
                .drop_stale_idempotency_key(auth.key_id, key, None)
                .await?;
            Ok(None)
        }
        KeyState::Claimed { id, settled } => {
            let coupon = state
                .store
                .claimed_coupon(auth.tenant_id, campaign_id, id)
                .await?;
            match coupon {
                Some(c) => {
                    let answer = match &c.code {
                        Some(code) => HttpResponse::Created().json(super::claims::Claimed::of(
                            c.id,
                            code,
                            c.expires_at,
                            c.uses_left,
                        )),
                        None => lottery_lost(),
                    };
                    Ok(Some(replayed(answer)))
                }
                // Its answer was lost and it was never written: once it can no longer land,
                // the claim runs again (one of concurrent retries drops the row; the others
                // then find the key free or the new claim in flight).
                None if settled => {
                    state
                        .store
                        .drop_stale_idempotency_key(auth.key_id, key, Some(id))
                        .await?;
                    Ok(None)
                }
                None => Err(in_use()),
            }
        }
    }
}
