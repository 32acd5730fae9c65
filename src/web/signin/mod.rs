//! Consumer sign-in with OpenID Connect (authorization code + PKCE, state and nonce checked).
//!
//! 1. `GET /auth/{provider}/start?return_to=/c/…` records the sign-in server-side (state hash →
//!    nonce, PKCE verifier, provider, return_to, 10 minutes, single use) and redirects to the
//!    provider. The browser gets a random `ecoupon_signin` cookie whose hash is recorded too.
//! 2. The provider calls back: `GET /auth/{provider}/callback`, or for Apple a cross-site
//!    `POST` (form_post) that carries no SameSite=Lax cookie. So the callback needs no cookie:
//!    it finds the sign-in by its state, exchanges the code, verifies the ID token, records
//!    the consumer, and redirects (303) to `/auth/complete?t=<one-time token>`.
//! 3. `GET /auth/complete` is a same-site GET, so the browser's cookies come along: it checks
//!    the `ecoupon_signin` cookie (only the browser that started may finish, which stops
//!    login CSRF with a stolen link), sets the session cookie and redirects to return_to.
//!
//! Every failure is a 4xx page with a stable code (or 502 when a provider is down).
//! The OpenID Connect client itself is [`crate::oidc`]; this module only speaks HTTP and
//! keeps the pending sign-ins in the store.

mod errors;

use std::time::Duration;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::session::Session;
use super::AppState;
use crate::domain::token::{random_token, sha256};
use crate::store::{NewSigninRequest, TakeSignin};
use crate::web::error::{AppError, AppResult, ErrorCode};

/// Binds a sign-in to the browser that started it.
pub const BROWSER_COOKIE: &str = "ecoupon_signin";
/// How long a started sign-in may take at the provider.
const SIGNIN_TTL: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
pub struct ReturnTo {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct CompleteQuery {
    t: Option<String>,
}

/// `GET /auth/signin?return_to=…`: the enabled providers, as links.
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnTo>,
) -> AppResult<HttpResponse> {
    let page = crate::web::pages::PageCtx::new(&req, &state);
    let return_to = return_to(query.return_to.as_deref())?;
    let encoded: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    let accepted = accepted_providers(&state, return_to).await?;
    let providers: Vec<_> = state
        .signin
        .list()
        .iter()
        .filter(|p| accepted.as_ref().is_none_or(|names| names.contains(&p.name)))
        .map(|p| json!({"name": p.name, "label": p.label, "href": format!("/auth/{}/start?return_to={encoded}", p.name)}))
        .collect();
    let data =
        json!({"title": page.t("signin.title"), "providers": providers, "return_to": return_to});
    page.render(&state, actix_web::http::StatusCode::OK, "signin", data)
}

/// The providers the merchant behind `return_to` (a claim page, `/c/{slug}`) accepts;
/// None when the merchant accepts every configured one, or when there is no merchant.
async fn accepted_providers(state: &AppState, return_to: &str) -> AppResult<Option<Vec<String>>> {
    let Some(slug) = return_to
        .strip_prefix("/c/")
        .map(|rest| rest.split(['/', '?']).next().unwrap_or_default())
    else {
        return Ok(None);
    };
    let Some(campaign) = state.store.campaign_by_slug(slug).await? else {
        return Ok(None);
    };
    let theme = state.store.theme(campaign.tenant_id).await?;
    Ok(theme
        .map(|t| t.signin_providers)
        .filter(|names| !names.is_empty()))
}

