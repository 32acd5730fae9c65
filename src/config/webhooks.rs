//! Outgoing webhooks: which destinations are allowed, how hard and how long to try.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::webhook::DestinationPolicy;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Whether this node runs the sender (every node does by default; they share the work).
    pub enabled: bool,
    /// Allow `http://` destinations (tests, a merchant's LAN). Off: https only.
    pub allow_http: bool,
    /// Allow loopback destinations (127.0.0.0/8, ::1). Off by default: a merchant must not
    /// make this server call itself.
    pub allow_loopback: bool,
    /// Allow private, link-local, shared and reserved addresses (10/8, 192.168/16,
    /// 169.254/16, fc00::/7 …): a cloud's metadata service lives there.
    pub allow_private: bool,
    /// Deliveries sent at once by each node.
    pub concurrency: usize,
    /// How often the outbox is looked at when idle.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// Wait before the first retry; doubled each time, at most 2 hours.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// A delivery still failing this long after its event is given up.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// One attempt's limit (connect, send, answer).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            enabled: true,
            allow_http: false,
            allow_loopback: false,
            allow_private: false,
            concurrency: 16,
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(5),
            give_up_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}

impl WebhookSettings {
    pub fn policy(&self) -> DestinationPolicy {
        DestinationPolicy {
            allow_http: self.allow_http,
            allow_loopback: self.allow_loopback,
            allow_private: self.allow_private,
        }
    }
}
