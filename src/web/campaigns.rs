//! `/api/v1/campaigns`: create, read and change campaigns.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::ApiAuth;
use super::AppState;
use crate::domain::campaign::{
    CampaignError, CampaignStatus, NewCampaign, NewCampaignRequest, StatusAction,
};
use crate::error::{AppError, AppResult};
use crate::store::{CampaignChange, CampaignRecord, CampaignStats, EditOutcome, NewCampaignRow};

/// The campaign as the API shows it.
#[derive(Serialize)]
pub struct CampaignView {
    id: Uuid,
    slug: String,
    claim_url: String,
    name: String,
    description: String,
    terms: String,
    discount: Option<serde_json::Value>,
    total_limit: i64,
    per_consumer_limit: i32,
    claim_starts_at: DateTime<Utc>,
    claim_ends_at: Option<DateTime<Utc>>,
    use_starts_at: Option<DateTime<Utc>>,
    use_ends_at: Option<DateTime<Utc>>,
    valid_for_seconds: Option<i64>,
    uses_per_coupon: i32,
    win_probability: Option<f64>,
    status: String,
    signin: String,
    code_length: i32,
    code_prefix: String,
    code_charset: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<CampaignStats>,
}

impl CampaignView {
    pub fn new(r: CampaignRecord, public_url: &str, stats: Option<CampaignStats>) -> CampaignView {
        CampaignView {
            claim_url: format!("{public_url}/c/{}", r.slug),
            id: r.id,
            slug: r.slug,
            name: r.name,
            description: r.description,
            terms: r.terms,
            discount: r.discount,
            total_limit: r.total_limit,
            per_consumer_limit: r.per_consumer_limit,
            claim_starts_at: r.claim_starts_at,
            claim_ends_at: r.claim_ends_at,
            use_starts_at: r.use_starts_at,
            use_ends_at: r.use_ends_at,
            valid_for_seconds: r.valid_for_seconds,
            uses_per_coupon: r.uses_per_coupon,
            win_probability: r.win_probability,
            status: r.status,
            signin: r.signin,
            code_length: r.code_length,
            code_prefix: r.code_prefix,
            code_charset: r.code_charset,
            created_at: r.created_at,
            updated_at: r.updated_at,
            stats,
        }
    }
}

pub(super) fn campaign_error(e: CampaignError) -> AppError {
    match e {
        CampaignError::InvalidTransition { .. } | CampaignError::LimitBelowIssued { .. } => {
            AppError::conflict(e.code(), e.to_string())
        }
        _ => AppError::invalid(e.code(), e.to_string()),
    }
}

/// Short, unguessable, easy to read aloud: the public part of the claim URL.
fn new_slug() -> String {
    const CHARS: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

pub async fn create(
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: web::Json<NewCampaignRequest>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let campaign = NewCampaign::parse(body.into_inner(), state.engine.clock().now())
        .map_err(campaign_error)?;
    let rules = campaign.rules().params();
    let discount = campaign
        .discount()
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(AppError::internal)?;
    let slug = new_slug();
    let record = state
        .store
        .insert_campaign(NewCampaignRow {
            id: Uuid::new_v4(),
            tenant_id: auth.tenant_id,
            slug: &slug,
            name: campaign.name(),
            description: campaign.description(),
            terms: campaign.terms(),
            discount,
            total_limit: rules.total_limit,
            per_consumer_limit: campaign.rules().per_consumer_limit(),
            claim_starts_at: rules.claim_starts_at,
            claim_ends_at: rules.claim_ends_at,
            use_starts_at: rules.use_starts_at,
            use_ends_at: rules.use_ends_at,
            valid_for_seconds: rules.valid_for_seconds,
            uses_per_coupon: campaign.rules().uses_per_coupon(),
            win_probability: rules.win_probability,
            status: campaign.status().as_str(),
            signin: campaign.signin().as_str(),
            code_length: i32::try_from(campaign.codes().length()).unwrap_or(10),
            code_prefix: campaign.codes().prefix(),
            code_charset: campaign.codes().charset().as_str(),
        })
        .await?;
    let view = CampaignView::new(record, &state.settings.public_url(), None);
    Ok(HttpResponse::Created().json(view))
}

pub async fn show(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:read")?;
    let record = state
        .store
        .campaign(auth.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    let stats = state
        .store
        .campaign_stats(record.id, record.total_limit)
        .await?;
    Ok(HttpResponse::Ok().json(CampaignView::new(
        record,
        &state.settings.public_url(),
        Some(stats),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    /// activate, pause, resume or end.
    action: Option<String>,
    total_limit: Option<i64>,
}

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
        let status: CampaignStatus = current.status.parse()?;
        let status = match action {
            Some(a) => status.apply(a)?,
            None => status,
        };
        let total_limit = match patch.total_limit {
            Some(limit) => {
                current
                    .rules()?
                    .validate_limit_change(limit, stats.issued)?;
                limit
            }
            None => current.total_limit,
        };
        Ok(CampaignChange {
            status: status.as_str().to_string(),
            total_limit,
        })
    });
    match state.store.edit_campaign(auth.tenant_id, *id, edit).await? {
        EditOutcome::Updated(record, stats) => {
            state.engine.campaign_changed(&record);
            Ok(HttpResponse::Ok().json(CampaignView::new(
                *record,
                &state.settings.public_url(),
                Some(stats),
            )))
        }
        EditOutcome::NotFound => Err(AppError::not_found("campaign")),
        EditOutcome::Refused(e) => Err(campaign_error(e)),
    }
}
