//! Operators on the console: the list, approving a pending request (by a different active
//! operator: the signed-in one, never the one who is pending) and disabling, which ends
//! the disabled operator's sessions at once. Every step goes to the audit log with the
//! same actions as `ecoupon operator …`. New requests come from the CLI, which shows the
//! generated password once to the person who ran it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{show_time, OpsConsole};
use crate::web::error::{AppError, AppResult};
use crate::web::AppState;

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn operators_page(
    ops: &OpsConsole,
    state: &AppState,
    status: StatusCode,
    flash: Option<String>,
    error: Option<String>,
) -> AppResult<HttpResponse> {
    let rows: Vec<Value> = state
        .store
        .operator_listing()
        .await?
        .into_iter()
        .map(|l| {
            let op = &l.operator;
            let is_self = op.id == ops.operator.id;
            json!({
                "id": op.id,
                "email": op.email,
                "status": op.status,
                "status_label": ops.t(&format!("ops.operators.status_{}", op.status)),
                "badge": match op.status.as_str() {
                    "active" => "c-badge--active",
                    "pending" => "c-badge--paused",
                    _ => "c-badge--ended",
                },
                "mfa": op.totp_enabled,
                "requested_by": l.requested_by,
                "approved_by": op.approved_by,
                "created": show_time(op.created_at),
                "last_sign_in": l.last_sign_in_at.map(show_time),
                "is_self": is_self,
                "can_approve": op.status == "pending" && !is_self,
                "can_disable": op.status != "disabled" && !is_self,
            })
        })
        .collect();
    let pending = rows.iter().filter(|r| r["status"] == "pending").count();
    ops.render_status(
        state,
        status,
        "ops_operators",
        json!({
            "title": ops.t("ops.operators.title"),
            "operators": rows,
            "pending": pending,
            "flash": flash,
            "error": error,
        }),
    )
}

/// `GET /ops/operators`
pub async fn index(
    ops: OpsConsole,
    state: web::Data<AppState>,
    query: web::Query<DoneQuery>,
) -> AppResult<HttpResponse> {
    let flash = match query.done.as_deref() {
        Some(d @ ("approved" | "disabled")) => Some(ops.t(&format!("ops.operators.done_{d}"))),
        _ => None,
    };
    operators_page(&ops, &state, StatusCode::OK, flash, None).await
}

fn target_id(path: &str) -> AppResult<Uuid> {
    path.parse().map_err(|_| AppError::not_found("operator"))
}

/// `POST /ops/operators/{id}/approve`
pub async fn approve(
    ops: OpsConsole,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    let id = target_id(&path)?;
    let target = state
        .store
        .operator_by_id(id)
        .await?
        .ok_or_else(|| AppError::not_found("operator"))?;
    let refusal = if target.id == ops.operator.id {
        Some("ops.operators.not_yourself")
    } else if target.status != "pending" {
        Some("ops.operators.not_pending")
    } else {
        None
    };
    // The store checks again, in one statement: pending, not the approver, approver active.
    if refusal.is_some() || !state.store.approve_operator(id, ops.operator.id).await? {
        let key = refusal.unwrap_or("ops.operators.not_pending");
        return operators_page(&ops, &state, StatusCode::CONFLICT, None, Some(ops.t(key))).await;
    }
    ops.audit(&state, "operator.approve", &target.email, json!({}))
        .await?;
    Ok(ops.redirect("/ops/operators?done=approved"))
}

/// `POST /ops/operators/{id}/disable`: the operator's sessions end in the same
/// transaction, so their next request is signed out.
pub async fn disable(
    ops: OpsConsole,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    let id = target_id(&path)?;
    let target = state
        .store
        .operator_by_id(id)
        .await?
        .ok_or_else(|| AppError::not_found("operator"))?;
    // Disabling oneself could leave nobody to approve anyone; another operator does it.
    if target.id == ops.operator.id {
        let text = ops.t("ops.operators.not_yourself_disable");
        return operators_page(&ops, &state, StatusCode::CONFLICT, None, Some(text)).await;
    }
    if !state.store.disable_operator(id).await? {
        let text = ops.t("ops.operators.already_disabled");
        return operators_page(&ops, &state, StatusCode::CONFLICT, None, Some(text)).await;
    }
    ops.audit(&state, "operator.disable", &target.email, json!({}))
        .await?;
    Ok(ops.redirect("/ops/operators?done=disabled"))
}
