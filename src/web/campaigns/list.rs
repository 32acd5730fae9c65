//! `GET /api/v1/campaigns`: the merchant's campaigns a page at a time, newest first,
//! optionally only those in one status (the list convention: `web::pagination`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{campaign_error, CampaignView};
use crate::domain::campaign::CampaignStatus;
use crate::web::auth::ApiAuth;
use crate::web::error::AppResult;
use crate::web::openapi::ErrorBody;
use crate::web::{pagination, AppState};

/// Text, not numbers and enums: a bad value gets this endpoint's own error code and
/// `fields`, not the generic `invalid_query`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only campaigns in this status.
    #[param(value_type = Option<CampaignStatus>)]
    status: Option<String>,
}

/// A page of campaigns, newest first. Their live counts are in `GET /api/v1/campaigns/{id}`.
#[derive(Serialize, ToSchema)]
pub struct CampaignList<'a> {
    campaigns: Vec<CampaignView<'a>>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// The merchant's campaigns.
#[utoipa::path(get, path = "/api/v1/campaigns", operation_id = "listCampaigns", tag = "campaigns",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of campaigns, newest first", body = CampaignList),
        (status = 422, description = "`invalid_limit`: not 1 to 200; `invalid_cursor`: not one \
            we gave; `invalid_status`: not draft, active, paused or ended; `invalid_query`: the \
            query string does not parse (a parameter given twice)", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:read"])))]
pub async fn list(
    auth: ApiAuth,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:read")?;
    // Text that is no number is as out of range as 0.
    let given = query
        .limit
        .as_deref()
        .map(|raw| raw.trim().parse().unwrap_or(0));
    let limit = pagination::limit(given)?;
    let after = pagination::after(query.cursor.as_deref())?;
    let status: Option<CampaignStatus> = query
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(campaign_error)?;
    let rows = state
        .store
        .campaign_page(auth.tenant_id, status, after, limit)
        .await?;
    let public_url = state.settings.public_url();
    Ok(HttpResponse::Ok().json(CampaignList {
        next_cursor: pagination::next(&rows, limit, |r| (r.created_at, r.id)),
        campaigns: rows
            .iter()
            .map(|r| CampaignView::new(r, &public_url, None))
            .collect(),
    }))
}
