//! When an issued coupon may be used, and for how long a redemption may be undone.

use chrono::{DateTime, Duration, Utc};

use super::campaign::CampaignRules;
use super::coded::coded_enum;

impl CampaignRules {
    /// `(valid_from, expires_at)` for a coupon claimed at `claimed_at`.
    ///
    /// A coupon cannot be usable before it exists, hence the max with
    /// `claimed_at`. Expiry is whichever bound comes first; a relative bound
    /// that overflows the calendar is treated as absent rather than panicking.
    pub fn coupon_validity(
        &self,
        claimed_at: DateTime<Utc>,
    ) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        let valid_from = self
            .use_starts_at()
            .map_or(claimed_at, |s| s.max(claimed_at));
        let relative = self
            .valid_for()
            .and_then(|d| claimed_at.checked_add_signed(d));
        let expires_at = match (self.use_ends_at(), relative) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (valid_from, expires_at)
    }
}

/// The redemption-relevant part of an issued coupon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CouponState {
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub uses_left: i32,
}

impl CouponState {
    /// State of a freshly claimed coupon under `rules`.
    pub fn issued(rules: &CampaignRules, claimed_at: DateTime<Utc>) -> CouponState {
        let (valid_from, expires_at) = rules.coupon_validity(claimed_at);
        CouponState {
            valid_from,
            expires_at,
            uses_left: rules.uses_per_coupon(),
        }
    }
}

coded_enum! {
    #[derive(Copy, Eq, Hash)]
    pub enum RedeemRejection {
        AlreadyUsed => "already_used", "this coupon has already been used";
        Expired => "expired", "this coupon has expired";
        NotYetValid => "not_yet_valid", "this coupon cannot be used yet";
    }
}

/// "Already used" wins over the time checks: staff at the counter need to know
/// the coupon was spent, not that it would have been expired anyway.
pub fn check_redeemable(state: &CouponState, now: DateTime<Utc>) -> Result<(), RedeemRejection> {
    if state.uses_left <= 0 {
        Err(RedeemRejection::AlreadyUsed)
    } else if now < state.valid_from {
        Err(RedeemRejection::NotYetValid)
    } else if state.expires_at.is_some_and(|exp| now >= exp) {
        Err(RedeemRejection::Expired)
    } else {
        Ok(())
    }
}

/// How long after a redemption staff may still undo it (a mis-tap at the till).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UndoWindow(pub Duration);

impl Default for UndoWindow {
    fn default() -> Self {
        UndoWindow(Duration::minutes(10))
    }
}

impl UndoWindow {
    /// From config; u32 seconds cannot overflow `Duration`.
    pub fn from_secs(secs: u32) -> UndoWindow {
        UndoWindow(Duration::seconds(i64::from(secs)))
    }
}

coded_enum! {
    #[derive(Copy, Eq, Hash)]
    pub enum UndoRejection {
        WindowPassed => "undo_window_passed", "the time allowed for undoing this redemption has passed";
    }
}

/// The boundary itself is still inside the window. A `now` before
/// `redeemed_at` (clock skew between nodes) is treated as inside too.
pub fn check_undo(
    window: UndoWindow,
    redeemed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), UndoRejection> {
    if now.signed_duration_since(redeemed_at) > window.0 {
        Err(UndoRejection::WindowPassed)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::tests::{create, t};
    use proptest::prelude::*;

    fn state(valid_from: i64, expires_at: Option<i64>, uses_left: i32) -> CouponState {
        let (valid_from, expires_at) = (t(valid_from), expires_at.map(t));
        CouponState {
            valid_from,
            expires_at,
            uses_left,
        }
    }

    #[test]
    fn redeem_checks_in_order() {
        assert_eq!(check_redeemable(&state(100, Some(200), 1), t(100)), Ok(()));
        assert_eq!(check_redeemable(&state(100, Some(200), 1), t(199)), Ok(()));
        assert_eq!(
            check_redeemable(&state(100, None, 1), t(i32::MAX.into())),
            Ok(())
        );
        let r = |s: CouponState, now| check_redeemable(&s, t(now)).unwrap_err().code();
        assert_eq!(r(state(100, Some(200), 1), 99), "not_yet_valid");
        assert_eq!(r(state(100, Some(200), 1), 200), "expired");
        assert_eq!(r(state(100, Some(200), 0), 50), "already_used");
        assert_eq!(r(state(100, Some(200), 0), 300), "already_used");
    }

    #[test]
    fn undo_window_boundary() {
        let w = UndoWindow::default();
        assert_eq!(w, UndoWindow::from_secs(600));
        assert_eq!(check_undo(w, t(1000), t(1600)), Ok(()));
        assert_eq!(check_undo(w, t(1000), t(900)), Ok(()));
        let late = t(1600) + Duration::milliseconds(1);
        assert_eq!(
            check_undo(w, t(1000), late).unwrap_err().code(),
            "undo_window_passed"
        );
        let extreme = check_undo(w, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        assert_eq!(extreme, Err(UndoRejection::WindowPassed));
    }

    #[test]
    fn validity_from_rules() {
        let both = create(r#","use_ends_at":"1970-01-01T01:23:20Z","valid_for_seconds":600"#);
        let r = both.unwrap().rules().clone();
        assert_eq!(r.coupon_validity(t(1000)), (t(1000), Some(t(1600))));
        assert_eq!(r.coupon_validity(t(4900)), (t(4900), Some(t(5000))));
        let later_start = create(r#","use_starts_at":"1970-01-01T00:33:20Z""#).unwrap();
        let issued = CouponState::issued(later_start.rules(), t(1000));
        assert_eq!(issued, state(2000, None, 1));
        assert_eq!(
            create("").unwrap().rules().coupon_validity(t(1)),
            (t(1), None)
        );
        let far = DateTime::<Utc>::MAX_UTC;
        let relative = create(r#","valid_for_seconds":60"#)
            .unwrap()
            .rules()
            .clone();
        assert_eq!(relative.coupon_validity(far), (far, None));
    }

    proptest! {
        #[test]
        fn spent_coupons_are_always_already_used(uses in i32::MIN..=0, from in any::<i32>(),
                                                 exp in any::<Option<i32>>(), now in any::<i32>()) {
            let s = state(from.into(), exp.map(i64::from), uses);
            prop_assert_eq!(check_redeemable(&s, t(now.into())), Err(RedeemRejection::AlreadyUsed));
        }

        #[test]
        fn expiry_never_exceeds_a_bound(claimed in 0i64..2_000_000_000,
                                        use_end in proptest::option::of(1i64..4_000_000_000),
                                        valid_for in proptest::option::of(60i64..=315_360_000)) {
            let mut extra = String::new();
            if let Some(e) = use_end {
                extra += &format!(r#","use_ends_at":"{}""#, t(e).to_rfc3339());
            }
            if let Some(v) = valid_for {
                extra += &format!(r#","valid_for_seconds":{v}"#);
            }
            let (_, exp) = create(&extra).unwrap().rules().coupon_validity(t(claimed));
            prop_assert_eq!(exp.is_none(), use_end.is_none() && valid_for.is_none());
            if let (Some(exp), Some(e)) = (exp, use_end) { prop_assert!(exp <= t(e)); }
            if let (Some(exp), Some(v)) = (exp, valid_for) { prop_assert!(exp <= t(claimed + v)); }
        }
    }
}
