//! The editor's values as a [`CampaignDraft`], the same one the API builds from JSON,
//! so the console and the API obey one set of rules; every problem is mapped to the
//! input it is about, with its message in the console's language.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::form::{days, local, percent, FormValues};
use crate::domain::campaign::{
    CampaignDraft, CampaignError, NewCampaign, RawDiscount, RulesParams,
};
use crate::web::i18n::{message, Lang};
use crate::web::pages::jst;

/// A problem with one input: the input's name and the message to show beside it.
pub type FieldError = (&'static str, String);

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
