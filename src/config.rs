//! Settings: an optional TOML file, overridden by `ECOUPON_*` environment variables and
//! `DATABASE_URL`, overridden in turn by CLI flags. Every value is parsed into its real type
//! here, so a bad value stops start-up with the key's name instead of failing later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod api;
mod console;
mod http;
mod ops;
mod secrets;
mod signin;
mod webhooks;
pub use api::ApiSettings;
pub use console::ConsoleSettings;
pub use http::{HttpSettings, TlsSettings};
pub use ops::{BackupSettings, MailSettings, MailTls, RetentionSettings};
pub use secrets::{Secret, Secrets};
pub use signin::{
    read_apple_key, AppleSettings, ClientSettings, OidcSettings, SigninSettings, APPLE_ISSUER,
    GOOGLE_ISSUER, LINE_ISSUER,
};
pub use webhooks::WebhookSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// When set, `/metrics` is served here instead of on `listen` (which then answers 404),
    /// so it need not face the internet.
    pub metrics_listen: Option<SocketAddr>,
    /// Base URL consumers and merchants reach us at; claim links and QR codes use it.
    pub public_url: Option<String>,
    /// `postgres://…` URL (or libpq key=value string). Absent: a private cluster in `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// Create a demo tenant on the first start against an empty database.
    pub demo: bool,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub engine: EngineSettings,
    pub pages: PageSettings,
    /// The merchant console: session timeouts, invitations, sign-in throttling.
    #[serde(default)]
    pub console: ConsoleSettings,
    /// Header, body and keep-alive timeouts (against slow clients).
    #[serde(default)]
    pub http: HttpSettings,
    /// Built-in TLS (none: plain HTTP behind a proxy).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// The merchant API's rate limits.
    #[serde(default)]
    pub api: ApiSettings,
    pub secrets: SecretSettings,
    /// Consumer sign-in providers (none by default).
    pub signin: SigninSettings,
    /// `ecoupon report monthly`: where Prometheus is.
    #[serde(default)]
    pub report: ReportSettings,
    /// The daily backup (`pg_dump`, newest 7 kept).
    #[serde(default)]
    pub backup: BackupSettings,
    /// How long usage, access and audit logs are kept.
    #[serde(default)]
    pub retention: RetentionSettings,
    /// SMTP for maintenance and incident notices.
    #[serde(default)]
    pub mail: MailSettings,
    /// Outgoing webhooks to merchants' endpoints.
    #[serde(default)]
    pub webhooks: WebhookSettings,
}

/// The monthly report (`ecoupon report monthly`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Base URL of the Prometheus that scrapes ecoupon (e.g. `http://127.0.0.1:9090`);
    /// availability comes from its HTTP API. Unset: availability is reported as unknown.
    pub prometheus_url: Option<String>,
}

/// Consumer pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSettings {
    /// How often the coupon screen's check code changes (TOTP step).
    #[serde(with = "humantime_serde")]
    pub code_step: Duration,
    /// Page views and form posts per second allowed from one IP address (with bursts of
    /// ten times that): generous, since phones on one carrier share addresses.
    pub per_ip_per_second: u32,
    /// The same for one device (its session cookie).
    pub per_device_per_second: u32,
    /// A consumer session cookie is refused this long after it was issued. A sign-in
    /// lasts this long; a device identity is renewed while used, so it ends when unused
    /// this long.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// Consumer sign-ins one IP address (IPv6: one /64) may start per minute; each is a
    /// stored row until it expires.
    pub signin_starts_per_ip_per_minute: u32,
    /// Deprecated: trusts `X-Forwarded-For` from ANY peer, as if every address were a
    /// trusted proxy. Kept so old configurations keep working; use `trusted_proxies`.
    pub trust_forwarded_for: bool,
    /// Reverse proxies (CIDRs or addresses) whose `X-Forwarded-For` is believed. Only a
    /// request whose socket peer is one of these has its client address taken from the
    /// header (see `web::client_ip`); anyone else could write any address they like.
    #[serde(with = "cidr_list")]
    pub trusted_proxies: Vec<IpNet>,
}

/// A list of CIDRs in the configuration, each parsed at start-up; a bare address is a
/// /32 or /128.
mod cidr_list {
    use std::net::IpAddr;

    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn parse(entry: &str) -> Option<IpNet> {
        let entry = entry.trim();
        entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
            .ok()
            .map(|n| n.trunc())
    }

    pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nets.iter().map(|n| n.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|e| {
                parse(e).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{e:?} is not an IP address or a CIDR such as 10.0.0.0/8"
                    ))
                })
            })
            .collect()
    }
}

