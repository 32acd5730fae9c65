//! Merchants (tenants) and their users.

use std::fmt;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::Rng;

use super::api_key::NewApiKey;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TenantInputError {
    #[error("tenant name must be 1 to 100 characters")]
    Name,
    #[error("{0:?} is not an e-mail address")]
    Email(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: &str) -> Result<TenantName, TenantInputError> {
        let name = raw.trim();
        let len = name.chars().count();
        if len == 0 || len > 100 || name.chars().any(char::is_control) {
            return Err(TenantInputError::Name);
        }
        Ok(TenantName(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, lower-cased. Deliberately loose (one `@`, a dot in the domain): the
/// only real check of an address is a mail that arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, TenantInputError> {
        let email = raw.trim().to_lowercase();
        let bad = || TenantInputError::Email(raw.to_string());
        let (local, domain) = email.split_once('@').ok_or_else(bad)?;
        let ok = !local.is_empty()
            && email.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@');
        if ok {
            Ok(Email(email))
        } else {
            Err(bad())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A generated password: 20 characters without look-alikes (~115 bits). NIST SP 800-63B
/// asks for length and randomness, not composition rules or forced rotation.
pub struct GeneratedPassword(String);

impl GeneratedPassword {
    pub fn generate() -> GeneratedPassword {
        const CHARSET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ";
        let mut rng = rand::rngs::OsRng;
        let pw = (0..20)
            .map(|_| CHARSET[rng.gen_range(0..CHARSET.len())] as char)
            .collect();
        GeneratedPassword(pw)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GeneratedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GeneratedPassword(***)")
    }
}

/// A tenant about to be created, with the secrets it starts with: a generated owner
/// password and a first API key with every scope. The plaintexts are shown once and
/// stored nowhere; the store writes only their hashes.
pub struct NewTenant {
    pub id: uuid::Uuid,
    pub name: TenantName,
    pub owner: Email,
    pub owner_password: GeneratedPassword,
    pub owner_password_hash: String,
    pub api_key: NewApiKey,
}

impl NewTenant {
    /// Hashes the password with Argon2, tens of milliseconds of CPU: call it off the
    /// async workers (`spawn_blocking`).
    pub fn generate(name: TenantName, owner: Email) -> NewTenant {
        let owner_password = GeneratedPassword::generate();
        NewTenant {
            id: uuid::Uuid::new_v4(),
            owner_password_hash: hash_password(owner_password.expose()),
            owner_password,
            name,
            owner,
            api_key: NewApiKey::generate(),
        }
    }

    /// The tenant a first start against an empty database creates, so there is
    /// something to try.
    pub fn demo() -> NewTenant {
        NewTenant::generate(
            TenantName("Demo Shop".into()),
            Email("owner@demo.example".into()),
        )
    }
}

/// Argon2id (the crate's default: 19 MiB, 2 passes) in PHC string form.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Only fails for out-of-range parameters, and the defaults are in range.
        .unwrap_or_default()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_emails_parse() {
        assert_eq!(
            TenantName::parse("  Café 山田 ").unwrap().as_str(),
            "Café 山田"
        );
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse(&"x".repeat(101)).is_err());
        assert_eq!(
            Email::parse(" Owner@Example.COM ").unwrap().as_str(),
            "owner@example.com"
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "@example.com",
            "a@.com",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let pw = GeneratedPassword::generate();
        assert_eq!(pw.expose().len(), 20);
        let phc = hash_password(pw.expose());
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(pw.expose(), &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("x", "not a hash"));
    }
}
