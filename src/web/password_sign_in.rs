//! What the merchant console's password sign-in (`web/console/login.rs`) and the operator console's
//! (`web/ops/login.rs`) share, so that the two cannot drift apart on what matters:
//!
//! - where a form may send the browser afterwards (no open redirect);
//! - the form page itself, with its pre-session CSRF cookie;
//! - the per-IP throttle's answer;
//! - one Argon2 check on every path, against a dummy hash when there is no account, so that
//!   timing reveals nothing;
//! - a new session's id, expiry and recorded user agent, and the 303 that sets its cookie.

use std::sync::OnceLock;

use actix_web::cookie::Cookie;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::domain::tenant::{hash_password, verify_password};
use crate::domain::token::{random_token, sha256};
use crate::web::console::double_submit::DoubleSubmit;
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::i18n::{message, Lang};
use crate::web::AppState;

/// One console's sign-in: its area of paths and its sign-in form.
pub struct SignInArea {
    /// The CSRF cookie of the forms that come before any session exists.
    pub csrf: DoubleSubmit,
    /// Every page of the console is this path or below it, e.g. `/merchant`.
    pub area: &'static str,
    /// The sign-in form's path (never a place to go after signing in).
    pub login: &'static str,
    /// Where a sign-in goes without a (valid) `next`.
    pub home: &'static str,
    pub body_class: &'static str,
}

impl SignInArea {
    /// `next` if it is a path of this console other than the sign-in itself, else `home`.
    pub fn safe_next(&self, next: Option<&str>) -> String {
        match next {
            Some(n) if self.is_own_path(n) => n.to_owned(),
            _ => self.home.to_owned(),
        }
    }

    fn is_own_path(&self, n: &str) -> bool {
        let rest = match n.strip_prefix(self.area) {
            Some(rest) => rest,
            None => return false,
        };
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            && !n.starts_with(self.login)
            && !n.contains("//")
            && !n.contains('\\')
            && !n.chars().any(char::is_control)
    }

    /// A sign-in form page (`template`), with the CSRF cookie set when the browser has none.
    #[allow(clippy::too_many_arguments)]
    pub fn page(
        &self,
        req: &HttpRequest,
        state: &AppState,
        status: StatusCode,
        template: &str,
        title_key: &str,
        error: Option<&str>,
        email: &str,
        next: &str,
    ) -> AppResult<HttpResponse> {
        let (lang, remember) = Lang::negotiate(req);
        let data = json!({
            "title": message(lang, title_key),
            "error": error.map(|k| message(lang, k)),
            "email": email,
            "next": next,
            "body_class": self.body_class,
            // The second sign-in step (the authenticator code) posts here.
            "totp_action": self.code_path(),
        });
        self.csrf
            .page(req, state, lang, remember, status, template, data)
    }
}

/// The second sign-in step's form: the authenticator app's code.
#[derive(Deserialize)]
pub struct CodeForm {
    pub code: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

impl SignInArea {
    /// The second step's page, where the TOTP code is given (and posted).
    fn code_path(&self) -> String {
        format!("{}/totp", self.login)
    }

    /// Where a right password goes when a TOTP code is still to come.
    pub fn code_step(&self, next: &str) -> String {
        let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        format!("{}?next={next}", self.code_path())
    }

    /// Checks a posted code form's CSRF token and the per-IP throttle (every step counts);
    /// answers where to go after it.
    pub fn code_form(
        &self,
        req: &HttpRequest,
        state: &AppState,
        form: &CodeForm,
    ) -> AppResult<String> {
        self.csrf.check(req, &form.csrf)?;
        throttle(
            state,
            crate::web::client_ip::client_ip(req, &state.settings),
        )?;
        Ok(self.safe_next(Some(&form.next)))
    }
}

/// A password change form: the current password and the new one twice.
#[derive(Deserialize)]
pub struct PasswordForm {
    pub current: String,
    pub new: String,
    pub confirm: String,
    pub csrf: String,
}

impl PasswordForm {
    /// What is wrong with the change, per field, in the page's language (`t` looks a
    /// message up): the current password (`current_ok`), the new one under the password
    /// rules (shorter allowed with a second factor), the same as before, or not typed the
    /// same twice.
    pub fn problems(
        &self,
        t: impl Fn(&str) -> String,
        current_ok: bool,
        email: &str,
        second_factor: bool,
    ) -> Vec<(&'static str, String)> {
        use crate::domain::merchant::password::check_new_password;
        use crate::domain::merchant::{PasswordProblem, MAX_PASSWORD_CHARS};
        let mut errors = Vec::new();
        if !current_ok {
            errors.push(("current", t("console.merchant_password.wrong_current")));
        }
        if let Err(problem) = check_new_password(&self.new, email, second_factor) {
            let min = match problem {
                PasswordProblem::TooShort { min } => min.to_string(),
                _ => String::new(),
            };
            let text = t(problem.message_key())
                .replace("{min}", &min)
                .replace("{max}", &MAX_PASSWORD_CHARS.to_string());
            errors.push(("new", text));
        } else if self.new == self.current {
            errors.push(("new", t("console.merchant_password.same")));
        }
        if self.new != self.confirm {
            errors.push(("confirm", t("console.merchant_password.mismatch")));
        }
        errors
    }

