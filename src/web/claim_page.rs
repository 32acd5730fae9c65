//! The claim page, `/c/{slug}`: what the merchant offers, how many are left, one big
//! button. Works as a plain form without JavaScript.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::pages::{discount_text, show_time, theme_url, PageCtx};
use super::AppState;
use crate::domain::campaign::{CampaignRules, CampaignStatus, ClaimRejection};
use crate::domain::consumer::{ConsumerRef, SigninMode};
use crate::engine::ClaimError;
use crate::store::CampaignRecord;
use crate::web::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageState {
    Open,
    NotStarted,
    SoldOut,
    Ended,
    Paused,
    NotActive,
    Claimed,
    LotteryLost,
    Limit,
}

/// What the visitor sees, from the campaign and their own attempts (`(coupon, won)`).
pub fn page_state(
    status: CampaignStatus,
    rules: &CampaignRules,
    now: DateTime<Utc>,
    remaining: i64,
    mine: &[(Uuid, bool)],
) -> PageState {
    let limit = rules.per_consumer_limit().max(1) as usize;
    if mine.len() >= limit {
        return match (
            mine.iter().any(|(_, won)| *won),
            mine.iter().any(|(_, won)| !won),
        ) {
            (true, _) => PageState::Claimed,
            (false, true) => PageState::LotteryLost,
            (false, false) => PageState::Limit,
        };
    }
    match rules.check_claim_window(status, now) {
        Err(ClaimRejection::NotStarted) => PageState::NotStarted,
        Err(ClaimRejection::Ended) => PageState::Ended,
        Err(ClaimRejection::Paused) => PageState::Paused,
        Err(_) => PageState::NotActive,
        Ok(()) if remaining <= 0 => PageState::SoldOut,
        Ok(()) => PageState::Open,
    }
}

/// The campaign from memory while unchanged (a flash sale's crowd opens this page at once).
async fn load(state: &AppState, slug: &str) -> AppResult<std::sync::Arc<CampaignRecord>> {
    state
        .engine
        .campaign_by_slug(slug)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))
}

/// The page state for this visitor, and their attempts `(coupon, won)`; a visitor with no
/// identity yet costs no query.
async fn judge(
    state: &AppState,
    campaign: &CampaignRecord,
    remaining: i64,
    consumer: Option<&str>,
) -> AppResult<(PageState, Vec<(Uuid, bool)>)> {
    let mine = match consumer {
        Some(c) => state.store.consumer_claims(campaign.id, c).await?,
        None => Vec::new(),
    };
    let now = state.engine.clock().now();
    let view = page_state(campaign.status, &campaign.rules, now, remaining, &mine);
    Ok((view, mine))
}

#[derive(Deserialize)]
pub struct PageQuery {
    busy: Option<u8>,
}

/// `GET /c/{slug}`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let page = PageCtx::new(&req, &state);
    let campaign = load(&state, &slug).await?;
    // Fresh counts here (the poll below may use a second-old copy): right after the last
    // coupon goes, the next visitor must see "sold out".
    let stats = state
        .store
        .campaign_stats(campaign.id, campaign.rules.total_limit())
        .await?;
    let consumer = (!page.session.is_fresh()).then_some(page.session.consumer.as_str());
    let now = state.engine.clock().now();
    let (view, mine) = judge(&state, &campaign, stats.remaining, consumer).await?;
    let won = mine
        .iter()
        .rev()
        .find(|(_, won)| *won)
        .map(|(id, _)| format!("/my/coupons/{id}"));
    let theme = state.tenants.get(&state.store, campaign.tenant_id).await?;
    let accepted = theme.as_ref().map_or(&[][..], |t| &t.signin_providers[..]);
    let needs_signin =
        campaign.signin == SigninMode::Required && !signed_in_acceptably(&page.session, accepted);
    let logo_url = theme
        .as_ref()
        .and_then(|t| t.logo_image_id)
        .map(super::images::image_url);
    let shop = theme.map(|t| t.tenant_name);
    let period = match campaign.rules.claim_ends_at() {
        Some(end) => page
            .t("claim.period_until")
            .replace("{start}", &show_time(campaign.rules.claim_starts_at()))
            .replace("{end}", &show_time(end)),
        None => page
            .t("claim.period_from")
            .replace("{start}", &show_time(campaign.rules.claim_starts_at())),
    };
    let data = json!({
        "title": campaign.name,
        "shop": shop,
        "logo_url": logo_url,
        "image_url": campaign.image_id.map(super::images::image_url),
        "body_class": "claim-page",
        "theme_css": theme_url(campaign.tenant_id),
        "state": view,
        "open": view == PageState::Open,
        "slug": campaign.slug,
        "name": campaign.name,
        "description": campaign.description,
        "terms": campaign.terms,
        "discount": discount_text(page.lang, campaign.discount.as_ref()),
        "period": period,
        "valid_days": campaign.rules.valid_for_seconds().map(|s| (s + 86_399) / 86_400),
        "remaining": stats.remaining,
        "starts_at": campaign.rules.claim_starts_at().to_rfc3339(),
        "server_now": now.to_rfc3339(),
        "coupon_url": won,
        "busy": query.busy.is_some(),
        "needs_signin": needs_signin,
        "signin_url": format!("/auth/signin?return_to=/c/{}", campaign.slug),
        "state_message": format!("claim.{}", state_key(view)),
    });
    page.render(&state, StatusCode::OK, "claim", data)
}

