//! Limits and windows: how many, for whom, and when. [`RulesParams`] is the one
//! declaration of these fields; the API's request, the editor's form and the stored row
//! all carry them in this shape.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{getters, ranged, CampaignError, CampaignStatus, ClaimRejection, Result};

fn one() -> i64 {
    1
}

/// Unvalidated rule values, as given (a request, a form, a database row). i64 so bad
/// values are reported, not truncated. Absent values take the defaults below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RulesParams {
    pub total_limit: i64,
    #[serde(default = "one")]
    pub per_consumer_limit: i64,
    /// None: claims open as soon as the campaign is active (resolved at parse to "now",
    /// less [`OPEN_NOW_SLACK`]).
    #[serde(default)]
    pub claim_starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub claim_ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub use_starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub use_ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_for_seconds: Option<i64>,
    #[serde(default = "one")]
    pub uses_per_coupon: i64,
    #[serde(default)]
    pub win_probability: Option<f64>,
}

impl RulesParams {
    /// What a new campaign gets for each rule left out.
    pub fn defaults(total_limit: i64) -> RulesParams {
        RulesParams {
            total_limit,
            per_consumer_limit: one(),
            claim_starts_at: None,
            claim_ends_at: None,
            use_starts_at: None,
            use_ends_at: None,
            valid_for_seconds: None,
            uses_per_coupon: one(),
            win_probability: None,
        }
    }
}

/// [`RulesParams`] that passed [`CampaignRules::parse`]. The fields are private, so
/// holding one proves every range and window check succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRules {
    params: RulesParams,
    claim_starts_at: DateTime<Utc>,
}

/// "Open now" is stored a little in the past. Each node judges windows on its estimate of
/// the database clock, and two estimates differ by up to half a round trip (more on a
/// loaded machine); a start of exactly "now" on one node could still be in the future on
/// another, which would refuse the first claims with `not_started`.
pub const OPEN_NOW_SLACK: Duration = Duration::seconds(5);

impl CampaignRules {
    /// `now` (less [`OPEN_NOW_SLACK`]) stands in for an absent `claim_starts_at`.
    pub fn parse(mut p: RulesParams, now: DateTime<Utc>) -> Result<CampaignRules> {
        use CampaignError as E;
        // The window is judged from "now" when no start is given; only the stored start
        // gets the slack.
        let window_start = p.claim_starts_at.unwrap_or(now);
        let claim_starts_at = *p.claim_starts_at.get_or_insert(now - OPEN_NOW_SLACK);
        ranged::<i64>(p.total_limit, 1..=10_000_000, E::InvalidTotalLimit)?;
        ranged::<i32>(p.per_consumer_limit, 1..=1000, E::InvalidPerConsumerLimit)?;
        if matches!(p.claim_ends_at, Some(end) if end <= window_start) {
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
        Ok(CampaignRules {
            params: p,
            claim_starts_at,
        })
    }

    /// The values, for writing to the database or re-parsing after an edit. Its
    /// `claim_starts_at` is always set.
    pub fn params(&self) -> &RulesParams {
        &self.params
    }

    pub fn claim_starts_at(&self) -> DateTime<Utc> {
        self.claim_starts_at
    }

    getters!(inner total_limit: i64, claim_ends_at: Option<DateTime<Utc>>,
        use_starts_at: Option<DateTime<Utc>>, use_ends_at: Option<DateTime<Utc>>,
        valid_for_seconds: Option<i64>, win_probability: Option<f64>);
    getters!(narrow per_consumer_limit, uses_per_coupon);

    pub fn valid_for(&self) -> Option<Duration> {
        self.params
            .valid_for_seconds
            .and_then(Duration::try_seconds)
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
            _ if now < self.claim_starts_at => Err(ClaimRejection::NotStarted),
            _ if self.params.claim_ends_at.is_some_and(|end| now >= end) => {
                Err(ClaimRejection::Ended)
            }
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

    /// The same rules with another total limit (already checked against `issued`).
    pub fn with_total_limit(&self, total_limit: i64) -> CampaignRules {
        let mut rules = self.clone();
        rules.params.total_limit = total_limit;
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{create, t};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limits_and_windows() {
        let r = create("").unwrap().rules().clone();
        // Created at t(1000) without a start: open from a little earlier.
        assert_eq!((r.claim_starts_at(), r.per_consumer_limit()), (t(995), 1));
        assert_eq!((r.uses_per_coupon(), r.valid_for()), (1, None));
        let code = |s: CampaignStatus, at| r.check_claim_window(s, t(at)).unwrap_err().code();
        assert_eq!(code(CampaignStatus::Draft, 2000), "not_active");
        assert_eq!(code(CampaignStatus::Paused, 2000), "paused");
        assert_eq!(code(CampaignStatus::Ended, 2000), "ended");
        assert_eq!(code(CampaignStatus::Active, 994), "not_started");
        assert!(r.check_claim_window(CampaignStatus::Active, t(995)).is_ok());
        assert_eq!(r.validate_limit_change(20, 15), Ok(()));
        assert_eq!(r.validate_limit_change(15, 15), Ok(()));
        let refused = |n, issued| r.validate_limit_change(n, issued).unwrap_err().code();
        assert_eq!(refused(14, 15), "limit_below_issued");
        assert_eq!(refused(0, 0), "invalid_total_limit");
        assert_eq!(r.with_total_limit(9).total_limit(), 9);
        // A stored row re-parses to the same rules whatever "now" is.
        let again = CampaignRules::parse(r.params().clone(), t(5)).unwrap();
        assert_eq!(again, r);
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
