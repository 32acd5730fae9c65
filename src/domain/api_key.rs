//! API keys: `eck_<8-char id>_<32-char secret>`. Only a SHA-256 of the whole key is stored
//! (keys carry 190 bits of randomness, so a slow hash adds nothing); the `eck_<id>` prefix is
//! kept in clear so merchants can tell their keys apart.

use rand::distributions::Alphanumeric;
use rand::Rng;

const TAG: &str = "eck_";
const ID_LEN: usize = 8;
const SECRET_LEN: usize = 32;

/// What a key may do: every scope there is, and what a tenant's first key gets. Stored as
/// text so new scopes need no migration.
pub const SCOPES_KNOWN: &[&str] = &[
    "campaigns:read",
    "campaigns:write",
    "claims:write",
    "redemptions:write",
    "export:read",
    "keys:admin",
];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}; the scopes are: campaigns:read, campaigns:write, claims:write, redemptions:write, export:read, keys:admin")]
pub struct UnknownScope(pub String);

/// Checks and de-duplicates requested scopes, keeping their order.
pub fn parse_scopes(raw: &[String]) -> Result<Vec<String>, UnknownScope> {
    let mut scopes: Vec<String> = Vec::new();
    for s in raw {
        let s = s.trim();
        if !SCOPES_KNOWN.contains(&s) {
            return Err(UnknownScope(s.to_string()));
        }
        if !scopes.iter().any(|known| known == s) {
            scopes.push(s.to_string());
        }
    }
    Ok(scopes)
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a key's name is at most 100 characters of text")]
pub struct InvalidKeyName;

/// A key's label, trimmed: at most 100 characters, no control characters; may be empty.
pub fn parse_key_name(raw: &str) -> Result<String, InvalidKeyName> {
    let name = raw.trim();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(InvalidKeyName);
    }
    Ok(name.to_string())
}

/// A freshly generated key: shown once, then only its hash exists.
pub struct NewApiKey {
    pub plaintext: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

impl NewApiKey {
    pub fn generate() -> NewApiKey {
        let mut rng = rand::rngs::OsRng;
        let id: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .take(ID_LEN)
            .map(char::from)
            .collect();
        let secret: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .take(SECRET_LEN)
            .map(char::from)
            .collect();
        let plaintext = format!("{TAG}{id}_{secret}");
        NewApiKey {
            prefix: format!("{TAG}{id}"),
            hash: hash(&plaintext),
            plaintext,
        }
    }
}

/// A presented key that has the right shape; whether it exists is the store's question.
#[derive(Debug)]
pub struct PresentedKey(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the API key is not in the eck_<id>_<secret> form")]
pub struct MalformedKey;

impl PresentedKey {
    pub fn parse(raw: &str) -> Result<PresentedKey, MalformedKey> {
        let rest = raw.strip_prefix(TAG).ok_or(MalformedKey)?;
        let (id, secret) = rest.split_once('_').ok_or(MalformedKey)?;
        let shaped =
            |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if shaped(id, ID_LEN) && shaped(secret, SECRET_LEN) {
            Ok(PresentedKey(raw.to_string()))
        } else {
            Err(MalformedKey)
        }
    }

    pub fn hash(&self) -> Vec<u8> {
        hash(&self.0)
    }
}

fn hash(key: &str) -> Vec<u8> {
    super::token::sha256(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_consistently() {
        let key = NewApiKey::generate();
        let presented = PresentedKey::parse(&key.plaintext).unwrap();
        assert_eq!(presented.hash(), key.hash);
        assert!(key.plaintext.starts_with(&key.prefix));
        assert_ne!(NewApiKey::generate().plaintext, key.plaintext);
    }

    #[test]
    fn scopes_are_checked_and_deduplicated() {
        let raw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_scopes(&raw(&["claims:write", "keys:admin", "claims:write"])).unwrap(),
            raw(&["claims:write", "keys:admin"])
        );
        assert_eq!(
            parse_scopes(&raw(&["claims:write", "claims:delete"])).unwrap_err(),
            UnknownScope("claims:delete".into())
        );
    }

    #[test]
    fn key_names_are_trimmed_text_of_at_most_100_characters() {
        assert_eq!(parse_key_name("  渋谷店 POS ").unwrap(), "渋谷店 POS");
        assert_eq!(parse_key_name("").unwrap(), "");
        assert_eq!(
            parse_key_name(&"店".repeat(100)).unwrap().chars().count(),
            100
        );
        assert_eq!(parse_key_name(&"店".repeat(101)), Err(InvalidKeyName));
        assert_eq!(parse_key_name("till\n2"), Err(InvalidKeyName));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for raw in [
            "",
            "eck_",
            "eck_abc_def",
            "xyz_abcdefgh_abcdefghabcdefghabcdefghabcdefgh",
            "eck_abcdefgh_abcdefghabcdefghabcdefghabcdefg!",
        ] {
            assert_eq!(PresentedKey::parse(raw).unwrap_err(), MalformedKey, "{raw}");
        }
    }
}
