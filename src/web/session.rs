//! Who the consumer is, in one encrypted cookie.
//!
//! With no sign-in, the first visit makes a device identity (`device:<uuid>`): one device is
//! one consumer. Signing in replaces it with `oidc:<provider>:<subject>`. The cookie also
//! carries the CSRF token every consumer form posts back. It is encrypted and authenticated
//! with `secrets.cookie_key` (AES-GCM), HttpOnly, SameSite=Lax, and Secure when the public URL
//! is https.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, CookieJar, Key, SameSite};
use actix_web::{HttpRequest, HttpResponseBuilder};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::domain::token::random_token;
use crate::web::error::{AppError, ErrorCode};

pub const COOKIE: &str = "ecoupon_session";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The engine's consumer reference.
    pub consumer: String,
    pub csrf: String,
    /// Set once the consumer signed in with a provider.
    #[serde(default)]
    pub signed_in: bool,
    #[serde(skip)]
    changed: bool,
}

impl Session {
    fn new_device() -> Session {
        Session {
            consumer: format!("device:{}", uuid::Uuid::new_v4()),
            csrf: random_token(),
            signed_in: false,
            changed: true,
        }
    }

    /// The request's session, or a fresh device identity (sent with the response).
    pub fn current(req: &HttpRequest, key: &Key) -> Session {
        Session::read(req, key).unwrap_or_else(Session::new_device)
    }

    pub fn read(req: &HttpRequest, key: &Key) -> Option<Session> {
        let cookie = req.cookie(COOKIE)?;
        let mut jar = CookieJar::new();
        jar.add_original(cookie);
        let plain = jar.private(key).get(COOKIE)?;
        serde_json::from_str(plain.value()).ok()
    }

    /// Made by this request (no cookie came with it): such a consumer has no claims yet.
    pub fn is_fresh(&self) -> bool {
        self.changed
    }

    /// Signed in with a provider: a new identity and a new CSRF token.
    pub fn sign_in(provider: &str, subject: &str) -> Session {
        Session {
            consumer: format!("oidc:{provider}:{subject}"),
            csrf: random_token(),
            signed_in: true,
            changed: true,
        }
    }

    /// Checks a form's CSRF token against the session's, in constant time.
    pub fn check_csrf(&self, presented: &str) -> Result<(), AppError> {
        if bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes())) && !self.csrf.is_empty() {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::CsrfFailed,
                "the form expired; reload the page and try again",
            ))
        }
    }

    /// Adds the cookie to the response if the session is new or changed.
    pub fn apply(&self, res: &mut HttpResponseBuilder, key: &Key, secure: bool) {
        if self.changed {
            res.cookie(self.cookie(key, secure));
        }
    }

    pub fn cookie(&self, key: &Key, secure: bool) -> Cookie<'static> {
        let value = serde_json::to_string(self).unwrap_or_default();
        let mut jar = CookieJar::new();
        jar.private_mut(key).add(
            Cookie::build(COOKIE, value)
                .path("/")
                .http_only(true)
                .secure(secure)
                .same_site(SameSite::Lax)
                .max_age(CookieDuration::days(400))
                .finish(),
        );
        jar.get(COOKIE)
            .cloned()
            .unwrap_or_else(|| Cookie::new(COOKIE, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn sessions_round_trip_and_resist_tampering() {
        let key = Key::generate();
        let s = Session::new_device();
        let cookie = s.cookie(&key, true);
        assert!(cookie.http_only().unwrap() && cookie.secure().unwrap());
        assert!(
            !cookie.value().contains("device:"),
            "encrypted, not just signed"
        );
        let req = TestRequest::default()
            .cookie(cookie.clone())
            .to_http_request();
        let read = Session::read(&req, &key).unwrap();
        assert_eq!(read.consumer, s.consumer);

        let tampered = Cookie::new(COOKIE, format!("{}x", cookie.value()));
        let req = TestRequest::default().cookie(tampered).to_http_request();
        assert!(Session::read(&req, &key).is_none());
        let req = TestRequest::default().cookie(cookie).to_http_request();
        assert!(Session::read(&req, &Key::generate()).is_none());
    }

    #[test]
    fn csrf_must_match() {
        let s = Session::new_device();
        assert!(s.check_csrf(&s.csrf.clone()).is_ok());
        assert!(s.check_csrf("nope").is_err());
        assert!(s.check_csrf("").is_err());
    }
}
