//! The merchant API's limits: per-key request rates, and what a flood of made-up keys may
//! cost.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Requests one API key may make per second on one node (bursts of twice that); over
    /// it gets 429 `rate_limited` with `Retry-After` and `RateLimit-*` headers. Sized for a
    /// flash sale through one till system's key.
    pub requests_per_key_per_second: u32,
    /// Failed API-key authentications (unknown, revoked or malformed keys) allowed per IP
    /// address per minute (bursts of the same size); over it, that address gets 429
    /// `too_many_auth_failures` for any key the node does not already know.
    pub auth_failures_per_ip_per_minute: u32,
    /// Database look-ups of keys this node has not seen, per second, from all addresses
    /// together (bursts of twice that): a flood from many addresses costs at most this.
    pub unknown_key_lookups_per_second: u32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            requests_per_key_per_second: 5_000,
            auth_failures_per_ip_per_minute: 60,
            unknown_key_lookups_per_second: 100,
        }
    }
}
