//! Who the consumer is, in one encrypted cookie.
//!
//! With no sign-in, the first visit makes a device identity (`device:<uuid>`): one device is
//! one consumer. Signing in replaces it with `oidc:<provider>:<subject>`. The cookie also
//! carries the CSRF token every consumer form posts back. It is encrypted and authenticated
//! with `secrets.cookie_key` (AES-GCM), HttpOnly, SameSite=Lax, and Secure when the public URL
//! is https; then its name has the `__Host-` prefix, so no subdomain can set or shadow it.
//!
//! The cookie carries when it was issued, and is refused `pages.session_lifetime` after
//! that, whatever the browser keeps. A signed-in session is never renewed: a copied cookie
//! stops working, and signing in again gives the same consumer. A device identity *is* its
//! coupons, so it is renewed (at most daily) while it is used, and ends only when unused for
//! the lifetime. `POST /auth/signout` ends either.

use std::time::Duration;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, CookieJar, Key, SameSite};
use actix_web::{HttpRequest, HttpResponseBuilder};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::domain::token::random_token;
use crate::web::error::{AppError, ErrorCode};

pub const COOKIE: &str = "ecoupon_session";
/// The name under TLS (RFC 6265bis: Secure, Path=/, no Domain).
pub const HOST_COOKIE: &str = "__Host-ecoupon_session";

/// A device identity in use is re-issued once it is this old.
const RENEW_AFTER: i64 = 86_400;

/// How session cookies are made: the key, whether they are Secure, how long they live.
#[derive(Clone)]
pub struct SessionCookies {
    pub key: Key,
    pub secure: bool,
    pub lifetime: Duration,
}

