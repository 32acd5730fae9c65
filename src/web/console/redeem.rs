//! The staff redemption screen, `GET/POST /merchant/redeem`, made for a phone or a till
//! tablet: scan the coupon's QR code (or type the code), type the 6-digit check code the
//! customer's live screen shows, pick the store, and see the answer fill the screen. The
//! check code is always required here: checking it is what the screen is for. Undo is
//! `POST /merchant/redeem/{id}/undo`, within the engine's undo window.
//!
//! Each use is recorded in `redemptions` with the store, the staff user and their e-mail;
//! that table is the record, so uses are not written to the audit log as well.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{field_errors, Console};
use crate::domain::coupon_code::CouponCode;
use crate::domain::merchant::Permission;
use crate::domain::verification::{CheckCode, CheckCodePolicy};
use crate::engine::{RedeemError, UndoError};
use crate::store::{RedeemInput, RedemptionRecord, Shop, StaffCouponView};
use crate::web::error::{AppError, AppResult};
use crate::web::pages::{discount_text, show_time};
use crate::web::AppState;

/// The store last chosen on this device, so a till does not ask every time.
const STORE_COOKIE: &str = "ecoupon_store";

#[derive(Deserialize)]
pub struct RedeemQuery {
    /// A code to start from ("type the check code again" after a wrong one).
    code: Option<String>,
}

#[derive(Deserialize)]
pub struct RedeemForm {
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    check_code: String,
    #[serde(default)]
    store_id: String,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

fn step_seconds(state: &AppState) -> u64 {
    state.settings.pages.code_step.as_secs().max(1)
}

/// `text` with each `{name}` replaced.
fn fill(text: String, values: &[(&str, &str)]) -> String {
    values.iter().fold(text, |text, (name, value)| {
        text.replace(&format!("{{{name}}}"), value)
    })
}

/// The form with what was typed, and a message next to each field that was wrong.
fn form_page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    shops: &[Shop],
    values: Value,
    errors: Value,
    chosen: Option<Uuid>,
) -> AppResult<HttpResponse> {
    let single = shops.len() == 1;
    let stores: Vec<Value> = shops
        .iter()
        .map(|s| {
            json!({"id": s.id, "name": s.name, "code": s.code,
                   "selected": single || chosen == Some(s.id)})
        })
        .collect();
    console.render_status(
        state,
        status,
        "merchant_redeem",
        json!({
            "title": console.t("console.redeem.title"),
            "body_class": "console console--redeem",
            "values": values,
            "errors": errors,
            "stores": stores,
            "single_store": single,
            "step": step_seconds(state),
        }),
    )
}

/// `GET /merchant/redeem`
pub async fn form(
    req: HttpRequest,
    console: Console,
    state: web::Data<AppState>,
    query: web::Query<RedeemQuery>,
) -> AppResult<HttpResponse> {
    console.require(Permission::Redeem)?;
    let shops = state.store.shops(console.user.tenant_id).await?;
    let remembered = req
        .cookie(STORE_COOKIE)
        .and_then(|c| Uuid::parse_str(c.value()).ok());
    let code = query.code.as_deref().unwrap_or_default().trim();
    form_page(
        &console,
        &state,
        StatusCode::OK,
        &shops,
        json!({"code": code, "check_code": ""}),
        json!({}),
        remembered,
    )
}

