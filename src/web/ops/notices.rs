//! Maintenance windows and incidents from the operator console, under the same rules as
//! `ecoupon notice …` (both call `ops::notices`): a window is announced at least 7 days
//! ahead unless marked an emergency, which the mail, the banners, `/status` and this page
//! then say; every step is mailed through the outbox and written to the audit log.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{show_time, OpsConsole};
use crate::ops::notices::{
    check_window, next_statuses, post_incident, schedule_maintenance, WindowProblem, HISTORY,
};
use crate::store::notices::Notice;
use crate::web::console::field_errors;
use crate::web::error::{AppError, AppResult};
use crate::web::AppState;

/// Form values to show again after a refused post.
#[derive(Default, Deserialize, serde::Serialize, Clone)]
pub struct MaintenanceForm {
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    emergency: Option<String>,
    #[serde(default)]
    csrf: String,
}

#[derive(Default, Deserialize, serde::Serialize, Clone)]
pub struct IncidentForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct UpdateForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    body: String,
    csrf: String,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// A time from the form: `datetime-local` gives `2026-12-10T02:00` with no zone, read as
/// Japan time (the page says so); a full RFC 3339 time is taken as it is.
pub fn parse_form_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    let jst = FixedOffset::east_opt(9 * 3600)?;
    Some(
        jst.from_local_datetime(&naive)
            .single()?
            .with_timezone(&Utc),
    )
}

/// The title rule of the `notices` table, checked before the database would refuse it.
fn title_problem(title: &str) -> Option<&'static str> {
    let n = title.trim().chars().count();
    if n == 0 {
        Some("ops.notices.title_missing")
    } else if n > 200 {
        Some("ops.notices.title_long")
    } else {
        None
    }
}

fn notice_view(ops: &OpsConsole, n: &Notice, now: DateTime<Utc>) -> Value {
    let when = match n.ends_at {
        Some(end) => format!("{} – {}", show_time(n.starts_at), show_time(end)),
        None => ops
            .t("ops.notices.since")
            .replace("{at}", &show_time(n.starts_at)),
    };
    let next: Vec<Value> = next_statuses(n, now)
        .iter()
        .map(|s| json!({"value": s, "label": ops.t(&format!("ops.status.{s}"))}))
        .collect();
    let in_window = n.kind == "maintenance"
        && n.status == "scheduled"
        && n.starts_at <= now
        && n.ends_at.is_some_and(|end| now < end);
    json!({
        "id": n.id,
        "kind": n.kind,
        "kind_label": ops.t(&format!("ops.kind.{}", n.kind)),
        "title": n.title,
        "body": n.body,
        "when": when,
        "status": n.status,
        "status_label": ops.t(&format!("ops.status.{}", n.status)),
        "emergency": n.emergency,
        "in_window": in_window,
        "next": next,
        "is_incident": n.kind == "incident",
    })
}

#[allow(clippy::too_many_arguments)]
async fn notices_page(
    ops: &OpsConsole,
    state: &AppState,
    status: StatusCode,
    maintenance: &MaintenanceForm,
    maintenance_errors: Value,
    incident: &IncidentForm,
    incident_errors: Value,
    flash: Option<String>,
) -> AppResult<HttpResponse> {
    let now = state.store.database_now().await?;
    let notices = state.store.notices_since(now - HISTORY).await?;
    let open: Vec<Value> = notices
        .iter()
        .filter(|n| !next_statuses(n, now).is_empty())
        .map(|n| notice_view(ops, n, now))
        .collect();
    let past: Vec<Value> = notices
        .iter()
        .filter(|n| next_statuses(n, now).is_empty())
        .map(|n| notice_view(ops, n, now))
        .collect();
    ops.render_status(
        state,
        status,
        "ops_notices",
        json!({
            "title": ops.t("ops.notices.title"),
            "flash": flash,
            "open": open,
            "past": past,
            "maintenance": maintenance,
            "emergency_checked": maintenance.emergency.is_some(),
            "maintenance_errors": maintenance_errors,
            "incident": incident,
            "incident_errors": incident_errors,
            "now_text": show_time(now),
        }),
    )
}

/// `GET /ops/notices`
pub async fn index(
    ops: OpsConsole,
    state: web::Data<AppState>,
    query: web::Query<DoneQuery>,
) -> AppResult<HttpResponse> {
    let flash = match query.done.as_deref() {
        Some(d @ ("maintenance" | "incident" | "update")) => {
            Some(ops.t(&format!("ops.notices.done_{d}")))
        }
        _ => None,
    };
    notices_page(
        &ops,
        &state,
        StatusCode::OK,
        &MaintenanceForm::default(),
        json!({}),
        &IncidentForm::default(),
        json!({}),
        flash,
    )
    .await
}

fn status_url(state: &AppState) -> String {
    format!("{}/status", state.settings.public_url())
}

