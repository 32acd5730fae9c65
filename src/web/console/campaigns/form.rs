//! The editor's form: multipart fields read within bounds, turned into the same
//! [`CampaignDraft`] the API builds (so both obey one set of rules), and every problem
//! mapped to the input it is about.

use actix_multipart::Multipart;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use crate::domain::campaign::{
    CampaignDraft, CampaignError, NewCampaign, RawDiscount, RulesParams,
};
use crate::domain::coupon_code::Charset;
use crate::domain::image::{ImageError, ImageKind, MAX_IMAGE_BYTES};
use crate::store::CampaignRecord;
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::i18n::{message, Lang};

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

/// A problem with one input: the input's name and the message to show beside it.
pub type FieldError = (&'static str, String);

fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
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

fn percent(p: f64) -> String {
    trim_number(p * 100.0)
}

/// At most six decimals, no trailing zeros: 30, 0.5, 0.041667.
fn trim_number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// Phones type full-width digits in Japanese mode; they mean the same numbers.
fn ascii(v: &str) -> String {
    v.trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '．' => '.',
            '－' | 'ー' => '-',
            c => c,
        })
        .collect()
}

fn int(v: &str) -> Result<Option<i64>, ()> {
    let v = ascii(v);
    if v.is_empty() {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| ())
}

fn float(v: &str) -> Result<Option<f64>, ()> {
    let v = ascii(v);
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Some(f)),
        _ => Err(()),
    }
}

/// A `datetime-local` value (Japan time) as UTC.
fn time(v: &str) -> Result<Option<DateTime<Utc>>, ()> {
    let v = ascii(v);
    if v.is_empty() {
        return Ok(None);
    }
    let formats = [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M",
    ];
    let naive = formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&v, f).ok())
        .ok_or(())?;
    let at = jst().from_local_datetime(&naive).single().ok_or(())?;
    Ok(Some(at.with_timezone(&Utc)))
}

/// The input a domain error is about (the form's names for days and discounts differ
/// from the API's).
pub fn form_field(e: &CampaignError) -> &'static str {
    match e.field() {
        "discount" => "discount_value",
        "valid_for_seconds" => "valid_for_days",
        other => other,
    }
}

/// The message for a domain error in `lang`.
pub fn error_message(lang: Lang, e: &CampaignError) -> String {
    let text = message(lang, &format!("console.campaigns.error.{}", e.code()));
    match e {
        CampaignError::LimitBelowIssued { issued, .. } => {
            text.replace("{issued}", &issued.to_string())
        }
        CampaignError::InvalidTransition { from, action } => text
            .replace("{from}", &message(lang, &format!("console.status.{from}")))
            .replace(
                "{action}",
                &message(lang, &format!("console.campaigns.action.{action}")),
            ),
        _ => text,
    }
}

/// Problems found before the domain sees the input, each with its message.
struct Problems {
    lang: Lang,
    list: Vec<FieldError>,
}

impl Problems {
    fn add(&mut self, field: &'static str, key: &str) {
        let text = message(self.lang, &format!("console.campaigns.error.{key}"));
        self.list.push((field, text));
    }

    fn int(&mut self, field: &'static str, value: &str) -> Option<i64> {
        int(value).unwrap_or_else(|()| {
            self.add(field, "not_a_number");
            None
        })
    }

    fn float(&mut self, field: &'static str, value: &str) -> Option<f64> {
        float(value).unwrap_or_else(|()| {
            self.add(field, "not_a_number");
            None
        })
    }

    /// A time; one shown unchanged keeps its stored seconds.
    fn time(
        &mut self,
        field: &'static str,
        value: &str,
        stored: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        if let Some(same) = stored.filter(|s| local(*s) == value.trim()) {
            return Some(same);
        }
        time(value).unwrap_or_else(|()| {
            self.add(field, "not_a_time");
            None
        })
    }
}