/// `POST /merchant/redeem`: one attempt, answered with a full-screen result.
pub async fn submit(
    console: Console,
    state: web::Data<AppState>,
    form: web::Form<RedeemForm>,
) -> AppResult<HttpResponse> {
    console.require(Permission::Redeem)?;
    console.check_csrf(&form.csrf)?;
    let tenant_id = console.user.tenant_id;
    let shops = state.store.shops(tenant_id).await?;
    let mut errors = Vec::new();

    let code = match form.code.trim() {
        "" => {
            errors.push(("code", console.t("console.redeem.error.code_missing")));
            None
        }
        typed => CouponCode::parse(typed)
            .map_err(|_| errors.push(("code", console.t("console.redeem.error.code_invalid"))))
            .ok(),
    };
    let check = match form.check_code.trim() {
        "" => {
            let text = console.t("console.redeem.error.check_code_missing");
            errors.push(("check_code", text));
            None
        }
        typed => CheckCode::parse(typed)
            .map_err(|_| {
                let text = console.t("console.redeem.error.check_code_format");
                errors.push(("check_code", text));
            })
            .ok(),
    };
    // Only the tenant's own stores can be chosen; with none set up there is nothing to choose.
    let chosen = Uuid::parse_str(form.store_id.trim())
        .ok()
        .filter(|id| shops.iter().any(|s| s.id == *id));
    let store_id = match (chosen, shops.as_slice()) {
        (Some(id), _) => Some(id),
        (None, []) => None,
        (None, [only]) => Some(only.id),
        (None, _) => {
            errors.push(("store_id", console.t("console.redeem.error.store_missing")));
            None
        }
    };
    let (Some(code), Some(check), true) = (code, check, errors.is_empty()) else {
        return form_page(
            &console,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &shops,
            json!({"code": form.code.trim(), "check_code": form.check_code.trim()}),
            field_errors(&errors),
            store_id,
        );
    };

    let input = RedeemInput {
        store_id,
        staff: Some(&console.user.email),
        staff_user_id: Some(console.user.id),
        check_policy: CheckCodePolicy::Always,
        check_code: Some(&check),
        check_step_seconds: step_seconds(&state),
        ..RedeemInput::default()
    };
    let result = match state.engine.redeem(tenant_id, &code, &input).await {
        Err(RedeemError::Store(e)) => return Err(e.into()),
        // The staff screen sends no consumer token, so these cannot happen.
        Err(e @ (RedeemError::TokenUsed | RedeemError::TokenInvalid)) => {
            return Err(AppError::internal(e))
        }
        other => other,
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    // The use is already settled: if describing it fails, staff still see the outcome.
    let view = match outcome {
        "unknown_code" => None,
        _ => state
            .store
            .staff_coupon_view(tenant_id, code.as_str())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the redeemed coupon could not be described");
                None
            }),
    };
    let mut data = describe(
        &console,
        &state,
        outcome,
        view.as_ref(),
        result.as_ref().ok(),
    );
    if let Some(map) = data.as_object_mut() {
        map.insert("code".into(), json!(code.display_grouped()));
        if outcome == "wrong_check_code" {
            let q: String = form_urlencoded::byte_serialize(code.as_str().as_bytes()).collect();
            map.insert(
                "retry_url".into(),
                json!(format!("/merchant/redeem?code={q}")),
            );
        }
    }
    let mut res = result_page(&console, &state, data)?;
    if let Some(id) = store_id {
        let cookie = Cookie::build(STORE_COOKIE, id.to_string())
            .path("/merchant")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.secure_cookies)
            .max_age(CookieDuration::days(400))
            .finish();
        res.add_cookie(&cookie).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// What the result screen says for `outcome`.
fn describe(
    console: &Console,
    state: &AppState,
    outcome: &str,
    view: Option<&StaffCouponView>,
    redeemed: Option<&RedemptionRecord>,
) -> Value {
    let t = |key: &str| console.t(&format!("console.redeem.outcome.{key}"));
    let seconds = step_seconds(state).to_string();
    let (detail, advice) = match outcome {
        "already_used" => {
            let at = view.and_then(|v| v.last_used_at).map(show_time);
            let store = view.and_then(|v| v.last_used_store.clone());
            let detail = match (at, store) {
                (Some(at), Some(store)) => Some(fill(
                    t("already_used_at"),
                    &[("at", &at), ("store", &store)],
                )),
                (Some(at), None) => Some(fill(t("already_used_at_no_store"), &[("at", &at)])),
                (None, _) => None,
            };
            (detail, Some(t("already_used_advice")))
        }
        "expired" => (
            view.and_then(|v| v.expires_at)
                .map(|at| fill(t("expired_at"), &[("at", &show_time(at))])),
            None,
        ),
        "not_yet_valid" => (
            view.map(|v| fill(t("not_yet_valid_at"), &[("at", &show_time(v.valid_from))])),
            None,
        ),
        "wrong_check_code" => (
            None,
            Some(fill(t("wrong_check_code_advice"), &[("seconds", &seconds)])),
        ),
        "unknown_code" => (None, Some(t("unknown_code_advice"))),
        "too_many_check_code_attempts" => (None, Some(t("too_many_check_code_attempts_advice"))),
        _ => (None, None),
    };
    let multi_use = view.is_some_and(|v| v.uses_per_coupon > 1);
    let mut data = json!({
        "outcome": outcome,
        "tone": if outcome == "ok" { "ok" } else { "bad" },
        "ok": outcome == "ok",
        "headline": t(outcome),
        "detail": detail,
        "advice": advice,
        "campaign": view.map(|v| v.campaign_name.clone()),
        // Only on success: a discount in large print on a refusal reads like "go ahead".
        "discount": view
            .filter(|_| outcome == "ok")
            .and_then(|v| discount_text(console.lang, v.discount.as_ref())),
    });
    if let (Some(r), Some(map)) = (redeemed, data.as_object_mut()) {
        let window = chrono::TimeDelta::from_std(state.settings.engine.undo_window)
            .unwrap_or(chrono::TimeDelta::zero());
        let until = r
            .redeemed_at
            .checked_add_signed(window)
            .unwrap_or(r.redeemed_at);
        map.insert(
            "undo_url".into(),
            json!(format!("/merchant/redeem/{}/undo", r.id)),
        );
        map.insert(
            "undo_until".into(),
            json!(fill(
                console.t("console.redeem.undo_until"),
                &[("at", &show_time_seconds(until))]
            )),
        );
        if multi_use {
            let left = fill(
                console.t("console.redeem.uses_left"),
                &[("n", &r.uses_left.to_string())],
            );
            map.insert("uses_left".into(), json!(left));
        }
    }
    data
}

