//! The rotating 6-digit check code on a coupon screen: TOTP (RFC 6238) with HMAC-SHA-256
//! over a per-coupon secret. Staff type the code the consumer's screen shows and the server
//! checks it against the secret, so a screenshot or a replayed video shows a stale code that
//! is refused.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::coded::coded_enum;

/// Digits in a check code.
pub const CHECK_CODE_DIGITS: usize = 6;

/// The code for the step containing `unix_seconds`.
pub fn check_code(secret: &[u8], unix_seconds: i64, step_seconds: u64) -> String {
    let step = step_seconds.max(1) as i64;
    let counter = unix_seconds.div_euclid(step) as u64;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return "000000".into();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // RFC 4226 dynamic truncation.
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

/// Seconds until the code changes.
pub fn seconds_left(unix_seconds: i64, step_seconds: u64) -> u64 {
    let step = step_seconds.max(1) as i64;
    (step - unix_seconds.rem_euclid(step)) as u64
}

/// Six digits as typed by staff: full-width digits (a Japanese IME) and spaces or dashes
/// between groups are forgiven; anything else is not a check code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCode(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a check code is 6 digits")]
pub struct MalformedCheckCode;

impl CheckCode {
    pub fn parse(input: &str) -> Result<CheckCode, MalformedCheckCode> {
        let mut digits = String::with_capacity(CHECK_CODE_DIGITS);
        for c in input.chars() {
            let c = match c {
                '\u{FF10}'..='\u{FF19}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
                c => c,
            };
            if c.is_whitespace() || matches!(c, '-' | '\u{FF0D}' | '\u{2010}'..='\u{2015}') {
                continue;
            }
            if !c.is_ascii_digit() || digits.len() == CHECK_CODE_DIGITS {
                return Err(MalformedCheckCode);
            }
            digits.push(c);
        }
        if digits.len() == CHECK_CODE_DIGITS {
            Ok(CheckCode(digits))
        } else {
            Err(MalformedCheckCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

coded_enum! {
    #[derive(Copy, Eq, Hash)]
    pub enum CheckCodeRejection {
        Required => "check_code_required",
            "this merchant requires the 6-digit check code shown on the customer's coupon screen";
        Wrong => "wrong_check_code",
            "the check code does not match the customer's live coupon screen (it changes every step)";
        TooManyAttempts => "too_many_check_code_attempts",
            "too many check codes were tried for this coupon; wait a minute and ask the customer for the live screen";
    }
}

/// Whether `given` is the code of the step containing `unix_seconds` or of the step before.
/// The previous step is accepted because staff need a few seconds to type what they read;
/// nothing older is, so a screenshot goes stale within two steps. Compared in constant time.
pub fn verify_check_code(
    secret: &[u8],
    given: &CheckCode,
    unix_seconds: i64,
    step_seconds: u64,
) -> bool {
    let step = step_seconds.max(1) as i64;
    let current = check_code(secret, unix_seconds, step_seconds);
    let previous = check_code(secret, unix_seconds.saturating_sub(step), step_seconds);
    let given = given.as_str().as_bytes();
    // Both compared, always: the time taken says nothing about which one matched.
    let a = current.as_bytes().ct_eq(given);
    let b = previous.as_bytes().ct_eq(given);
    bool::from(a | b)
}

/// What a redemption asks of the check code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckCodePolicy {
    /// The API: required only when the tenant says so (`require_check_code`); checked
    /// whenever one is given.
    #[default]
    IfTenantRequires,
    /// The staff screen: always required, since checking it is the screen's purpose.
    Always,
    /// The consumer's own "use" button, for merchants who trust the screen.
    Never,
}

impl CheckCodePolicy {
    pub fn requires(self, tenant_requires: bool) -> bool {
        match self {
            CheckCodePolicy::IfTenantRequires => tenant_requires,
            CheckCodePolicy::Always => true,
            CheckCodePolicy::Never => false,
        }
    }
}

/// The check-code part of a redemption, judged against the coupon's secret.
#[derive(Debug, Clone, Copy)]
pub struct CheckCodeAttempt<'a> {
    pub required: bool,
    pub given: Option<&'a CheckCode>,
    pub secret: &'a [u8],
    pub step_seconds: u64,
}

impl CheckCodeAttempt<'_> {
    /// Missing-but-required is a fault of the request, told apart from a wrong code.
    pub fn missing(&self) -> bool {
        self.required && self.given.is_none()
    }

    pub fn matches(&self, unix_seconds: i64) -> bool {
        self.given.is_none_or(|given| {
            verify_check_code(self.secret, given, unix_seconds, self.step_seconds)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_what_staff_type() {
        for (input, want) in [
            ("123456", "123456"),
            (" 123 456 ", "123456"),
            ("１２３４５６", "123456"),
            ("123-456", "123456"),
            ("０１２\u{3000}３４５", "012345"),
        ] {
            assert_eq!(
                CheckCode::parse(input).map(|c| c.0),
                Ok(want.into()),
                "{input:?}"
            );
        }
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "abcdef",
            "12345６7",
            "١٢٣٤٥٦",
            "12\u{0}3456",
        ] {
            assert_eq!(CheckCode::parse(bad), Err(MalformedCheckCode), "{bad:?}");
        }
    }

    #[test]
    fn accepts_the_current_and_the_previous_step_only() {
        let secret = b"a coupon secret of some length..";
        let t = 1_700_000_015; // mid-step
        let at = |s: i64| CheckCode::parse(&check_code(secret, s, 30)).unwrap();
        assert!(verify_check_code(secret, &at(t), t, 30));
        assert!(verify_check_code(secret, &at(t - 30), t, 30));
        assert!(!verify_check_code(secret, &at(t - 60), t, 30));
        assert!(
            !verify_check_code(secret, &at(t + 30), t, 30),
            "no future codes"
        );
        // The previous step is relative to the step, not to the second: at the first second
        // of a step the code from 31 s ago is two steps old.
        let start = t - t.rem_euclid(30);
        assert!(verify_check_code(secret, &at(start - 1), start, 30));
        assert!(!verify_check_code(secret, &at(start - 31), start, 30));
        let other = b"another coupon's secret.........";
        assert!(!verify_check_code(other, &at(t), t, 30));
    }

    #[test]
    fn policy_and_attempt() {
        assert!(CheckCodePolicy::Always.requires(false));
        assert!(!CheckCodePolicy::Never.requires(true));
        assert!(CheckCodePolicy::IfTenantRequires.requires(true));
        assert!(!CheckCodePolicy::IfTenantRequires.requires(false));
        let secret = b"s";
        let none = CheckCodeAttempt {
            required: true,
            given: None,
            secret,
            step_seconds: 30,
        };
        assert!(none.missing());
        let optional = CheckCodeAttempt {
            required: false,
            ..none
        };
        assert!(!optional.missing() && optional.matches(0));
        let wrong = CheckCode::parse("000000").unwrap();
        let right = CheckCode::parse(&check_code(secret, 100, 30)).unwrap();
        let given = |c| CheckCodeAttempt {
            given: Some(c),
            ..none
        };
        assert!(given(&right).matches(100) && !given(&right).missing());
        assert_eq!(
            given(&wrong).matches(100),
            check_code(secret, 100, 30) == "000000" || check_code(secret, 70, 30) == "000000"
        );
        assert_eq!(CheckCodeRejection::Wrong.code(), "wrong_check_code");
        assert_eq!(CheckCodeRejection::Required.code(), "check_code_required");
    }

    #[test]
    fn matches_the_rfc_6238_sha256_vectors() {
        // RFC 6238 appendix B, SHA-256 secret, last 6 of the 8 digits.
        let secret = b"12345678901234567890123456789012";
        assert_eq!(check_code(secret, 59, 30), "119246");
        assert_eq!(check_code(secret, 1_111_111_109, 30), "084774");
        assert_eq!(check_code(secret, 2_000_000_000, 30), "698825");
    }

    proptest! {
        #[test]
        fn same_step_same_code_and_always_six_digits(secret in proptest::collection::vec(any::<u8>(), 1..64), t in 0i64..4_000_000_000, step in 1u64..120) {
            let code = check_code(&secret, t, step);
            prop_assert_eq!(code.len(), 6);
            prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
            let start = t - t.rem_euclid(step as i64);
            prop_assert_eq!(check_code(&secret, start, step), code.clone());
            prop_assert!(seconds_left(t, step) >= 1 && seconds_left(t, step) <= step);
        }
    }
}
