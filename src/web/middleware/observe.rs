//! One middleware for what every request leaves behind: a request id (echoed as
//! `X-Request-Id` and carried by every log line of the request), the request metrics, and
//! one error line for a 5xx (not for the 503 of a maintenance window, which is counted in
//! `http_maintenance_responses_total` instead of `http_requests_total`). Answers that are business as usual in a flash sale (a 409
//! `sold_out`, a 404, a redirect) log nothing at the default level.
//!
//! It replaces tracing-actix-web's logger, which formatted a JSON WARN line for every 4xx
//! and resolved the route pattern three times a request: on the claim path that was about
//! a sixth of the server's CPU.
//!
//! Metrics: `http_requests_total{method,route,status}` and
//! `http_request_duration_seconds{method,route}`, labelled by route *pattern*
//! (`/api/v1/campaigns/{id}`), never the raw path, so label cardinality stays bounded.
//! The handles are kept per thread, so a request costs no label allocation or registry
//! lookup once its route has been seen.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use metrics::{Counter, Histogram};
use tracing::Instrument;

use crate::metrics::{HTTP_DURATION, HTTP_REQUESTS, MAINTENANCE_ANSWERS};

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = next_request_id();
    let method = method_label(req.method());
    let span = tracing::info_span!("request", request_id = %id);
    let result = next.call(req).instrument(span.clone()).await;
    let (status, route) = match &result {
        Ok(res) => (res.status(), res.request().match_pattern()),
        Err(e) => (e.as_response_error().status_code(), None),
    };
    let route = route.as_deref().unwrap_or("unmatched");
    let maintenance = result.as_ref().is_ok_and(|res| {
        res.response()
            .extensions()
            .contains::<super::notices::MaintenanceAnswer>()
    });
    if maintenance {
        // A window merchants were told about is not an outage: counted apart, so the
        // availability SLI (5xx over all of http_requests_total) leaves it out, and not
        // logged at ERROR.
        metrics::counter!(MAINTENANCE_ANSWERS, "method" => method, "route" => route.to_owned())
            .increment(1);
        tracing::debug!(method, route, "answered 503 for maintenance");
        let mut res = result?;
        if let Ok(value) = HeaderValue::from_str(&id) {
            res.headers_mut()
                .insert(HeaderName::from_static("x-request-id"), value);
        }
        return Ok(res);
    }
    record(method, route, status, started);
    if status.is_server_error() {
        let error = result.as_ref().map_or_else(
            |e| Some(e.to_string()),
            |res| res.response().error().map(|e| e.to_string()),
        );
        span.in_scope(|| {
            tracing::error!(
                status = status.as_u16(),
                method,
                route,
                error = error.as_deref().unwrap_or(""),
                "request failed"
            )
        });
    }
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// `<random per process>-<counter>`: unique enough to find a request's lines across nodes,
/// without a system call for randomness per request.
fn next_request_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(rand::random);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}-{n:x}")
}

struct Handles {
    duration: Histogram,
    by_status: HashMap<u16, Counter>,
}

thread_local! {
    /// method → route pattern → handles. Bounded by the route table.
    static HANDLES: RefCell<HashMap<&'static str, HashMap<String, Handles>>> = RefCell::default();
}

fn record(method: &'static str, route: &str, status: StatusCode, started: Instant) {
    HANDLES.with_borrow_mut(|by_method| {
        let routes = by_method.entry(method).or_default();
        if !routes.contains_key(route) {
            let duration =
                metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route.to_owned());
            routes.insert(
                route.to_owned(),
                Handles {
                    duration,
                    by_status: HashMap::new(),
                },
            );
        }
        let Some(h) = routes.get_mut(route) else {
            return;
        };
        h.duration.record(started.elapsed().as_secs_f64());
        h.by_status
            .entry(status.as_u16())
            .or_insert_with(|| {
                metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.to_owned(), "status" => status.as_str().to_owned())
            })
            .increment(1);
    });
}

/// Any token is a valid HTTP method; only the standard ones become label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