/// Japan time to the second: an undo deadline minutes away needs more than `show_time`.
fn show_time_seconds(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&crate::web::pages::jst())
        .format("%H:%M:%S")
        .to_string()
}

fn result_page(console: &Console, state: &AppState, mut data: Value) -> AppResult<HttpResponse> {
    if let Some(map) = data.as_object_mut() {
        map.insert("title".into(), json!(console.t("console.redeem.title")));
        map.insert("body_class".into(), json!("console console--redeem"));
    }
    console.render(state, "merchant_redeem_result", data)
}

/// `POST /merchant/redeem/{id}/undo`: gives the use back, within the undo window.
pub async fn undo(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    console.require(Permission::Redeem)?;
    console.check_csrf(&form.csrf)?;
    let t = |key: &str| console.t(&format!("console.redeem.outcome.{key}"));
    let (outcome, tone, advice) = match state
        .engine
        .undo_redemption(console.user.tenant_id, *id)
        .await
    {
        Ok(_) => ("undone", "info", Some(t("undone_advice"))),
        Err(UndoError::AlreadyUndone) => ("already_undone", "info", None),
        Err(UndoError::WindowPassed) => {
            let minutes = (state.settings.engine.undo_window.as_secs() / 60).to_string();
            let advice = fill(t("undo_window_passed_advice"), &[("minutes", &minutes)]);
            ("undo_window_passed", "bad", Some(advice))
        }
        // Another tenant's redemption is as absent as a missing one.
        Err(UndoError::NotFound) => return Err(AppError::not_found("redemption")),
        Err(UndoError::Store(e)) => return Err(e.into()),
    };
    result_page(
        &console,
        &state,
        json!({
            "outcome": outcome,
            "tone": tone,
            "info": tone == "info",
            "headline": t(outcome),
            "advice": advice,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::redemption::RedeemRejection;
    use crate::domain::verification::CheckCodeRejection;
    use crate::web::i18n::{message, Lang};

    /// Every refusal the engine can give has a headline in both catalogues.
    #[test]
    fn every_outcome_has_words() {
        let outcomes = [
            RedeemRejection::AlreadyUsed.code(),
            RedeemRejection::Expired.code(),
            RedeemRejection::NotYetValid.code(),
            CheckCodeRejection::Wrong.code(),
            CheckCodeRejection::Required.code(),
            "unknown_code",
            "ok",
            "undone",
            "already_undone",
            "undo_window_passed",
        ];
        for lang in [Lang::Ja, Lang::En] {
            for o in outcomes {
                let key = format!("console.redeem.outcome.{o}");
                assert_ne!(message(lang, &key), key, "{key} in {lang:?}");
            }
        }
    }

    #[test]
    fn fills_placeholders() {
        assert_eq!(
            fill(
                "{at} に {store} で".into(),
                &[("at", "12:00"), ("store", "渋谷")]
            ),
            "12:00 に 渋谷 で"
        );
    }
}
