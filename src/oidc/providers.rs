//! The configured providers: discovery (cached in memory), the authorization URL, and the
//! code exchange with its ID token checks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    reqwest, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, SignatureVerificationError, TokenResponse,
};
use tokio::sync::Mutex;

use super::apple::AppleKey;
use super::error::{OidcError, TokenCheck};
use crate::config::{SigninSettings, APPLE_ISSUER, GOOGLE_ISSUER, LINE_ISSUER};

/// Discovered metadata and keys are kept this long, then fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An ID token signed with a key we do not know refreshes the keys, at most this often.
const MIN_REFRESH: Duration = Duration::from_secs(60);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// ID tokens are HS256, signed with the channel secret.
    Line,
    Google,
    /// form_post callbacks; the client secret is an ES256 JWT minted per request.
    Apple,
    Generic,
}

enum Credential {
    Secret(crate::config::Secret),
    Apple(AppleKey),
}

pub struct Provider {
    pub name: String,
    pub label: String,
    kind: Kind,
    issuer: IssuerUrl,
    client_id: String,
    credential: Credential,
    redirect: RedirectUrl,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// Every provider, in the order the sign-in page lists them.
#[derive(Clone)]
pub struct Providers {
    list: Arc<Vec<Arc<Provider>>>,
    by_name: Arc<HashMap<String, Arc<Provider>>>,
    http: reqwest::Client,
}

/// Everything `start` must keep until the callback.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl Providers {
    /// Builds the providers from settings (already checked by `Settings::check`).
    pub fn from_settings(settings: &SigninSettings, public_url: &str) -> anyhow::Result<Providers> {
        let mut list = Vec::new();
        let base = public_url.trim_end_matches('/');
        let mut add = |name: &str, label: &str, kind, issuer: &str, client_id: &str, credential| {
            let issuer = IssuerUrl::new(issuer.to_string())
                .map_err(|e| anyhow::anyhow!("signin.{name}.issuer: {e}"))?;
            let redirect = RedirectUrl::new(format!("{base}/auth/{name}/callback"))
                .map_err(|e| anyhow::anyhow!("public_url: {e}"))?;
            list.push(Arc::new(Provider {
                name: name.to_string(),
                label: label.to_string(),
                kind,
                issuer,
                client_id: client_id.to_string(),
                credential,
                redirect,
                metadata: Mutex::new(None),
            }));
            Ok::<_, anyhow::Error>(())
        };
        if let Some(c) = &settings.line {
            let issuer = c.issuer.as_deref().unwrap_or(LINE_ISSUER);
            let cred = Credential::Secret(c.client_secret.clone());
            add("line", "LINE", Kind::Line, issuer, &c.client_id, cred)?;
        }
        if let Some(c) = &settings.google {
            let issuer = c.issuer.as_deref().unwrap_or(GOOGLE_ISSUER);
            let cred = Credential::Secret(c.client_secret.clone());
            add("google", "Google", Kind::Google, issuer, &c.client_id, cred)?;
        }
        if let Some(a) = &settings.apple {
            let issuer = a.issuer.as_deref().unwrap_or(APPLE_ISSUER);
            let key = AppleKey::load(a, issuer)?;
            add(
                "apple",
                "Apple",
                Kind::Apple,
                issuer,
                &a.client_id,
                Credential::Apple(key),
            )?;
        }
        for o in &settings.oidc {
            let label = o.label.as_deref().unwrap_or(&o.name);
            let cred = Credential::Secret(o.client_secret.clone());
            add(&o.name, label, Kind::Generic, &o.issuer, &o.client_id, cred)?;
        }
        let by_name = list.iter().map(|p| (p.name.clone(), p.clone())).collect();
        let http = reqwest::ClientBuilder::new()
            // Following redirects would let a provider point us anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()?;
        Ok(Providers {
            list: Arc::new(list),
            by_name: Arc::new(by_name),
            http,
        })
    }

    pub fn list(&self) -> &[Arc<Provider>] {
        &self.list
    }

    pub fn get(&self, name: &str) -> Result<&Arc<Provider>, OidcError> {
        self.by_name.get(name).ok_or(OidcError::UnknownProvider)
    }

