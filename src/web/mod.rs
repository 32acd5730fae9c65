//! The HTTP layer: one module per resource, every URL listed in [`routes`].

use std::sync::Arc;

use handlebars::Handlebars;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::{Secrets, Settings};
use crate::engine::Engine;
use crate::store::Store;

pub mod assets;
pub mod auth;
mod campaigns;
mod claim_page;
mod claims;
pub mod client_ip;
mod codes;
pub mod console;
mod coupons;
pub mod error;
mod health;
pub mod i18n;
pub mod idempotency;
pub mod images;
pub mod json;
mod keyed_claims;
mod keys;
pub mod metrics_endpoint;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod pages;
mod pagination;
pub mod password_sign_in;
mod qr;
mod redemptions;
pub mod routes;
pub mod second_factor;
pub mod session;
pub mod signin;
mod status;
mod stores;
pub mod templates;
mod tenant;
mod ttl_cache;
mod wallet;
mod webhooks;

/// `POST /api/v1/campaigns`' body, for the fuzz targets and property tests of parsers.
pub use campaigns::NewCampaignRequest;

/// Shared by every request handler through `web::Data`.
pub struct AppState {
    pub store: Store,
    pub settings: Settings,
    pub secrets: Secrets,
    pub templates: Arc<Handlebars<'static>>,
    pub metrics: PrometheusHandle,
    pub engine: Engine,
    /// Encrypts consumer session cookies (from `secrets.cookie_key`).
    pub cookie_key: actix_web::cookie::Key,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    /// The consumer session cookie's key, name and lifetime.
    pub sessions: session::SessionCookies,
    pub limits: middleware::RateLimits,
    /// Images served lately (`/i/{id}`), bounded in bytes.
    pub images: images::ImageCache,
    pub api_keys: auth::ApiKeyCache,
    /// Tenants' settings for pages and the API, believed for a second.
    pub tenants: tenant::TenantCache,
    /// Consumer sign-in providers (from `settings.signin`), with their discovery cache.
    pub signin: crate::oidc::Providers,
    /// Fans engine events out to live dashboard sockets (`/merchant/live`).
    pub live: crate::live::Broker,
    /// Keyed claims' key lookups, many per statement.
    pub key_reads: crate::store::KeyReads,
}
