//! `/api/v1/campaigns`: create, read and change campaigns.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::AppState;
use crate::domain::campaign::{
    CampaignDraft, CampaignError, CampaignStatus, Discount, NewCampaign, RawDiscount, RulesParams,
    StatusAction,
};
use crate::store::{CampaignChange, CampaignRecord, CampaignStats, EditOutcome};
use crate::web::error::{AppError, AppResult};
use crate::web::openapi::ErrorBody;

/// The campaign as the API shows it. Borrows the record: a stats poll during a sale
/// serialises the cached row without copying it.
#[derive(Serialize, ToSchema)]
#[schema(as = Campaign)]
pub struct CampaignView<'a> {
    id: Uuid,
    slug: &'a str,
    /// The consumer page where coupons are claimed.
    claim_url: String,
    name: &'a str,
    description: &'a str,
    terms: &'a str,
    #[schema(value_type = Option<RawDiscount>)]
    discount: Option<&'a Discount>,
    #[serde(flatten)]
    #[schema(value_type = RulesParams)]
    rules: &'a RulesParams,
    status: CampaignStatus,
    /// `none` (the device is the consumer) or `required` (consumers sign in).
    signin: &'static str,
    code_length: usize,
    code_prefix: &'a str,
    /// `unambiguous`, `digits`, or the campaign's own characters.
    code_charset: &'a str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<CampaignStats>,
}

impl<'a> CampaignView<'a> {
    pub fn new(
        r: &'a CampaignRecord,
        public_url: &str,
        stats: Option<CampaignStats>,
    ) -> CampaignView<'a> {
        CampaignView {
            claim_url: format!("{public_url}/c/{}", r.slug),
            id: r.id,
            slug: &r.slug,
            name: &r.name,
            description: &r.description,
            terms: &r.terms,
            discount: r.discount.as_ref(),
            rules: r.rules.params(),
            status: r.status,
            signin: r.signin.as_str(),
            code_length: r.codes.length(),
            code_prefix: r.codes.prefix(),
            code_charset: r.codes.charset().as_str(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            stats,
        }
    }
}

/// `POST /api/v1/campaigns`' body: the draft's fields, with the rules inline. Unknown
/// members are refused (a typo must not silently fall back to a default).
#[derive(Deserialize)]
#[serde(try_from = "RequestFields")]
pub struct NewCampaignRequest(CampaignDraft);

impl NewCampaignRequest {
    /// The draft as the API hands it to the domain (also what the `campaign_json` fuzz
    /// target checks).
    pub fn into_draft(self) -> CampaignDraft {
        self.0
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewCampaign)]
struct RequestFields {
    name: String,
    description: Option<String>,
    terms: Option<String>,
    discount: Option<RawDiscount>,
    /// `draft` (the default) or `active`.
    #[schema(value_type = Option<CampaignStatus>)]
    status: Option<String>,
    /// `none` (the default) or `required`.
    signin: Option<String>,
    code_length: Option<i64>,
    code_prefix: Option<String>,
    code_charset: Option<String>,
    #[serde(flatten)]
    rules: RulesParams,
    // Flattened structs take their own members first; what is left lands here.
    #[serde(flatten)]
    #[schema(ignore)]
    unknown: BTreeMap<String, IgnoredAny>,
}

impl TryFrom<RequestFields> for NewCampaignRequest {
    type Error = String;
    fn try_from(f: RequestFields) -> Result<Self, String> {
        if let Some(name) = f.unknown.keys().next() {
            return Err(format!("unknown field `{name}`"));
        }
        Ok(NewCampaignRequest(CampaignDraft {
            name: f.name,
            description: f.description,
            terms: f.terms,
            discount: f.discount,
            rules: f.rules,
            status: f.status,
            signin: f.signin,
            code_length: f.code_length,
            code_prefix: f.code_prefix,
            code_charset: f.code_charset,
        }))
    }
}