/// `POST /ops/notices/maintenance`
pub async fn schedule(
    ops: OpsConsole,
    state: web::Data<AppState>,
    form: web::Form<MaintenanceForm>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    let emergency = form.emergency.is_some();
    let mut errors: Vec<(&str, String)> = Vec::new();
    let start = parse_form_time(&form.start);
    let end = parse_form_time(&form.end);
    if start.is_none() {
        errors.push(("start", ops.t("ops.notices.time_invalid")));
    }
    if end.is_none() {
        errors.push(("end", ops.t("ops.notices.time_invalid")));
    }
    if let Some(key) = title_problem(&form.title) {
        errors.push(("title", ops.t(key)));
    }
    if let (Some(start), Some(end)) = (start, end) {
        let now = state.store.database_now().await?;
        match check_window(now, start, end, emergency) {
            Ok(()) => {}
            Err(WindowProblem::EndsBeforeStart) => {
                errors.push(("end", ops.t("ops.notices.end_before_start")))
            }
            Err(WindowProblem::NotInFuture) => {
                errors.push(("start", ops.t("ops.notices.start_past")))
            }
            Err(WindowProblem::ShortNotice { hours }) => errors.push((
                "start",
                ops.t("ops.notices.short_notice")
                    .replace("{hours}", &hours.to_string()),
            )),
        }
    }
    let (Some(start), Some(end), true) = (start, end, errors.is_empty()) else {
        return notices_page(
            &ops,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            field_errors(&errors),
            &IncidentForm::default(),
            json!({}),
            None,
        )
        .await;
    };
    let n = schedule_maintenance(
        &state.store,
        start,
        end,
        form.title.trim(),
        form.body.trim(),
        emergency,
        &ops.operator.email,
        &status_url(&state),
    )
    .await
    .map_err(AppError::internal)?;
    crate::ops::notices::audit(
        &state.store,
        &ops.operator.email,
        &ops.ip.to_string(),
        "notice.maintenance",
        &n,
    )
    .await
    .map_err(AppError::internal)?;
    Ok(ops.redirect("/ops/notices?done=maintenance"))
}

/// `POST /ops/notices/incident`
pub async fn incident(
    ops: OpsConsole,
    state: web::Data<AppState>,
    form: web::Form<IncidentForm>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    if let Some(key) = title_problem(&form.title) {
        return notices_page(
            &ops,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &MaintenanceForm::default(),
            json!({}),
            &form,
            field_errors(&[("title", ops.t(key))]),
            None,
        )
        .await;
    }
    let n = post_incident(
        &state.store,
        form.title.trim(),
        form.body.trim(),
        &ops.operator.email,
        &status_url(&state),
    )
    .await
    .map_err(AppError::internal)?;
    crate::ops::notices::audit(
        &state.store,
        &ops.operator.email,
        &ops.ip.to_string(),
        "notice.incident",
        &n,
    )
    .await
    .map_err(AppError::internal)?;
    Ok(ops.redirect("/ops/notices?done=incident"))
}

/// `POST /ops/notices/{id}`: an incident's next state (resolved ends it), or cancelling a
/// window that has not ended.
pub async fn update(
    ops: OpsConsole,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<UpdateForm>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    let id: Uuid = path.parse().map_err(|_| AppError::not_found("notice"))?;
    let Some(current) = state.store.notice(id).await? else {
        return Err(AppError::not_found("notice"));
    };
    let now = state.store.database_now().await?;
    if !next_statuses(&current, now).contains(&form.status.as_str()) {
        return Err(AppError::conflict(
            "notice_status",
            format!(
                "this {} is {} and cannot move to {:?}",
                current.kind, current.status, form.status
            ),
        ));
    }
    let n = crate::ops::notices::update(
        &state.store,
        id,
        &form.status,
        form.body.trim(),
        &status_url(&state),
    )
    .await
    .map_err(AppError::internal)?;
    crate::ops::notices::audit(
        &state.store,
        &ops.operator.email,
        &ops.ip.to_string(),
        "notice.update",
        &n,
    )
    .await
    .map_err(AppError::internal)?;
    Ok(ops.redirect("/ops/notices?done=update"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_japan_time_unless_they_say_otherwise() {
        let t = parse_form_time("2026-12-10T02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-09T17:00:00+00:00");
        let t = parse_form_time("2026-12-10T02:00:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-09T17:00:30+00:00");
        let t = parse_form_time("2026-12-10T02:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-10T02:00:00+00:00");
        assert!(parse_form_time("tomorrow").is_none());
        assert!(parse_form_time("").is_none());
    }

    #[test]
    fn titles_are_one_to_two_hundred_characters() {
        assert_eq!(title_problem("  "), Some("ops.notices.title_missing"));
        assert_eq!(title_problem(&"メ".repeat(200)), None);
        assert_eq!(
            title_problem(&"メ".repeat(201)),
            Some("ops.notices.title_long")
        );
    }
}
