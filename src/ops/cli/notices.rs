//! `ecoupon notice …`: maintenance windows and incidents.

use std::path::PathBuf;

use clap::Subcommand;

use super::{operator_name, with_store};
use crate::config::Settings;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum NoticeCommand {
    /// Schedule a maintenance window: mails every merchant's owners and admins now (at
    /// least 7 days ahead, unless --emergency) and again 24 hours before.
    Maintenance {
        /// Start, RFC 3339 (e.g. 2026-12-10T02:00:00+09:00).
        #[arg(long, value_name = "TIME")]
        start: String,
        /// End, RFC 3339.
        #[arg(long, value_name = "TIME")]
        end: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        body: String,
        /// Less than 7 days' notice: allowed only with this, and the mail says so.
        #[arg(long)]
        emergency: bool,
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Post an incident (starts now; mailed at once; shown on /status and as a banner).
    Incident {
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        body: String,
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Move a notice on: identified, monitoring, resolved (incidents) or cancelled
    /// (maintenance); mailed at once.
    Update {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long)]
        status: String,
        #[arg(long, default_value = "")]
        body: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Current, upcoming and recent notices.
    List {
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn time_arg(flag: &str, text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            anyhow::anyhow!(
                "{flag}: {text:?} is not an RFC 3339 time such as 2026-12-10T02:00:00+09:00"
            )
        })
}

pub async fn notice(settings: Settings, command: NoticeCommand) -> anyhow::Result<()> {
    let mut settings = settings;
    let status_url = format!("{}/status", settings.public_url());
    let print = |n: &crate::store::notices::Notice| {
        println!(
            "{}  {:<11} {:<13} {} – {}  {}{}",
            n.id,
            n.kind,
            n.status,
            crate::ops::notices::show_time(n.starts_at),
            n.ends_at
                .map(crate::ops::notices::show_time)
                .unwrap_or_default(),
            n.title,
            if n.emergency { " (emergency)" } else { "" }
        )
    };
    match command {
        NoticeCommand::Maintenance {
            start,
            end,
            title,
            body,
            emergency,
            operator,
            data_dir,
        } => {
            let (start, end) = (time_arg("--start", &start)?, time_arg("--end", &end)?);
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let operator = operator_name(operator);
            with_store(&settings, |store| async move {
                crate::store::run_migrations(&store).await?;
                let n = crate::ops::notices::schedule_maintenance(
                    &store,
                    start,
                    end,
                    &title,
                    &body,
                    emergency,
                    &operator,
                    &status_url,
                )
                .await?;
                audit_notice(&store, &operator, "notice.maintenance", &n).await?;
                print(&n);
                Ok(())
            })
            .await
        }
        NoticeCommand::Incident {
            title,
            body,
            operator,
            data_dir,
        } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let operator = operator_name(operator);
            with_store(&settings, |store| async move {
                crate::store::run_migrations(&store).await?;
                let n = crate::ops::notices::post_incident(
                    &store,
                    &title,
                    &body,
                    &operator,
                    &status_url,
                )
                .await?;
                audit_notice(&store, &operator, "notice.incident", &n).await?;
                print(&n);
                Ok(())
            })
            .await
        }
        NoticeCommand::Update {
            id,
            status,
            body,
            data_dir,
        } => {
            let id: uuid::Uuid = id.trim().parse().map_err(|_| {
                anyhow::anyhow!("ID: {id:?} is not a notice id (see `ecoupon notice list`)")
            })?;
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let operator = operator_name(None);
            with_store(&settings, |store| async move {
                let n =
                    crate::ops::notices::update(&store, id, &status, &body, &status_url).await?;
                audit_notice(&store, &operator, "notice.update", &n).await?;
                print(&n);
                Ok(())
            })
            .await
        }
        NoticeCommand::List { data_dir } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            with_store(&settings, |store| async move {
                let since = store.database_now().await? - crate::ops::notices::HISTORY;
                for n in store.notices_since(since).await? {
                    print(&n);
                }
                Ok(())
            })
            .await
        }
    }
}

async fn audit_notice(
    store: &Store,
    operator: &str,
    action: &str,
    n: &crate::store::notices::Notice,
) -> anyhow::Result<()> {
    crate::ops::notices::audit(store, operator, "", action, n).await
}
