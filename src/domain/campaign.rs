//! Campaign definition: what is offered, how many may be claimed, and when. Input is
//! parsed once into types whose invariants hold by construction.

use std::{fmt, ops::RangeInclusive, str::FromStr};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::consumer::SigninMode;
use super::coupon_code::{Charset, CodeFormat};

/// The campaign's code settings; absent ones keep `CodeFormat::default()`'s.
fn code_format(
    length: Option<i64>,
    prefix: Option<&str>,
    charset: Option<&str>,
) -> Result<CodeFormat, CampaignError> {
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

type Result<T, E = CampaignError> = std::result::Result<T, E>;

/// Error enum with a stable machine `code()` per variant, declared next to its message.
macro_rules! coded_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident {
        $($variant:ident $({ $($f:ident: $t:ty),* })? => $code:literal, $msg:literal;)+
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, thiserror::Error)]
        $vis enum $name { $(#[error($msg)] $variant $({ $($f: $t),* })?,)+ }
        impl $name {
            pub fn code(&self) -> &'static str { match self { $(Self::$variant { .. } => $code,)+ } }
        }
    };
}
pub(crate) use coded_enum;

coded_enum! {
    #[derive(Eq)]
    pub enum CampaignError {
        InvalidName => "invalid_name", "name must be 1 to 200 characters after trimming";
        InvalidDescription => "invalid_description", "description must be at most 5000 characters";
        InvalidTerms => "invalid_terms", "terms must be at most 10000 characters";
        InvalidDiscountAmount => "invalid_discount_amount", "discount.amount must be between 1 and 10000000";
        InvalidDiscountPercent => "invalid_discount_percent", "discount.percent must be between 1 and 100";
        InvalidDiscountText { field: &'static str } => "invalid_discount_text",
            "discount.{field} must be 1 to 200 characters after trimming";
        InvalidTotalLimit => "invalid_total_limit", "total_limit must be between 1 and 10000000";
        InvalidPerConsumerLimit => "invalid_per_consumer_limit", "per_consumer_limit must be between 1 and 1000";
        InvalidClaimWindow => "invalid_claim_window", "claim_ends_at must be later than claim_starts_at";
        InvalidUseWindow => "invalid_use_window", "use_ends_at must be later than use_starts_at";
        InvalidValidFor => "invalid_valid_for", "valid_for_seconds must be between 60 and 315360000 (3650 days)";
        InvalidUsesPerCoupon => "invalid_uses_per_coupon", "uses_per_coupon must be between 1 and 1000";
        InvalidWinProbability => "invalid_win_probability", "win_probability must be greater than 0 and at most 1";
        InvalidStatus => "invalid_status", "status must be one of draft, active, paused, ended";
        InvalidInitialStatus => "invalid_initial_status", "status must be draft or active at creation";
        InvalidAction => "invalid_action", "action must be one of activate, pause, resume, end";
        InvalidSignin => "invalid_signin", "signin must be none or required";
        InvalidCodeLength => "invalid_code_length", "code_length must be between 6 and 32";
        InvalidCodePrefix => "invalid_code_prefix", "code_prefix must be at most 8 characters of A-Z and 0-9";
        InvalidCodeCharset => "invalid_code_charset",
            "code_charset must be unambiguous, digits, or 10 to 64 distinct characters from A-Z and 0-9";
        InvalidTransition { from: CampaignStatus, action: StatusAction } => "invalid_transition",
            "cannot {action} a campaign whose status is {from}";
        LimitBelowIssued { new_total: i64, issued: i64 } => "limit_below_issued",
            "total_limit {new_total} is below the {issued} coupons already issued";
    }
}

/// Range check plus narrowing, so no `as` cast can truncate. Ranges mirror the messages.
fn ranged<T: TryFrom<i64>>(v: i64, r: RangeInclusive<i64>, e: CampaignError) -> Result<T> {
    T::try_from(v).ok().filter(|_| r.contains(&v)).ok_or(e)
}

/// Trimmed text of `min..=max` characters (chars, not bytes: names are Japanese).
fn text(raw: &str, min: usize, max: usize, e: CampaignError) -> Result<String> {
    let (t, n) = (raw.trim(), raw.trim().chars().count());
    (min..=max).contains(&n).then(|| t.to_owned()).ok_or(e)
}

/// What the coupon gives. Serialized through [`RawDiscount`] so stored JSON is
/// re-validated on the way back in and the wire shape stays `{"kind": ..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "RawDiscount", try_from = "RawDiscount")]
pub enum Discount {
    AmountOffYen(u32),
    PercentOff(u8),
    FreeItem(String),
    FreeText(String),
}

/// Unvalidated wire form. Numbers are i64 so that out-of-range input gets our
/// field-specific message instead of a generic serde overflow error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawDiscount {
    AmountOffYen { amount: i64 },
    PercentOff { percent: i64 },
    FreeItem { item: String },
    FreeText { text: String },
}

