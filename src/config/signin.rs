//! `[signin]`: the OpenID Connect providers consumers may sign in with. None by default.
//!
//! ```toml
//! [signin.line]            # LINE Login channel
//! client_id = "1234567890"
//! client_secret = "…"      # the channel secret; LINE signs ID tokens with it (HS256)
//!
//! [signin.google]
//! client_id = "….apps.googleusercontent.com"
//! client_secret = "…"
//!
//! [signin.apple]           # Sign in with Apple: the secret is minted from the .p8 key
//! client_id = "com.example.web"   # the Services ID
//! team_id = "ABCDE12345"
//! key_id = "XYZ987KLMN"
//! private_key_path = "/etc/ecoupon/AuthKey_XYZ987KLMN.p8"
//!
//! [[signin.oidc]]          # any other OpenID Connect issuer
//! name = "corp"            # in URLs (/auth/corp/start) and consumer ids (oidc:corp:<sub>)
//! label = "Corp SSO"
//! issuer = "https://login.example.com"
//! client_id = "…"
//! client_secret = "…"
//! ```
//!
//! Each `issuer` can be overridden (the defaults are the providers' real issuers); discovery
//! (`<issuer>/.well-known/openid-configuration`) finds the endpoints and keys.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

pub const LINE_ISSUER: &str = "https://access.line.me";
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// Names the built-in providers use; generic `[[signin.oidc]]` entries may not take them.
pub const BUILT_IN: [&str; 3] = ["line", "google", "apple"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninSettings {
    pub line: Option<ClientSettings>,
    pub google: Option<ClientSettings>,
    pub apple: Option<AppleSettings>,
    #[serde(default)]
    pub oidc: Vec<OidcSettings>,
}

/// A provider with a client id and a static client secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    pub client_id: String,
    pub client_secret: Secret,
    /// Defaults to the provider's real issuer.
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppleSettings {
    /// The Services ID.
    pub client_id: String,
    pub team_id: String,
    pub key_id: String,
    /// The `.p8` key (PKCS#8 PEM, P-256) the client secret is signed with.
    pub private_key_path: PathBuf,
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    pub name: String,
    /// Shown on the sign-in page; defaults to `name`.
    pub label: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
}

impl SigninSettings {
    pub fn is_empty(&self) -> bool {
        self.line.is_none() && self.google.is_none() && self.apple.is_none() && self.oidc.is_empty()
    }

    /// Rules serde cannot express; each message names the key.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (name, client) in [("line", &self.line), ("google", &self.google)] {
            if let Some(c) = client {
                let key = format!("signin.{name}");
                not_empty(&format!("{key}.client_id"), &c.client_id)?;
                not_empty(&format!("{key}.client_secret"), c.client_secret.expose())?;
                if let Some(issuer) = &c.issuer {
                    check_issuer(&format!("{key}.issuer"), issuer)?;
                }
            }
        }
        if let Some(apple) = &self.apple {
            not_empty("signin.apple.client_id", &apple.client_id)?;
            not_empty("signin.apple.team_id", &apple.team_id)?;
            not_empty("signin.apple.key_id", &apple.key_id)?;
            if let Some(issuer) = &apple.issuer {
                check_issuer("signin.apple.issuer", issuer)?;
            }
            read_apple_key(&apple.private_key_path)?;
        }
        let mut seen = Vec::new();
        for (i, o) in self.oidc.iter().enumerate() {
            let key = format!("signin.oidc[{i}]");
            let valid_name = !o.name.is_empty()
                && o.name.len() <= 32
                && o.name
                    .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && o.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid_name {
                return Err(ConfigError(format!(
                    "{key}.name: expected 1-32 lowercase letters, digits or '-', found {:?}",
                    o.name
                )));
            }
            if BUILT_IN.contains(&o.name.as_str()) || seen.contains(&&o.name) {
                return Err(ConfigError(format!(
                    "{key}.name: {:?} is already used by another provider",
                    o.name
                )));
            }
            seen.push(&o.name);
            check_issuer(&format!("{key}.issuer"), &o.issuer)?;
            not_empty(&format!("{key}.client_id"), &o.client_id)?;
            not_empty(&format!("{key}.client_secret"), o.client_secret.expose())?;
        }
        Ok(())
    }
}

