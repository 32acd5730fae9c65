//! The campaign editor: `GET /merchant/campaigns/new`, `POST /merchant/campaigns`,
//! `GET /merchant/campaigns/{id}/edit`, `POST /merchant/campaigns/{id}` (this file), and
//! the campaign page with its status actions and QR posters ([`page`]).
//!
//! The form is parsed into the same `CampaignDraft` as the API's JSON ([`form`]), so the
//! console and the API obey one set of rules. A campaign and its image are written in
//! one transaction: a bad image (or any bad field) saves nothing.

mod draft;
mod fields;
mod form;
pub mod page;
mod preview;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

pub use page::{qr_png, qr_svg, show, status};

use super::{field_errors, Console};
use crate::domain::campaign::{CampaignError, NewCampaign};
use crate::domain::image::ImageKind;
use crate::domain::merchant::Permission;
use crate::store::{CampaignRecord, EditOutcome, ImageUpdate, NewImage};
use crate::web::error::{AppError, AppResult};
use crate::web::i18n::Lang;
use crate::web::images::image_url;
use crate::web::AppState;
use draft::FieldError;
use form::FormValues;
use preview::PreviewContext;

/// A tenant's campaign, or 404 (another tenant's id included).
async fn load(state: &AppState, console: &Console, id: Uuid) -> AppResult<CampaignRecord> {
    state
        .store
        .campaign(console.user.tenant_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))
}

/// The editor, new (`editing` None) or for a stored campaign, showing `values` with
/// `errors` next to their inputs.
async fn render_form(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    values: &FormValues,
    errors: &[FieldError],
    editing: Option<&CampaignRecord>,
    image_again: bool,
) -> AppResult<HttpResponse> {
    let tenant_id = console.user.tenant_id;
    let theme = state.store.theme(tenant_id).await?;
    let issued = match editing {
        Some(c) => {
            state
                .store
                .campaign_stats(c.id, c.rules.total_limit())
                .await?
                .issued
        }
        None => 0,
    };
    let image = editing.and_then(|c| c.image_id).map(image_url);
    let ctx = PreviewContext {
        shop: theme.as_ref().map(|t| t.tenant_name.clone()),
        logo_url: theme.as_ref().and_then(|t| t.logo_image_id).map(image_url),
        image_url: image.clone(),
        issued,
    };
    let (title, action, back) = match editing {
        Some(c) => (
            console.t("console.campaigns.edit_title"),
            format!("/merchant/campaigns/{}", c.id),
            format!("/merchant/campaigns/{}", c.id),
        ),
        None => (
            console.t("console.campaigns.new_title"),
            "/merchant/campaigns".to_owned(),
            "/merchant".to_owned(),
        ),
    };
    let summary: Vec<Value> = errors
        .iter()
        .map(|(field, text)| {
            let label = console.t(&format!("console.campaigns.field.{field}"));
            json!({"field": field, "text": format!("{label}: {text}")})
        })
        .collect();
    console.render_status(
        state,
        status,
        "merchant_campaign_form",
        json!({
            "title": title,
            "creating": editing.is_none(),
            "action": action,
            "back": back,
            "groups": fields::groups(console.lang, values, errors, editing.is_none()),
            "errors": field_errors(errors),
            "error_summary": summary,
            "image_url": image,
            "image_again": image_again,
            "issued": issued,
            "previews": preview::panels(console.lang, values, &ctx),
            "theme_css": crate::web::pages::theme_url(tenant_id),
        }),
    )
}

/// The uploaded image, or the message for the image input.
fn upload(
    console: &Console,
    image: Option<Result<(ImageKind, Vec<u8>), crate::domain::image::ImageError>>,
) -> (Option<(ImageKind, Vec<u8>)>, Option<FieldError>) {
    match image {
        None => (None, None),
        Some(Ok(ok)) => (Some(ok), None),
        Some(Err(e)) => {
            let text = console.t(&format!("console.campaigns.error.{}", e.code()));
            (None, Some(("image", text)))
        }
    }
}

/// `GET /merchant/campaigns`: the list is the console's home. (A refused new-campaign
/// form was posted here, so its language switch links here too.)
pub async fn index(req: HttpRequest) -> HttpResponse {
    let query = req.query_string();
    let to = if query.is_empty() {
        "/merchant".to_owned()
    } else {
        format!("/merchant?{query}")
    };
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, to))
        .finish()
}

/// A new campaign's form values under the form's rules and then the domain's: the
/// campaign, and every message the form would show.
fn judge(
    values: &FormValues,
    lang: Lang,
    now: DateTime<Utc>,
) -> (Result<NewCampaign, Vec<CampaignError>>, Vec<FieldError>) {
    let (draft, problems) = draft::to_draft(values, lang, true, None);
    let parsed = draft::parse_all(draft, now);
    let domain: &[CampaignError] = parsed.as_ref().err().map_or(&[], |e| e.as_slice());
    let errors = draft::merge(problems, domain, lang);
    (parsed, errors)
}