/// `GET /auth/{provider}/start?return_to=…`
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ReturnTo>,
) -> AppResult<HttpResponse> {
    // Each start may be a stored row (until retention removes it): bounded per address.
    let ip = crate::web::client_ip::client_ip(&req, &state.settings);
    state.limits.signin_start(ip).map_err(|wait| {
        AppError::new(
            ErrorCode::RateLimited,
            "too many sign-ins started from this address; wait a moment",
        )
        .with_retry_after(wait)
    })?;
    let provider = state.signin.get(&path)?;
    let return_to = return_to(query.return_to.as_deref())?;
    if accepted_providers(&state, return_to)
        .await?
        .is_some_and(|names| !names.contains(&provider.name))
    {
        return Err(AppError::not_found("sign-in provider"));
    }
    // One browser token for every tab: starting a second sign-in keeps the first one valid.
    let browser = req
        .cookie(BROWSER_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 43 && B64.decode(v).is_ok())
        .unwrap_or_else(random_token);
    let auth = state.signin.authorize(provider).await?;
    state
        .store
        .create_signin_request(&NewSigninRequest {
            state_hash: &sha256(&auth.state),
            provider: &provider.name,
            nonce: &auth.nonce,
            pkce_verifier: &auth.pkce_verifier,
            return_to,
            browser_hash: &sha256(&browser),
            ttl: SIGNIN_TTL,
        })
        .await?;
    let cookie = Cookie::build(BROWSER_COOKIE, browser)
        .path("/auth")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::hours(1))
        .finish();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, auth.url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .finish())
}

/// `GET /auth/{provider}/callback`
pub async fn callback_get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    callback(&state, &path, req.query_string().as_bytes()).await
}

/// `POST /auth/{provider}/callback` (response_mode=form_post). Cross-site: no cookies.
pub async fn callback_post(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    callback(&state, &path, &body).await
}

/// What a provider's answer carries (the query string, or Apple's form_post body); the
/// first of a repeated parameter counts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
}

pub fn parse_callback(raw: &[u8]) -> CallbackParams {
    let mut params = CallbackParams::default();
    // Apple also posts `user` (name and e-mail on the first sign-in): ignored on purpose.
    for (key, value) in form_urlencoded::parse(raw) {
        let slot = match key.as_ref() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "error" => &mut params.error,
            "iss" => &mut params.iss,
            _ => continue,
        };
        slot.get_or_insert_with(|| value.into_owned());
    }
    params
}

async fn callback(state: &AppState, provider: &str, raw: &[u8]) -> AppResult<HttpResponse> {
    let provider = state.signin.get(provider)?;
    let params = parse_callback(raw);
    let rejected = |code, message: &str| AppError::new(ErrorCode::Rejected(code), message);
    let Some(signin_state) = params.state.filter(|s| !s.is_empty() && s.len() <= 512) else {
        return Err(rejected(
            "signin_state_invalid",
            "this sign-in answer has no state; please sign in again",
        ));
    };
    let state_hash = sha256(&signin_state);
    let pending = match state
        .store
        .take_signin_request(&state_hash, &provider.name)
        .await?
    {
        TakeSignin::Taken(pending) => pending,
        TakeSignin::Unknown => {
            return Err(rejected(
                "signin_state_invalid",
                "this sign-in answer does not match a sign-in we started; please sign in again",
            ))
        }
        TakeSignin::Used => {
            return Err(rejected(
                "signin_replayed",
                "this sign-in answer was already used; please sign in again",
            ))
        }
        TakeSignin::Expired => {
            return Err(rejected(
                "signin_expired",
                "this sign-in took too long and expired; please sign in again",
            ))
        }
    };
    if let Some(error) = params.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::info!(provider = %provider.name, %error, "provider refused the sign-in");
        return Err(AppError::new(
            ErrorCode::Rejected("signin_denied"),
            format!(
                "{} did not sign you in ({error}); you can try again",
                provider.label
            ),
        ));
    }
    // RFC 9207: a provider that names itself must name the one we sent the user to.
    if params
        .iss
        .as_deref()
        .is_some_and(|iss| iss.trim_end_matches('/') != provider.issuer().trim_end_matches('/'))
    {
        return Err(rejected(
            "signin_issuer_mismatch",
            "this sign-in answer came from another provider; please sign in again",
        ));
    }
    let Some(code) = params.code.filter(|c| !c.is_empty() && c.len() <= 4096) else {
        return Err(rejected(
            "signin_code_missing",
            "this sign-in answer has no code; please sign in again",
        ));
    };
    let subject = state
        .signin
        .redeem(provider, code, &pending.nonce, pending.pkce_verifier)
        .await?;
    if subject.is_empty() || subject.len() > 255 {
        return Err(rejected(
            "signin_token_invalid",
            "the provider sent an unusable subject",
        ));
    }
    let token = random_token();
    state
        .store
        .finish_signin(&state_hash, &provider.name, &subject, &sha256(&token))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/auth/complete?t={token}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// `GET /auth/complete?t=…`: a same-site GET, so the session cookie is set where it counts.
