//! `GET /merchant`: the tenant's campaigns with their counts. Staff, who only redeem,
//! land on the redemption screen instead.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::Console;
use crate::domain::merchant::{Permission, Role};
use crate::web::error::AppResult;
use crate::web::pages::show_time;
use crate::web::AppState;

pub async fn index(console: Console, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    if console.user.role == Role::Staff {
        return Ok(console.redirect(Role::Staff.home()));
    }
    console.require(Permission::ViewStats)?;
    let campaigns = state
        .store
        .campaign_summaries(console.user.tenant_id)
        .await?;
    let rows: Vec<_> = campaigns
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "status": c.status.as_str(),
                "status_label": console.t(&format!("console.status.{}", c.status)),
                "issued": c.issued,
                "redeemed": c.redeemed,
                "remaining": c.remaining,
                "total_limit": c.total_limit,
                "created": show_time(c.created_at),
                "claim_url": format!("/c/{}", c.slug),
            })
        })
        .collect();
    console.render(
        &state,
        "merchant_home",
        json!({
            "title": console.t("console.merchant_home.title"),
            "campaigns": rows,
            "can_edit": console.can(Permission::ManageCampaigns),
        }),
    )
}
