//! Notices at the edge: during a maintenance window consumer and API requests get a
//! friendly 503 with Retry-After (HTML for browsers, the usual JSON error otherwise),
//! `/readyz` says "maintenance" (with 200, so load balancers keep sending people to the
//! friendly page) and `/livez` is untouched; while a notice is announced, HTML pages carry
//! a banner. Everything comes from this node's notice board, refreshed every few seconds.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde_json::json;

use crate::ops::notices::{show_time, NoticeBoard};
use crate::store::notices::Notice;
use crate::web::error::RenderedError;
use crate::web::AppState;

/// What a window closes: consumers' pages, the API, images, sign-in, themes.
const GATED: &[&str] = &["/api/", "/c/", "/my", "/i/", "/auth/", "/t/"];
/// HTML bigger than this is passed through without a banner (it is not a page).
const MAX_BANNERED: usize = 2 * 1024 * 1024;

fn gated(path: &str) -> bool {
    GATED.iter().any(|p| path.starts_with(p))
}

fn wants_html(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn escape(text: &str) -> String {
    handlebars::html_escape(text)
}

fn banner(notices: &[&Notice]) -> String {
    let mut html = String::new();
    for n in notices {
        let (class, label) = if n.kind == "maintenance" {
            (
                "ops-banner",
                if n.emergency {
                    "緊急メンテナンス / Emergency maintenance"
                } else {
                    "メンテナンスのお知らせ / Maintenance"
                },
            )
        } else {
            (
                "ops-banner ops-banner--incident",
                "障害のお知らせ / Incident",
            )
        };
        let when = match n.ends_at {
            Some(end) => format!("{} – {}", show_time(n.starts_at), show_time(end)),
            None => format!("{} –", show_time(n.starts_at)),
        };
        html.push_str(&format!(
            "<p class=\"{class}\" role=\"status\">{label}: {} ({when}) <a href=\"/status\">/status</a></p>",
            escape(&n.title)
        ));
    }
    html
}

/// Marks a 503 as the planned maintenance answer, so `observe` neither counts it against
/// the availability SLI nor logs it as a failure.
#[derive(Debug, Clone, Copy)]
pub struct MaintenanceAnswer;

fn maintenance_response(req: &ServiceRequest, window: &Notice) -> HttpResponse {
    let mut res = maintenance_answer(req, window);
    res.extensions_mut().insert(MaintenanceAnswer);
    res
}

fn maintenance_answer(req: &ServiceRequest, window: &Notice) -> HttpResponse {
    let end = window.ends_at.unwrap_or_else(Utc::now);
    let retry_after = (end - Utc::now()).num_seconds().max(1);
    let until = show_time(end);
    let mut res = HttpResponse::ServiceUnavailable();
    res.insert_header((header::RETRY_AFTER, retry_after.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    let page = wants_html(req)
        .then(|| req.app_data::<web::Data<AppState>>())
        .flatten()
        .and_then(|state| {
            state
                .templates
                .render(
                    "maintenance",
                    &json!({"title": window.title, "until_text": until}),
                )
                .ok()
        });
    match page {
        Some(html) => res.content_type("text/html; charset=utf-8").body(html),
        None => {
            let message = format!(
                "down for maintenance until {} ({}): {}",
                end.to_rfc3339(),
                until,
                window.title
            );
            let mut res = res.json(json!({"error": {"code": "maintenance", "message": message}}));
            // Marks it as one of ours, so `uniform_errors` passes it through unchanged.
            res.extensions_mut().insert(RenderedError {
                code: "maintenance",
                message,
            });
            res
        }
    }
}

pub async fn notice_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(board) = req.app_data::<web::Data<NoticeBoard>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let view = board.view();
    let now = Utc::now();
    let path = req.path().to_owned();
    if let Some(window) = view.maintenance_at(now) {
        if path == "/readyz" {
            let res = HttpResponse::Ok().json(json!({
                "status": "maintenance",
                "until": window.ends_at,
                "title": window.title,
            }));
            return Ok(req.into_response(res));
        }
        if gated(&path) {
            let res = maintenance_response(&req, window);
            return Ok(req.into_response(res));
        }
    }
    let res = next.call(req).await?;
    let banners: Vec<&Notice> = view.banners_at(now);
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if banners.is_empty() || !html || path.starts_with("/status") {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = match body::to_bytes_limited(body, MAX_BANNERED).await {
        Ok(Ok(bytes)) => bytes,
        // Too big or failed: give up on the banner, not the page.
        _ => {
            return Ok(
                ServiceResponse::new(req, head.set_body(BoxBody::new(()))).map_into_boxed_body()
            )
        }
    };
    let page = String::from_utf8_lossy(&bytes);
    let with_banner = match page
        .find("<body")
        .and_then(|at| page[at..].find('>').map(|end| at + end + 1))
    {
        Some(at) => format!("{}{}{}", &page[..at], banner(&banners), &page[at..]),
        None => page.into_owned(),
    };
    let mut res = head.set_body(BoxBody::new(with_banner));
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(ServiceResponse::new(req, res))
}
