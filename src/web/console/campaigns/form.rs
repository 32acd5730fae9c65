//! The editor's form: its values as typed (and as a stored campaign shows in it), read
//! from the multipart body within bounds on every part and on the whole. [`super::draft`]
//! turns them into the domain's draft.

use actix_multipart::Multipart;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use crate::domain::campaign::RawDiscount;
use crate::domain::coupon_code::Charset;
use crate::domain::image::{ImageError, ImageKind, MAX_IMAGE_BYTES};
use crate::store::CampaignRecord;
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::pages::jst;

/// Text fields are short (terms, the longest, is 10,000 characters); anything bigger
/// is not a browser filling in this form.
const MAX_TEXT_BYTES: usize = 64 * 1024;
const MAX_PARTS: usize = 64;
/// Read (and thrown away) past the image limit so a too-large photo still gets its
/// message next to the field; beyond this the request is refused outright.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The form's values as typed (what a re-shown form displays).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FormValues {
    pub name: String,
    pub description: String,
    pub terms: String,
    pub discount_kind: String,
    pub discount_value: String,
    pub total_limit: String,
    pub per_consumer_limit: String,
    pub claim_starts_at: String,
    pub claim_ends_at: String,
    pub use_starts_at: String,
    pub use_ends_at: String,
    pub valid_for_days: String,
    pub uses_per_coupon: String,
    pub win_probability: String,
    pub signin: String,
    pub code_length: String,
    pub code_prefix: String,
    pub code_charset: String,
    pub status: String,
}

impl FormValues {
    fn set(&mut self, name: &str, value: String) {
        let slot = match name {
            "name" => &mut self.name,
            "description" => &mut self.description,
            "terms" => &mut self.terms,
            "discount_kind" => &mut self.discount_kind,
            "discount_value" => &mut self.discount_value,
            "total_limit" => &mut self.total_limit,
            "per_consumer_limit" => &mut self.per_consumer_limit,
            "claim_starts_at" => &mut self.claim_starts_at,
            "claim_ends_at" => &mut self.claim_ends_at,
            "use_starts_at" => &mut self.use_starts_at,
            "use_ends_at" => &mut self.use_ends_at,
            "valid_for_days" => &mut self.valid_for_days,
            "uses_per_coupon" => &mut self.uses_per_coupon,
            "win_probability" => &mut self.win_probability,
            "signin" => &mut self.signin,
            "code_length" => &mut self.code_length,
            "code_prefix" => &mut self.code_prefix,
            "code_charset" => &mut self.code_charset,
            "status" => &mut self.status,
            _ => return,
        };
        *slot = value;
    }

    /// A blank new campaign, with the defaults the domain would pick anyway.
    pub fn blank() -> FormValues {
        FormValues {
            discount_kind: "none".into(),
            per_consumer_limit: "1".into(),
            uses_per_coupon: "1".into(),
            signin: "none".into(),
            code_length: "10".into(),
            code_charset: "unambiguous".into(),
            status: "draft".into(),
            ..FormValues::default()
        }
    }

    /// A stored campaign as the form shows it (times in Japan, days, percent).
    pub fn of(c: &CampaignRecord) -> FormValues {
        let r = c.rules.params();
        let (discount_kind, discount_value) = match &c.discount {
            None => ("none", String::new()),
            Some(d) => match RawDiscount::from(d.clone()) {
                RawDiscount::AmountOffYen { amount } => ("amount_off_yen", amount.to_string()),
                RawDiscount::PercentOff { percent } => ("percent_off", percent.to_string()),
                RawDiscount::FreeItem { item } => ("free_item", item),
                RawDiscount::FreeText { text } => ("free_text", text),
            },
        };
        let time = |t: Option<DateTime<Utc>>| t.map(local).unwrap_or_default();
        FormValues {
            name: c.name.clone(),
            description: c.description.clone(),
            terms: c.terms.clone(),
            discount_kind: discount_kind.into(),
            discount_value,
            total_limit: r.total_limit.to_string(),
            per_consumer_limit: r.per_consumer_limit.to_string(),
            claim_starts_at: time(r.claim_starts_at),
            claim_ends_at: time(r.claim_ends_at),
            use_starts_at: time(r.use_starts_at),
            use_ends_at: time(r.use_ends_at),
            valid_for_days: r.valid_for_seconds.map(days).unwrap_or_default(),
            uses_per_coupon: r.uses_per_coupon.to_string(),
            win_probability: r.win_probability.map(percent).unwrap_or_default(),
            signin: c.signin.as_str().into(),
            code_length: c.codes.length().to_string(),
            code_prefix: c.codes.prefix().into(),
            code_charset: charset_setting(c.codes.charset()),
            status: c.status.as_str().into(),
        }
    }
}

fn charset_setting(c: &Charset) -> String {
    match c {
        Charset::Unambiguous => "unambiguous".into(),
        Charset::Digits => "digits".into(),
        Charset::Custom(_) => c.as_str().into(),
    }
}

/// What the browser sent.
pub struct Submitted {
    pub values: FormValues,
    pub csrf: String,
    /// None: no file chosen.
    pub image: Option<Result<(ImageKind, Vec<u8>), ImageError>>,
    pub remove_image: bool,
}

fn bad_form(e: impl std::fmt::Display) -> AppError {
    AppError::invalid("invalid_form", format!("the form could not be read: {e}"))
}

fn too_large() -> AppError {
    AppError::new(ErrorCode::PayloadTooLarge, "the form is too large")
}

/// Reads the multipart body with bounds on every part and on the whole.
pub async fn read(mut body: Multipart) -> AppResult<Submitted> {
    let mut out = Submitted {
        values: FormValues::default(),
        csrf: String::new(),
        image: None,
        remove_image: false,
    };
    let (mut parts, mut total) = (0usize, 0usize);
    while let Some(field) = body.next().await {
        let mut field = field.map_err(bad_form)?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(too_large());
        }
        let name = field.name().unwrap_or_default().to_owned();
        let is_image = name == "image";
        let mut buf = Vec::new();
        let mut over = false;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(bad_form)?;
            total += chunk.len();
            if total > MAX_BODY_BYTES || (!is_image && buf.len() + chunk.len() > MAX_TEXT_BYTES) {
                return Err(too_large());
            }
            if is_image && (over || buf.len() + chunk.len() > MAX_IMAGE_BYTES) {
                over = true;
                buf = Vec::new();
                continue;
            }
            buf.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "image" if over => out.image = Some(Err(ImageError::TooLarge)),
            // An empty file part is the browser saying "no file chosen".
            "image" if buf.is_empty() => {}
            "image" => out.image = Some(ImageKind::sniff(&buf).map(|kind| (kind, buf))),
            "csrf" => out.csrf = String::from_utf8_lossy(&buf).into_owned(),
            "remove_image" => out.remove_image = !buf.is_empty(),
            other => out
                .values
                .set(other, String::from_utf8_lossy(&buf).into_owned()),
        }
    }
    Ok(out)
}

/// A time as a `datetime-local` value in Japan time.
pub fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&jst())
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Seconds as days, the way the form shows them.
pub fn days(secs: i64) -> String {
    trim_number(secs as f64 / 86_400.0)
}

pub(super) fn percent(p: f64) -> String {
    trim_number(p * 100.0)
}

/// At most six decimals, no trailing zeros: 30, 0.5, 0.041667.
fn trim_number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}
