//! Who claims: the merchant's own reference for a consumer (API), or a device or sign-in
//! identity (consumer pages). Opaque to the engine, which only compares them.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerRef(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("consumer must be 1 to 200 characters with no control characters")]
pub struct InvalidConsumer;

/// Where the API's consumer references live. A merchant names consumers in its own
/// namespace, so no reference it sends can be a device (`device:…`) or a signed-in person
/// (`oidc:…`): it could otherwise put coupons into a real person's wallet or use up their
/// limit.
const MERCHANT_NAMESPACE: &str = "api:";

impl ConsumerRef {
    /// A merchant's own reference, as the API takes it: stored as `api:<reference>`.
    pub fn merchant(raw: &str) -> Result<ConsumerRef, InvalidConsumer> {
        let own = ConsumerRef::parse(raw)?;
        Ok(ConsumerRef(format!("{MERCHANT_NAMESPACE}{}", own.0)))
    }

    /// A stored reference as the API shows it: a merchant's own without its namespace,
    /// others (coupons claimed on the consumer pages) as they are.
    pub fn shown_to_merchant(stored: &str) -> &str {
        stored.strip_prefix(MERCHANT_NAMESPACE).unwrap_or(stored)
    }

    pub fn parse(raw: &str) -> Result<ConsumerRef, InvalidConsumer> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
            return Err(InvalidConsumer);
        }
        Ok(ConsumerRef(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Who may claim a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigninMode {
    /// Anyone; the device is the consumer.
    None,
    /// Consumers sign in with a provider the merchant enabled.
    Required,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("signin must be none or required")]
pub struct InvalidSigninMode;

impl SigninMode {
    pub fn parse(raw: &str) -> Result<SigninMode, InvalidSigninMode> {
        match raw {
            "none" => Ok(SigninMode::None),
            "required" => Ok(SigninMode::Required),
            _ => Err(InvalidSigninMode),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SigninMode::None => "none",
            SigninMode::Required => "required",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumers_parse() {
        assert_eq!(ConsumerRef::parse(" user-42 ").unwrap().as_str(), "user-42");
        assert!(ConsumerRef::parse("").is_err());
        assert!(ConsumerRef::parse("a\nb").is_err());
        assert!(ConsumerRef::parse(&"x".repeat(201)).is_err());
        assert!(ConsumerRef::parse(&"あ".repeat(200)).is_ok());
    }

    #[test]
    fn merchant_references_cannot_name_a_device_or_a_person() {
        for raw in [
            "device:6f1c0e1e-0000-4000-8000-000000000000",
            "oidc:google:123",
            "till-7",
        ] {
            let r = ConsumerRef::merchant(raw).unwrap();
            assert!(r.as_str().starts_with("api:"), "{raw}");
            assert_eq!(ConsumerRef::shown_to_merchant(r.as_str()), raw);
        }
        assert_eq!(ConsumerRef::shown_to_merchant("device:x"), "device:x");
        assert!(ConsumerRef::merchant(" ").is_err());
    }
}
