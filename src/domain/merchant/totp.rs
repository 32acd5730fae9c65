//! The optional second factor: TOTP (RFC 6238, SHA-1, 6 digits, 30 s), what every
//! authenticator app speaks. A code is accepted once: the caller stores the last step
//! used and passes it back.

use totp_rs::{Algorithm, Builder, Secret, Totp};

/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    pub fn generate() -> TotpSecret {
        use rand::RngCore;
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, account: &str) -> Option<Totp> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(30)
            .with_secret(Secret::from(self.0.clone()))
            .with_issuer(Some("ecoupon"))
            .with_account_name(account.replace(':', ""))
            .build()
            .ok()
    }

    /// Base32, for typing into an app by hand.
    pub fn base32(&self) -> String {
        Secret::from(self.0.clone()).to_base32()
    }

    /// The `otpauth://` URL an app scans (shown as a QR code).
    pub fn url(&self, account: &str) -> Option<String> {
        self.totp(account)?.to_url().ok()
    }

    /// The step a `code` matches at `unix_seconds` (one step of skew either way), if it
    /// is later than `last_step`, the last one accepted.
    pub fn verify(&self, code: &str, unix_seconds: u64, last_step: Option<u64>) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let step = self.totp("")?.check(&code, unix_seconds)?;
        (last_step.is_none_or(|last| step > last)).then_some(step)
    }

    /// The current code (for tests and for showing the enrolment works).
    pub fn code_at(&self, unix_seconds: u64) -> Option<String> {
        Some(self.totp("")?.generate(unix_seconds).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vector_and_single_use() {
        // RFC 6238 appendix B, SHA-1 key, last 6 of 8 digits at T = 59: 94287082.
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(s.code_at(59).unwrap(), "287082");
        let step = s.verify("287 082", 59, None).expect("valid");
        assert_eq!(step, 1);
        assert_eq!(s.verify("287082", 59, Some(step)), None, "replay");
        assert_eq!(
            s.verify("287082", 80, None),
            Some(1),
            "previous step allowed"
        );
        assert_eq!(s.verify("287082", 200, None), None, "too old");
        assert_eq!(s.verify("28708", 59, None), None);
        assert!(s
            .url("owner@shop.example")
            .unwrap()
            .starts_with("otpauth://totp/ecoupon:"));
        assert_eq!(TotpSecret::generate().base32().len(), 32);
        assert_eq!(format!("{s:?}"), "TotpSecret(***)");
    }
}