/// Reads and parses Apple's `.p8` key; the error names `signin.apple.private_key_path`.
pub fn read_apple_key(path: &std::path::Path) -> Result<p256::ecdsa::SigningKey, ConfigError> {
    use p256::pkcs8::DecodePrivateKey;
    let key = "signin.apple.private_key_path";
    let pem = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{key}: cannot read {}: {e}", path.display())))?;
    p256::ecdsa::SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
        ConfigError(format!(
            "{key}: {} is not a PKCS#8 PEM P-256 private key (Apple's .p8 file)",
            path.display()
        ))
    })
}

fn not_empty(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError(format!("{key}: must not be empty")));
    }
    Ok(())
}

/// https only, except for loopback addresses (local test providers).
fn check_issuer(key: &str, issuer: &str) -> Result<(), ConfigError> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            issuer
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    let https = issuer.starts_with("https://") && issuer.len() > "https://".len();
    if !(https || loopback) || issuer.contains(['?', '#', ' ']) {
        return Err(ConfigError(format!(
            "{key}: expected an https:// issuer URL (http only on 127.0.0.1 or localhost), found {issuer:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use figment::providers::{Format, Serialized, Toml};
    use figment::Figment;

    use super::super::Settings;

    fn load(text: &str) -> Result<Settings, String> {
        Settings::from_figment(
            Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(text)),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn no_providers_by_default() {
        assert!(load("").unwrap().signin.is_empty());
    }

    #[test]
    fn providers_load_and_secrets_stay_hidden() {
        let s = load(
            "[signin.google]\nclient_id = \"g\"\nclient_secret = \"hunter2\"\n\
             [[signin.oidc]]\nname = \"corp\"\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"\nclient_secret = \"s3cret\"\n",
        )
        .unwrap();
        assert_eq!(s.signin.google.as_ref().unwrap().client_id, "g");
        assert_eq!(s.signin.oidc[0].name, "corp");
        let debug = format!("{:?}", s.signin);
        assert!(
            !debug.contains("hunter2") && !debug.contains("s3cret"),
            "{debug}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("[signin.line]\nclient_id = \"\"\nclient_secret = \"x\"", "signin.line.client_id"),
            ("[signin.line]\nclient_id = \"x\"\nclient_secret = \"x\"\nissuer = \"http://evil.example\"", "signin.line.issuer"),
            ("[signin.google]\nclient_id = \"x\"", "client_secret"),
            ("[signin.google]\nclient_id = \"x\"\nclient_secret = \"x\"\ncolour = 1", "colour"),
            ("[signin.apple]\nclient_id = \"x\"\nteam_id = \"t\"\nkey_id = \"k\"\nprivate_key_path = \"/nonexistent.p8\"", "signin.apple.private_key_path"),
            ("[[signin.oidc]]\nname = \"Bad Name\"\nissuer = \"https://x.example\"\nclient_id = \"c\"\nclient_secret = \"s\"", "signin.oidc[0].name"),
            ("[[signin.oidc]]\nname = \"line\"\nissuer = \"https://x.example\"\nclient_id = \"c\"\nclient_secret = \"s\"", "signin.oidc[0].name"),
            ("[[signin.oidc]]\nname = \"corp\"\nissuer = \"ftp://x\"\nclient_id = \"c\"\nclient_secret = \"s\"", "signin.oidc[0].issuer"),
        ];
        for (toml, key) in cases {
            let err = load(toml).unwrap_err();
            assert!(err.contains(key), "{toml}: {err}");
        }
    }
}
