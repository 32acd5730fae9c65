//! ecoupon: a self-hosted digital coupon platform. The map of the crate, one line a module
//! (dependencies point down this list: `web` uses `engine` uses `store` uses `domain`):

/// What `main` runs: `serve`, `migrate`, `tenant …`, `user invite`, and the operations
/// commands of [`ops`].
pub mod cli;
/// `key create|list|revoke`: API keys from the command line.
pub mod cli_keys;
/// Settings from a TOML file, `ECOUPON_*` variables and flags; generated secrets.
pub mod config;
/// Pure business rules: parsing, limits, windows, codes. No IO.
pub mod domain;
/// The claim engine: one actor per campaign, leased stock, group-committed claims.
pub mod engine;
/// The live merchant dashboard (`/merchant/live`): a broker over the engine's events, one
/// WebSocket actor per dashboard.
pub mod live;
/// Metric names, the Prometheus recorder, and the sampler of what is looked at rather
/// than counted (database pool, process, readiness, disk).
pub mod metrics;
/// The OpenID Connect client behind consumer sign-in (LINE, Google, Apple, generic).
pub mod oidc;
/// Operations: backups, retention, notices, reports.
pub mod ops;
/// A private PostgreSQL cluster from the machine's binaries, when no DATABASE_URL is set.
pub mod private_cluster;
/// Builds the application (database, engine, HTTP server) and stops it cleanly.
pub mod startup;
/// Every SQL statement, behind [`store::Store`]; the schema is in `migrations/`.
pub mod store;
/// Logging setup (JSON lines, `RUST_LOG`).
pub mod telemetry;
/// Built-in TLS: rustls, certificates reloaded on SIGHUP.
pub mod tls;
/// HTTP: one module per page or resource; every URL is listed in [`web::routes`].
pub mod web;
