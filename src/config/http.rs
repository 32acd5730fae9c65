//! The HTTP server's own limits: how long a client may take to send a request, and how
//! long an idle connection is kept. Slow clients hold a connection each, so without these a
//! few thousand connections sending a byte a second (slowloris) would starve everyone else.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// The request line and headers must arrive within this (else 408 and the connection
    /// closes).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request body must arrive within this, counted from the end of the headers (a 2 MiB
    /// image over a slow phone line still fits). WebSocket connections are exempt.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// An idle keep-alive connection closes after this.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
        }
    }
}

/// Built-in TLS: `[tls] cert = "…", key = "…"` (PEM files; the chain first in `cert`).
/// Without it the server speaks plain HTTP, for a reverse proxy that terminates TLS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// A plain-HTTP address that redirects every request to the https public URL (e.g.
    /// `0.0.0.0:80`).
    #[serde(default)]
    pub redirect_listen: Option<std::net::SocketAddr>,
    /// `Strict-Transport-Security: max-age` (0 sends none).
    #[serde(default = "default_hsts", with = "humantime_serde")]
    pub hsts_max_age: Duration,
}

fn default_hsts() -> Duration {
    Duration::from_secs(365 * 86_400)
}