pub async fn complete(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CompleteQuery>,
) -> AppResult<HttpResponse> {
    let invalid = || {
        AppError::new(
            ErrorCode::Rejected("signin_link_invalid"),
            "this sign-in link was already used or has expired; please sign in again",
        )
    };
    let token = query
        .t
        .as_deref()
        .filter(|t| t.len() == 43)
        .ok_or_else(invalid)?;
    let done = state
        .store
        .complete_signin(&sha256(token))
        .await?
        .ok_or_else(invalid)?;
    let browser = req.cookie(BROWSER_COOKIE).map(|c| sha256(c.value()));
    if browser.as_deref() != Some(done.browser_hash.as_slice()) {
        return Err(AppError::new(
            ErrorCode::Rejected("signin_browser_mismatch"),
            "this sign-in was started in another browser; please sign in again here",
        ));
    }
    let session = Session::sign_in(&done.provider, &done.subject);
    let mut spent = Cookie::build(BROWSER_COOKIE, "").path("/auth").finish();
    spent.make_removal();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, done.return_to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session.cookie(&state.sessions))
        .cookie(spent)
        .finish())
}

#[derive(Deserialize)]
pub struct SignoutForm {
    csrf: String,
}

/// `POST /auth/signout`: forgets the session cookie (the next visit is a new device).
/// Needs the session's CSRF token, so another site cannot sign a consumer out.
pub async fn signout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SignoutForm>,
) -> AppResult<HttpResponse> {
    if let Some(session) = Session::read(&req, &state.sessions) {
        session.check_csrf(&form.csrf)?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(state.sessions.removal())
        .finish())
}

/// `GET /auth/me`: who the session says this is, for pages' scripts and tests.
pub async fn me(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let session = Session::read(&req, &state.sessions);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "consumer": session.as_ref().map(|s| s.consumer.as_str()),
            "signed_in": session.as_ref().is_some_and(|s| s.signed_in),
        }))
}

/// Where to go after signing in: a path on this site (default `/`), never `//host` or a URL.
pub fn return_to(value: Option<&str>) -> AppResult<&str> {
    let value = value.unwrap_or("/");
    let ok = value.starts_with('/')
        && !value.starts_with("//")
        && value.len() <= 1024
        && !value
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    if ok {
        Ok(value)
    } else {
        Err(AppError::invalid(
            "invalid_return_to",
            "return_to must be a path on this site, such as /c/abc",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_this_site() {
        for good in ["/", "/c/abc", "/c/abc?x=1#top", "/wallet/%2F"] {
            assert_eq!(return_to(Some(good)).unwrap(), good);
        }
        assert_eq!(return_to(None).unwrap(), "/");
        for bad in [
            "",
            "c/abc",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/a\nb",
            "/a b",
            "\\\\x",
        ] {
            assert!(return_to(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn callback_params_take_the_first_value() {
        let p =
            parse_callback(b"code=abc&state=s1&state=s2&user=%7B%22email%22%7D&iss=http%3A%2F%2Fx");
        assert_eq!(p.code.as_deref(), Some("abc"));
        assert_eq!(p.state.as_deref(), Some("s1"));
        assert_eq!(p.iss.as_deref(), Some("http://x"));
        assert!(p.error.is_none());
    }
}