    /// The provider's authorization URL with fresh state, nonce and PKCE challenge.
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn authorize(&self, p: &Provider) -> Result<Authorization, OidcError> {
        let metadata = p.metadata(&self.http, false).await?;
        let client =
            CoreClient::from_provider_metadata(metadata, ClientId::new(p.client_id.clone()), None)
                .set_redirect_uri(p.redirect.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        // Only `openid`: the subject is all we keep.
        if p.kind == Kind::Apple {
            request = request.add_extra_param("response_mode", "form_post");
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and verifies the ID token; returns the subject.
    // skip_all: the code, nonce and verifier are bearer secrets until this returns.
    #[tracing::instrument(skip_all, fields(provider = %p.name))]
    pub async fn redeem(
        &self,
        p: &Provider,
        code: String,
        nonce: &str,
        pkce_verifier: String,
    ) -> Result<String, OidcError> {
        let metadata = p.metadata(&self.http, false).await?;
        let secret = match &p.credential {
            Credential::Secret(s) => s.expose().to_string(),
            Credential::Apple(key) => key
                .client_secret(&p.client_id)
                .map_err(OidcError::ClientSecret)?,
        };
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(p.client_id.clone()),
            Some(ClientSecret::new(secret.clone())),
        )
        .set_redirect_uri(p.redirect.clone())
        .set_auth_type(p.auth_type(&metadata));
        let request = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| {
                upstream_failed(p, &e);
                OidcError::NoTokenEndpoint {
                    label: p.label.clone(),
                }
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier));
        let tokens = match request.request_async(&self.http).await {
            Ok(tokens) => tokens,
            Err(RequestTokenError::ServerResponse(e)) => {
                tracing::info!(provider = %p.name, error = %e, "sign-in code refused");
                return Err(OidcError::CodeRejected {
                    label: p.label.clone(),
                });
            }
            Err(e) => {
                upstream_failed(p, &e);
                return Err(OidcError::TokenEndpointFailed {
                    label: p.label.clone(),
                });
            }
        };
        let id_token = tokens.id_token().ok_or_else(|| OidcError::NoIdToken {
            label: p.label.clone(),
        })?;
        let nonce = Nonce::new(nonce.to_string());
        let verify = |metadata: &CoreProviderMetadata| {
            let client = CoreClient::from_provider_metadata(
                metadata.clone(),
                ClientId::new(p.client_id.clone()),
                Some(ClientSecret::new(secret.clone())),
            );
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(p.allowed_algs());
            id_token
                .claims(&verifier, &nonce)
                .map(|claims| claims.subject().as_str().to_string())
        };
        let result = match verify(&metadata) {
            // Keys rotate: one fresh look at the provider's keys before giving up.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => match p.metadata(&self.http, true).await {
                Ok(fresh) => verify(&fresh),
                Err(_) => verify(&metadata),
            },
            other => other,
        };
        result.map_err(|e| {
            tracing::warn!(provider = %p.name, error = %e, "ID token rejected");
            let check = match &e {
                ClaimsVerificationError::InvalidNonce(_) => TokenCheck::Nonce,
                ClaimsVerificationError::InvalidAudience(_) => TokenCheck::Audience,
                ClaimsVerificationError::InvalidIssuer(_) => TokenCheck::Issuer,
                ClaimsVerificationError::Expired(_) => TokenCheck::Expiry,
                ClaimsVerificationError::SignatureVerification(_) => TokenCheck::Signature,
                _ => TokenCheck::Claims,
            };
            OidcError::IdTokenInvalid {
                label: p.label.clone(),
                check,
            }
        })
    }
}

impl Provider {
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// Discovery, cached; `refresh` forces a new fetch unless the cache is under a minute old.
    async fn metadata(
        &self,
        http: &reqwest::Client,
        refresh: bool,
    ) -> Result<CoreProviderMetadata, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref() {
            let age = at.elapsed();
            if age < METADATA_TTL && !(refresh && age >= MIN_REFRESH) {
                return Ok(metadata.clone());
            }
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), http)
            .await
            .map_err(|e| {
                upstream_failed(self, &e);
                OidcError::DiscoveryFailed {
                    label: self.label.clone(),
                }
            })?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    /// LINE's and Apple's token endpoints take the secret in the body; others as advertised.
    fn auth_type(&self, metadata: &CoreProviderMetadata) -> AuthType {
        use openidconnect::core::CoreClientAuthMethod;
        match self.kind {
            Kind::Line | Kind::Apple => AuthType::RequestBody,
            Kind::Google | Kind::Generic => {
                let methods = metadata.token_endpoint_auth_methods_supported();
                let basic =
                    methods.is_none_or(|m| m.contains(&CoreClientAuthMethod::ClientSecretBasic));
                if basic {
                    AuthType::BasicAuth
                } else {
                    AuthType::RequestBody
                }
            }
        }
    }

    /// LINE signs with the channel secret; everyone else with published keys only, so a
    /// token MACed with our own client secret is never taken from them.
    fn allowed_algs(&self) -> Vec<CoreJwsSigningAlgorithm> {
        use CoreJwsSigningAlgorithm::*;
        match self.kind {
            Kind::Line => vec![HmacSha256],
            _ => vec![
                RsaSsaPkcs1V15Sha256,
                RsaSsaPssSha256,
                EcdsaP256Sha256,
                EcdsaP384Sha384,
                RsaSsaPkcs1V15Sha384,
                RsaSsaPkcs1V15Sha512,
                EdDsa,
            ],
        }
    }
}

/// The consumer only sees "try again later"; the upstream detail is for the operator.
fn upstream_failed(p: &Provider, e: &dyn std::fmt::Display) {
    tracing::warn!(provider = %p.name, error = %e, "sign-in provider failed");
}
