//! `/api/v1/webhooks`: a merchant's webhook endpoints (list, create with the signing
//! secret shown once, show, delete) and each endpoint's delivery log. Managing them needs
//! the `campaigns:write` scope: they receive every coupon's code.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::ApiAuth;
use super::idempotency;
use super::AppState;
use crate::domain::webhook::{
    check_address, new_secret, parse_destination, parse_events, MAX_ENDPOINTS_PER_TENANT,
};
use crate::store::webhooks::{DeliveryLogRow, NewEndpoint, WebhookEndpoint};
use crate::web::error::{AppError, AppResult};

pub const SCOPE: &str = "campaigns:write";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

#[derive(Serialize)]
struct EndpointView<'a> {
    id: Uuid,
    url: &'a str,
    events: &'a [String],
    description: &'a str,
    created_at: DateTime<Utc>,
    /// Only in the answer to the create: it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

impl<'a> EndpointView<'a> {
    fn new(e: &'a WebhookEndpoint, secret: Option<&'a str>) -> EndpointView<'a> {
        EndpointView {
            id: e.id,
            url: &e.url,
            events: &e.events,
            description: &e.description,
            created_at: e.created_at,
            secret,
        }
    }
}

pub async fn list(auth: ApiAuth, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    auth.require_scope(SCOPE)?;
    let endpoints = state.store.webhook_endpoints(auth.tenant_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "webhooks": endpoints.iter().map(|e| EndpointView::new(e, None)).collect::<Vec<_>>()
    })))
}

pub async fn create(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateEndpoint>,
) -> AppResult<HttpResponse> {
    match idempotency::key(&req)? {
        None => create_endpoint(auth, state, body).await,
        Some(key) => {
            let fingerprint = serde_json::to_vec(&(&body.url, &body.events, &body.description))
                .map_err(AppError::internal)?;
            let (a, s) = (auth.clone(), state.clone());
            let go = move || create_endpoint(auth, state, body);
            idempotency::run(&req, key, &a, &s, &fingerprint, go).await
        }
    }
}

async fn create_endpoint(
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateEndpoint>,
) -> AppResult<HttpResponse> {
    auth.require_scope(SCOPE)?;
    let policy = state.settings.webhooks.policy();
    let url = parse_destination(&body.url, policy)
        .map_err(|e| AppError::invalid("invalid_webhook_url", e.to_string()))?;
    // A name is checked now too (a merchant learns at once), and again at every delivery:
    // what it resolves to may change.
    if let Some(url::Host::Domain(host)) = url.host() {
        let lookup = tokio::net::lookup_host((host, url.port_or_known_default().unwrap_or(443)));
        if let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(3), lookup).await {
            for addr in addrs {
                check_address(addr.ip(), policy)
                    .map_err(|e| AppError::invalid("invalid_webhook_url", e.to_string()))?;
            }
        }
    }
    let events = parse_events(&body.events)
        .map_err(|e| AppError::invalid("invalid_webhook_events", e.to_string()))?;
    let description = body.description.trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_description",
            "description: at most 200 characters, no control characters",
        ));
    }
    let secret = new_secret();
    match state
        .store
        .insert_webhook_endpoint(
            auth.tenant_id,
            url.as_str(),
            &events,
            description,
            &secret,
            MAX_ENDPOINTS_PER_TENANT,
        )
        .await?
    {
        NewEndpoint::Created(e) => {
            Ok(HttpResponse::Created().json(EndpointView::new(&e, Some(&secret))))
        }
        NewEndpoint::TooMany => Err(AppError::conflict(
            "too_many_webhooks",
            format!("a merchant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints"),
        )),
    }
}

pub async fn show(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_scope(SCOPE)?;
    let endpoint = state
        .store
        .webhook_endpoint(auth.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("webhook endpoint"))?;
    Ok(HttpResponse::Ok().json(EndpointView::new(&endpoint, None)))
}

pub async fn delete(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_scope(SCOPE)?;
    if state
        .store
        .delete_webhook_endpoint(auth.tenant_id, *id)
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(AppError::not_found("webhook endpoint"))
    }
}

#[derive(Deserialize)]
pub struct LogQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct DeliveryView<'a> {
    id: Uuid,
    /// The `webhook-id` header it is (and was) sent with.
    message_id: String,
    event_type: &'a str,
    /// `pending`, `delivered` or `failed` (given up after 24 hours).
    status: &'static str,
    attempts: i32,
    last_status: Option<i32>,
    last_error: Option<&'a str>,
    created_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    data: &'a serde_json::Value,
}

impl<'a> From<&'a DeliveryLogRow> for DeliveryView<'a> {
    fn from(d: &'a DeliveryLogRow) -> DeliveryView<'a> {
        let status = if d.delivered_at.is_some() {
            "delivered"
        } else if d.failed_at.is_some() {
            "failed"
        } else {
            "pending"
        };
        DeliveryView {
            id: d.id,
            message_id: format!("msg_{}", d.id.simple()),
            event_type: &d.event_type,
            status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error.as_deref(),
            created_at: d.created_at,
            next_attempt_at: (status == "pending").then_some(d.next_attempt_at),
            delivered_at: d.delivered_at,
            failed_at: d.failed_at,
            data: &d.data,
        }
    }
}

fn encode_cursor(d: &DeliveryLogRow) -> String {
    B64.encode(format!("{}|{}", d.created_at.timestamp_micros(), d.id))
}

fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(B64.decode(raw).ok()?).ok()?;
    let (micros, id) = text.split_once('|')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

/// `GET /api/v1/webhooks/{id}/deliveries?limit=&cursor=`: newest first.
pub async fn deliveries(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<LogQuery>,
) -> AppResult<HttpResponse> {
    auth.require_scope(SCOPE)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::invalid(
            "invalid_limit",
            "limit: between 1 and 200",
        ));
    }
    let after = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(
            decode_cursor(raw)
                .ok_or_else(|| AppError::invalid("invalid_cursor", "cursor: not one we gave"))?,
        ),
    };
    state
        .store
        .webhook_endpoint(auth.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("webhook endpoint"))?;
    let rows = state.store.webhook_deliveries(*id, after, limit).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(encode_cursor))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "deliveries": rows.iter().map(DeliveryView::from).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}
