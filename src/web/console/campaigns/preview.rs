//! The live preview beside the editor: the consumer claim page's card, in Japanese and
//! in English, drawn from the form's values as typed. The server draws it first (so a
//! re-shown form previews what was typed); `console.js` then redraws it on every
//! keystroke from the same catalogue strings, which each panel carries as data-
//! attributes, so both languages format without a round trip.

use serde_json::{json, Value};

use super::form::FormValues;
use crate::web::i18n::{message, Lang};

/// What the panels show besides the form's values.
pub struct PreviewContext {
    pub shop: Option<String>,
    pub logo_url: Option<String>,
    pub image_url: Option<String>,
    /// Coupons already issued: "n left" is the limit minus these.
    pub issued: i64,
}

/// `{name}` in a catalogue string, filled.
fn fill(lang: Lang, key: &str, name: &str, value: &str) -> String {
    message(lang, key).replace(&format!("{{{name}}}"), value)
}

/// "2030-04-01T09:00" (a `datetime-local` value, Japan time) as the claim page shows
/// times: "2030/04/01 09:00".
fn shown(value: &str) -> Option<String> {
    let v = value.trim();
    let (date, time) = v.split_once('T')?;
    let minutes = time.get(..5)?;
    (date.len() == 10).then(|| format!("{} {minutes}", date.replace('-', "/")))
}

fn whole(value: &str) -> Option<i64> {
    value.trim().parse().ok()
}

/// The discount line as the claim page would print it; empty while it makes no sense.
fn discount(lang: Lang, v: &FormValues) -> String {
    let value = v.discount_value.trim();
    match v.discount_kind.as_str() {
        "amount_off_yen" => whole(value)
            .filter(|n| *n > 0)
            .map(|n| fill(lang, "discount.amount_off_yen", "amount", &n.to_string()))
            .unwrap_or_default(),
        "percent_off" => whole(value)
            .filter(|n| *n > 0)
            .map(|n| fill(lang, "discount.percent_off", "percent", &n.to_string()))
            .unwrap_or_default(),
        "free_item" if !value.is_empty() => fill(lang, "discount.free_item", "item", value),
        "free_text" => value.to_owned(),
        _ => String::new(),
    }
}

fn panel(lang: Lang, page: Lang, v: &FormValues, ctx: &PreviewContext) -> Value {
    let untitled = message(lang, "console.campaigns.preview.untitled");
    let now = message(lang, "console.campaigns.preview.now");
    let start = shown(&v.claim_starts_at).unwrap_or_else(|| now.clone());
    let period = match shown(&v.claim_ends_at) {
        Some(end) => message(lang, "claim.period_until")
            .replace("{start}", &start)
            .replace("{end}", &end),
        None => fill(lang, "claim.period_from", "start", &start),
    };
    let remaining = whole(&v.total_limit)
        .map(|n| (n - ctx.issued).max(0))
        .unwrap_or(0);
    let usage = v
        .valid_for_days
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(|d| fill(lang, "claim.usage", "days", &(d.ceil() as i64).to_string()));
    let name = v.name.trim();
    json!({
        "lang": lang.code(),
        "label": message(page, &format!("console.campaigns.preview.{}", lang.code())),
        "shop": ctx.shop,
        "logo_url": ctx.logo_url,
        "image_url": ctx.image_url,
        "name": if name.is_empty() { untitled.clone() } else { name.to_owned() },
        "discount": discount(lang, v),
        "description": v.description,
        "has_description": !v.description.trim().is_empty(),
        "terms": v.terms,
        "has_terms": !v.terms.trim().is_empty(),
        "remaining": fill(lang, "claim.remaining", "n", &remaining.to_string()),
        "button": message(lang, "claim.button"),
        "period_label": message(lang, "claim.period"),
        "period": period,
        "usage_label": message(lang, "wallet.expires"),
        "usage": usage,
        "terms_label": message(lang, "claim.terms"),
        "fmt": {
            "amount_off_yen": message(lang, "discount.amount_off_yen"),
            "percent_off": message(lang, "discount.percent_off"),
            "free_item": message(lang, "discount.free_item"),
            "remaining": message(lang, "claim.remaining"),
            "usage": message(lang, "claim.usage"),
            "period_until": message(lang, "claim.period_until"),
            "period_from": message(lang, "claim.period_from"),
            "now": now,
            "untitled": untitled,
        },
    })
}

/// Both panels, Japanese first; `page` is the console's language (for the labels).
pub fn panels(page: Lang, v: &FormValues, ctx: &PreviewContext) -> Value {
    json!([panel(Lang::Ja, page, v, ctx), panel(Lang::En, page, v, ctx)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_read_naturally() {
        let mut v = FormValues::blank();
        v.name = "Spring".into();
        v.total_limit = "100".into();
        v.discount_kind = "amount_off_yen".into();
        v.discount_value = "500".into();
        v.claim_starts_at = "2030-04-01T09:00".into();
        v.valid_for_days = "6.5".into();
        let ctx = PreviewContext {
            shop: Some("Cafe".into()),
            logo_url: None,
            image_url: None,
            issued: 40,
        };
        let p = panels(Lang::En, &v, &ctx);
        assert_eq!(p[0]["discount"], "500円引き");
        assert_eq!(p[1]["discount"], "¥500 off");
        assert_eq!(p[0]["remaining"], "残り 60 枚");
        assert_eq!(p[0]["period"], "2030/04/01 09:00 〜");
        assert_eq!(p[0]["usage"], "受け取りから 7 日間");
        assert_eq!(p[1]["label"], "English");
        v.discount_kind = "percent_off".into();
        v.discount_value = "x".into();
        v.name = " ".into();
        let p = panels(Lang::Ja, &v, &ctx);
        assert_eq!(p[1]["discount"], "");
        assert_ne!(p[1]["name"], "");
    }
}
