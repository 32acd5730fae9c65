//! Merchant users and what they may do: roles and permissions, the password rules
//! (NIST SP 800-63B rev 4), the TOTP second factor, and the tenant's IP allow-list.

pub mod allowlist;
pub mod password;
pub mod role;
pub mod totp;

pub use allowlist::{AllowListError, IpAllowList};
pub use password::{PasswordProblem, MAX_PASSWORD_CHARS};
pub use role::{Permission, Role};
pub use totp::TotpSecret;
