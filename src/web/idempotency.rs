//! `Idempotency-Key` on API POSTs, Stripe's model. The first request with a key runs and
//! its answer (status and body) is kept for 24 hours, per API key; a retry with the same
//! key and the same request gets that answer again with `Idempotent-Replayed: true`; the
//! same key with another request is 422 `idempotency_key_reused`; while the first request
//! is still running, 409 `idempotency_key_in_use`.
//!
//! Without the header nothing here costs more than the header lookup: the flash-sale claim
//! path stays as it was.
//!
//! A 5xx or 429 frees the key (nothing happened; the retry runs).
//!
//! Claims take another road, for speed (`web::keyed_claims`): their key is written in the
//! claim's own batch statement, not claimed first in a transaction of its own.

use std::future::Future;

use uuid::Uuid;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::auth::ApiAuth;
use super::AppState;
use crate::domain::token::sha256;
use crate::store::{IdempotencyBegin, KeyState};
use crate::web::error::{AppError, AppResult, RenderedError};

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED: &str = "Idempotent-Replayed";
const MAX_LEN: usize = 255;

/// The request's idempotency key, if it sent one. Only this runs on a request without
/// the header.
pub fn key(req: &HttpRequest) -> AppResult<Option<String>> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_LEN)
        .ok_or_else(|| {
            AppError::invalid(
                "invalid_idempotency_key",
                format!("{HEADER} must be 1 to {MAX_LEN} visible ASCII characters"),
            )
        })?;
    Ok(Some(key.to_string()))
}

/// sha256 of the method, path and `fingerprint` (the request's content as the handler
/// understood it): what decides whether a retry is "the same request".
pub fn request_hash(req: &HttpRequest, fingerprint: &[u8]) -> Vec<u8> {
    let mut hashed = Vec::with_capacity(fingerprint.len() + 64);
    hashed.extend_from_slice(req.method().as_str().as_bytes());
    hashed.push(b' ');
    hashed.extend_from_slice(req.path().as_bytes());
    hashed.push(b'\n');
    hashed.extend_from_slice(fingerprint);
    sha256(&hashed)
}

/// A claim write sent before its answer was lost cannot land later than this after it.
pub fn settle_after(settings: &crate::config::Settings) -> std::time::Duration {
    settings.database.statement_timeout + std::time::Duration::from_secs(1)
}

pub fn in_use() -> AppError {
    AppError::conflict(
        "idempotency_key_in_use",
        format!("a request with this {HEADER} is still in progress; retry shortly"),
    )
    .with_retry_after(1)
}

pub fn reused() -> AppError {
    AppError::invalid(
        "idempotency_key_reused",
        format!("this {HEADER} was used for a different request"),
    )
}

/// A stored answer, given again.
pub fn replay(status: i16, body: Vec<u8>) -> AppResult<HttpResponse> {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("stored status {status}")))?;
    let rendered = status
        .is_client_error()
        .then(|| rendered_error(&body))
        .flatten();
    let mut response = HttpResponse::build(status)
        .insert_header((REPLAYED, "true"))
        .content_type("application/json")
        .body(body);
    // Without this the error middleware would take a replayed error for one of
    // actix's own and rewrite it.
    if let Some(rendered) = rendered {
        response.extensions_mut().insert(rendered);
    }
    Ok(response)
}

/// Marks an answer rebuilt from what the first request did as a replay.
pub fn replayed(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        header::HeaderName::from_static("idempotent-replayed"),
        header::HeaderValue::from_static("true"),
    );
    response
}

/// Runs `run` under `key`. `fingerprint` is the request's content as the handler
/// understood it; with the method and path it decides whether a retry is "the same
/// request".
pub async fn run<F, Fut>(
    req: &HttpRequest,
    key: String,
    auth: &ApiAuth,
    state: &web::Data<AppState>,
    fingerprint: &[u8],
    run: F,
) -> AppResult<HttpResponse>
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = AppResult<HttpResponse>> + 'static,
{
    let request_hash = request_hash(req, fingerprint);
    let store = state.store.clone();
    let api_key_id = auth.key_id;
    maybe_purge(&store);
    let settle_after = settle_after(&state.settings);
    match store
        .begin_idempotent(api_key_id, &key, &request_hash, settle_after)
        .await?
    {
        IdempotencyBegin::Started => {}
        IdempotencyBegin::Used(KeyState::Replay { status, body }) => return replay(status, body),
        IdempotencyBegin::Used(KeyState::Reused) => return Err(reused()),
        // (A claim's key, or one taken over since: never this request's to run.)
        IdempotencyBegin::Used(_) => return Err(in_use()),
    }

    // Its own task: if the client goes away, actix drops this handler, but the request and
    // the recording of its answer still finish, so a retry replays what happened rather
    // than finding the key held forever.
    let task = actix_web::rt::spawn(async move {
        let response = match run().await {
            Ok(r) => r,
            Err(e) => e.error_response(),
        };
        keep(&store, api_key_id, &key, response).await
    });
    task.await
        .map_err(|e| AppError::internal(anyhow::anyhow!("idempotent request task: {e}")))?
}

/// A response's body, read out, and the response given back with it.
pub async fn with_body(response: HttpResponse) -> AppResult<(HttpResponse, actix_web::web::Bytes)> {
    let (head, body) = response.into_parts();
    let body = actix_web::body::to_bytes(body)
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("response body: {e}")))?;
    Ok((head.set_body(body.clone()).map_into_boxed_body(), body))
}

/// Records the key's answer (or frees the key, see the module's notes) and gives the
/// response back.
async fn keep(
    store: &crate::store::Store,
    api_key_id: Uuid,
    key: &str,
    response: HttpResponse,
) -> AppResult<HttpResponse> {
    let status = response.status();
    let (response, body) = match with_body(response).await {
        Ok(read) => read,
        Err(e) => {
            let _ = store.abandon_idempotent(api_key_id, key).await;
            return Err(e);
        }
    };
    // 5xx and 429 changed nothing and say "try again": the retry must run, not replay.
    let recorded = if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        store.abandon_idempotent(api_key_id, key).await
    } else {
        let code = i16::try_from(status.as_u16()).unwrap_or(500);
        store.finish_idempotent(api_key_id, key, code, &body).await
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record an idempotent answer");
    }
    Ok(response)
}

/// The code and message of a stored error body, as the error middleware expects them.
fn rendered_error(body: &[u8]) -> Option<RenderedError> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    Some(RenderedError {
        code: intern(error.get("code")?.as_str()?),
        message: error.get("message")?.as_str()?.to_string(),
    })
}

/// Error codes are `&'static str`; a replayed one is read back from the database. Each
/// distinct code is leaked once, and there are only as many as the API has codes (bounded
/// anyway, should stored bodies have been edited by hand).
fn intern(code: &str) -> &'static str {
    static CODES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut codes = CODES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = codes.iter().find(|c| **c == code) {
        return known;
    }
    if codes.len() >= 256 {
        return "replayed_error";
    }
    let leaked: &'static str = Box::leak(code.to_string().into_boxed_str());
    codes.push(leaked);
    leaked
}

/// Expired keys go in small sweeps riding on about one keyed request in 256, so no job
/// needs to exist for them and no request waits on one.
pub fn maybe_purge(store: &crate::store::Store) {
    if rand::random::<u8>() == 0 {
        let store = store.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = store.purge_idempotency_keys().await {
                tracing::warn!(error = %e, "could not purge old idempotency keys");
            }
        });
    }
}
