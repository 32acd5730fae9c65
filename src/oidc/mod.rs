//! The OpenID Connect client behind consumer sign-in: authorization code flow with PKCE,
//! state and nonce, against LINE, Google, Apple and any configured generic provider.
//!
//! - Discovery (metadata and signing keys) is fetched lazily and cached in memory per
//!   provider for an hour; an ID token signed with an unknown key triggers one early refetch
//!   (at most once a minute), because providers rotate keys without notice.
//! - [`Providers::authorize`] hands back the state, nonce and PKCE verifier for the caller to
//!   keep until the callback; this module stores nothing, so it needs no database.
//! - LINE signs ID tokens with HS256 and the channel secret; every other provider is held to
//!   its published asymmetric keys, so a token MACed with our own secret is never accepted.
//! - Apple answers with `response_mode=form_post` and wants an ES256 JWT as client secret,
//!   minted per request from the team's `.p8` key ([`apple`]).
//!
//! Failures are [`OidcError`]s; the HTTP layer decides what status each one becomes.

mod apple;
mod error;
mod providers;

pub use error::{OidcError, TokenCheck};
pub use providers::{Authorization, Provider, Providers};