    /// The new password's Argon2id hash, off the async threads.
    pub async fn new_hash(&self) -> AppResult<String> {
        let new = self.new.clone();
        web::block(move || hash_password(&new))
            .await
            .map_err(AppError::internal)
    }
}

/// The password page's data: the rules' lengths for this account.
pub fn password_rules(second_factor: bool) -> serde_json::Value {
    use crate::domain::merchant::{password::min_password_chars, MAX_PASSWORD_CHARS};
    json!({"min": min_password_chars(second_factor), "max": MAX_PASSWORD_CHARS})
}

/// The per-IP sign-in throttle (every sign-in step counts): 429 with `Retry-After`.
pub fn throttle(state: &AppState, ip: std::net::IpAddr) -> AppResult<()> {
    state.limits.sign_in_attempt(ip).map_err(|wait| {
        AppError::new(
            ErrorCode::RateLimited,
            "too many sign-in attempts; wait a moment",
        )
        .with_retry_after(wait)
    })
}

/// An Argon2 hash of nothing anyone knows, checked when there is no account (or it must
/// not be tried now) so that answers take as long either way.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token()))
}

/// Checks `password` against `hash` off the async workers (Argon2 takes tens of
/// milliseconds); with no hash, against the dummy one, and answers false.
pub async fn check_password(password: &str, hash: Option<&str>) -> AppResult<bool> {
    let (password, real, hash) = match hash {
        Some(h) => (password.to_owned(), true, h.to_owned()),
        None => (password.to_owned(), false, dummy_hash().to_owned()),
    };
    let matches = web::block(move || verify_password(&password, &hash))
        .await
        .map_err(AppError::internal)?;
    Ok(real && matches)
}

/// A new session's secrets and facts. Only `id_hash` is stored; `id` goes in the cookie.
pub struct NewSessionId {
    pub id: String,
    pub id_hash: Vec<u8>,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
    /// The first 200 characters of the browser's `User-Agent`, for the session list.
    pub user_agent: String,
}

impl NewSessionId {
    pub fn new(req: &HttpRequest, state: &AppState) -> NewSessionId {
        let id = random_token();
        let absolute = chrono::TimeDelta::from_std(state.settings.console.absolute_timeout)
            .unwrap_or(chrono::TimeDelta::hours(12));
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        NewSessionId {
            id_hash: sha256(&id),
            id,
            csrf: random_token(),
            expires_at: Utc::now() + absolute,
            user_agent,
        }
    }

    /// The 303 to `to` that hands the browser its session cookie.
    pub fn redirect(&self, cookie: Cookie<'static>, to: &str) -> HttpResponse {
        HttpResponse::SeeOther()
            .cookie(cookie)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::LOCATION, to.to_owned()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERCHANT: SignInArea = SignInArea {
        csrf: DoubleSubmit {
            cookie: "c",
            path: "/merchant/login",
        },
        area: "/merchant",
        login: "/merchant/login",
        home: "/merchant",
        body_class: "",
    };

    #[test]
    fn only_the_consoles_own_pages_are_places_to_go() {
        for ok in [
            "/merchant",
            "/merchant/",
            "/merchant/keys",
            "/merchant?lang=en",
        ] {
            assert_eq!(MERCHANT.safe_next(Some(ok)), ok);
        }
        for bad in [
            "https://evil.example/merchant",
            "//evil.example",
            "/merchant//evil.example",
            "/merchant\\evil",
            "/merchantx",
            "/merchant/login",
            "/merchant/login/totp",
            "/ops",
            "/merchant/\nx",
            "",
        ] {
            assert_eq!(MERCHANT.safe_next(Some(bad)), "/merchant", "{bad:?}");
        }
        assert_eq!(MERCHANT.safe_next(None), "/merchant");
    }
}