/// The form as a draft, plus the problems found before the domain sees it (a number
/// that is not one, a time that is not one). `current` is the campaign being edited:
/// a value shown unchanged keeps its exact stored value (the form shows minutes, days
/// and percent, which would otherwise round it).
pub fn to_draft(
    v: &FormValues,
    lang: Lang,
    creating: bool,
    current: Option<&RulesParams>,
) -> (CampaignDraft, Vec<FieldError>) {
    let mut p = Problems {
        lang,
        list: Vec::new(),
    };
    let total_limit = p.int("total_limit", &v.total_limit);
    if total_limit.is_none() && ascii(&v.total_limit).is_empty() {
        p.add("total_limit", "required");
    }
    let per_consumer_limit = p.int("per_consumer_limit", &v.per_consumer_limit);
    let uses_per_coupon = p.int("uses_per_coupon", &v.uses_per_coupon);
    let code_length = p.int("code_length", &v.code_length);
    let stored = |f: fn(&RulesParams) -> Option<DateTime<Utc>>| current.and_then(f);
    let claim_starts_at = p.time(
        "claim_starts_at",
        &v.claim_starts_at,
        stored(|c| c.claim_starts_at),
    );
    let claim_ends_at = p.time(
        "claim_ends_at",
        &v.claim_ends_at,
        stored(|c| c.claim_ends_at),
    );
    let use_starts_at = p.time(
        "use_starts_at",
        &v.use_starts_at,
        stored(|c| c.use_starts_at),
    );
    let use_ends_at = p.time("use_ends_at", &v.use_ends_at, stored(|c| c.use_ends_at));
    let valid_for_seconds = match current
        .and_then(|c| c.valid_for_seconds)
        .filter(|s| days(*s) == ascii(&v.valid_for_days))
    {
        Some(same) => Some(same),
        // Out-of-range days become out-of-range seconds for the domain to refuse.
        None => p
            .float("valid_for_days", &v.valid_for_days)
            .map(|d| (d * 86_400.0).round().clamp(-1.0, 1e15) as i64),
    };
    let win_probability = match current
        .and_then(|c| c.win_probability)
        .filter(|w| percent(*w) == ascii(&v.win_probability))
    {
        Some(same) => Some(same),
        None => p
            .float("win_probability", &v.win_probability)
            .map(|w| w / 100.0),
    };
    let discount = match v.discount_kind.as_str() {
        "" | "none" => None,
        "amount_off_yen" => Some(RawDiscount::AmountOffYen {
            amount: p.int("discount_value", &v.discount_value).unwrap_or(0),
        }),
        "percent_off" => Some(RawDiscount::PercentOff {
            percent: p.int("discount_value", &v.discount_value).unwrap_or(0),
        }),
        "free_item" => Some(RawDiscount::FreeItem {
            item: v.discount_value.clone(),
        }),
        "free_text" => Some(RawDiscount::FreeText {
            text: v.discount_value.clone(),
        }),
        _ => {
            p.add("discount_kind", "invalid_discount_kind");
            None
        }
    };
    let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let draft = CampaignDraft {
        name: v.name.clone(),
        description: Some(v.description.clone()),
        terms: Some(v.terms.clone()),
        discount,
        rules: RulesParams {
            // A placeholder where the form already said what is wrong, so the domain
            // can still report the other fields.
            total_limit: total_limit.unwrap_or(1),
            per_consumer_limit: per_consumer_limit.unwrap_or(1),
            claim_starts_at,
            claim_ends_at,
            use_starts_at,
            use_ends_at,
            valid_for_seconds,
            uses_per_coupon: uses_per_coupon.unwrap_or(1),
            win_probability,
        },
        status: if creating { some(&v.status) } else { None },
        signin: some(&v.signin),
        code_length,
        code_prefix: some(&v.code_prefix).map(|p| p.to_ascii_uppercase()),
        code_charset: some(&v.code_charset),
    };
    (draft, p.list)
}

/// The form's problems, then the domain's: one message per input, the first found.
pub fn merge(mut list: Vec<FieldError>, domain: &[CampaignError], lang: Lang) -> Vec<FieldError> {
    list.extend(
        domain
            .iter()
            .map(|e| (form_field(e), error_message(lang, e))),
    );
    let mut seen = std::collections::HashSet::new();
    list.retain(|(field, _)| seen.insert(*field));
    list
}

/// Parses the draft, collecting every domain error rather than the first: after each
/// one, that field is set to a harmless value and the draft parsed again.
pub fn parse_all(
    mut draft: CampaignDraft,
    now: DateTime<Utc>,
) -> Result<NewCampaign, Vec<CampaignError>> {
    let mut errors = Vec::new();
    // Each round neutralises one field; there are fewer fields than this.
    for _ in 0..32 {
        match NewCampaign::parse(draft.clone(), now) {
            Ok(parsed) if errors.is_empty() => return Ok(parsed),
            Ok(_) => return Err(errors),
            Err(e) => {
                neutralise(&mut draft, e.field());
                errors.push(e);
            }
        }
    }
    Err(errors)
}