fn state_key(state: PageState) -> &'static str {
    match state {
        PageState::Open => "button",
        PageState::NotStarted => "not_started",
        PageState::SoldOut => "sold_out",
        PageState::Ended => "ended",
        PageState::Paused => "paused",
        PageState::NotActive => "not_active",
        PageState::Claimed => "claimed",
        PageState::LotteryLost => "lottery_lost",
        PageState::Limit => "limit",
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// `POST /c/{slug}/claim`: claim, then show the coupon (or the page, which says why not).
pub async fn claim(
    req: HttpRequest,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> AppResult<HttpResponse> {
    let page = PageCtx::new(&req, &state);
    page.session.check_csrf(&form.csrf)?;
    let campaign = load(&state, &slug).await?;
    let back = format!("/c/{}", campaign.slug);
    if campaign.signin == SigninMode::Required {
        // Checked here, not only when signing in: a sign-in started for another page
        // (any return_to) may have used a provider this merchant does not accept.
        let theme = state.tenants.get(&state.store, campaign.tenant_id).await?;
        let accepted = theme.as_ref().map_or(&[][..], |t| &t.signin_providers[..]);
        if !signed_in_acceptably(&page.session, accepted) {
            return Ok(page.redirect(&state, &format!("/auth/signin?return_to={back}")));
        }
    }
    let consumer = ConsumerRef::parse(&page.session.consumer)
        .map_err(|e| AppError::invalid("invalid_consumer", e.to_string()))?;
    match state
        .engine
        .claim(campaign.tenant_id, campaign.id, consumer)
        .await
    {
        Ok(coupon) => Ok(page.redirect(&state, &format!("/my/coupons/{}", coupon.id))),
        // The page itself explains every refusal, worked out again from the database.
        Err(ClaimError::Rejected(_)) => Ok(page.redirect(&state, &back)),
        Err(ClaimError::NotFound) => Err(AppError::not_found("campaign")),
        // Saved or not, the page works it out from the database and shows the coupon if so.
        Err(ClaimError::OutcomeUnknown(_)) => Ok(page.redirect(&state, &back)),
        // (The two key answers come only to API claims with an Idempotency-Key.)
        Err(
            ClaimError::Busy | ClaimError::Failed | ClaimError::KeyTaken | ClaimError::KeyInUse,
        ) => Ok(page.redirect(&state, &format!("{back}?busy=1"))),
    }
}

/// Signed in with a provider the merchant accepts (an empty list accepts every one).
fn signed_in_acceptably(session: &super::session::Session, accepted: &[String]) -> bool {
    session.signed_in
        && (accepted.is_empty()
            || session
                .provider()
                .is_some_and(|p| accepted.iter().any(|a| a == p)))
}

/// `GET /c/{slug}/status`: what the page's script polls to keep "n left" current.
pub async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> AppResult<HttpResponse> {
    let session = super::session::Session::read(&req, &state.sessions);
    let campaign = load(&state, &slug).await?;
    let stats = state.engine.stats(&campaign).await?;
    let consumer = session.as_ref().map(|s| s.consumer.as_str());
    let (view, _) = judge(&state, &campaign, stats.remaining, consumer).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(json!({"remaining": stats.remaining, "state": view})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sign_in_with_an_accepted_provider_counts() {
        use crate::web::session::Session;
        let google = Session::sign_in("google", "sub-1");
        let line = Session::sign_in("line", "sub-2");
        let accepted = vec!["line".to_string()];
        assert!(signed_in_acceptably(&line, &accepted));
        assert!(!signed_in_acceptably(&google, &accepted));
        assert!(signed_in_acceptably(&google, &[]), "no list: any provider");
        let device = Session::current(
            &actix_web::test::TestRequest::default().to_http_request(),
            &crate::web::session::SessionCookies {
                key: actix_web::cookie::Key::generate(),
                secure: false,
                lifetime: std::time::Duration::from_secs(60),
            },
        );
        assert!(!signed_in_acceptably(&device, &[]));
    }
    use crate::domain::campaign::RulesParams;

    fn rules(limit: i64, start: i64, end: Option<i64>) -> CampaignRules {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        let params = RulesParams {
            total_limit: 10,
            per_consumer_limit: limit,
            claim_starts_at: Some(t(start)),
            claim_ends_at: end.map(t),
            use_starts_at: None,
            use_ends_at: None,
            valid_for_seconds: None,
            uses_per_coupon: 1,
            win_probability: None,
        };
        CampaignRules::parse(params, t(0)).unwrap()
    }

    #[test]
    fn the_page_says_the_right_thing() {
        let now = DateTime::from_timestamp(1000, 0).unwrap();
        let r = rules(1, 500, Some(2000));
        let a = CampaignStatus::Active;
        let id = Uuid::new_v4();
        assert_eq!(page_state(a, &r, now, 5, &[]), PageState::Open);
        assert_eq!(page_state(a, &r, now, 0, &[]), PageState::SoldOut);
        assert_eq!(page_state(a, &r, now, 5, &[(id, true)]), PageState::Claimed);
        assert_eq!(
            page_state(a, &r, now, 5, &[(id, false)]),
            PageState::LotteryLost
        );
        assert_eq!(
            page_state(CampaignStatus::Paused, &r, now, 5, &[]),
            PageState::Paused
        );
        assert_eq!(
            page_state(CampaignStatus::Draft, &r, now, 5, &[]),
            PageState::NotActive
        );
        assert_eq!(
            page_state(a, &rules(1, 1500, None), now, 5, &[]),
            PageState::NotStarted
        );
        assert_eq!(
            page_state(a, &rules(1, 0, Some(900)), now, 5, &[]),
            PageState::Ended
        );
        // A claimed coupon still shows after the campaign ends or sells out.
        assert_eq!(
            page_state(a, &rules(1, 0, Some(900)), now, 0, &[(id, true)]),
            PageState::Claimed
        );
        assert_eq!(
            page_state(a, &rules(2, 500, None), now, 5, &[(id, true)]),
            PageState::Open
        );
    }
}
