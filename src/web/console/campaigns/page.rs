//! The campaign page, `GET /merchant/campaigns/{id}`: counts, the rules at a glance, the
//! status with the actions that make sense from it (`POST …/status`), the claim URL and
//! its printable QR codes, per campaign and per store (`GET …/qr.png`, `…/qr.svg`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{draft, form, load};
use crate::domain::campaign::{CampaignError, StatusAction};
use crate::domain::merchant::Permission;
use crate::store::{CampaignActivity, CampaignChange, CampaignRecord, CampaignStats, EditOutcome};
use crate::web::console::Console;
use crate::web::error::{AppError, AppResult};
use crate::web::images::image_url;
use crate::web::pages::{discount_text, jst, show_time};
use crate::web::qr::{image_response, QrFormat};
use crate::web::AppState;

/// What a poster's QR opens: the claim page, optionally naming the store it hangs in.
fn claim_url(state: &AppState, c: &CampaignRecord, store: Option<&str>) -> String {
    let base = format!("{}/c/{}", state.settings.public_url(), c.slug);
    match store {
        Some(code) => format!("{base}?store={code}"),
        None => base,
    }
}

/// The rules as sentences, for the page's summary.
fn facts(console: &Console, c: &CampaignRecord) -> Vec<Value> {
    let t = |k: &str| console.t(&format!("console.campaigns.{k}"));
    let none = t("none");
    let r = &c.rules;
    let window = |start: Option<chrono::DateTime<chrono::Utc>>, end| match (start, end) {
        (None, None) => none.clone(),
        (s, e) => format!(
            "{} 〜 {}",
            s.map(show_time).unwrap_or_default(),
            e.map(show_time).unwrap_or_default()
        ),
    };
    let field = |k: &str| t(&format!("field.{k}"));
    // An example says more about a code format than its three settings.
    let example = c.codes.generate(&mut rand::thread_rng()).display_grouped();
    [
        (
            field("discount_value"),
            discount_text(console.lang, c.discount.as_ref()).unwrap_or_else(|| none.clone()),
        ),
        (field("total_limit"), r.total_limit().to_string()),
        (
            field("per_consumer_limit"),
            r.per_consumer_limit().to_string(),
        ),
        (field("uses_per_coupon"), r.uses_per_coupon().to_string()),
        (
            field("win_probability"),
            r.win_probability()
                .map(|p| format!("{}%", (p * 10_000.0).round() / 100.0))
                .unwrap_or_else(|| none.clone()),
        ),
        (
            t("claim_period"),
            window(Some(r.claim_starts_at()), r.claim_ends_at()),
        ),
        (t("use_period"), window(r.use_starts_at(), r.use_ends_at())),
        (
            field("valid_for_days"),
            r.valid_for_seconds()
                .map(|s| t("days").replace("{n}", &form::days(s)))
                .unwrap_or_else(|| none.clone()),
        ),
        (
            field("signin"),
            t(&format!("option.signin.{}", c.signin.as_str())),
        ),
        (t("example_code"), example),
    ]
    .into_iter()
    .map(|(label, value)| json!({"label": label, "value": value}))
    .collect()
}

/// A time of day as the live parts show it: `hh:mm:ss`, Japan time like the rest of the console.
fn clock(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&jst()).format("%H:%M:%S").to_string()
}

/// What the live parts draw before (and without) the socket: the per-minute chart as
/// data- attributes (comma-separated counts, oldest first), the feed, the sold-out marker.
fn live_parts(activity: &CampaignActivity) -> Value {
    let join = |f: fn(&crate::store::MinuteActivity) -> i64| {
        activity
            .minutes
            .iter()
            .map(|m| f(m).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let total = |f: fn(&crate::store::MinuteActivity) -> i64| -> i64 {
        activity.minutes.iter().map(f).sum()
    };
    json!({
        "start": activity.minutes.first().map(|m| m.minute.timestamp_millis()),
        "claims": join(|m| m.claims),
        "redemptions": join(|m| m.redemptions),
        "claims_total": total(|m| m.claims),
        "redemptions_total": total(|m| m.redemptions),
        "now": chrono::Utc::now().timestamp_millis(),
        "feed": activity.feed.iter().map(|r| json!({
            "at": r.at.to_rfc3339(),
            "time": clock(r.at),
            "store": r.store,
            "staff": r.staff,
        })).collect::<Vec<_>>(),
        "sold_out_at": activity.sold_out_at.map(clock),
        "sold_out_iso": activity.sold_out_at.map(|t| t.to_rfc3339()),
    })
}

async fn render_page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    c: &CampaignRecord,
    notice: Option<String>,
    error: Option<String>,
) -> AppResult<HttpResponse> {
    let CampaignStats {
        issued,
        redeemed,
        remaining,
    } = state
        .store
        .campaign_stats(c.id, c.rules.total_limit())
        .await?;
    let activity = state
        .store
        .campaign_activity(c.id, c.rules.total_limit())
        .await?;
    let base = format!("/merchant/campaigns/{}", c.id);
    let stores: Vec<Value> = state
        .store
        .poster_stores(console.user.tenant_id)
        .await?
        .into_iter()
        .map(|s| {
            let q: String = form_urlencoded::byte_serialize(s.code.as_bytes()).collect();
            json!({"code": s.code, "name": s.name,
                   "png": format!("{base}/qr.png?store={q}"), "svg": format!("{base}/qr.svg?store={q}")})
        })
        .collect();
    let manage = console.can(Permission::ManageCampaigns);
    let actions: Vec<Value> = c
        .status
        .actions()
        .filter(|_| manage)
        .map(|a| {
            let confirm = (a == StatusAction::End).then(|| console.t("console.campaigns.confirm_end"));
            json!({"action": a.as_str(), "label": console.t(&format!("console.campaigns.action.{a}")),
                   "confirm": confirm})
        })
        .collect();
    console.render_status(
        state,
        status,
        "merchant_campaign_page",
        json!({
            "title": c.name,
            "id": c.id,
            "name": c.name,
            "status": c.status.as_str(),
            "status_label": console.t(&format!("console.status.{}", c.status)),
            "issued": issued,
            "redeemed": redeemed,
            "remaining": remaining,
            "total_limit": c.rules.total_limit(),
            "claim_url": claim_url(state, c, None),
            "qr_png": format!("{base}/qr.png"),
            "qr_svg": format!("{base}/qr.svg"),
            "stores": stores,
            "actions": actions,
            "can_edit": manage,
            "image_url": c.image_id.map(image_url),
            "facts": facts(console, c),
            "updated": show_time(c.updated_at),
            "notice": notice,
            "error": error,
            "live": live_parts(&activity),
        }),
    )
}

#[derive(Deserialize)]
pub struct ShowQuery {
    saved: Option<String>,
}

/// `GET /merchant/campaigns/{id}`; `?saved=` names what was just done, for the notice.
pub async fn show(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ShowQuery>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ViewStats)?;
    let c = load(&state, &console, *id).await?;
    let notice = match query.saved.as_deref() {
        Some(done @ ("created" | "updated" | "activate" | "pause" | "resume" | "end")) => {
            Some(console.t(&format!("console.campaigns.saved.{done}")))
        }
        _ => None,
    };
    render_page(&console, &state, StatusCode::OK, &c, notice, None).await
}