fn neutralise(d: &mut CampaignDraft, field: &str) {
    let r = &mut d.rules;
    match field {
        "name" => d.name = "-".into(),
        "description" => d.description = None,
        "terms" => d.terms = None,
        "discount" => d.discount = None,
        "total_limit" => r.total_limit = 1,
        "per_consumer_limit" => r.per_consumer_limit = 1,
        "claim_ends_at" => r.claim_ends_at = None,
        "use_ends_at" => r.use_ends_at = None,
        "valid_for_seconds" => r.valid_for_seconds = None,
        "uses_per_coupon" => r.uses_per_coupon = 1,
        "win_probability" => r.win_probability = None,
        "status" => d.status = None,
        "signin" => d.signin = None,
        "code_length" => d.code_length = None,
        "code_prefix" => d.code_prefix = None,
        _ => d.code_charset = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(f: impl FnOnce(&mut FormValues)) -> FormValues {
        let mut v = FormValues::blank();
        v.name = "春のセール".into();
        v.total_limit = "100".into();
        f(&mut v);
        v
    }

    fn problems(v: &FormValues) -> Vec<&'static str> {
        let now = Utc::now();
        let (draft, mut fields): (_, Vec<&str>) = {
            let (d, e) = to_draft(v, Lang::En, true, None);
            (d, e.into_iter().map(|(f, _)| f).collect())
        };
        if let Err(errors) = parse_all(draft, now) {
            fields.extend(errors.iter().map(form_field));
        }
        fields.dedup();
        fields
    }

    #[test]
    fn a_good_form_parses_with_japan_times() {
        let v = values(|v| {
            v.claim_starts_at = "2030-04-01T09:00".into();
            v.valid_for_days = "7".into();
            v.win_probability = "30".into();
            v.discount_kind = "amount_off_yen".into();
            v.discount_value = "５００".into();
            v.code_prefix = "spr".into();
        });
        let (draft, errors) = to_draft(&v, Lang::Ja, true, None);
        assert!(errors.is_empty(), "{errors:?}");
        let c = parse_all(draft, Utc::now()).unwrap();
        assert_eq!(local(c.rules().claim_starts_at()), "2030-04-01T09:00");
        assert_eq!(
            c.rules().claim_starts_at().to_rfc3339(),
            "2030-04-01T00:00:00+00:00"
        );
        assert_eq!(c.rules().valid_for_seconds(), Some(7 * 86_400));
        assert_eq!(c.rules().win_probability(), Some(0.3));
        assert_eq!(c.codes().prefix(), "SPR");
        assert_eq!(percent(0.3), "30");
        assert_eq!(days(3600), "0.041667");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let v = values(|v| {
            v.name = "  ".into();
            v.total_limit = "abc".into();
            v.per_consumer_limit = "0".into();
            v.claim_starts_at = "2030-04-02T09:00".into();
            v.claim_ends_at = "2030-04-01T09:00".into();
            v.use_starts_at = "yesterday".into();
            v.valid_for_days = "0".into();
            v.win_probability = "150".into();
            v.discount_kind = "percent_off".into();
            v.discount_value = "101".into();
            v.code_length = "5".into();
            v.code_prefix = "ab-".into();
            v.status = "paused".into();
        });
        let mut got = problems(&v);
        got.sort();
        let mut want = vec![
            "name",
            "total_limit",
            "per_consumer_limit",
            "claim_ends_at",
            "use_starts_at",
            "valid_for_days",
            "win_probability",
            "discount_value",
            "code_length",
            "code_prefix",
            "status",
        ];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(
            problems(&values(|v| v.total_limit.clear())),
            ["total_limit"]
        );
        let kind = problems(&values(|v| v.discount_kind = "bogus".into()));
        assert_eq!(kind, ["discount_kind"]);
    }

    #[test]
    fn unchanged_values_keep_their_stored_precision() {
        let stored = RulesParams {
            total_limit: 5,
            per_consumer_limit: 1,
            claim_starts_at: Some(DateTime::from_timestamp(1_900_000_007, 0).unwrap()),
            claim_ends_at: None,
            use_starts_at: None,
            use_ends_at: None,
            valid_for_seconds: Some(3601),
            uses_per_coupon: 1,
            win_probability: Some(1.0 / 3.0),
        };
        let v = values(|v| {
            v.claim_starts_at = local(stored.claim_starts_at.unwrap());
            v.valid_for_days = days(3601);
            v.win_probability = percent(1.0 / 3.0);
        });
        let (draft, errors) = to_draft(&v, Lang::Ja, false, Some(&stored));
        assert!(errors.is_empty());
        assert_eq!(draft.rules.claim_starts_at, stored.claim_starts_at);
        assert_eq!(draft.rules.valid_for_seconds, Some(3601));
        assert_eq!(draft.rules.win_probability, Some(1.0 / 3.0));
        assert_eq!(draft.status, None, "an edit never sets the status");
    }
}
