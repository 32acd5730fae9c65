//! A change to some of a stored campaign's fields (the API's `PATCH`). The stored values,
//! overlaid with the sent ones, are parsed again as a whole by [`NewCampaign::parse`], so
//! an edit obeys exactly the rules a new campaign does (and the editor's, which parses
//! the same draft); the status moves only by its actions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::{
    CampaignDraft, CampaignError, CampaignRules, CampaignStatus, Discount, NewCampaign,
    RawDiscount, Result, StatusAction,
};
use crate::domain::consumer::SigninMode;
use crate::domain::coupon_code::CodeFormat;

/// One field of a patch: absent keeps the stored value; `null` gives it the value a new
/// campaign gets when the field is left out (no discount, no end, "open now", one per
/// consumer …); a value replaces it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Change<T> {
    #[default]
    Keep,
    Reset,
    Set(T),
}

impl<T> Change<T> {
    fn over(self, stored: Option<T>) -> Option<T> {
        match self {
            Change::Keep => stored,
            Change::Reset => None,
            Change::Set(v) => Some(v),
        }
    }

    fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }
}

/// `null` is [`Change::Reset`]; with `#[serde(default)]` an absent member is
/// [`Change::Keep`].
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Change<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Change::Reset,
            Some(v) => Change::Set(v),
        })
    }
}

/// A stored campaign's editable values.
pub struct Stored<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub terms: &'a str,
    pub discount: Option<&'a Discount>,
    pub rules: &'a CampaignRules,
    pub status: CampaignStatus,
    pub signin: SigninMode,
    pub codes: &'a CodeFormat,
}

/// Unvalidated: every editable field, each a [`Change`], and a status action. The
/// fields mean what they mean in a new campaign.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    /// activate, pause, resume or end.
    #[schema(value_type = Option<StatusAction>)]
    #[serde(default)]
    pub action: Option<String>,
    /// 1 to 200 characters; not null.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub name: Change<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub description: Change<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub terms: Change<String>,
    /// null: no discount.
    #[schema(value_type = Option<RawDiscount>)]
    #[serde(default)]
    pub discount: Change<RawDiscount>,
    /// Not below the coupons already issued; not null.
    #[schema(value_type = Option<i64>)]
    #[serde(default)]
    pub total_limit: Change<i64>,
    #[schema(value_type = Option<i64>)]
    #[serde(default)]
    pub per_consumer_limit: Change<i64>,
    /// null: claims open now.
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default)]
    pub claim_starts_at: Change<DateTime<Utc>>,
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default)]
    pub claim_ends_at: Change<DateTime<Utc>>,
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default)]
    pub use_starts_at: Change<DateTime<Utc>>,
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default)]
    pub use_ends_at: Change<DateTime<Utc>>,
    #[schema(value_type = Option<i64>)]
    #[serde(default)]
    pub valid_for_seconds: Change<i64>,
    #[schema(value_type = Option<i64>)]
    #[serde(default)]
    pub uses_per_coupon: Change<i64>,
    #[schema(value_type = Option<f64>)]
    #[serde(default)]
    pub win_probability: Change<f64>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub signin: Change<String>,
    #[schema(value_type = Option<i64>)]
    #[serde(default)]
    pub code_length: Change<i64>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub code_prefix: Change<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub code_charset: Change<String>,
    /// Only null, which removes the campaign's image (`PUT /api/v1/campaigns/{id}/image`
    /// sets one).
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub image: Change<serde::de::IgnoredAny>,
}

/// A patch whose action and field changes parsed: apply it to the stored campaign under
/// its lock with [`ParsedPatch::apply`].
#[derive(Debug, Clone)]
pub struct ParsedPatch {
    action: Option<StatusAction>,
    fields: CampaignPatch,
}

impl CampaignPatch {
    /// Refuses what is wrong whatever the stored campaign is: an unknown action, and a
    /// patch that changes nothing.
    pub fn parse(mut self) -> Result<ParsedPatch, PatchError> {
        let action = self
            .action
            .take()
            .map(|a| a.parse::<StatusAction>())
            .transpose()
            .map_err(PatchError::Campaign)?;
        if action.is_none() && self.changes().is_empty() {
            return Err(PatchError::Empty);
        }
        Ok(ParsedPatch {
            action,
            fields: self,
        })
    }

