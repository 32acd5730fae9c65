//! The merchant console under `/merchant/…`: server-side sessions (a random id in an
//! HttpOnly cookie; only its SHA-256 is stored), roles, CSRF on every form, the tenant's
//! IP allow-list. Each area is one module; their URLs are in `web/routes.rs`.
//!
//! Taking a [`Console`] as a handler argument is what makes a page require a signed-in
//! user: without a live session the browser is sent (303) to `/merchant/login`.

pub(crate) mod double_submit;
pub mod export;
pub mod home;
pub mod login;
// Campaign editor, campaign page, QR posters (campaigns helper).
pub mod campaigns;
// Users, invitations, settings, account (users helper).
pub mod account;
pub mod invite;
// API keys (keys helper).
pub mod keys;
pub mod settings;
pub mod users;
// Staff redemption screen and stores (redeem helper).
pub mod redeem;
pub mod stores;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use serde_json::{json, Value};

use super::i18n::{message, Lang};
use super::AppState;
use crate::domain::merchant::Permission;
use crate::domain::token::sha256;
use crate::store::{AuditEntry, MerchantUser};
use crate::web::error::{AppError, AppResult, ErrorCode};

/// With TLS the cookie gets the `__Host-` prefix: Secure, Path=/, no Domain, so no
/// sibling host or plain-HTTP page can set or overwrite it.
const COOKIE_SECURE: &str = "__Host-ecoupon_console";
const COOKIE_PLAIN: &str = "ecoupon_console";

pub fn cookie_name(state: &AppState) -> &'static str {
    if state.secure_cookies {
        COOKIE_SECURE
    } else {
        COOKIE_PLAIN
    }
}

/// The session cookie for `id`; no max-age, so it ends with the browser as well.
pub fn session_cookie(state: &AppState, id: &str) -> Cookie<'static> {
    Cookie::build(cookie_name(state), id.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .finish()
}

pub fn clear_session_cookie(state: &AppState) -> Cookie<'static> {
    let mut c = session_cookie(state, "");
    c.set_max_age(CookieDuration::ZERO);
    c
}

/// A 303 to somewhere else, as an error so extractors can answer with it.
#[derive(Debug)]
pub struct Redirect {
    to: String,
    clear_cookie: Option<Cookie<'static>>,
}

impl Redirect {
    pub fn to(to: impl Into<String>) -> Redirect {
        Redirect {
            to: to.into(),
            clear_cookie: None,
        }
    }

    /// A 303 that also deletes a (dead) session cookie.
    pub fn clearing(to: impl Into<String>, cookie: Cookie<'static>) -> Redirect {
        Redirect {
            to: to.into(),
            clear_cookie: Some(cookie),
        }
    }
}

impl std::fmt::Display for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "see {}", self.to)
    }
}

impl ResponseError for Redirect {
    fn status_code(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::SeeOther();
        res.insert_header((header::LOCATION, self.to.clone()))
            .insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(c) = &self.clear_cookie {
            res.cookie(c.clone());
        }
        res.finish()
    }
}

/// A signed-in merchant user on a console page.
pub struct Console {
    pub user: MerchantUser,
    pub csrf: String,
    pub lang: Lang,
    remember_lang: bool,
    pub ip: IpAddr,
    path: String,
    pub session_hash: Vec<u8>,
}

/// Paths a user who must change their password (or set up a required second factor) can
/// still reach.
const ALWAYS_REACHABLE: &[&str] = &[
    "/merchant/password",
    "/merchant/account",
    "/merchant/logout",
];

impl FromRequest for Console {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Console, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("no app state")))?;
            Console::load(&req, &state).await
        })
    }
}

impl Console {
    async fn load(req: &HttpRequest, state: &AppState) -> Result<Console, actix_web::Error> {
        let login = || {
            let next = req
                .uri()
                .path_and_query()
                .map_or("/merchant", |p| p.as_str());
            let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            Redirect {
                to: format!("/merchant/login?next={next}"),
                clear_cookie: Some(clear_session_cookie(state)),
            }
        };
        let Some(cookie) = req.cookie(cookie_name(state)) else {
            return Err(login().into());
        };
        let hash = sha256(cookie.value());
        let Some(session) = state.store.session(&hash).await.map_err(AppError::from)? else {
            return Err(login().into());
        };
        let idle = chrono::TimeDelta::from_std(state.settings.console.idle_timeout)
            .unwrap_or(chrono::TimeDelta::MAX);
        if chrono::Utc::now() - session.last_seen_at > idle {
            state
                .store
                .delete_session(&hash)
                .await
                .map_err(AppError::from)?;
            return Err(login().into());
        }
        if session.mfa_pending {
            return Err(Redirect::to("/merchant/login/totp").into());
        }
        let ip = super::client_ip::client_ip(req, &state.settings);
        if !session.user.tenant_allowlist.allows(ip) {
            crate::metrics::auth_failure("ip_not_allowed");
            return Err(AppError::new(
                ErrorCode::Denied("ip_not_allowed"),
                format!("your address {ip} is not on this merchant's allow-list"),
            )
            .into());
        }
        let path = req.path().to_owned();
        let exempt = ALWAYS_REACHABLE.iter().any(|p| path.starts_with(p));
        if session.user.must_change_password && !exempt {
            return Err(Redirect::to("/merchant/password").into());
        }
        if session.user.tenant_require_mfa && !session.user.totp_enabled && !exempt {
            return Err(Redirect::to("/merchant/account").into());
        }
        let (lang, remember_lang) = Lang::negotiate(req);
        Ok(Console {
            user: session.user,
            csrf: session.csrf,
            lang,
            remember_lang,
            ip,
            path,
            session_hash: hash,
        })
    }

