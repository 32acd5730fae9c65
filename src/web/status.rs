//! `/status`: the public status page (current state, upcoming maintenance, the last 90
//! days of incidents and maintenance) and `/status.json` for machines. Read from this
//! node's notice board, so it costs no query.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde_json::json;

use super::AppState;
use crate::ops::notices::{show_time, BoardView, NoticeBoard};
use crate::store::notices::Notice;
use crate::web::error::AppError;

fn when(n: &Notice) -> String {
    match n.ends_at {
        Some(end) => format!("{} – {}", show_time(n.starts_at), show_time(end)),
        None => format!("{} –", show_time(n.starts_at)),
    }
}

fn entry(view: &BoardView, n: &Notice) -> serde_json::Value {
    let updates: Vec<_> = view
        .updates
        .iter()
        .filter(|u| u.notice_id == n.id)
        .map(|u| json!({"at": show_time(u.at), "status": u.status, "body": u.body}))
        .collect();
    json!({
        "id": n.id,
        "kind": n.kind,
        "label": if n.kind == "maintenance" { "メンテナンス / Maintenance" } else { "障害 / Incident" },
        "title": n.title,
        "body": n.body,
        "when": when(n),
        "starts_at": n.starts_at,
        "ends_at": n.ends_at,
        "status": n.status,
        "emergency": n.emergency,
        "updates": updates,
    })
}

/// Sorts the board into what the page shows.
fn summary(view: &BoardView) -> serde_json::Value {
    let now = Utc::now();
    let maintenance = view.maintenance_at(now);
    let open_incident = view
        .notices
        .iter()
        .any(|n| n.kind == "incident" && n.status != "resolved");
    let (state, state_text) = if maintenance.is_some() {
        ("maintenance", "メンテナンス中 / Under maintenance")
    } else if open_incident {
        ("incident", "障害が発生しています / Incident in progress")
    } else {
        ("ok", "すべて正常に稼働しています / All systems operational")
    };
    let current: Vec<_> = view
        .notices
        .iter()
        .filter(|n| {
            Some(n.id) == maintenance.map(|m| m.id)
                || (n.kind == "incident" && n.status != "resolved")
        })
        .map(|n| entry(view, n))
        .collect();
    let mut upcoming: Vec<_> = view
        .notices
        .iter()
        .filter(|n| n.kind == "maintenance" && n.status == "scheduled" && n.starts_at > now)
        .collect();
    upcoming.sort_by_key(|n| n.starts_at);
    let upcoming: Vec<_> = upcoming.into_iter().map(|n| entry(view, n)).collect();
    let history: Vec<_> = view
        .notices
        .iter()
        .filter(|n| {
            (n.kind == "incident" && n.status == "resolved")
                || (n.kind == "maintenance"
                    && (n.status == "cancelled" || n.ends_at.is_some_and(|e| e <= now)))
        })
        .map(|n| entry(view, n))
        .collect();
    json!({
        "state": state,
        "state_text": state_text,
        "current": current,
        "upcoming": upcoming,
        "history": history,
    })
}

pub async fn page(
    state: web::Data<AppState>,
    board: web::Data<NoticeBoard>,
) -> Result<HttpResponse, AppError> {
    let html = state
        .templates
        .render("status", &summary(&board.view()))
        .map_err(|e| AppError::internal(anyhow::anyhow!("status page: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html))
}

pub async fn json(board: web::Data<NoticeBoard>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(summary(&board.view()))
}
