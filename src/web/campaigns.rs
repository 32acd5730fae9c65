//! `/api/v1/campaigns`: create and read campaigns; the list is in [`list`], changes in
//! [`patch`].

mod list;
mod patch;

pub use list::{__path_list, list};
pub use patch::{__path_update, update};

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::json::ApiJson;
use super::AppState;
use crate::domain::campaign::{
    CampaignDraft, CampaignError, CampaignStatus, Discount, NewCampaign, RawDiscount, RulesParams,
};
use crate::store::{CampaignRecord, CampaignStats};
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
/// members are refused (a typo must not silently fall back to a default); `null` is the
/// default, as if left out.
#[derive(Deserialize)]
#[serde(from = "RequestFields")]
pub struct NewCampaignRequest(CampaignDraft);

impl NewCampaignRequest {
    /// The draft as the API hands it to the domain (also what the `campaign_json` fuzz
    /// target checks).
    pub fn into_draft(self) -> CampaignDraft {
        self.0
    }
}

/// The members one by one rather than `RulesParams` flattened: through `flatten` serde
/// cannot say which member a type error is about (see `web::json`).
#[derive(Deserialize, ToSchema)]
#[schema(as = NewCampaign)]
#[serde(deny_unknown_fields)]
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
    total_limit: i64,
    /// 1 (the default) to 1000.
    per_consumer_limit: Option<i64>,
    /// Absent: claims open as soon as the campaign is active.
    claim_starts_at: Option<DateTime<Utc>>,
    claim_ends_at: Option<DateTime<Utc>>,
    use_starts_at: Option<DateTime<Utc>>,
    use_ends_at: Option<DateTime<Utc>>,
    valid_for_seconds: Option<i64>,
    /// 1 (the default) to 1000.
    uses_per_coupon: Option<i64>,
    win_probability: Option<f64>,
}

impl From<RequestFields> for NewCampaignRequest {
    fn from(f: RequestFields) -> Self {
        let defaults = RulesParams::defaults(f.total_limit);
        NewCampaignRequest(CampaignDraft {
            name: f.name,
            description: f.description,
            terms: f.terms,
            discount: f.discount,
            rules: RulesParams {
                per_consumer_limit: f.per_consumer_limit.unwrap_or(defaults.per_consumer_limit),
                claim_starts_at: f.claim_starts_at,
                claim_ends_at: f.claim_ends_at,
                use_starts_at: f.use_starts_at,
                use_ends_at: f.use_ends_at,
                valid_for_seconds: f.valid_for_seconds,
                uses_per_coupon: f.uses_per_coupon.unwrap_or(defaults.uses_per_coupon),
                win_probability: f.win_probability,
                ..defaults
            },
            status: f.status,
            signin: f.signin,
            code_length: f.code_length,
            code_prefix: f.code_prefix,
            code_charset: f.code_charset,
        })
    }
}

pub(super) fn campaign_error(e: CampaignError) -> AppError {
    // The API moves the status by `action`; the domain calls both `status`.
    let field = match e {
        CampaignError::InvalidAction | CampaignError::InvalidTransition { .. } => "action",
        _ => e.field(),
    };
    match e {
        CampaignError::InvalidTransition { .. } | CampaignError::LimitBelowIssued { .. } => {
            AppError::conflict(e.code(), e.to_string()).field(field)
        }
        _ => AppError::invalid(e.code(), e.to_string()).field(field),
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
    body: ApiJson<NewCampaignRequest>,
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