impl Default for PageSettings {
    fn default() -> Self {
        PageSettings {
            code_step: Duration::from_secs(30),
            per_ip_per_second: 20,
            per_device_per_second: 5,
            session_lifetime: Duration::from_secs(30 * 86_400),
            signin_starts_per_ip_per_minute: 30,
            trust_forwarded_for: false,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `ecoupon=debug,actix_web=info`. `RUST_LOG` wins.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub pool_size: usize,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long a request waits for a free pooled connection before failing.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// Claims per campaign batch, at most; a statement that carries several campaigns'
    /// batches stops taking more at about this many rows.
    pub max_batch: usize,
    /// How long a partly filled batch waits for company before it is flushed, counted from
    /// its oldest claim's arrival (claims that queued behind busy slots go at once).
    #[serde(with = "humantime_serde")]
    pub batch_linger: Duration,
    /// Batches committing at once per campaign, and claim-writing statements at once per
    /// node (each statement carries the batches of every campaign waiting for one).
    pub max_inflight_batches: usize,
    /// A claim batch (or lease request) with no answer from the database for this long
    /// (a silent connection, a network partition) is given up: its claims are answered
    /// `outcome_unknown` and its stock is counted back once the database answers.
    #[serde(with = "humantime_serde", default = "default_batch_timeout")]
    pub batch_timeout: Duration,
    /// Claims queued per campaign (waiting for a batch) before new ones get `busy`.
    pub max_queued_claims: usize,
    /// An idle campaign actor stops after this long.
    #[serde(with = "humantime_serde")]
    pub actor_idle: Duration,
    /// Campaign actors one node runs at once; claims for one more campaign get `busy`
    /// until idle ones leave (each costs about 2.5 KiB; claims only start actors for
    /// campaigns that exist).
    pub max_actors: usize,
    /// Largest block of stock one node leases from a campaign at once.
    pub max_lease: i64,
    /// A node that has not heart-beaten (its `engine_nodes` row) for this long is presumed
    /// dead, and its leases are reaped.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// A redemption can be undone for this long.
    #[serde(with = "humantime_serde")]
    pub undo_window: Duration,
}

/// Secrets from config. Missing ones are generated once and kept in the data directory.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSettings {
    pub cookie_key: Option<Secret>,
    pub signing_key: Option<Secret>,
    /// Ed25519 seed (32 bytes, base64) signing erasure certificates and audit checkpoints.
    /// Set the same one on every node.
    pub installation_key: Option<Secret>,
}

impl std::fmt::Debug for SecretSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSettings { .. }")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            public_url: None,
            database_url: None,
            data_dir: PathBuf::from("./data"),
            demo: true,
            log: LogSettings {
                format: LogFormat::Auto,
                level: "info".into(),
            },
            database: DatabaseSettings {
                pool_size: 16,
                connect_timeout: Duration::from_secs(5),
                acquire_timeout: Duration::from_secs(5),
                statement_timeout: Duration::from_secs(30),
            },
            engine: EngineSettings::default(),
            pages: PageSettings::default(),
            console: ConsoleSettings::default(),
            http: HttpSettings::default(),
            tls: None,
            api: ApiSettings::default(),
            secrets: SecretSettings::default(),
            signin: SigninSettings::default(),
            report: ReportSettings::default(),
            backup: BackupSettings::default(),
            retention: RetentionSettings::default(),
            mail: MailSettings::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_batch: 512,
            batch_linger: Duration::from_millis(1),
            max_inflight_batches: 4,
            batch_timeout: default_batch_timeout(),
            max_queued_claims: 20_000,
            actor_idle: Duration::from_secs(300),
            max_actors: 100_000,
            max_lease: 10_000,
            lease_ttl: Duration::from_secs(15),
            undo_window: Duration::from_secs(600),
        }
    }
}

