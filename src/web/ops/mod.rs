//! The operator console under `/ops/…`, for the people who run the installation (not
//! merchants' users): maintenance windows and incidents, operator approvals, the mail
//! outbox. Its sessions are its own: another cookie (`ecoupon_ops`), another table
//! (`operator_sessions`), so a merchant's session opens nothing here and an operator's
//! session opens nothing in the merchant console or the API. No page here reads a
//! merchant's users, their credentials or their data.
//!
//! Taking an [`OpsConsole`] as a handler argument is what makes a page require a signed-in
//! operator: without a live session the browser is sent (303) to `/ops/login`.

pub mod account;
pub mod login;
pub mod mail;
pub mod notices;
pub mod operators;
pub mod password;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::console::{page, Redirect};
use super::i18n::{message, Lang};
use super::AppState;
use crate::domain::token::sha256;
use crate::store::operators::Operator;
use crate::store::AuditEntry;
use crate::web::error::{AppError, AppResult, ErrorCode};

/// With TLS the cookie gets the `__Host-` prefix (Secure, Path=/, no Domain).
const COOKIE_SECURE: &str = "__Host-ecoupon_ops";
const COOKIE_PLAIN: &str = "ecoupon_ops";

pub fn cookie_name(state: &AppState) -> &'static str {
    if state.secure_cookies {
        COOKIE_SECURE
    } else {
        COOKIE_PLAIN
    }
}

/// SameSite=Strict: an operator's session never rides along on a request another site
/// starts, not even a link; no max-age, so it ends with the browser as well.
pub fn session_cookie(state: &AppState, id: &str) -> Cookie<'static> {
    Cookie::build(cookie_name(state), id.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.secure_cookies)
        .finish()
}

pub fn clear_session_cookie(state: &AppState) -> Cookie<'static> {
    let mut c = session_cookie(state, "");
    c.set_max_age(CookieDuration::ZERO);
    c
}

/// A signed-in operator on a console page.
pub struct OpsConsole {
    pub operator: Operator,
    pub csrf: String,
    pub lang: Lang,
    remember_lang: bool,
    pub ip: IpAddr,
    path: String,
    pub session_hash: Vec<u8>,
}

impl FromRequest for OpsConsole {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<OpsConsole, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("no app state")))?;
            OpsConsole::load(&req, &state).await
        })
    }
}

impl OpsConsole {
    async fn load(req: &HttpRequest, state: &AppState) -> Result<OpsConsole, actix_web::Error> {
        let login = || {
            let next = req.uri().path_and_query().map_or("/ops", |p| p.as_str());
            let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            Redirect::clearing(
                format!("/ops/login?next={next}"),
                clear_session_cookie(state),
            )
        };
        let Some(cookie) = req.cookie(cookie_name(state)) else {
            return Err(login().into());
        };
        let hash = sha256(cookie.value());
        // Only operator_sessions is asked: a merchant's session id is not in it.
        let Some(session) = state
            .store
            .operator_session(&hash)
            .await
            .map_err(AppError::from)?
        else {
            return Err(login().into());
        };
        if session.mfa_pending {
            // Password given, code not yet: this session opens nothing but the code form.
            return Err(Redirect::to("/ops/login/totp").into());
        }
        let idle = chrono::TimeDelta::from_std(state.settings.console.idle_timeout)
            .unwrap_or(chrono::TimeDelta::MAX);
        if chrono::Utc::now() - session.last_seen_at > idle {
            state
                .store
                .delete_operator_session(&hash)
                .await
                .map_err(AppError::from)?;
            return Err(login().into());
        }
        let (lang, remember_lang) = Lang::negotiate(req);
        Ok(OpsConsole {
            operator: session.operator,
            csrf: session.csrf,
            lang,
            remember_lang,
            ip: super::client_ip::client_ip(req, &state.settings),
            path: req.path().to_owned(),
            session_hash: hash,
        })
    }

    pub fn t(&self, key: &str) -> String {
        message(self.lang, key)
    }

    /// Every form posts the session's CSRF token (compared in constant time).
    pub fn check_csrf(&self, token: &str) -> AppResult<()> {
        use subtle::ConstantTimeEq;
        if bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::CsrfFailed,
                "the form has expired; reload the page and try again",
            ))
        }
    }

    /// Writes an operator's action to the audit log, as this operator from this address.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: &str,
        detail: Value,
    ) -> AppResult<()> {
        state
            .store
            .audit(AuditEntry {
                tenant_id: None,
                actor_id: None,
                actor: &self.operator.email,
                action,
                target,
                ip: &self.ip.to_string(),
                detail,
            })
            .await?;
        Ok(())
    }

    pub fn render(&self, state: &AppState, template: &str, data: Value) -> AppResult<HttpResponse> {
        self.render_status(state, StatusCode::OK, template, data)
    }

    /// Renders an operator page (it wraps itself in `ops_layout`) with the navigation.
    pub fn render_status(
        &self,
        state: &AppState,
        status: StatusCode,
        template: &str,
        mut data: Value,
    ) -> AppResult<HttpResponse> {
        let nav: Vec<Value> = NAV
            .iter()
            .map(|(href, key)| {
                // The password page belongs to the account.
                let current = self.path.starts_with(href)
                    || (*href == "/ops/account" && self.path == "/ops/password");
                json!({"href": href, "label": self.t(key), "current": current})
            })
            .collect();
        if let Some(map) = data.as_object_mut() {
            map.insert("nav".into(), json!(nav));
            map.insert("user_email".into(), json!(self.operator.email));
            map.insert("body_class".into(), json!("console console--ops"));
        }
        page(
            state,
            self.lang,
            self.remember_lang,
            &self.csrf,
            &self.path,
            status,
            template,
            data,
        )
    }

    /// 303 back to a page after a form post.
    pub fn redirect(&self, to: &str) -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to.to_string()))
            .finish()
    }
}

/// Operator console navigation: (link, label key).
const NAV: &[(&str, &str)] = &[
    ("/ops/notices", "ops.nav.notices"),
    ("/ops/operators", "ops.nav.operators"),
    ("/ops/mail", "ops.nav.mail"),
    ("/ops/account", "ops.nav.account"),
];

/// `GET /ops`
pub async fn home(_ops: OpsConsole) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ops/notices"))
        .finish()
}

/// Times on operator pages: Japan time, as notices and mail show them.
pub fn show_time(t: chrono::DateTime<chrono::Utc>) -> String {
    crate::ops::notices::show_time(t)
}
