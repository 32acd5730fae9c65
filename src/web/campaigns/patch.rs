//! `PATCH /api/v1/campaigns/{id}`: any editable field, and a status action, in one
//! change under the campaign's row lock. The fields are those of the console's editor,
//! judged by the same domain rules (`domain::campaign::patch`); it is audited and
//! announced (live dashboards, other nodes) as the console's edits are.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{campaign_error, CampaignView};
use crate::domain::campaign::{CampaignPatch, PatchError, Stored};
use crate::store::{AuditEntry, CampaignRecord, CampaignRewrite, EditOutcome, ImageUpdate};
use crate::web::auth::ApiAuth;
use crate::web::client_ip::client_ip;
use crate::web::error::{AppError, AppResult};
use crate::web::json::ApiJson;
use crate::web::openapi::ErrorBody;
use crate::web::AppState;

fn stored(c: &CampaignRecord) -> Stored<'_> {
    Stored {
        name: &c.name,
        description: &c.description,
        terms: &c.terms,
        discount: c.discount.as_ref(),
        rules: &c.rules,
        status: c.status,
        signin: c.signin,
        codes: &c.codes,
    }
}

/// The API's names of the members an edit changed, for the audit log.
fn changed(before: &CampaignRecord, after: &CampaignRecord, public_url: &str) -> Vec<String> {
    let view = |c: &CampaignRecord| serde_json::to_value(CampaignView::new(c, public_url, None));
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (view(before), view(after)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = a
        .iter()
        .filter(|(k, v)| !matches!(k.as_str(), "updated_at" | "status") && b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    if before.image_id != after.image_id {
        names.push("image".into());
    }
    names
}

/// Change a campaign: any of its fields, and its status by an action.
///
/// Members left out keep their value; `null` gives a member the value a new campaign
/// gets when it is left out (no discount, no end, claims open now, one per consumer …),
/// except `name` and `total_limit`, which cannot be null.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", operation_id = "updateCampaign", tag = "campaigns",
    params(("id" = Uuid, Path, description = "The campaign")),
    request_body = CampaignPatch,
    responses(
        (status = 200, description = "The changed campaign", body = CampaignView),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the action does not apply to the \
            campaign's status; `limit_below_issued`: more coupons are already issued", body = ErrorBody),
        (status = 422, description = "`empty_patch`: nothing to change; `invalid_action`, \
            `invalid_name`, `invalid_description`, `invalid_terms`, `invalid_discount_amount`, \
            `invalid_discount_percent`, `invalid_discount_text`, `invalid_total_limit`, \
            `invalid_per_consumer_limit`, `invalid_claim_window`, `invalid_use_window`, \
            `invalid_valid_for`, `invalid_uses_per_coupon`, `invalid_win_probability`, \
            `invalid_signin`, `invalid_code_length`, `invalid_code_prefix`, \
            `invalid_code_charset`: a field is out of range (named in \"fields\"); \
            `invalid_image`: image can only be null", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn update(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: ApiJson<CampaignPatch>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let patch = body.into_inner().parse().map_err(|e| match e {
        PatchError::Empty => {
            AppError::invalid("empty_patch", "give an action and/or a field to change")
        }
        PatchError::Campaign(e) => campaign_error(e),
    })?;
    let image = match patch.image() {
        None => ImageUpdate::Keep,
        Some(true) => ImageUpdate::Remove,
        Some(false) => {
            let message = "image can only be null (which removes it); set one with \
                           PUT /api/v1/campaigns/{id}/image";
            return Err(AppError::invalid("invalid_image", message).field("image"));
        }
    };
    // For the audit's list of what changed, as the console's editor reads it first too.
    let before = state
        .store
        .campaign(auth.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    let (action, fields) = (patch.action(), patch.changes_fields());
    let now = state.engine.clock().now();
    let edit: CampaignRewrite = Box::new(move |current| patch.apply(&stored(current), now));
    let (record, stats) = match state
        .store
        .rewrite_campaign(auth.tenant_id, *id, edit, image)
        .await?
    {
        EditOutcome::Updated(record, stats) => (record, stats),
        EditOutcome::NotFound => return Err(AppError::not_found("campaign")),
        EditOutcome::Refused(e) => return Err(campaign_error(e)),
    };
    state.engine.campaign_changed(&record);
    let public_url = state.settings.public_url();
    let (actor, ip) = (
        format!("api-key {}", auth.key_id),
        client_ip(&req, &state.settings).to_string(),
    );
    let mut entries = Vec::new();
    if fields {
        let detail =
            json!({"name": record.name, "changed": changed(&before, &record, &public_url)});
        entries.push(("campaign.update", detail));
    }
    if let Some(action) = action {
        let detail = json!({"name": record.name, "action": action, "status": record.status});
        entries.push(("campaign.status", detail));
    }
    for (what, detail) in entries {
        state
            .store
            .audit(AuditEntry {
                tenant_id: Some(auth.tenant_id),
                actor_id: Some(auth.key_id),
                actor: &actor,
                action: what,
                target: &record.id.to_string(),
                ip: &ip,
                detail,
            })
            .await?;
    }
    Ok(HttpResponse::Ok().json(CampaignView::new(&record, &public_url, Some(stats))))
}