impl SessionCookies {
    pub fn name(&self) -> &'static str {
        if self.secure {
            HOST_COOKIE
        } else {
            COOKIE
        }
    }

    /// A cookie that makes the browser forget the session.
    pub fn removal(&self) -> Cookie<'static> {
        let mut cookie = Cookie::build(self.name(), "")
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .finish();
        cookie.make_removal();
        cookie
    }

    fn lifetime_secs(&self) -> i64 {
        i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The engine's consumer reference.
    pub consumer: String,
    pub csrf: String,
    /// Set once the consumer signed in with a provider.
    #[serde(default)]
    pub signed_in: bool,
    /// Unix seconds. Absent in cookies made before it existed.
    #[serde(default)]
    issued_at: Option<i64>,
    #[serde(skip)]
    changed: bool,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Session {
    fn new_device() -> Session {
        Session {
            consumer: format!("device:{}", uuid::Uuid::new_v4()),
            csrf: random_token(),
            signed_in: false,
            issued_at: Some(now()),
            changed: true,
        }
    }

    /// The request's session, or a fresh device identity (sent with the response).
    pub fn current(req: &HttpRequest, cookies: &SessionCookies) -> Session {
        Session::read(req, cookies).unwrap_or_else(Session::new_device)
    }

    /// The request's session if it has one that has not expired.
    pub fn read(req: &HttpRequest, cookies: &SessionCookies) -> Option<Session> {
        let name = cookies.name();
        let cookie = req.cookie(name)?;
        let mut jar = CookieJar::new();
        jar.add_original(cookie);
        let plain = jar.private(&cookies.key).get(name)?;
        let mut session: Session = serde_json::from_str(plain.value()).ok()?;
        let now = now();
        match session.issued_at {
            Some(at) if now.saturating_sub(at) > cookies.lifetime_secs() => None,
            // Renewal keeps a device identity that is in use; a sign-in is never renewed.
            Some(at) if !session.signed_in && now.saturating_sub(at) > RENEW_AFTER => {
                session.issued_at = Some(now);
                session.changed = true;
                Some(session)
            }
            Some(_) => Some(session),
            // From before sessions expired: a device keeps its coupons (starting its
            // lifetime now); a sign-in of unknown age is over.
            None if session.signed_in => None,
            None => {
                session.issued_at = Some(now);
                session.changed = true;
                Some(session)
            }
        }
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
            issued_at: Some(now()),
            changed: true,
        }
    }

    /// The provider a signed-in consumer used (`oidc:<provider>:<subject>`).
    pub fn provider(&self) -> Option<&str> {
        if !self.signed_in {
            return None;
        }
        self.consumer.strip_prefix("oidc:")?.split(':').next()
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
    pub fn apply(&self, res: &mut HttpResponseBuilder, cookies: &SessionCookies) {
        if self.changed {
            res.cookie(self.cookie(cookies));
        }
    }

    pub fn cookie(&self, cookies: &SessionCookies) -> Cookie<'static> {
        let name = cookies.name();
        let value = serde_json::to_string(self).unwrap_or_default();
        let left =
            cookies.lifetime_secs() - now().saturating_sub(self.issued_at.unwrap_or_else(now));
        let mut jar = CookieJar::new();
        jar.private_mut(&cookies.key).add(
            Cookie::build(name, value)
                .path("/")
                .http_only(true)
                .secure(cookies.secure)
                .same_site(SameSite::Lax)
                .max_age(CookieDuration::seconds(left.max(0)))
                .finish(),
        );
        jar.get(name)
            .cloned()
            .unwrap_or_else(|| Cookie::new(name, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn cookies(secure: bool) -> SessionCookies {
        SessionCookies {
            key: Key::generate(),
            secure,
            lifetime: Duration::from_secs(30 * 86_400),
        }
    }

    fn read_back(cookie: Cookie<'static>, cookies: &SessionCookies) -> Option<Session> {
        let req = TestRequest::default().cookie(cookie).to_http_request();
        Session::read(&req, cookies)
    }

    #[test]
    fn sessions_round_trip_and_resist_tampering() {
        let c = cookies(true);
        let s = Session::new_device();
        let cookie = s.cookie(&c);
        assert!(cookie.http_only().unwrap() && cookie.secure().unwrap());
        assert_eq!(cookie.name(), "__Host-ecoupon_session");
        assert_eq!(cookie.path(), Some("/"));
        assert!(cookie.domain().is_none());
        let age = cookie.max_age().unwrap().whole_seconds();
        assert!((30 * 86_400 - 5..=30 * 86_400).contains(&age), "{age}");
        assert!(
            !cookie.value().contains("device:"),
            "encrypted, not just signed"
        );
        let read = read_back(cookie.clone(), &c).unwrap();
        assert_eq!(read.consumer, s.consumer);
        assert!(!read.changed, "a new session is not re-issued");

        let tampered = Cookie::new(HOST_COOKIE, format!("{}x", cookie.value()));
        assert!(read_back(tampered, &c).is_none());
        let other_key = SessionCookies {
            key: Key::generate(),
            ..c.clone()
        };
        assert!(read_back(cookie.clone(), &other_key).is_none());
        // Without TLS the name has no prefix, and the prefixed cookie is not read.
        let plain = cookies(false);
        assert_eq!(s.cookie(&plain).name(), "ecoupon_session");
        assert!(read_back(cookie, &SessionCookies { secure: false, ..c }).is_none());
    }

    #[test]
    fn sessions_expire_sign_ins_are_never_renewed_devices_are() {
        let c = cookies(false);
        let aged = |mut s: Session, secs: i64| {
            s.issued_at = Some(now() - secs);
            s.cookie(&c)
        };
        let day = 86_400;
        // Past the lifetime: gone, signed in or not.
        assert!(read_back(aged(Session::new_device(), 31 * day), &c).is_none());
        assert!(read_back(aged(Session::sign_in("google", "s"), 31 * day), &c).is_none());
        // A device in use is renewed with the same identity.
        let device = Session::new_device();
        let read = read_back(aged(device.clone(), 2 * day), &c).unwrap();
        assert_eq!(read.consumer, device.consumer);
        assert!(read.changed && read.issued_at.unwrap() >= now() - 5);
        // A sign-in is not, and its cookie's max-age counts down from the sign-in.
        let signed = read_back(aged(Session::sign_in("google", "s"), 2 * day), &c).unwrap();
        assert!(!signed.changed);
        let age = signed.cookie(&c).max_age().unwrap().whole_seconds();
        assert!(age <= 28 * day, "{age}");
        // Cookies from before issued_at existed.
        let legacy = |signed_in| Session {
            issued_at: None,
            signed_in,
            ..Session::new_device()
        };
        assert!(read_back(legacy(true).cookie(&c), &c).is_none());
        assert!(read_back(legacy(false).cookie(&c), &c).unwrap().changed);
    }

    #[test]
    fn the_provider_is_that_of_a_sign_in() {
        assert_eq!(Session::sign_in("line", "u:1").provider(), Some("line"));
        assert_eq!(Session::new_device().provider(), None);
    }

    #[test]
    fn csrf_must_match() {
        let s = Session::new_device();
        assert!(s.check_csrf(&s.csrf.clone()).is_ok());
        assert!(s.check_csrf("nope").is_err());
        assert!(s.check_csrf("").is_err());
    }
}
