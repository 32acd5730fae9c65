//! The daily jobs `serve` runs by itself: the backup, the retention run and the periodic
//! audit-chain check. Every node runs the loops; a Postgres advisory lock (and, for
//! backups, the slot's row) makes one node do each job.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::keys::InstallationKey;
use super::mail::Mailer;
use super::notices::{NoticeBoard, BOARD_REFRESH};
use super::progress::Progress;
use crate::config::{BackupSettings, RetentionSettings, Secrets, Settings};
use crate::store::backups::{BACKUP_LOCK, RETENTION_LOCK};
use crate::store::Store;

/// The running loops; stopped with the application.
pub struct Jobs {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Jobs {
    pub fn start(store: Store, settings: &Settings, secrets: &Secrets, board: NoticeBoard) -> Jobs {
        let started = Utc::now();
        let mut tasks = vec![tokio::spawn(board_loop(store.clone(), board))];
        match Mailer::new(&settings.mail) {
            Ok(mailer) => tasks.push(tokio::spawn(mail_loop(
                store.clone(),
                mailer,
                settings.mail.poll,
            ))),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "mail settings unusable; notices stay in the outbox")
            }
        }
        tasks.push(tokio::spawn(super::code_jobs::run(store.clone())));
        match super::webhooks::Sender::new(&settings.webhooks) {
            Ok(sender) if settings.webhooks.enabled => {
                tasks.push(tokio::spawn(super::webhooks::run(store.clone(), sender)))
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "webhook sender cannot start; deliveries wait in the outbox")
            }
        }
        if settings.backup.enabled {
            let dir = settings.backup.dir(&settings.data_dir);
            tasks.push(tokio::spawn(backup_loop(
                store.clone(),
                settings.backup.clone(),
                dir,
                started,
            )));
        }
        let key = std::sync::Arc::new(InstallationKey::new(secrets));
        tasks.push(tokio::spawn(retention_loop(
            store.clone(),
            settings.retention.clone(),
            key.clone(),
        )));
        tasks.push(tokio::spawn(audit_check_loop(
            store,
            settings.retention.audit_check_every,
            key,
        )));
        Jobs { tasks }
    }

    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The newest backup slot at or before `now`: slots are `offset` seconds after midnight
/// UTC and every `interval` after that.
pub fn latest_slot(now: DateTime<Utc>, offset_seconds: u32, interval: Duration) -> DateTime<Utc> {
    let anchor = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(i64::from(offset_seconds));
    let interval_ms = (interval.as_millis() as i64).max(1);
    let since = (now - anchor).num_milliseconds();
    anchor + TimeDelta::milliseconds(since.div_euclid(interval_ms) * interval_ms)
}

