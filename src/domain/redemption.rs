//! When an issued coupon may be used (and with what check code), for how long a
//! redemption may be undone, and the stores coupons are used at.

use chrono::{DateTime, Duration, Utc};

use super::campaign::CampaignRules;
use super::coded::coded_enum;
use super::verification::{CheckCodeAttempt, CheckCodeRejection};

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

/// Why a redemption was refused: the coupon's state, or the check code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemRefusal {
    Coupon(RedeemRejection),
    CheckCode(CheckCodeRejection),
}

/// The whole judgement, in the order staff need it: a request without a required check code
/// is incomplete (told first); then the coupon's state, since a used or expired coupon
/// is refused whatever code is typed (and a used coupon's screen shows no code to type);
/// only then whether the code matches. A wrong code never redeems.
pub fn judge_redemption(
    state: &CouponState,
    now: DateTime<Utc>,
    check: &CheckCodeAttempt<'_>,
) -> Result<(), RedeemRefusal> {
    if check.missing() {
        return Err(RedeemRefusal::CheckCode(CheckCodeRejection::Required));
    }
    check_redeemable(state, now).map_err(RedeemRefusal::Coupon)?;
    if !check.matches(now.timestamp()) {
        return Err(RedeemRefusal::CheckCode(CheckCodeRejection::Wrong));
    }
    Ok(())
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

coded_enum! {
    #[derive(Copy, Eq, Hash)]
    pub enum ShopError {
        NameLength => "invalid_store_name", "a store name is 1 to 100 characters of text";
        CodeFormat => "invalid_store_code", "a store code is 1 to 16 of A-Z, 0-9 and -";
    }
}

/// A store's name as shown to staff: trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopName(String);

impl ShopName {
    pub fn parse(input: &str) -> Result<ShopName, ShopError> {
        let name = input.trim();
        let len = name.chars().count();
        if (1..=100).contains(&len) && !name.chars().any(char::is_control) {
            Ok(ShopName(name.to_owned()))
        } else {
            Err(ShopError::NameLength)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A store's short code (`^[A-Z0-9-]{1,16}$`, as the table checks): typed in lower case
/// or with a Japanese IME's full-width letters, it is stored in upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopCode(String);

impl ShopCode {
    pub fn parse(input: &str) -> Result<ShopCode, ShopError> {
        let code: String = input
            .trim()
            .chars()
            .map(|c| match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
                c => c,
            })
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let ok = (1..=16).contains(&code.len())
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(ShopCode(code))
        } else {
            Err(ShopError::CodeFormat)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
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

    #[test]
    fn judgement_order() {
        use crate::domain::verification::{check_code, CheckCode};
        let secret = b"coupon secret";
        let now = t(1_000_000);
        let right = CheckCode::parse(&check_code(secret, now.timestamp(), 30)).unwrap();
        let wrong = CheckCode::parse(if right.as_str() == "111111" {
            "222222"
        } else {
            "111111"
        })
        .unwrap();
        let check = |required, given| CheckCodeAttempt {
            required,
            given,
            secret,
            step_seconds: 30,
        };
        let usable = state(0, None, 1);
        let used = state(0, None, 0);
        assert_eq!(judge_redemption(&usable, now, &check(false, None)), Ok(()));
        assert_eq!(
            judge_redemption(&usable, now, &check(true, Some(&right))),
            Ok(())
        );
        assert_eq!(
            judge_redemption(&usable, now, &check(false, Some(&wrong))),
            Err(RedeemRefusal::CheckCode(CheckCodeRejection::Wrong))
        );
        assert_eq!(
            judge_redemption(&used, now, &check(true, None)),
            Err(RedeemRefusal::CheckCode(CheckCodeRejection::Required))
        );
        assert_eq!(
            judge_redemption(&used, now, &check(true, Some(&wrong))),
            Err(RedeemRefusal::Coupon(RedeemRejection::AlreadyUsed))
        );
        let expired = state(0, Some(10), 1);
        assert_eq!(
            judge_redemption(&expired, now, &check(true, Some(&right))),
            Err(RedeemRefusal::Coupon(RedeemRejection::Expired))
        );
    }

    #[test]
    fn store_names_and_codes() {
        assert_eq!(ShopName::parse("  渋谷店 ").unwrap().as_str(), "渋谷店");
        assert_eq!(
            ShopName::parse(&"店".repeat(100)).map(|n| n.0.chars().count()),
            Ok(100)
        );
        for bad in ["", "   ", "a\u{7}b"] {
            assert_eq!(ShopName::parse(bad), Err(ShopError::NameLength), "{bad:?}");
        }
        assert_eq!(
            ShopName::parse(&"店".repeat(101)),
            Err(ShopError::NameLength)
        );
        for (input, want) in [
            ("shibuya-1", "SHIBUYA-1"),
            (" ab12 ", "AB12"),
            ("ｓｈｉｂｕｙａ", "SHIBUYA"),
            ("-", "-"),
        ] {
            assert_eq!(
                ShopCode::parse(input).map(|c| c.0),
                Ok(want.into()),
                "{input:?}"
            );
        }
        for bad in ["", "a b", "渋谷", "ABC_1", "ÄBC", &"A".repeat(17)] {
            assert_eq!(ShopCode::parse(bad), Err(ShopError::CodeFormat), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn store_codes_are_what_the_table_accepts(input in any::<String>()) {
            if let Ok(code) = ShopCode::parse(&input) {
                prop_assert!((1..=16).contains(&code.as_str().len()));
                prop_assert!(code.as_str().bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'));
            }
        }

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