impl Discount {
    pub fn parse(raw: RawDiscount) -> Result<Discount> {
        use CampaignError as E;
        let bad_text = |field| E::InvalidDiscountText { field };
        Ok(match raw {
            RawDiscount::AmountOffYen { amount } => {
                Discount::AmountOffYen(ranged(amount, 1..=10_000_000, E::InvalidDiscountAmount)?)
            }
            RawDiscount::PercentOff { percent } => {
                Discount::PercentOff(ranged(percent, 1..=100, E::InvalidDiscountPercent)?)
            }
            RawDiscount::FreeItem { item } => {
                Discount::FreeItem(text(&item, 1, 200, bad_text("item"))?)
            }
            RawDiscount::FreeText { text: t } => {
                Discount::FreeText(text(&t, 1, 200, bad_text("text"))?)
            }
        })
    }
}

impl TryFrom<RawDiscount> for Discount {
    type Error = CampaignError;
    fn try_from(raw: RawDiscount) -> Result<Self, Self::Error> {
        Discount::parse(raw)
    }
}

impl From<Discount> for RawDiscount {
    fn from(d: Discount) -> Self {
        match d {
            Discount::AmountOffYen(a) => Self::AmountOffYen { amount: a.into() },
            Discount::PercentOff(p) => Self::PercentOff { percent: p.into() },
            Discount::FreeItem(item) => Self::FreeItem { item },
            Discount::FreeText(text) => Self::FreeText { text },
        }
    }
}

/// Enum plus its stable string form. The strings are stored in the DB and
/// appear in URLs, so they are spelled out rather than derived.
macro_rules! str_enum {
    ($name:ident, $err:expr, { $($variant:ident = $s:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const fn as_str(self) -> &'static str { match self { $(Self::$variant => $s),+ } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = CampaignError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($s => Ok(Self::$variant),)+ _ => Err($err) }
            }
        }
    };
}

str_enum!(CampaignStatus, CampaignError::InvalidStatus, {
    Draft = "draft", Active = "active", Paused = "paused", Ended = "ended",
});
str_enum!(StatusAction, CampaignError::InvalidAction, {
    Activate = "activate", Pause = "pause", Resume = "resume", End = "end",
});

impl CampaignStatus {
    /// Ended is terminal: a finished campaign's accounting is never reopened.
    pub fn apply(self, action: StatusAction) -> Result<CampaignStatus> {
        use CampaignStatus::*;
        match (self, action) {
            (Draft, StatusAction::Activate) => Ok(Active),
            (Active, StatusAction::Pause) => Ok(Paused),
            (Paused, StatusAction::Resume) => Ok(Active),
            (Draft | Active | Paused, StatusAction::End) => Ok(Ended),
            (from, action) => Err(CampaignError::InvalidTransition { from, action }),
        }
    }
}

/// Read-only accessors, so values can only come from `parse`. `narrow` is for
/// fields range-checked to 1..=1000 by `parse`, so its fallback is unreachable.
macro_rules! getters {
    (copy $($f:ident: $t:ty),+) => { $(pub fn $f(&self) -> $t { self.$f })+ };
    (ref $($f:ident: $t:ty),+) => { $(pub fn $f(&self) -> &$t { &self.$f })+ };
    (inner $($f:ident: $t:ty),+) => { $(pub fn $f(&self) -> $t { self.0.$f })+ };
    (narrow $($f:ident),+) => { $(pub fn $f(&self) -> i32 { i32::try_from(self.0.$f).unwrap_or(i32::MAX) })+ };
}

/// Unvalidated rule values (e.g. a DB row); i64 so bad values are reported, not truncated.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesParams {
    pub total_limit: i64,
    pub per_consumer_limit: i64,
    pub claim_starts_at: DateTime<Utc>,
    pub claim_ends_at: Option<DateTime<Utc>>,
    pub use_starts_at: Option<DateTime<Utc>>,
    pub use_ends_at: Option<DateTime<Utc>>,
    pub valid_for_seconds: Option<i64>,
    pub uses_per_coupon: i64,
    pub win_probability: Option<f64>,
}