    /// The names of the fields the patch changes (not the action).
    pub fn changes(&self) -> Vec<&'static str> {
        let sent = [
            ("name", self.name.is_keep()),
            ("description", self.description.is_keep()),
            ("terms", self.terms.is_keep()),
            ("discount", self.discount.is_keep()),
            ("total_limit", self.total_limit.is_keep()),
            ("per_consumer_limit", self.per_consumer_limit.is_keep()),
            ("claim_starts_at", self.claim_starts_at.is_keep()),
            ("claim_ends_at", self.claim_ends_at.is_keep()),
            ("use_starts_at", self.use_starts_at.is_keep()),
            ("use_ends_at", self.use_ends_at.is_keep()),
            ("valid_for_seconds", self.valid_for_seconds.is_keep()),
            ("uses_per_coupon", self.uses_per_coupon.is_keep()),
            ("win_probability", self.win_probability.is_keep()),
            ("signin", self.signin.is_keep()),
            ("code_length", self.code_length.is_keep()),
            ("code_prefix", self.code_prefix.is_keep()),
            ("code_charset", self.code_charset.is_keep()),
            ("image", self.image.is_keep()),
        ];
        sent.into_iter()
            .filter(|(_, keep)| !keep)
            .map(|(name, _)| name)
            .collect()
    }
}

/// Why a patch is refused before the stored campaign is looked at.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchError {
    Empty,
    Campaign(CampaignError),
}

impl ParsedPatch {
    pub fn action(&self) -> Option<StatusAction> {
        self.action
    }

    /// Whether any field (besides the status) changes.
    pub fn changes_fields(&self) -> bool {
        !self.fields.changes().is_empty()
    }

    /// What the patch does to the image: kept (`None`), removed (`Some(true)`), or a
    /// value other than null, which is refused (`Some(false)`).
    pub fn image(&self) -> Option<bool> {
        match self.fields.image {
            Change::Keep => None,
            Change::Reset => Some(true),
            Change::Set(_) => Some(false),
        }
    }