fn default_batch_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A configuration problem, worded for the person starting the service.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads defaults < TOML file < `ECOUPON_*` env < `DATABASE_URL`.
    ///
    /// `file` is the `--config` path; without it `./ecoupon.toml` is read if present.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )))
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file("ecoupon.toml")),
        }
        let figment = figment.merge(Env::prefixed("ECOUPON_").split("__")).merge(
            Env::raw()
                .only(&["DATABASE_URL"])
                .map(|_| "database_url".into()),
        );
        Settings::from_figment(figment)
    }

    pub fn from_figment(figment: Figment) -> Result<Settings, ConfigError> {
        let settings: Settings = figment.extract().map_err(describe_figment_error)?;
        settings.check()?;
        Ok(settings)
    }

    /// A config file's text over the defaults, checked as `load` checks it (no file, no
    /// environment): what the config fuzz target and its property test feed.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(
            Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(text)),
        )
    }

    /// Rules serde cannot express.
    fn check(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "public_url: expected an http:// or https:// URL, found {url:?}"
                )));
            }
        }
        if let Some(url) = &self.report.prometheus_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "report.prometheus_url: expected an http:// or https:// URL, found {url:?}"
                )));
            }
        }
        if let Some(url) = &self.database_url {
            url.parse::<tokio_postgres::Config>().map_err(|e| {
                // The URL may hold a password, so only the parser's complaint is shown.
                ConfigError(format!(
                    "database_url (DATABASE_URL): not a valid PostgreSQL connection string: {e}"
                ))
            })?;
        }
        let positive = [
            ("database.pool_size", self.database.pool_size),
            ("engine.max_batch", self.engine.max_batch),
            (
                "engine.max_inflight_batches",
                self.engine.max_inflight_batches,
            ),
            ("engine.max_queued_claims", self.engine.max_queued_claims),
            (
                "pages.per_ip_per_second",
                self.pages.per_ip_per_second as usize,
            ),
            (
                "pages.per_device_per_second",
                self.pages.per_device_per_second as usize,
            ),
            ("webhooks.concurrency", self.webhooks.concurrency),
            (
                "api.requests_per_key_per_second",
                self.api.requests_per_key_per_second as usize,
            ),
            (
                "api.auth_failures_per_ip_per_minute",
                self.api.auth_failures_per_ip_per_minute as usize,
            ),
            (
                "api.unknown_key_lookups_per_second",
                self.api.unknown_key_lookups_per_second as usize,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError(format!("{key}: expected a number above 0")));
            }
        }
        if self.engine.max_lease < 1 {
            return Err(ConfigError(
                "engine.max_lease: expected a number above 0".into(),
            ));
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(ConfigError(format!(
                "log.level: expected a tracing filter such as \"info\", found {:?}",
                self.log.level
            )));
        }
        self.signin.check()?;
        ops::check(&self.backup, &self.retention)?;
        Ok(())
    }

    /// The base URL links are built from: the configured one, or the listen address.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if self.tls.is_some() => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        }
    }
}

/// Figment errors name the key, but say `default.` and Rust type names; reword them.
fn describe_figment_error(error: figment::Error) -> ConfigError {
    let messages: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            }
        })
        .collect();
    ConfigError(messages.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        Settings::from_toml(text)
    }

    #[test]
    fn defaults_are_valid() {
        let s = from_toml("").unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.public_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = from_toml("listen = \"nowhere\"").unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        let err = from_toml("[database]\npool_size = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.pool_size"), "{err}");
        let err = from_toml("[database]\npool_size = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.pool_size"), "{err}");
        let err = from_toml("public_url = \"ftp://x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("public_url"), "{err}");
        let err = from_toml("colour = 3").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let err = from_toml("[engine]\nbatch_linger = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("engine.batch_linger"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_cidrs() {
        let s = from_toml("[pages]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\", \"192.0.2.7/24\"]")
            .unwrap();
        let shown: Vec<String> = s
            .pages
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(shown, ["10.0.0.0/8", "::1/128", "192.0.2.0/24"]);
        assert!(from_toml("").unwrap().pages.trusted_proxies.is_empty());
        let err = from_toml("[pages]\ntrusted_proxies = [\"proxy.local\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pages.trusted_proxies") && err.contains("proxy.local"),
            "{err}"
        );
    }

    #[test]
    fn durations_read_humanly() {
        let s = from_toml("[engine]\nbatch_linger = \"2ms\"\nundo_window = \"5m\"").unwrap();
        assert_eq!(s.engine.batch_linger, Duration::from_millis(2));
        assert_eq!(s.engine.undo_window, Duration::from_secs(300));
    }

    #[test]
    fn monitoring_settings_name_their_keys() {
        let s = from_toml("metrics_listen = \"10.0.0.11:9464\"\n[report]\nprometheus_url = \"http://127.0.0.1:9090\"")
            .unwrap();
        assert_eq!(s.metrics_listen.unwrap().to_string(), "10.0.0.11:9464");
        assert_eq!(
            s.report.prometheus_url.as_deref(),
            Some("http://127.0.0.1:9090")
        );
        assert!(from_toml("").unwrap().metrics_listen.is_none());
        let err = from_toml("metrics_listen = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics_listen"), "{err}");
        let err = from_toml("[report]\nprometheus_url = \"prometheus:9090\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("report.prometheus_url"), "{err}");
    }
}
