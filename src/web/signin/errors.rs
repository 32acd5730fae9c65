//! How sign-in provider failures look over HTTP. The codes are part of the documented API
//! (and asserted by tests/api/signin.rs), so a new `OidcError` variant needs a deliberate
//! choice here rather than a catch-all.

use crate::oidc::{OidcError, TokenCheck};
use crate::web::error::{AppError, ErrorCode};

impl From<OidcError> for AppError {
    fn from(e: OidcError) -> AppError {
        let code = match &e {
            OidcError::UnknownProvider => ErrorCode::NotFound,
            OidcError::DiscoveryFailed { .. }
            | OidcError::NoTokenEndpoint { .. }
            | OidcError::TokenEndpointFailed { .. } => {
                ErrorCode::Upstream("signin_provider_unavailable")
            }
            OidcError::CodeRejected { .. } => ErrorCode::Rejected("signin_code_rejected"),
            OidcError::IdTokenInvalid {
                check: TokenCheck::Nonce,
                ..
            } => ErrorCode::Rejected("signin_nonce_mismatch"),
            OidcError::NoIdToken { .. } | OidcError::IdTokenInvalid { .. } => {
                ErrorCode::Rejected("signin_token_invalid")
            }
            // Our fault, not the consumer's: a 500 whose cause is logged, never shown.
            OidcError::ClientSecret(_) => return AppError::internal(e),
        };
        AppError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(e: OidcError) -> (u16, &'static str, String) {
        let e = AppError::from(e);
        (e.code.status().as_u16(), e.code.as_str(), e.message)
    }

    // tests/api/signin.rs covers the rejections; an unreachable provider is pinned here.
    #[test]
    fn provider_failures_keep_their_status_code_and_text() {
        let label = || "LINE".to_string();
        assert_eq!(
            http(OidcError::UnknownProvider),
            (
                404,
                "not_found",
                "no such sign-in provider is enabled".into()
            )
        );
        assert_eq!(
            http(OidcError::DiscoveryFailed { label: label() }),
            (
                502,
                "signin_provider_unavailable",
                "LINE could not be reached for discovery; please try again later".into()
            )
        );
        assert_eq!(
            http(OidcError::TokenEndpointFailed { label: label() }),
            (
                502,
                "signin_provider_unavailable",
                "LINE did not answer the code exchange; please try again later".into()
            )
        );
        assert_eq!(
            http(OidcError::IdTokenInvalid {
                label: label(),
                check: TokenCheck::Nonce
            }),
            (
                400,
                "signin_nonce_mismatch",
                "the answer from LINE failed verification (nonce); please sign in again".into()
            )
        );
        assert_eq!(
            http(OidcError::ClientSecret(anyhow::anyhow!("bad key"))),
            (500, "internal_error", "internal error".into())
        );
    }
}