/// [`RulesParams`] that passed [`CampaignRules::parse`]. The field is private,
/// so holding one proves every range and window check succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRules(RulesParams);

impl CampaignRules {
    pub fn parse(p: RulesParams) -> Result<CampaignRules> {
        use CampaignError as E;
        ranged::<i64>(p.total_limit, 1..=10_000_000, E::InvalidTotalLimit)?;
        ranged::<i32>(p.per_consumer_limit, 1..=1000, E::InvalidPerConsumerLimit)?;
        if matches!(p.claim_ends_at, Some(end) if end <= p.claim_starts_at) {
            return Err(E::InvalidClaimWindow);
        }
        if matches!((p.use_starts_at, p.use_ends_at), (Some(s), Some(e)) if e <= s) {
            return Err(E::InvalidUseWindow);
        }
        if let Some(secs) = p.valid_for_seconds {
            ranged::<i64>(secs, 60..=3650 * 86_400, E::InvalidValidFor)?;
        }
        ranged::<i32>(p.uses_per_coupon, 1..=1000, E::InvalidUsesPerCoupon)?;
        // Written so that NaN (possible from a DB float, not from JSON) fails too.
        if p.win_probability.is_some_and(|w| !(w > 0.0 && w <= 1.0)) {
            return Err(E::InvalidWinProbability);
        }
        Ok(CampaignRules(p))
    }

    /// The raw values, e.g. for writing to the DB or re-parsing after an edit.
    pub fn params(&self) -> &RulesParams {
        &self.0
    }

    getters!(inner total_limit: i64, claim_starts_at: DateTime<Utc>,
        claim_ends_at: Option<DateTime<Utc>>, use_starts_at: Option<DateTime<Utc>>,
        use_ends_at: Option<DateTime<Utc>>, win_probability: Option<f64>);
    getters!(narrow per_consumer_limit, uses_per_coupon);

    pub fn valid_for(&self) -> Option<Duration> {
        self.0.valid_for_seconds.and_then(Duration::try_seconds)
    }

    // `coupon_validity` lives in redemption.rs, next to the checks that consume it.

    /// Status is checked before time so a paused campaign reports "paused"
    /// even outside its window; that is what the operator needs to see.
    pub fn check_claim_window(
        &self,
        status: CampaignStatus,
        now: DateTime<Utc>,
    ) -> Result<(), ClaimRejection> {
        match status {
            CampaignStatus::Draft => Err(ClaimRejection::NotActive),
            CampaignStatus::Paused => Err(ClaimRejection::Paused),
            CampaignStatus::Ended => Err(ClaimRejection::Ended),
            _ if now < self.0.claim_starts_at => Err(ClaimRejection::NotStarted),
            _ if self.0.claim_ends_at.is_some_and(|end| now >= end) => Err(ClaimRejection::Ended),
            CampaignStatus::Active => Ok(()),
        }
    }

    /// Issued coupons cannot be revoked, so the limit may only drop down to `issued`.
    pub fn validate_limit_change(&self, new_total: i64, issued: i64) -> Result<()> {
        ranged::<i64>(new_total, 1..=10_000_000, CampaignError::InvalidTotalLimit)?;
        if new_total < issued {
            return Err(CampaignError::LimitBelowIssued { new_total, issued });
        }
        Ok(())
    }
}

/// Returns whether the claimant wins. Avoids `Rng::gen_bool`, which panics
/// outside [0, 1]; invalid probabilities never win, p >= 1 always wins.
pub fn draw_lottery<R: rand::Rng>(win_probability: Option<f64>, rng: &mut R) -> bool {
    win_probability.is_none_or(|p| p >= 1.0 || (p > 0.0 && rng.gen::<f64>() < p))
}

