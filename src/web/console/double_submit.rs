//! CSRF for the forms that come before any session exists (sign-in, invitation): a random
//! token in a SameSite=Strict, HttpOnly cookie scoped to the form's path, and the same token
//! in the form. A cross-site page can send the cookie's name but never read its value.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::domain::token::random_token;
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::i18n::Lang;
use crate::web::AppState;

/// `random_token()`'s length: anything else in the cookie is replaced.
const TOKEN_LEN: usize = 43;

pub struct DoubleSubmit {
    pub cookie: &'static str,
    /// The narrowest path covering the form and its action.
    pub path: &'static str,
}

impl DoubleSubmit {
    /// The browser's token, or a fresh one (true: set the cookie with [`Self::set`]).
    pub fn token(&self, req: &HttpRequest) -> (String, bool) {
        match req.cookie(self.cookie) {
            Some(c) if c.value().len() == TOKEN_LEN => (c.value().to_owned(), false),
            _ => (random_token(), true),
        }
    }

    pub fn set(&self, state: &AppState, res: &mut HttpResponse, token: &str) -> AppResult<()> {
        let cookie = Cookie::build(self.cookie, token.to_owned())
            .path(self.path)
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(state.secure_cookies)
            .max_age(CookieDuration::hours(2))
            .finish();
        res.add_cookie(&cookie).map_err(AppError::internal)
    }

    /// A console page (see [`super::page`]) whose form carries this token; the cookie is set
    /// when the browser had none.
    #[allow(clippy::too_many_arguments)]
    pub fn page(
        &self,
        req: &HttpRequest,
        state: &AppState,
        lang: Lang,
        remember_lang: bool,
        status: StatusCode,
        template: &str,
        data: serde_json::Value,
    ) -> AppResult<HttpResponse> {
        let (csrf, fresh) = self.token(req);
        let mut res = super::page(
            state,
            lang,
            remember_lang,
            &csrf,
            req.path(),
            status,
            template,
            data,
        )?;
        if fresh {
            self.set(state, &mut res, &csrf)?;
        }
        Ok(res)
    }

    /// The form's token must equal the cookie's (compared in constant time).
    pub fn check(&self, req: &HttpRequest, sent: &str) -> AppResult<()> {
        use subtle::ConstantTimeEq;
        let ok = req.cookie(self.cookie).is_some_and(|c| {
            !sent.is_empty() && bool::from(c.value().as_bytes().ct_eq(sent.as_bytes()))
        });
        if ok {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::CsrfFailed,
                "the form has expired; reload the page and try again",
            ))
        }
    }
}