/// The campaign page again, with why the action was refused.
async fn refused(
    console: &Console,
    state: &AppState,
    id: Uuid,
    e: &CampaignError,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let c = load(state, console, id).await?;
    let text = draft::error_message(console.lang, e);
    render_page(console, state, status, &c, None, Some(text)).await
}

#[derive(Deserialize)]
pub struct StatusForm {
    action: String,
    csrf: String,
}

/// `POST /merchant/campaigns/{id}/status`: activate, pause, resume or end, through
/// `CampaignStatus::apply` under the campaign's row lock.
pub async fn status(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    form: web::Form<StatusForm>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    console.check_csrf(&form.csrf)?;
    let action: StatusAction = match form.action.parse() {
        Ok(a) => a,
        Err(e) => {
            return refused(&console, &state, *id, &e, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    };
    let edit = Box::new(move |current: &CampaignRecord, _: &CampaignStats| {
        Ok(CampaignChange {
            status: current.status.apply(action)?,
            total_limit: current.rules.total_limit(),
        })
    });
    match state
        .store
        .edit_campaign(console.user.tenant_id, *id, edit)
        .await?
    {
        EditOutcome::Updated(record, _) => {
            state.engine.campaign_changed(&record);
            console
                .audit(
                    &state,
                    "campaign.status",
                    &record.id.to_string(),
                    json!({"name": record.name, "action": action, "status": record.status}),
                )
                .await?;
            let to = format!("/merchant/campaigns/{}?saved={action}", record.id);
            Ok(console.redirect(&to))
        }
        EditOutcome::NotFound => Err(AppError::not_found("campaign")),
        EditOutcome::Refused(e) => refused(&console, &state, *id, &e, StatusCode::CONFLICT).await,
    }
}

#[derive(Deserialize)]
pub struct QrQuery {
    store: Option<String>,
}

/// Store codes as the database allows them (`^[A-Z0-9-]{1,16}$`), so they go into a URL
/// and a file name as they are.
fn store_code(code: &str) -> bool {
    (1..=16).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

async fn qr(
    console: Console,
    state: &AppState,
    id: Uuid,
    store: Option<&str>,
    format: QrFormat,
) -> AppResult<HttpResponse> {
    console.require(Permission::ViewStats)?;
    let c = load(state, &console, id).await?;
    if let Some(code) = store {
        if !store_code(code)
            || !state
                .store
                .poster_store_exists(console.user.tenant_id, code)
                .await?
        {
            return Err(AppError::not_found("store"));
        }
    }
    // Behind a sign-in: no shared cache may keep it.
    let mut res = image_response(&claim_url(state, &c, store), format, "private, max-age=300")?;
    let ext = match format {
        QrFormat::Png => "png",
        QrFormat::Svg => "svg",
    };
    let suffix = store.map(|s| format!("-{s}")).unwrap_or_default();
    let disposition = format!("inline; filename=\"qr-{}{suffix}.{ext}\"", c.slug);
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(res)
}

/// `GET /merchant/campaigns/{id}/qr.png[?store=CODE]`
pub async fn qr_png(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<QrQuery>,
) -> AppResult<HttpResponse> {
    qr(console, &state, *id, query.store.as_deref(), QrFormat::Png).await
}

/// `GET /merchant/campaigns/{id}/qr.svg[?store=CODE]`
pub async fn qr_svg(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<QrQuery>,
) -> AppResult<HttpResponse> {
    qr(console, &state, *id, query.store.as_deref(), QrFormat::Svg).await
}