/// A new-campaign body (multipart) read and judged as [`create`] does before its CSRF
/// check, image and database: the field errors the form would show (none: it would be
/// saved). No state, so the `campaign_form` fuzz target and its property test
/// (`tests/api/fuzz_twins.rs`) drive the multipart reader and both sets of rules with it.
pub async fn judge_new(
    body: Multipart,
    lang: Lang,
    now: DateTime<Utc>,
) -> AppResult<Vec<(&'static str, String)>> {
    let sent = form::read(body).await?;
    Ok(judge(&sent.values, lang, now).1)
}

/// `GET /merchant/campaigns/new`
pub async fn new_form(console: Console, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    let values = FormValues::blank();
    render_form(&console, &state, StatusCode::OK, &values, &[], None, false).await
}

/// `POST /merchant/campaigns` (multipart: the fields and an optional image).
pub async fn create(
    console: Console,
    state: web::Data<AppState>,
    body: Multipart,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    let sent = form::read(body).await?;
    console.check_csrf(&sent.csrf)?;
    let (parsed, mut errors) = judge(&sent.values, console.lang, state.engine.clock().now());
    let (image, image_problem) = upload(&console, sent.image);
    errors.extend(image_problem);
    let campaign = match parsed {
        Ok(campaign) if errors.is_empty() => campaign,
        _ => {
            let again = image.is_some();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render_form(&console, &state, status, &sent.values, &errors, None, again).await;
        }
    };
    let new_image = image.as_ref().map(|(kind, bytes)| NewImage {
        content_type: kind.content_type(),
        bytes,
    });
    let record = state
        .store
        .insert_campaign_with_image(
            Uuid::new_v4(),
            console.user.tenant_id,
            &crate::domain::campaign::new_slug(),
            &campaign,
            new_image,
        )
        .await?;
    console
        .audit(
            &state,
            "campaign.create",
            &record.id.to_string(),
            json!({"name": record.name, "slug": record.slug, "status": record.status,
                   "image": record.image_id.is_some()}),
        )
        .await?;
    Ok(console.redirect(&format!("/merchant/campaigns/{}?saved=created", record.id)))
}

/// `GET /merchant/campaigns/{id}/edit`
pub async fn edit_form(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    let current = load(&state, &console, *id).await?;
    let values = FormValues::of(&current);
    render_form(
        &console,
        &state,
        StatusCode::OK,
        &values,
        &[],
        Some(&current),
        false,
    )
    .await
}

/// The inputs whose shown value an edit changed, for the audit log.
fn changed(before: &CampaignRecord, after: &CampaignRecord) -> Vec<String> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (
        serde_json::to_value(FormValues::of(before)),
        serde_json::to_value(FormValues::of(after)),
    ) else {
        return Vec::new();
    };
    let mut names: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    if before.image_id != after.image_id {
        names.push("image".into());
    }
    names
}

/// `POST /merchant/campaigns/{id}` (multipart): every editable field; the status moves
/// only through its actions.
pub async fn update(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: Multipart,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    let sent = form::read(body).await?;
    console.check_csrf(&sent.csrf)?;
    let current = load(&state, &console, *id).await?;
    let (draft, problems) = draft::to_draft(
        &sent.values,
        console.lang,
        false,
        Some(current.rules.params()),
    );
    let parsed = draft::parse_all(draft, state.engine.clock().now());
    let (image, image_problem) = upload(&console, sent.image);
    let domain: &[CampaignError] = parsed.as_ref().err().map_or(&[], |e| e.as_slice());
    let mut errors = draft::merge(problems, domain, console.lang);
    errors.extend(image_problem);
    let again = image.is_some();
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let fields = match parsed {
        Ok(fields) if errors.is_empty() => fields,
        _ => {
            let (v, c) = (&sent.values, Some(&current));
            return render_form(&console, &state, unprocessable, v, &errors, c, again).await;
        }
    };
    let image_update = match &image {
        Some((kind, bytes)) => ImageUpdate::Replace(NewImage {
            content_type: kind.content_type(),
            bytes,
        }),
        None if sent.remove_image => ImageUpdate::Remove,
        None => ImageUpdate::Keep,
    };
    let outcome = state
        .store
        .edit_campaign_fields(console.user.tenant_id, current.id, &fields, image_update)
        .await?;
    match outcome {
        EditOutcome::Updated(record, _) => {
            state.engine.campaign_changed(&record);
            console
                .audit(
                    &state,
                    "campaign.update",
                    &record.id.to_string(),
                    json!({"name": record.name, "changed": changed(&current, &record)}),
                )
                .await?;
            Ok(console.redirect(&format!("/merchant/campaigns/{}?saved=updated", record.id)))
        }
        EditOutcome::NotFound => Err(AppError::not_found("campaign")),
        // Only the limit is checked under the lock (against coupons issued meanwhile).
        EditOutcome::Refused(e) => {
            let errors = draft::merge(Vec::new(), &[e], console.lang);
            let (v, c) = (&sent.values, Some(&current));
            render_form(&console, &state, unprocessable, v, &errors, c, again).await
        }
    }
}