async fn backup_loop(store: Store, settings: BackupSettings, dir: PathBuf, started: DateTime<Utc>) {
    let offset = settings.offset().expect("checked when settings load");
    let tick = (settings.interval / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
    let node = format!("{}:{}", hostname(), std::process::id());
    // The gauge shows the newest success known to the database, whichever node made it.
    publish_last_backup(&store).await;
    loop {
        tokio::time::sleep(tick).await;
        let slot = latest_slot(Utc::now(), offset, settings.interval);
        match backup_due(&store, slot, started).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether a backup is due");
                continue;
            }
        }
        let Ok(Some(_lock)) = store.try_job_lock(BACKUP_LOCK).await else {
            continue;
        };
        if !store.claim_backup_slot(slot, &node).await.unwrap_or(false) {
            continue;
        }
        tracing::info!(%slot, dir = %dir.display(), "daily backup starting");
        let progress = Progress::lines("backup");
        let outcome = super::backup::backup(&store, &dir, settings.keep, &progress).await;
        let (file, error) = match &outcome {
            Ok(o) => (Some(o.path.display().to_string()), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        if let Err(e) = store
            .finish_backup_run(slot, file.as_deref(), error.as_deref())
            .await
        {
            tracing::warn!(error = %e, "the backup's outcome was not recorded");
        }
        match outcome {
            Ok(o) => {
                tracing::info!(file = %o.path.display(), bytes = o.manifest.bytes, removed = o.removed.len(), "daily backup written");
                publish_last_backup(&store).await;
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "daily backup failed"),
        }
    }
}

/// A slot is due when nobody has claimed it and either it came while this node was up,
/// or an earlier backup exists and this slot was missed (all nodes were down). A fresh
/// installation does not back up the moment it starts.
async fn backup_due(
    store: &Store,
    slot: DateTime<Utc>,
    started: DateTime<Utc>,
) -> anyhow::Result<bool> {
    if store.last_backup_slot().await?.is_some_and(|s| s >= slot) {
        return Ok(false);
    }
    if slot > started {
        return Ok(true);
    }
    Ok(store.last_backup_success().await?.is_some_and(|t| t < slot))
}

async fn publish_last_backup(store: &Store) {
    if let Ok(Some(at)) = store.last_backup_success().await {
        crate::metrics::backup_succeeded(at.timestamp_millis() as f64 / 1000.0);
    }
}

async fn retention_loop(
    store: Store,
    settings: RetentionSettings,
    key: std::sync::Arc<InstallationKey>,
) {
    // Not at start-up: a restarting fleet should not all run it at once.
    let mut wait = settings.every.min(Duration::from_secs(300));
    loop {
        tokio::time::sleep(wait).await;
        wait = settings.every;
        let Ok(Some(_lock)) = store.try_job_lock(RETENTION_LOCK).await else {
            continue;
        };
        match super::retention::run(&store, &settings, &key).await {
            Ok(report) => {
                tracing::info!(deleted = ?report.deleted, audit_rows_cut = report.audit_rows_cut, "retention run finished")
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "retention run failed"),
        }
    }
}

async fn audit_check_loop(store: Store, every: Duration, key: std::sync::Arc<InstallationKey>) {
    loop {
        match super::audit::verify(&store, &key).await {
            Ok(report) => {
                crate::metrics::audit_chain_checked(report.intact());
                if !report.intact() {
                    tracing::error!(problem = %report.summary(), "audit log tampered with");
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "audit chain check could not run"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Keeps this node's copy of the notices current (maintenance gate, banners, /status).
async fn board_loop(store: Store, board: NoticeBoard) {
    loop {
        if let Err(e) = board.refresh(&store).await {
            tracing::warn!(error = %format!("{e:#}"), "notices not refreshed");
        }
        tokio::time::sleep(BOARD_REFRESH).await;
    }
}

/// Sends the outbox. Without an SMTP host mail waits, and a warning says how much.
async fn mail_loop(store: Store, mailer: Option<Mailer>, poll: Duration) {
    let mut warned_backlog = 0;
    loop {
        match &mailer {
            Some(mailer) => match super::mail::send_due(&store, mailer).await {
                Ok((0, 0)) => {}
                Ok((sent, failed)) => tracing::info!(sent, failed, "outbox"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "outbox not sent"),
            },
            None => {
                if let Ok(backlog) = store.mail_backlog().await {
                    if backlog > warned_backlog {
                        tracing::warn!(backlog, "mail waits in the outbox: set mail.smtp_host");
                        warned_backlog = backlog;
                    }
                }
            }
        }
        // For the outbox-lag alert: mail due but not accepted, whatever the reason.
        if let Ok(lag) = store.mail_lag_seconds().await {
            crate::metrics::outbox_lag("mail", lag);
        }
        tokio::time::sleep(poll).await;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_repeat_from_the_time_of_day() {
        let day = Duration::from_secs(86_400);
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            latest_slot(at("2026-03-04T10:00:00Z"), 3 * 3600, day),
            at("2026-03-04T03:00:00Z")
        );
        assert_eq!(
            latest_slot(at("2026-03-04T02:59:59Z"), 3 * 3600, day),
            at("2026-03-03T03:00:00Z")
        );
        assert_eq!(
            latest_slot(at("2026-03-04T10:00:07.5Z"), 0, Duration::from_secs(2)),
            at("2026-03-04T10:00:06Z")
        );
    }
}