pub(super) fn campaign_error(e: CampaignError) -> AppError {
    match e {
        CampaignError::InvalidTransition { .. } | CampaignError::LimitBelowIssued { .. } => {
            AppError::conflict(e.code(), e.to_string())
        }
        _ => AppError::invalid(e.code(), e.to_string()).field(e.field()),
    }
}

/// Create a campaign.
#[utoipa::path(post, path = "/api/v1/campaigns", operation_id = "createCampaign", tag = "campaigns",
    request_body = RequestFields,
    responses(
        (status = 201, description = "Created", body = CampaignView),
        (status = 422, description = "`invalid_name`, `invalid_description`, `invalid_terms`, \
            `invalid_discount_amount`, `invalid_discount_percent`, `invalid_discount_text`, \
            `invalid_total_limit`, `invalid_per_consumer_limit`, `invalid_claim_window`, \
            `invalid_use_window`, `invalid_valid_for`, `invalid_uses_per_coupon`, \
            `invalid_win_probability`, `invalid_status`, `invalid_initial_status`, `invalid_signin`, `invalid_code_length`, \
            `invalid_code_prefix`, `invalid_code_charset`: a field is out of range", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn create(
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: web::Json<NewCampaignRequest>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let campaign = NewCampaign::parse(body.into_inner().0, state.engine.clock().now())
        .map_err(campaign_error)?;
    let record = state
        .store
        .insert_campaign(
            Uuid::new_v4(),
            auth.tenant_id,
            &crate::domain::campaign::new_slug(),
            &campaign,
        )
        .await?;
    let view = CampaignView::new(&record, &state.settings.public_url(), None);
    Ok(HttpResponse::Created().json(view))
}

/// A campaign with its live counts.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", operation_id = "getCampaign", tag = "campaigns",
    params(("id" = Uuid, Path, description = "The campaign")),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:read"])))]
pub async fn show(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:read")?;
    // From memory during a sale (see `engine::reads`): a dashboard polling this must not
    // cost the database a count per request.
    let record = state
        .engine
        .campaign(auth.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    let stats = state.engine.stats(&record).await?;
    Ok(HttpResponse::Ok().json(CampaignView::new(
        &record,
        &state.settings.public_url(),
        Some(stats),
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    /// activate, pause, resume or end.
    #[schema(value_type = Option<StatusAction>)]
    action: Option<String>,
    total_limit: Option<i64>,
}

/// Change a campaign.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", operation_id = "updateCampaign", tag = "campaigns",
    params(("id" = Uuid, Path, description = "The campaign")),
    request_body = CampaignPatch,
    responses(
        (status = 200, description = "The changed campaign", body = CampaignView),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the action does not apply to the \
            campaign's status; `limit_below_issued`: more coupons are already issued", body = ErrorBody),
        (status = 422, description = "`empty_patch`: nothing to change; `invalid_action`, \
            `invalid_total_limit`: a field is out of range", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn update(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<CampaignPatch>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let patch = body.into_inner();
    let action: Option<StatusAction> = patch
        .action
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(campaign_error)?;
    if action.is_none() && patch.total_limit.is_none() {
        return Err(AppError::invalid(
            "empty_patch",
            "give an action and/or a total_limit",
        ));
    }
    let edit = Box::new(move |current: &CampaignRecord, stats: &CampaignStats| {
        let status = match action {
            Some(a) => current.status.apply(a)?,
            None => current.status,
        };
        let total_limit = match patch.total_limit {
            Some(limit) => {
                current.rules.validate_limit_change(limit, stats.issued)?;
                limit
            }
            None => current.rules.total_limit(),
        };
        Ok(CampaignChange {
            status,
            total_limit,
        })
    });
    match state.store.edit_campaign(auth.tenant_id, *id, edit).await? {
        EditOutcome::Updated(record, stats) => {
            state.engine.campaign_changed(&record);
            Ok(HttpResponse::Ok().json(CampaignView::new(
                &record,
                &state.settings.public_url(),
                Some(stats),
            )))
        }
        EditOutcome::NotFound => Err(AppError::not_found("campaign")),
        EditOutcome::Refused(e) => Err(campaign_error(e)),
    }
}
