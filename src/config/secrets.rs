//! Secret keys. A missing key is generated on first start and kept in
//! `<data dir>/secrets.toml` (mode 0600) so that cookies and signatures survive restarts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{ConfigError, SecretSettings};

/// A string that never shows up in logs or `Debug` output.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Decoded key material, ready for use.
#[derive(Clone)]
pub struct Secrets {
    /// Signs and encrypts cookies (64 bytes).
    pub cookie_key: Vec<u8>,
    /// Signs tokens and certificates (32 bytes or more).
    pub signing_key: Vec<u8>,
    /// Ed25519 seed: erasure certificates and audit-log checkpoints are signed with it, so
    /// anyone holding the public key can check them offline.
    pub installation_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

const FILE_NAME: &str = "secrets.toml";

impl Secrets {
    /// Uses configured keys, then stored ones, and generates (and stores) the rest.
    pub fn resolve(configured: &SecretSettings, data_dir: &Path) -> Result<Secrets, ConfigError> {
        let path = data_dir.join(FILE_NAME);
        let mut stored: SecretSettings = if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            toml_from_str(&text, &path)?
        } else {
            SecretSettings::default()
        };

        let mut generated = Vec::new();
        let cookie = pick(
            &configured.cookie_key,
            &mut stored.cookie_key,
            64,
            "cookie_key",
            &mut generated,
        );
        let signing = pick(
            &configured.signing_key,
            &mut stored.signing_key,
            32,
            "signing_key",
            &mut generated,
        );

        let installation = pick(
            &configured.installation_key,
            &mut stored.installation_key,
            32,
            "installation_key",
            &mut generated,
        );

        if !generated.is_empty() {
            write_private(&path, &stored)?;
            tracing::warn!(
                keys = ?generated,
                file = %path.display(),
                "generated missing secret keys; production should set them in config or ECOUPON_SECRETS__* variables"
            );
        }
        Ok(Secrets {
            cookie_key: decode("secrets.cookie_key", &cookie, 64)?,
            signing_key: decode("secrets.signing_key", &signing, 32)?,
            installation_key: decode("secrets.installation_key", &installation, 32)?
                .get(..32)
                .and_then(|b| b.try_into().ok())
                .expect("decode checked the length"),
        })
    }
}

fn pick(
    configured: &Option<Secret>,
    stored: &mut Option<Secret>,
    len: usize,
    name: &'static str,
    generated: &mut Vec<&'static str>,
) -> Secret {
    if let Some(secret) = configured {
        return secret.clone();
    }
    stored
        .get_or_insert_with(|| {
            generated.push(name);
            let mut bytes = vec![0u8; len];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            Secret(B64.encode(bytes))
        })
        .clone()
}

fn decode(key: &str, secret: &Secret, min_len: usize) -> Result<Vec<u8>, ConfigError> {
    let bytes = B64.decode(secret.expose().trim()).map_err(|_| {
        ConfigError(format!(
            "{key}: expected base64 text (e.g. from `openssl rand -base64 {min_len}`)"
        ))
    })?;
    if bytes.len() < min_len {
        return Err(ConfigError(format!(
            "{key}: expected at least {min_len} bytes of key material, found {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn toml_from_str(text: &str, path: &Path) -> Result<SecretSettings, ConfigError> {
    use figment::providers::{Format, Toml};
    #[derive(Deserialize)]
    struct SecretsFile {
        #[serde(default)]
        secrets: SecretSettings,
    }
    figment::Figment::from(Toml::string(text))
        .extract::<SecretsFile>()
        .map(|f| f.secrets)
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

fn write_private(path: &Path, secrets: &SecretSettings) -> Result<(), ConfigError> {
    let fail = |e: std::io::Error| ConfigError(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut text =
        String::from("# Generated by ecoupon. Keep this file private and backed up.\n[secrets]\n");
    for (name, value) in [
        ("cookie_key", &secrets.cookie_key),
        ("signing_key", &secrets.signing_key),
        ("installation_key", &secrets.installation_key),
    ] {
        if let Some(v) = value {
            text.push_str(&format!("{name} = \"{}\"\n", v.expose()));
        }
    }
    let tmp = path.with_extension("toml.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused() {
        let dir = std::env::temp_dir().join(format!("ecoupon-secrets-{}", uuid::Uuid::new_v4()));
        let first = Secrets::resolve(&SecretSettings::default(), &dir).unwrap();
        let second = Secrets::resolve(&SecretSettings::default(), &dir).unwrap();
        assert_eq!(first.cookie_key, second.cookie_key);
        assert_eq!(first.signing_key.len(), 32);
        let mode = std::fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn short_or_garbled_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("ecoupon-secrets-{}", uuid::Uuid::new_v4()));
        let bad = SecretSettings {
            cookie_key: Some(Secret::new("not base64!".into())),
            signing_key: None,
            installation_key: None,
        };
        let err = Secrets::resolve(&bad, &dir).unwrap_err().to_string();
        assert!(err.contains("secrets.cookie_key"), "{err}");
        let short = SecretSettings {
            cookie_key: Some(Secret::new(B64.encode([1u8; 8]))),
            signing_key: None,
            installation_key: None,
        };
        let err = Secrets::resolve(&short, &dir).unwrap_err().to_string();
        assert!(err.contains("at least 64 bytes"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
