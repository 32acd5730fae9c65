//! ecoupon: a self-hosted digital coupon platform.
//!
//! - [`domain`]: pure rules (no IO).
//! - [`store`]: every SQL statement, and the private PostgreSQL cluster.
//! - [`web`]: HTTP handlers; every URL is listed in [`web::routes`].
//! - [`startup`] wires them together; [`cli`] is what `main` runs.

pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
