//! The rotating 6-digit check code on a coupon screen: TOTP (RFC 6238) with HMAC-SHA-256
//! over a per-coupon secret. Staff see the same code on their screen, so a screenshot or a
//! replayed video shows a stale code.

use hmac::{Hmac, Mac};
use sha2::Sha256;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
