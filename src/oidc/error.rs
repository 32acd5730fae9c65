//! What can go wrong talking to a sign-in provider. The `Display` text is shown to the
//! consumer as is, so it names the provider by its label and never carries upstream detail
//! (that is logged where the error is made).

/// `label` fields hold the provider's display name ("LINE", "Google", …).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("no such sign-in provider is enabled")]
    UnknownProvider,
    /// Discovery or key fetch failed: the provider is down or unreachable.
    #[error("{label} could not be reached for discovery; please try again later")]
    DiscoveryFailed { label: String },
    #[error("{label} has no token endpoint; please try again later")]
    NoTokenEndpoint { label: String },
    /// The token endpoint could not be reached or answered with something unusable.
    #[error("{label} did not answer the code exchange; please try again later")]
    TokenEndpointFailed { label: String },
    /// The token endpoint answered with an OAuth error: usually a reused or expired code.
    #[error("{label} did not accept this sign-in (it may have been used already or expired); please sign in again")]
    CodeRejected { label: String },
    #[error("{label} sent no ID token")]
    NoIdToken { label: String },
    #[error("the answer from {label} failed verification ({check}); please sign in again")]
    IdTokenInvalid { label: String, check: TokenCheck },
    /// Our own side failed (Apple's client secret could not be signed): not the provider's fault.
    #[error("could not sign the client secret")]
    ClientSecret(#[source] anyhow::Error),
}

/// Which ID token check failed; named in the message so a support request can say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Nonce,
    Audience,
    Issuer,
    Expiry,
    Signature,
    Claims,
}

impl std::fmt::Display for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenCheck::Nonce => "nonce",
            TokenCheck::Audience => "audience",
            TokenCheck::Issuer => "issuer",
            TokenCheck::Expiry => "expiry",
            TokenCheck::Signature => "signature",
            TokenCheck::Claims => "claims",
        })
    }
}