    pub fn t(&self, key: &str) -> String {
        message(self.lang, key)
    }

    pub fn can(&self, p: Permission) -> bool {
        self.user.role.can(p)
    }

    /// 403 unless the user's role allows `p`.
    pub fn require(&self, p: Permission) -> AppResult<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::Forbidden,
                "your role does not allow this page",
            ))
        }
    }

    /// Every console form posts the session's CSRF token (compared in constant time).
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

    /// Writes an admin action to the audit log, as this user from this address.
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
                tenant_id: Some(self.user.tenant_id),
                actor_id: Some(self.user.id),
                actor: &self.user.email,
                action,
                target,
                ip: &self.ip.to_string(),
                detail,
            })
            .await?;
        Ok(())
    }

    /// Renders a console page inside the console layout, with the navigation this user's
    /// role may see.
    pub fn render(&self, state: &AppState, template: &str, data: Value) -> AppResult<HttpResponse> {
        self.render_status(state, StatusCode::OK, template, data)
    }

    pub fn render_status(
        &self,
        state: &AppState,
        status: StatusCode,
        template: &str,
        mut data: Value,
    ) -> AppResult<HttpResponse> {
        let nav: Vec<Value> = NAV
            .iter()
            .filter(|(_, _, p)| self.can(*p))
            .map(|(href, key, _)| {
                let current = if *href == "/merchant" {
                    self.path == "/merchant" || self.path.starts_with("/merchant/campaigns")
                } else {
                    self.path.starts_with(href)
                };
                json!({"href": href, "label": self.t(key), "current": current})
            })
            .collect();
        if let Some(map) = data.as_object_mut() {
            map.insert("nav".into(), json!(nav));
            map.insert("user_email".into(), json!(self.user.email));
            map.insert("tenant_name".into(), json!(self.user.tenant_name));
            map.insert("role".into(), json!(self.user.role.as_str()));
            map.insert(
                "role_label".into(),
                json!(self.t(&format!("console.role.{}", self.user.role))),
            );
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

/// Console navigation: (link, label key, who sees it).
const NAV: &[(&str, &str, Permission)] = &[
    ("/merchant", "console.nav.campaigns", Permission::ViewStats),
    ("/merchant/redeem", "console.nav.redeem", Permission::Redeem),
    (
        "/merchant/stores",
        "console.nav.stores",
        Permission::ManageCampaigns,
    ),
    (
        "/merchant/users",
        "console.nav.users",
        Permission::ManageUsers,
    ),
    (
        "/merchant/settings",
        "console.nav.settings",
        Permission::ManageSettings,
    ),
    (
        "/merchant/keys",
        "console.nav.keys",
        Permission::ManageSettings,
    ),
    ("/merchant/export", "console.nav.export", Permission::Export),
    (
        "/merchant/account",
        "console.nav.account",
        Permission::Redeem,
    ),
];

/// Renders `template` (which wraps itself in `console_layout`) with the page-wide values.
#[allow(clippy::too_many_arguments)]
pub fn page(
    state: &AppState,
    lang: Lang,
    remember_lang: bool,
    csrf: &str,
    path: &str,
    status: StatusCode,
    template: &str,
    mut data: Value,
) -> AppResult<HttpResponse> {
    let other = match lang {
        Lang::Ja => Lang::En,
        Lang::En => Lang::Ja,
    };
    if let Some(map) = data.as_object_mut() {
        map.insert("lang".into(), json!(lang.code()));
        map.insert("other_lang".into(), json!(other.code()));
        map.insert("csrf".into(), json!(csrf));
        map.insert(
            "switch_lang_url".into(),
            json!(format!("{path}?lang={}", other.code())),
        );
        map.entry("title").or_insert(Value::Null);
        map.entry("nav").or_insert(json!([]));
        map.entry("user_email").or_insert(Value::Null);
        map.entry("body_class").or_insert(json!("console"));
    }
    let html = state
        .templates
        .render(template, &data)
        .map_err(AppError::internal)?;
    let mut res = HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    remember(&mut res, state, lang, remember_lang);
    Ok(res.body(html))
}

fn remember(res: &mut HttpResponseBuilder, state: &AppState, lang: Lang, remember_lang: bool) {
    if remember_lang {
        res.cookie(
            Cookie::build("lang", lang.code())
                .path("/")
                .same_site(SameSite::Lax)
                .secure(state.secure_cookies)
                .max_age(CookieDuration::days(400))
                .finish(),
        );
    }
}

/// A form's fields with their problems, for re-showing a form with a message next to
/// each field that was wrong.
pub fn field_errors(errors: &[(&str, String)]) -> Value {
    let mut map = serde_json::Map::new();
    for (field, text) in errors {
        map.insert((*field).to_owned(), json!(text));
    }
    Value::Object(map)
}