coded_enum! {
    /// Expected, user-facing outcomes of a claim attempt, not faults.
    #[derive(Copy, Eq, Hash)]
    pub enum ClaimRejection {
        NotStarted => "not_started", "the claim period has not started yet";
        Ended => "ended", "the campaign has ended";
        Paused => "paused", "the campaign is paused";
        SoldOut => "sold_out", "all coupons have been claimed";
        ConsumerLimitReached => "consumer_limit_reached", "the per-consumer claim limit has been reached";
        LotteryLost => "lottery_lost", "not a winner this time";
        NotActive => "not_active", "the campaign is not active";
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaignRequest {
    pub name: String,
    pub description: Option<String>,
    pub terms: Option<String>,
    pub discount: Option<RawDiscount>,
    pub total_limit: i64,
    pub per_consumer_limit: Option<i64>,
    pub claim_starts_at: Option<DateTime<Utc>>,
    pub claim_ends_at: Option<DateTime<Utc>>,
    pub use_starts_at: Option<DateTime<Utc>>,
    pub use_ends_at: Option<DateTime<Utc>>,
    pub valid_for_seconds: Option<i64>,
    pub uses_per_coupon: Option<i64>,
    pub win_probability: Option<f64>,
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
    pub fn parse(req: NewCampaignRequest, now: DateTime<Utc>) -> Result<Self> {
        use CampaignError as E;
        let status = req.status.as_deref().unwrap_or("draft").parse()?;
        if !matches!(status, CampaignStatus::Draft | CampaignStatus::Active) {
            return Err(E::InvalidInitialStatus);
        }
        // Long-form text keeps its layout; only the name is trimmed.
        let long = |s: Option<String>, max: usize, e| match s {
            Some(s) if s.chars().count() > max => Err(e),
            s => Ok(s.unwrap_or_default()),
        };
        Ok(NewCampaign {
            name: text(&req.name, 1, 200, E::InvalidName)?,
            description: long(req.description, 5000, E::InvalidDescription)?,
            terms: long(req.terms, 10_000, E::InvalidTerms)?,
            discount: req.discount.map(Discount::parse).transpose()?,
            rules: CampaignRules::parse(RulesParams {
                total_limit: req.total_limit,
                per_consumer_limit: req.per_consumer_limit.unwrap_or(1),
                claim_starts_at: req.claim_starts_at.unwrap_or(now),
                claim_ends_at: req.claim_ends_at,
                use_starts_at: req.use_starts_at,
                use_ends_at: req.use_ends_at,
                valid_for_seconds: req.valid_for_seconds,
                uses_per_coupon: req.uses_per_coupon.unwrap_or(1),
                win_probability: req.win_probability,
            })?,
            status,
            signin: SigninMode::parse(req.signin.as_deref().unwrap_or("none"))
                .map_err(|_| E::InvalidSignin)?,
            codes: code_format(
                req.code_length,
                req.code_prefix.as_deref(),
                req.code_charset.as_deref(),
            )?,
        })
    }

    getters!(ref name: str, description: str, terms: str, discount: Option<Discount>,
        rules: CampaignRules);
    getters!(copy status: CampaignStatus, signin: SigninMode);
    getters!(ref codes: CodeFormat);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, SeedableRng};

    pub(crate) fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("test timestamp in range")
    }

    #[rustfmt::skip]
    macro_rules! code { ($e:expr) => { $e.unwrap_err().code() }; }

    /// Builds through the public request path, claim window opening at t(1000).
    /// `extra` holds JSON members overriding the defaults, e.g. `,"total_limit":0`.
    pub(crate) fn create(extra: &str) -> Result<NewCampaign> {
        let extra = format!(r#"{{"name":" Spring ","total_limit":5{extra}}}"#);
        // serde_json keeps the last of duplicate keys in a Value, so `extra` wins.
        let v: serde_json::Value =
            serde_json::from_str(&extra.replace("LONG", &"x".repeat(10_001))).unwrap();
        NewCampaign::parse(serde_json::from_value(v).expect("request shape"), t(1000))
    }

    #[rustfmt::skip]
    const BAD_DISCOUNTS: &[(&str, &str)] = &[
        (r#"{"kind":"amount_off_yen","amount":0}"#, "invalid_discount_amount"),
        (r#"{"kind":"amount_off_yen","amount":10000001}"#, "invalid_discount_amount"),
        (r#"{"kind":"percent_off","percent":101}"#, "invalid_discount_percent"),
        (r#"{"kind":"free_item","item":"  "}"#, "invalid_discount_text"),
        (r#"{"kind":"free_text","text":"LONG"}"#, "invalid_discount_text"),
    ];

    #[test]
    fn discount_wire_shape_round_trips_and_validates() {
        #[rustfmt::skip]
        let good = [r#"{"kind":"amount_off_yen","amount":500}"#, r#"{"kind":"percent_off","percent":10}"#,
                    r#"{"kind":"free_item","item":"Coffee"}"#, r#"{"kind":"free_text","text":"Free refill"}"#];
        for json in good {
            let d: Discount = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&d).unwrap(), json);
        }
        for (json, want) in BAD_DISCOUNTS {
            let raw = serde_json::from_str(&json.replace("LONG", &"x".repeat(201))).unwrap();
            assert_eq!(code!(Discount::parse(raw)), *want, "{json}");
        }
        let extra = r#"{"kind":"percent_off","percent":5,"x":1}"#;
        assert!(serde_json::from_str::<RawDiscount>(extra).is_err());
    }

    #[test]
    fn status_transitions() {
        use CampaignStatus::*;
        use StatusAction as A;
        // Expected outcome of each action (columns) from each status (rows).
        #[rustfmt::skip]
        let table = [(Draft, [Some(Active), None, None, Some(Ended)]),
                     (Active, [None, Some(Paused), None, Some(Ended)]),
                     (Paused, [None, None, Some(Active), Some(Ended)]),
                     (Ended, [None, None, None, None])];
        let actions = [A::Activate, A::Pause, A::Resume, A::End];
        for (from, row) in table {
            assert_eq!(from.as_str().parse(), Ok(from));
            assert_eq!(serde_json::to_string(&from).unwrap(), format!("\"{from}\""));
            for (action, to) in actions.into_iter().zip(row) {
                let refused = CampaignError::InvalidTransition { from, action };
                assert_eq!(from.apply(action), to.ok_or(refused));
            }
        }
        let msg = Ended.apply(A::Resume).unwrap_err().to_string();
        assert_eq!(msg, "cannot resume a campaign whose status is ended");
        assert_eq!(code!("End".parse::<StatusAction>()), "invalid_action");
    }

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
    ];

    #[test]
    fn new_campaign_defaults_rejections_and_rules() {
        let c = create("").unwrap();
        let r = c.rules().clone();
        assert_eq!(
            (c.name(), c.status(), c.terms()),
            ("Spring", CampaignStatus::Draft, "")
        );
        assert_eq!((r.claim_starts_at(), r.per_consumer_limit()), (t(1000), 1));
        assert_eq!((r.uses_per_coupon(), r.valid_for()), (1, None));
        for (extra, want) in BAD_REQUESTS {
            assert_eq!(code!(create(extra)), *want, "{extra}");
        }
        let unknown = r#"{"name":"n","total_limit":1,"x":1}"#;
        assert!(serde_json::from_str::<NewCampaignRequest>(unknown).is_err());
        assert_eq!(
            code!(r.check_claim_window(CampaignStatus::Draft, t(2000))),
            "not_active"
        );
        assert_eq!(
            code!(r.check_claim_window(CampaignStatus::Paused, t(2000))),
            "paused"
        );
        assert_eq!(
            code!(r.check_claim_window(CampaignStatus::Ended, t(2000))),
            "ended"
        );
        assert_eq!(
            code!(r.check_claim_window(CampaignStatus::Active, t(999))),
            "not_started"
        );
        assert_eq!(r.validate_limit_change(20, 15), Ok(()));
        assert_eq!(r.validate_limit_change(15, 15), Ok(()));
        assert_eq!(code!(r.validate_limit_change(14, 15)), "limit_below_issued");
        assert_eq!(code!(r.validate_limit_change(0, 0)), "invalid_total_limit");
    }

    #[test]
    fn lottery() {
        let mut rng = StdRng::seed_from_u64(7);
        assert!((0..10_000).all(|_| draw_lottery(Some(1.0), &mut rng)));
        assert!((0..10_000).all(|_| draw_lottery(None, &mut rng)));
        let wins = (0..100_000).filter(|_| draw_lottery(Some(0.3), &mut rng));
        let rate = wins.count() as f64 / 100_000.0;
        assert!((rate - 0.3).abs() < 0.01, "{rate}");
        assert!(!draw_lottery(Some(f64::NAN), &mut rng) && !draw_lottery(Some(0.0), &mut rng));
    }

    proptest! {
        #[test]
        fn claim_window_is_half_open(start in -1_000_000i64..1_000_000, len in 1i64..1_000_000,
                                     now in -3_000_000i64..3_000_000, open_ended: bool) {
            let mut extra = format!(r#","claim_starts_at":"{}""#, t(start).to_rfc3339());
            if !open_ended {
                extra += &format!(r#","claim_ends_at":"{}""#, t(start + len).to_rfc3339());
            }
            let r = create(&extra).unwrap().rules().clone();
            let inside = start <= now && (open_ended || now < start + len);
            prop_assert_eq!(r.check_claim_window(CampaignStatus::Active, t(now)).is_ok(), inside);
        }
    }
}
