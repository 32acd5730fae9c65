//! The installation's Ed25519 key (a generated secret in `<data dir>/secrets.toml`, or
//! `secrets.installation_key`): it signs erasure certificates and audit-log checkpoints,
//! and anyone with the public key can check them without the database.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::config::Secrets;

pub struct InstallationKey {
    signing: SigningKey,
}

impl InstallationKey {
    pub fn new(secrets: &Secrets) -> InstallationKey {
        InstallationKey {
            signing: SigningKey::from_bytes(&secrets.installation_key),
        }
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// The public key as people see it: base64.
pub fn show_key(public_key: &[u8]) -> String {
    B64.encode(public_key)
}

/// Reads a base64 public key.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    B64.decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| format!("{text:?} is not a base64 Ed25519 public key (32 bytes)"))
}

/// Whether `signature` over `message` was made by the key `public_key`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        <[u8; 32]>::try_from(public_key),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    key.verify(message, &Signature::from_bytes(&sig)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_a_changed_byte_fails() {
        let secrets = Secrets {
            cookie_key: vec![0; 64],
            signing_key: vec![0; 32],
            installation_key: [7; 32],
        };
        let key = InstallationKey::new(&secrets);
        let sig = key.sign(b"message");
        assert!(verify(&key.public_key(), b"message", &sig));
        assert!(!verify(&key.public_key(), b"messagf", &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!verify(&key.public_key(), b"message", &bad));
        let shown = show_key(&key.public_key());
        assert_eq!(parse_key(&shown).unwrap(), key.public_key());
        assert!(parse_key("nope").is_err());
    }
}
