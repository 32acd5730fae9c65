//! What every consumer page shares: language, session cookie, CSRF token, theme, and how
//! times and discounts are shown.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, FixedOffset, Offset, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::i18n::{message, Lang};
use super::session::Session;
use super::AppState;
use crate::domain::campaign::Discount;
use crate::web::error::{AppError, AppResult};

pub struct PageCtx {
    pub lang: Lang,
    remember_lang: bool,
    pub session: Session,
    path: String,
}

impl PageCtx {
    pub fn new(req: &HttpRequest, state: &AppState) -> PageCtx {
        let (lang, remember_lang) = Lang::negotiate(req);
        PageCtx {
            lang,
            remember_lang,
            session: Session::current(req, &state.sessions),
            path: req.path().to_string(),
        }
    }

    pub fn t(&self, key: &str) -> String {
        message(self.lang, key)
    }

    /// Renders `template` inside the layout, with the page-wide values added to `data`.
    pub fn render(
        &self,
        state: &AppState,
        status: StatusCode,
        template: &str,
        mut data: Value,
    ) -> AppResult<HttpResponse> {
        let other = match self.lang {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        };
        if let Some(map) = data.as_object_mut() {
            map.insert("lang".into(), json!(self.lang.code()));
            map.insert("other_lang".into(), json!(other.code()));
            map.insert("csrf".into(), json!(self.session.csrf));
            map.insert(
                "switch_lang_url".into(),
                json!(format!("{}?lang={}", self.path, other.code())),
            );
            map.entry("theme_css").or_insert(Value::Null);
            map.entry("body_class").or_insert(json!(""));
            map.entry("title").or_insert(Value::Null);
        }
        let html = state
            .templates
            .render(template, &data)
            .map_err(AppError::internal)?;
        let mut res = HttpResponse::build(status);
        res.content_type("text/html; charset=utf-8")
            // Pages show per-person state (claimed, used): never from a shared cache.
            .insert_header((header::CACHE_CONTROL, "no-store"));
        self.apply_cookies(&mut res, state);
        Ok(res.body(html))
    }

    /// 303 See Other, the answer to a form post, keeping cookies.
    pub fn redirect(&self, state: &AppState, to: &str) -> HttpResponse {
        let mut res = HttpResponse::SeeOther();
        res.insert_header((header::LOCATION, to.to_string()));
        self.apply_cookies(&mut res, state);
        res.finish()
    }

    fn apply_cookies(&self, res: &mut actix_web::HttpResponseBuilder, state: &AppState) {
        self.session.apply(res, &state.sessions);
        if self.remember_lang {
            res.cookie(
                Cookie::build("lang", self.lang.code())
                    .path("/")
                    .same_site(SameSite::Lax)
                    .secure(state.secure_cookies)
                    .max_age(CookieDuration::days(400))
                    .finish(),
            );
        }
    }
}

/// Japan first: times are shown and typed in JST, the zone of every merchant today.
pub fn jst() -> FixedOffset {
    // 9 h is within the ±24 h east_opt accepts, so the fallback is unreachable.
    FixedOffset::east_opt(9 * 3600).unwrap_or(FixedOffset::east_opt(0).unwrap_or(Utc.fix()))
}

pub fn show_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&jst())
        .format("%Y/%m/%d %H:%M")
        .to_string()
}

/// "500円引き", "10% off", … in the page's language.
pub fn discount_text(lang: Lang, discount: Option<&Discount>) -> Option<String> {
    let fill = |key: &str, name: &str, value: &str| {
        message(lang, key).replace(&format!("{{{name}}}"), value)
    };
    Some(match discount? {
        Discount::AmountOffYen(n) => fill("discount.amount_off_yen", "amount", &n.to_string()),
        Discount::PercentOff(n) => fill("discount.percent_off", "percent", &n.to_string()),
        Discount::FreeItem(item) => fill("discount.free_item", "item", item),
        Discount::FreeText(text) => text.clone(),
    })
}

/// The stylesheet carrying a merchant's colours (the CSP allows no inline styles).
pub fn theme_url(tenant_id: Uuid) -> String {
    format!("/t/{tenant_id}/theme.css")
}

/// `GET /t/{tenant}/theme.css`
pub async fn theme_css(
    state: actix_web::web::Data<AppState>,
    tenant: actix_web::web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let theme = state
        .store
        .theme(*tenant)
        .await?
        .ok_or_else(|| AppError::not_found("theme"))?;
    // Colours are checked by the database (#rrggbb), so they are safe to emit as CSS.
    let css = format!(
        ":root{{--brand:{};--accent:{};}}\n",
        theme.brand_color, theme.accent_color
    );
    Ok(HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(css))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discounts_read_naturally() {
        let yen = Discount::AmountOffYen(500);
        assert_eq!(discount_text(Lang::Ja, Some(&yen)).unwrap(), "500円引き");
        assert_eq!(discount_text(Lang::En, Some(&yen)).unwrap(), "¥500 off");
        let item = Discount::FreeItem("Coffee".into());
        assert_eq!(discount_text(Lang::En, Some(&item)).unwrap(), "Free Coffee");
        assert_eq!(discount_text(Lang::Ja, None), None);
    }

    #[test]
    fn times_show_in_japan() {
        let at = DateTime::parse_from_rfc3339("2026-04-01T00:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(show_time(at), "2026/04/01 09:30");
    }
}
