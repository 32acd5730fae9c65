//! The retention run: usage and access records past `retention.usage`, in batches, and
//! audit-log rows past `retention.audit` behind a signed checkpoint.

use chrono::TimeDelta;

use super::keys::InstallationKey;
use crate::config::RetentionSettings;
use crate::store::retention::RetentionCounts;
use crate::store::Store;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RetentionReport {
    pub deleted: RetentionCounts,
    pub audit_rows_cut: u64,
}

pub async fn run(
    store: &Store,
    settings: &RetentionSettings,
    key: &InstallationKey,
) -> anyhow::Result<RetentionReport> {
    let now = store.database_now().await?;
    let usage = now - TimeDelta::from_std(settings.usage)?;
    let batch = settings.batch;
    let mut report = RetentionReport::default();
    loop {
        let (coupons, redemptions) = store.delete_old_claims(usage, batch).await?;
        report.deleted.coupons += coupons;
        report.deleted.redemptions += redemptions;
        if coupons < batch as u64 {
            break;
        }
    }
    loop {
        let n = store.delete_old_sessions(usage, batch).await?;
        report.deleted.merchant_sessions += n;
        if n < batch as u64 {
            break;
        }
    }
    loop {
        let n = store.delete_old_signins(usage, batch).await?;
        report.deleted.signin_requests += n;
        if n < batch as u64 {
            break;
        }
    }
    loop {
        let n = store.delete_old_mail(usage, batch).await?;
        report.deleted.mail_outbox += n;
        if n < batch as u64 {
            break;
        }
    }
    let audit = now - TimeDelta::from_std(settings.audit)?;
    report.audit_rows_cut = super::audit::cut(store, key, audit).await?;
    Ok(report)
}
