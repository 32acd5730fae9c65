//! Operations settings: the daily backup, log retention and the audit-chain check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSettings {
    /// Where `pg_dump` files go; default `<data_dir>/backups`. Point every node at the same
    /// shared directory, since whichever node wins the lock writes the day's file.
    pub dir: Option<PathBuf>,
    /// Backups kept; older ones (and their manifests) are deleted after each new one.
    pub keep: usize,
    /// `serve` backs up by itself (one node of many: an advisory lock decides).
    pub enabled: bool,
    /// Time of day (UTC, `HH:MM`) of the first backup slot; slots repeat every `interval`.
    pub at: String,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for BackupSettings {
    fn default() -> Self {
        BackupSettings {
            dir: None,
            keep: 7,
            enabled: true,
            at: "03:00".into(),
            interval: Duration::from_secs(86_400),
        }
    }
}

impl BackupSettings {
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("backups"))
    }

    /// Seconds after midnight UTC of the first slot.
    pub fn offset(&self) -> Result<u32, ConfigError> {
        let bad = || {
            ConfigError(format!(
                "backup.at: expected a UTC time of day such as \"03:00\", found {:?}",
                self.at
            ))
        };
        let (h, m) = self.at.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(h * 3600 + m * 60)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Usage and access logs (the access log, consumer and console sign-in records) older
    /// than this are deleted by the daily job.
    #[serde(with = "humantime_serde")]
    pub usage: Duration,
    /// Audit-log entries older than this are deleted behind a signed checkpoint.
    #[serde(with = "humantime_serde")]
    pub audit: Duration,
    /// How often the retention job runs (one node of many: an advisory lock decides).
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    /// Rows deleted per statement, so no delete holds locks for long.
    pub batch: i64,
    /// How often `serve` verifies the audit chain (exported as `ecoupon_audit_chain_ok`).
    #[serde(with = "humantime_serde")]
    pub audit_check_every: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            usage: Duration::from_secs(365 * 86_400),
            audit: Duration::from_secs(365 * 86_400),
            every: Duration::from_secs(86_400),
            batch: 5_000,
            audit_check_every: Duration::from_secs(600),
        }
    }
}

pub(super) fn check(
    backup: &BackupSettings,
    retention: &RetentionSettings,
) -> Result<(), ConfigError> {
    backup.offset()?;
    let positive = [
        ("backup.keep", backup.keep as u128),
        ("backup.interval", backup.interval.as_millis()),
        ("retention.usage", retention.usage.as_millis()),
        ("retention.audit", retention.audit.as_millis()),
        ("retention.every", retention.every.as_millis()),
        ("retention.batch", retention.batch.max(0) as u128),
        (
            "retention.audit_check_every",
            retention.audit_check_every.as_millis(),
        ),
    ];
    for (key, value) in positive {
        if value == 0 {
            return Err(ConfigError(format!("{key}: expected a value above 0")));
        }
    }
    Ok(())
}

/// Outgoing mail (notices to merchants' owners and admins), over SMTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// Without a host, mail waits in the outbox (and a warning says so).
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    /// `opportunistic`: STARTTLS when the server offers it; `required`; or `none`.
    pub tls: MailTls,
    pub username: Option<String>,
    pub password: Option<super::Secret>,
    /// The From address, e.g. `ecoupon <noreply@coupons.example.jp>`.
    pub from: String,
    /// How often the outbox is looked at.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    Opportunistic,
    Required,
    None,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            smtp_host: None,
            smtp_port: 587,
            tls: MailTls::Opportunistic,
            username: None,
            password: None,
            from: "ecoupon <noreply@localhost>".into(),
            poll: Duration::from_secs(5),
        }
    }
}
