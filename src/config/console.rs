//! The merchant console's session and sign-in settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// A session unused this long ends (NIST SP 800-63B rev 4 asks for at most 1 h at AAL2).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however busy.
    #[serde(with = "humantime_serde")]
    pub absolute_timeout: Duration,
    /// How long an invitation link works.
    #[serde(with = "humantime_serde")]
    pub invite_ttl: Duration,
    /// Sign-in attempts allowed per IP address per minute (bursts of the same size).
    pub sign_ins_per_ip_per_minute: u32,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            invite_ttl: Duration::from_secs(7 * 86_400),
            sign_ins_per_ip_per_minute: 10,
        }
    }
}
