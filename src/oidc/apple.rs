//! Sign in with Apple's client secret: an ES256 JWT signed with the team's `.p8` key, minted
//! for each token request (iss = team id, kid = key id, sub = client id, aud = the issuer,
//! five minutes long).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;

use crate::config::AppleSettings;

/// Apple allows up to six months; we need it for one request.
const LIFETIME_SECONDS: i64 = 300;

pub struct AppleKey {
    key: SigningKey,
    team_id: String,
    key_id: String,
    audience: String,
}

impl AppleKey {
    pub fn load(settings: &AppleSettings, issuer: &str) -> anyhow::Result<AppleKey> {
        let key = crate::config::read_apple_key(&settings.private_key_path)?;
        Ok(AppleKey {
            key,
            team_id: settings.team_id.clone(),
            key_id: settings.key_id.clone(),
            audience: issuer.trim_end_matches('/').to_string(),
        })
    }

    pub fn client_secret(&self, client_id: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let header = json!({"alg": "ES256", "kid": self.key_id, "typ": "JWT"});
        let claims = json!({
            "iss": self.team_id,
            "iat": now,
            "exp": now + LIFETIME_SECONDS,
            "aud": self.audience,
            "sub": client_id,
        });
        let input = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&header)?),
            B64.encode(serde_json::to_vec(&claims)?)
        );
        // JWS wants the fixed-size r || s form, which is what `to_bytes` gives.
        let signature: Signature = self.key.try_sign(input.as_bytes())?;
        Ok(format!("{input}.{}", B64.encode(signature.to_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    // A throwaway P-256 key, generated for this test only.
    const TEST_P8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAogGb7umXZ8OjK6x
6Lr8IyHUMasOkIh2QH8DMn0Xlc6hRANCAARi46BpUP3hDOHaz6M6zKSajSFXhHr5
87MyDUpbhz+3epsAN4uOwfmLL92cL1YT1Wc7bNZMSTLaczzGqO/vTyc8
-----END PRIVATE KEY-----";

    #[test]
    fn client_secret_is_an_es256_jwt_apple_accepts() {
        let dir = std::env::temp_dir().join(format!("ecoupon-apple-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("AuthKey.p8");
        std::fs::write(&path, TEST_P8).unwrap();
        let settings = AppleSettings {
            client_id: "com.example.web".into(),
            team_id: "TEAM123456".into(),
            key_id: "KEY1234567".into(),
            private_key_path: path,
            issuer: None,
        };
        let key = AppleKey::load(&settings, "https://appleid.apple.com").unwrap();
        let jwt = key.client_secret("com.example.web").unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "KEY1234567");
        assert_eq!(claims["iss"], "TEAM123456");
        assert_eq!(claims["sub"], "com.example.web");
        assert_eq!(claims["aud"], "https://appleid.apple.com");
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!(lifetime > 0 && lifetime <= 600);
        let signature = Signature::from_slice(&B64.decode(parts[2]).unwrap()).unwrap();
        let verifying = VerifyingKey::from(&key.key);
        let input = format!("{}.{}", parts[0], parts[1]);
        verifying.verify(input.as_bytes(), &signature).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
