//! Who claims: the merchant's own reference for a consumer (API), or a device or sign-in
//! identity (consumer pages). Opaque to the engine, which only compares them.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerRef(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("consumer must be 1 to 200 characters with no control characters")]
pub struct InvalidConsumer;

impl ConsumerRef {
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
}
