//! `/api/v1/webhooks`: a merchant's webhook endpoints (list, create with the signing
//! secret shown once, show, delete) and each endpoint's delivery log. Managing them needs
//! the `campaigns:write` scope: they receive every coupon's code.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::idempotency;
use super::json::ApiJson;
use super::pagination;
use super::AppState;
use crate::domain::webhook::{
    check_address, new_secret, parse_destination, parse_events, MAX_ENDPOINTS_PER_TENANT,
};
use crate::store::webhooks::{DeliveryLogRow, NewEndpoint, WebhookEndpoint};
use crate::web::error::{AppError, AppResult};
use crate::web::openapi::ErrorBody;

pub const SCOPE: &str = "campaigns:write";

/// A new endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// `https://…` on a public address (no credentials in it).
    url: String,
    /// Any of `coupon.claimed`, `coupon.redeemed`, `redemption.undone`,
    /// `campaign.sold_out`, `campaign.ended`.
    events: Vec<String>,
    /// For people, up to 200 characters.
    #[serde(default)]
    description: String,
}

/// A webhook endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct EndpointView<'a> {
    id: Uuid,
    url: &'a str,
    events: &'a [String],
    description: &'a str,
    created_at: DateTime<Utc>,
    /// The signing secret (`whsec_…`): only in the answer to the create, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

/// The merchant's endpoints.
#[derive(Serialize, ToSchema)]
pub struct WebhookList<'a> {
    webhooks: Vec<EndpointView<'a>>,
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

/// The merchant's webhook endpoints (never their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "listWebhooks", tag = "webhooks",
    responses((status = 200, description = "The endpoints", body = WebhookList)),
    security(("api_key" = ["campaigns:write"])))]
pub async fn list(auth: ApiAuth, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    auth.require_scope(SCOPE)?;
    let endpoints = state.store.webhook_endpoints(auth.tenant_id).await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: endpoints
            .iter()
            .map(|e| EndpointView::new(e, None))
            .collect(),
    }))
}

/// Register an endpoint. Its signing secret is in this answer only. Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/webhooks", operation_id = "createWebhook", tag = "webhooks",
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Registered, with its `secret`", body = EndpointView),
        (status = 409, description = "`too_many_webhooks`: 20 per merchant", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`: not https, credentials in it, or a loopback, private, link-local or reserved address; \
            `invalid_webhook_events`: none, or one that does not exist; `invalid_description`: over 200 characters or control characters; \
            `invalid_idempotency_key`, `idempotency_key_reused`", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn create(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: ApiJson<CreateEndpoint>,
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
    body: ApiJson<CreateEndpoint>,
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

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", operation_id = "showWebhook", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "`not_found`: the merchant has no such endpoint", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
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

/// Delete an endpoint: nothing more is sent to it; its queue and log go with it.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", operation_id = "deleteWebhook", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: the merchant has no such endpoint", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One event for the endpoint, and how its delivery went.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView<'a> {
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
    /// The event's `data`, as sent.
    #[schema(value_type = Object)]
    data: &'a serde_json::Value,
}

/// A page of the delivery log, newest first.
#[derive(Serialize, ToSchema)]
pub struct DeliveryLog<'a> {
    deliveries: Vec<DeliveryView<'a>>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
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

/// The endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint"), LogQuery),
    responses(
        (status = 200, description = "A page of the log", body = DeliveryLog),
        (status = 404, description = "`not_found`: the merchant has no such endpoint", body = ErrorBody),
        (status = 422, description = "`invalid_limit`: not 1 to 200; `invalid_cursor`: not one we gave", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn deliveries(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<LogQuery>,
) -> AppResult<HttpResponse> {
    auth.require_scope(SCOPE)?;
    let limit = pagination::limit(query.limit)?;
    let after = pagination::after(query.cursor.as_deref())?;
    state
        .store
        .webhook_endpoint(auth.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("webhook endpoint"))?;
    let rows = state.store.webhook_deliveries(*id, after, limit).await?;
    let next_cursor = pagination::next(&rows, limit, |d| (d.created_at, d.id));
    Ok(HttpResponse::Ok().json(DeliveryLog {
        deliveries: rows.iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}
