//! A whole new campaign: the fields a merchant fills in (an API request or the editor's
//! form, both turned into a [`CampaignDraft`]), parsed once into a [`NewCampaign`].

use chrono::{DateTime, Utc};

use super::{
    getters, text, CampaignError, CampaignRules, CampaignStatus, Discount, RawDiscount, Result,
    RulesParams,
};
use crate::domain::consumer::SigninMode;
use crate::domain::coupon_code::{Charset, CodeFormat};

/// Unvalidated campaign input. Absent values take their defaults at parse.
#[derive(Debug, Clone)]
pub struct CampaignDraft {
    pub name: String,
    pub description: Option<String>,
    pub terms: Option<String>,
    pub discount: Option<RawDiscount>,
    pub rules: RulesParams,
    /// "draft" (default) or "active".
    pub status: Option<String>,
    /// "none" (default) or "required".
    pub signin: Option<String>,
    pub code_length: Option<i64>,
    pub code_prefix: Option<String>,
    /// "unambiguous" (default), "digits", or the characters to use.
    pub code_charset: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    name: String,
    description: String,
    terms: String,
    discount: Option<Discount>,
    rules: CampaignRules,
    status: CampaignStatus,
    signin: SigninMode,
    codes: CodeFormat,
}

impl NewCampaign {
    pub fn parse(draft: CampaignDraft, now: DateTime<Utc>) -> Result<Self> {
        use CampaignError as E;
        let status = draft.status.as_deref().unwrap_or("draft").parse()?;
        if !matches!(status, CampaignStatus::Draft | CampaignStatus::Active) {
            return Err(E::InvalidInitialStatus);
        }
        // Long-form text keeps its layout; only the name is trimmed.
        let long = |s: Option<String>, max: usize, e| match s {
            Some(s) if s.chars().count() > max => Err(e),
            s => Ok(s.unwrap_or_default()),
        };
        Ok(NewCampaign {
            name: text(&draft.name, 1, 200, E::InvalidName)?,
            description: long(draft.description, 5000, E::InvalidDescription)?,
            terms: long(draft.terms, 10_000, E::InvalidTerms)?,
            discount: draft.discount.map(Discount::parse).transpose()?,
            rules: CampaignRules::parse(draft.rules, now)?,
            status,
            signin: SigninMode::parse(draft.signin.as_deref().unwrap_or("none"))
                .map_err(|_| E::InvalidSignin)?,
            codes: code_format(
                draft.code_length,
                draft.code_prefix.as_deref(),
                draft.code_charset.as_deref(),
            )?,
        })
    }

    getters!(ref name: str, description: str, terms: str, discount: Option<Discount>,
        rules: CampaignRules);
    getters!(copy status: CampaignStatus, signin: SigninMode);
    getters!(ref codes: CodeFormat);
}

/// Short, unguessable, easy to read aloud: the public part of a claim URL (`/c/{slug}`).
pub fn new_slug() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// The campaign's code settings; absent ones keep `CodeFormat::default()`'s.
fn code_format(
    length: Option<i64>,
    prefix: Option<&str>,
    charset: Option<&str>,
) -> Result<CodeFormat> {
    let default = CodeFormat::default();
    let length = match length {
        Some(n) => usize::try_from(n).map_err(|_| CampaignError::InvalidCodeLength)?,
        None => default.length(),
    };
    let charset = match charset {
        Some(c) => Charset::parse(c).map_err(|_| CampaignError::InvalidCodeCharset)?,
        None => Charset::default(),
    };
    CodeFormat::new(length, prefix.unwrap_or(""), charset).map_err(|e| match e.code() {
        "invalid_code_length" => CampaignError::InvalidCodeLength,
        "invalid_code_prefix" => CampaignError::InvalidCodePrefix,
        _ => CampaignError::InvalidCodeCharset,
    })
}

#[cfg(test)]
mod tests {
    use super::super::rules::OPEN_NOW_SLACK;
    use super::super::tests::{create, t};
    use super::*;

    #[rustfmt::skip]
    const BAD_REQUESTS: &[(&str, &str)] = &[
        (r#","name":" ""#, "invalid_name"),
        (r#","terms":"LONG""#, "invalid_terms"),
        (r#","total_limit":0"#, "invalid_total_limit"),
        (r#","total_limit":-9223372036854775808"#, "invalid_total_limit"),
        (r#","per_consumer_limit":1001"#, "invalid_per_consumer_limit"),
        (r#","uses_per_coupon":0"#, "invalid_uses_per_coupon"),
        (r#","claim_ends_at":"1970-01-01T00:16:40Z""#, "invalid_claim_window"),
        (r#","use_starts_at":"2030-01-01T00:00:00Z","use_ends_at":"2029-01-01T00:00:00Z""#, "invalid_use_window"),
        (r#","valid_for_seconds":59"#, "invalid_valid_for"),
        (r#","valid_for_seconds":315360001"#, "invalid_valid_for"),
        (r#","win_probability":0.0"#, "invalid_win_probability"),
        (r#","win_probability":1.5"#, "invalid_win_probability"),
        (r#","status":"paused""#, "invalid_initial_status"),
        (r#","status":"bogus""#, "invalid_status"),
        (r#","signin":"maybe""#, "invalid_signin"),
        (r#","code_length":5"#, "invalid_code_length"),
        (r#","code_prefix":"ab-""#, "invalid_code_prefix"),
    ];

    #[test]
    fn new_campaign_defaults_and_rejections() {
        let c = create("").unwrap();
        assert_eq!(
            (c.name(), c.status(), c.terms()),
            ("Spring", CampaignStatus::Draft, "")
        );
        // No start given: open from "now" (t(1000)) less the clock slack.
        assert_eq!(c.rules().claim_starts_at(), t(1000) - OPEN_NOW_SLACK);
        assert_eq!(c.codes(), &CodeFormat::default());
        for (extra, want) in BAD_REQUESTS {
            let err = create(extra).unwrap_err();
            assert_eq!(err.code(), *want, "{extra}");
            assert!(!err.field().is_empty());
        }
    }
}