    /// The campaign after the patch, and its status: the action first (so a refused
    /// transition is reported whatever else is wrong), then every field as a new campaign
    /// would be judged. The total limit against coupons already issued is the store's to
    /// check, under the campaign's lock.
    pub fn apply(
        self,
        stored: &Stored<'_>,
        now: DateTime<Utc>,
    ) -> Result<(NewCampaign, CampaignStatus)> {
        let status = match self.action {
            Some(a) => stored.status.apply(a)?,
            None => stored.status,
        };
        let p = self.fields;
        let r = stored.rules.params();
        let default = super::RulesParams::defaults(r.total_limit);
        let draft = CampaignDraft {
            // A name and a total limit have no default: `null` is as wrong as "".
            name: p
                .name
                .over(Some(stored.name.to_owned()))
                .unwrap_or_default(),
            description: p.description.over(Some(stored.description.to_owned())),
            terms: p.terms.over(Some(stored.terms.to_owned())),
            discount: p
                .discount
                .over(stored.discount.cloned().map(RawDiscount::from)),
            rules: super::RulesParams {
                total_limit: p
                    .total_limit
                    .over(Some(r.total_limit))
                    .ok_or(CampaignError::InvalidTotalLimit)?,
                per_consumer_limit: (p.per_consumer_limit.over(Some(r.per_consumer_limit)))
                    .unwrap_or(default.per_consumer_limit),
                claim_starts_at: p.claim_starts_at.over(r.claim_starts_at),
                claim_ends_at: p.claim_ends_at.over(r.claim_ends_at),
                use_starts_at: p.use_starts_at.over(r.use_starts_at),
                use_ends_at: p.use_ends_at.over(r.use_ends_at),
                valid_for_seconds: p.valid_for_seconds.over(r.valid_for_seconds),
                uses_per_coupon: (p.uses_per_coupon.over(Some(r.uses_per_coupon)))
                    .unwrap_or(default.uses_per_coupon),
                win_probability: p.win_probability.over(r.win_probability),
            },
            // Judged above as an action; a draft's status is only a new campaign's.
            status: None,
            signin: p.signin.over(Some(stored.signin.as_str().to_owned())),
            code_length: p
                .code_length
                .over(i64::try_from(stored.codes.length()).ok()),
            code_prefix: p.code_prefix.over(Some(stored.codes.prefix().to_owned())),
            code_charset: p
                .code_charset
                .over(Some(stored.codes.charset().as_str().to_owned())),
        };
        Ok((NewCampaign::parse(draft, now)?, status))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{create, t};
    use super::*;

    fn patch(json: &str) -> std::result::Result<ParsedPatch, PatchError> {
        serde_json::from_str::<CampaignPatch>(json).unwrap().parse()
    }

    fn apply(c: &NewCampaign, json: &str) -> Result<(NewCampaign, CampaignStatus)> {
        let stored = Stored {
            name: c.name(),
            description: c.description(),
            terms: c.terms(),
            discount: c.discount().as_ref(),
            rules: c.rules(),
            status: CampaignStatus::Active,
            signin: c.signin(),
            codes: c.codes(),
        };
        patch(json).unwrap().apply(&stored, t(2000))
    }

    #[test]
    fn absent_keeps_null_resets_and_a_value_replaces() {
        let c = create(
            r#","terms":"T","claim_ends_at":"2030-01-01T00:00:00Z","per_consumer_limit":3,
               "discount":{"kind":"percent_off","percent":10},"code_prefix":"AB""#,
        )
        .unwrap();
        // Nothing sent but the name: everything else is as stored, exactly.
        let (same, status) = apply(&c, r#"{"name":"Spring"}"#).unwrap();
        assert_eq!((same, status), (c.clone(), CampaignStatus::Active));
        let (p, _) = apply(
            &c,
            r#"{"terms":null,"claim_ends_at":null,"per_consumer_limit":null,"discount":null,
                "code_prefix":null,"name":" Autumn "}"#,
        )
        .unwrap();
        assert_eq!((p.name(), p.terms()), ("Autumn", ""));
        assert_eq!(p.rules().claim_ends_at(), None);
        assert_eq!(p.rules().per_consumer_limit(), 1);
        assert_eq!((p.discount(), p.codes().prefix()), (&None, ""));
        // The stored start stays; `null` opens it "now" (less the slack).
        assert_eq!(p.rules().claim_starts_at(), c.rules().claim_starts_at());
        let (p, _) = apply(&c, r#"{"claim_starts_at":null}"#).unwrap();
        assert!(p.rules().claim_starts_at() < t(2000));
    }

    #[test]
    fn the_rules_of_a_new_campaign_and_of_status_actions_apply() {
        let c = create(r#","claim_starts_at":"2029-01-01T00:00:00Z""#).unwrap();
        let code = |json| apply(&c, json).unwrap_err().code();
        assert_eq!(code(r#"{"name":null}"#), "invalid_name");
        assert_eq!(code(r#"{"total_limit":null}"#), "invalid_total_limit");
        assert_eq!(code(r#"{"total_limit":0}"#), "invalid_total_limit");
        assert_eq!(
            code(r#"{"claim_ends_at":"2028-01-01T00:00:00Z"}"#),
            "invalid_claim_window"
        );
        assert_eq!(code(r#"{"code_length":5}"#), "invalid_code_length");
        assert_eq!(code(r#"{"action":"activate"}"#), "invalid_transition");
        let (_, status) = apply(&c, r#"{"action":"pause","name":"x"}"#).unwrap();
        assert_eq!(status, CampaignStatus::Paused);
        assert_eq!(patch("{}").unwrap_err(), PatchError::Empty);
        let bad = patch(r#"{"action":"stop"}"#).unwrap_err();
        assert_eq!(bad, PatchError::Campaign(CampaignError::InvalidAction));
        assert!(serde_json::from_str::<CampaignPatch>(r#"{"status":"active"}"#).is_err());
        let sent = serde_json::from_str::<CampaignPatch>(r#"{"terms":null,"signin":"none"}"#);
        assert_eq!(sent.unwrap().changes(), ["terms", "signin"]);
    }
}
