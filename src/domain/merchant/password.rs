//! Rules for a password a merchant user chooses (NIST SP 800-63B rev 4, 3.1.1.2): long
//! rather than complex. At least 15 characters, or 8 for a user with a second factor; up
//! to 128 allowed; any characters; no composition rules; refused when it is a known
//! breached password or contains the service's name or the user's e-mail.

use std::sync::OnceLock;

/// Longest accepted, in characters (NIST asks that at least 64 be allowed). Argon2 hashes
/// any length, so the cap only bounds work per attempt.
pub const MAX_PASSWORD_CHARS: usize = 128;
const MIN_WITHOUT_MFA: usize = 15;
const MIN_WITH_MFA: usize = 8;
const SERVICE_NAME: &str = "ecoupon";

/// The shipped list (see `assets/passwords/README.md`): lower-case, sorted, one a line.
static LIST_GZ: &[u8] = include_bytes!("../../../assets/passwords/common-passwords.txt.gz");
static COMMON: OnceLock<Vec<Box<str>>> = OnceLock::new();

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("use at least {min} characters")]
    TooShort { min: usize },
    #[error("use at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("this password appears in lists of leaked passwords; choose another")]
    Common,
    #[error("do not use the service's name in your password")]
    ContainsServiceName,
    #[error("do not use your e-mail address in your password")]
    ContainsEmail,
}

impl PasswordProblem {
    /// The i18n key a form shows next to the field.
    pub fn message_key(&self) -> &'static str {
        match self {
            PasswordProblem::TooShort { .. } => "password.too_short",
            PasswordProblem::TooLong => "password.too_long",
            PasswordProblem::Common => "password.common",
            PasswordProblem::ContainsServiceName => "password.service_name",
            PasswordProblem::ContainsEmail => "password.email",
        }
    }
}

/// Loads the list once; call at start-up so the first password change does not pay for it.
pub fn load_common_passwords() -> usize {
    common().len()
}

fn common() -> &'static [Box<str>] {
    COMMON.get_or_init(|| {
        use std::io::Read;
        let mut text = String::new();
        // The list is compiled in, so failing to inflate it is a build defect; an empty
        // list would silently weaken the policy, so it is logged loudly.
        if let Err(e) = flate2::read::GzDecoder::new(LIST_GZ).read_to_string(&mut text) {
            tracing::error!(error = %e, "the common-password list does not decompress");
        }
        text.lines().map(Box::from).collect()
    })
}

pub fn is_common(password: &str) -> bool {
    let lower = password.to_ascii_lowercase();
    common()
        .binary_search_by(|p| (**p).cmp(lower.as_str()))
        .is_ok()
}

/// Checks a new password for the user with `email`.
/// The shortest new password allowed: a second factor makes a shorter one enough.
pub fn min_password_chars(has_mfa: bool) -> usize {
    if has_mfa {
        MIN_WITH_MFA
    } else {
        MIN_WITHOUT_MFA
    }
}

pub fn check_new_password(
    password: &str,
    email: &str,
    has_mfa: bool,
) -> Result<(), PasswordProblem> {
    let chars = password.chars().count();
    let min = min_password_chars(has_mfa);
    if chars < min {
        return Err(PasswordProblem::TooShort { min });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordProblem::TooLong);
    }
    let lower = password.to_lowercase();
    if lower.contains(SERVICE_NAME) {
        return Err(PasswordProblem::ContainsServiceName);
    }
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or("");
    if (!email.is_empty() && lower.contains(&email))
        || (local.chars().count() >= 4 && lower.contains(local))
    {
        return Err(PasswordProblem::ContainsEmail);
    }
    if is_common(password) {
        return Err(PasswordProblem::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_is_large_sorted_and_lower_case() {
        let list = common();
        assert!(list.len() >= 100_000, "{}", list.len());
        assert!(list.windows(2).all(|w| w[0] < w[1]));
        assert!(is_common("password123") && is_common("PASSWORD123"));
        assert!(is_common("iloveyou") && !is_common("correct horse battery staple 42"));
    }

    #[test]
    fn policy() {
        let e = "tanaka@sakura.example";
        let ok = "kumo no ue no shiro 2026";
        assert_eq!(check_new_password(ok, e, false), Ok(()));
        assert_eq!(
            check_new_password("short one", e, false),
            Err(PasswordProblem::TooShort { min: 15 })
        );
        assert_eq!(check_new_password("kumo-shiro", e, true), Ok(()));
        assert_eq!(
            check_new_password("7 chars", e, true),
            Err(PasswordProblem::TooShort { min: 8 })
        );
        assert_eq!(
            check_new_password(&"x".repeat(129), e, false),
            Err(PasswordProblem::TooLong)
        );
        assert_eq!(check_new_password(&"あ".repeat(128), e, false), Ok(()));
        assert_eq!(
            check_new_password("my eCoupon password!", e, false),
            Err(PasswordProblem::ContainsServiceName)
        );
        assert_eq!(
            check_new_password("tanaka is my name 2026", e, false),
            Err(PasswordProblem::ContainsEmail)
        );
        assert_eq!(
            check_new_password("!LoveRockAndRoll", e, false),
            Err(PasswordProblem::Common)
        );
        // No composition rules: all lower-case letters and spaces is fine.
        assert_eq!(
            check_new_password("a long sentence about clouds", e, false),
            Ok(())
        );
    }
}
