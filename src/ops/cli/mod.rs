//! The operations commands' arguments (clap) and what each runs; `crate::cli` only
//! dispatches here, so its file stays about serving and merchants. Notices and operator
//! accounts have their own files.

mod notices;
mod operators;

pub use notices::{notice, NoticeCommand};
pub use operators::{operator, OperatorCommand};

use std::path::PathBuf;

use clap::Subcommand;

use super::keys::InstallationKey;
use super::progress::Progress;
use crate::config::{Secrets, Settings};
use crate::store::Store;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// Where to write it (default: config `backup.dir`, else `<data dir>/backups`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Data directory of the private database (when DATABASE_URL is not set).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Restore the newest backup into a scratch database, compare row counts per table
    /// with the source's at backup time, verify the audit chain there, and drop it.
    Drill {
        /// Where the backups are (default as for `backup`).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A backup file written by `ecoupon backup` (its `.json` manifest beside it).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The database to restore into (created if absent; must have no tables).
    #[arg(long, value_name = "URL")]
    pub into: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit log's hash chain and name the first broken row.
    Verify {
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

pub async fn backup(settings: Settings, args: BackupArgs) -> anyhow::Result<()> {
    let mut settings = settings;
    match args.command {
        None => {
            if let Some(dir) = args.data_dir {
                settings.data_dir = dir;
            }
            let dir = args
                .dir
                .unwrap_or_else(|| settings.backup.dir(&settings.data_dir));
            let keep = settings.backup.keep;
            // A backup never changes the schema (not even by migrating), so a binary of
            // another version can still take one; the record of it is best-effort.
            with_store(&settings, |store| async move {
                let progress = Progress::new("backup", None);
                let slot = chrono::Utc::now();
                let recorded = match store.claim_backup_slot(slot, "cli").await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(error = %crate::store::describe_pg_error(&e), "this backup is not recorded in backup_runs");
                        false
                    }
                };
                let outcome = super::backup::backup(&store, &dir, keep, &progress).await;
                let (file, error) = match &outcome {
                    Ok(o) => (Some(o.path.display().to_string()), None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                };
                if recorded {
                    store
                        .finish_backup_run(slot, file.as_deref(), error.as_deref())
                        .await?;
                }
                drop(progress);
                let outcome = outcome?;
                for old in &outcome.removed {
                    tracing::info!(file = %old.display(), "removed an old backup");
                }
                println!("{}", outcome.path.display());
                Ok(())
            })
            .await
        }
        Some(BackupCommand::Drill { dir, data_dir }) => {
            if let Some(d) = data_dir.or(args.data_dir) {
                settings.data_dir = d;
            }
            let dir = dir
                .or(args.dir)
                .unwrap_or_else(|| settings.backup.dir(&settings.data_dir));
            let drill_settings = settings.clone();
            with_store(&settings, |store| async move {
                let progress = Progress::new("drill", None);
                let report = super::backup::drill(&store, &drill_settings, &dir, &progress).await?;
                drop(progress);
                println!("backup:   {}", report.file.display());
                println!("taken at: {}", report.backup_created_at.to_rfc3339());
                println!(
                    "restored into scratch database {} (dropped again)",
                    report.scratch_database
                );
                println!("{:<28} {:>12} {:>12}", "table", "at backup", "restored");
                for t in &report.tables {
                    let show = |n: Option<i64>| n.map_or("missing".into(), |n| n.to_string());
                    println!(
                        "{:<28} {:>12} {:>12}{}",
                        t.table,
                        show(t.expected),
                        show(t.restored),
                        if t.ok() { "" } else { "  MISMATCH" }
                    );
                }
                match &report.audit_chain {
                    Ok(s) => println!("{s}"),
                    Err(s) => println!("{s}"),
                }
                if !report.ok() {
                    let bad = report.tables.iter().filter(|t| !t.ok()).count();
                    anyhow::bail!(
                        "restore drill failed: {bad} tables differ{}",
                        if report.audit_chain.is_err() {
                            ", and the audit chain is broken"
                        } else {
                            ""
                        }
                    );
                }
                println!(
                    "restore drill passed: {} tables, row counts equal",
                    report.tables.len()
                );
                Ok(())
            })
            .await
        }
    }
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let target: tokio_postgres::Config = args
        .into
        .parse()
        .map_err(|e| anyhow::anyhow!("--into: not a PostgreSQL URL: {e}"))?;
    let progress = Progress::new("restore", None);
    let manifest = super::backup::restore(&args.file, &target, &progress).await?;
    drop(progress);
    let rows: i64 = manifest.tables.values().sum();
    println!(
        "restored {} ({} tables, {rows} rows, taken {}) into {}",
        args.file.display(),
        manifest.tables.len(),
        manifest.created_at.to_rfc3339(),
        target.get_dbname().unwrap_or("?")
    );
    Ok(())
}

pub async fn audit(settings: Settings, command: AuditCommand) -> anyhow::Result<()> {
    let mut settings = settings;
    match command {
        AuditCommand::Verify { data_dir } => {
            if let Some(d) = data_dir {
                settings.data_dir = d;
            }
            let key = installation_key(&settings)?;
            // Read-only: verifying must not change the database it judges.
            with_store(&settings, |store| async move {
                let report = super::audit::verify(&store, &key).await?;
                if !report.intact() {
                    anyhow::bail!("{}", report.summary());
                }
                println!("{}", report.summary());
                Ok(())
            })
            .await
        }
    }
}

pub fn installation_key(settings: &Settings) -> anyhow::Result<InstallationKey> {
    let secrets = Secrets::resolve(&settings.secrets, &settings.data_dir)?;
    Ok(InstallationKey::new(&secrets))
}

/// Runs `work` against the configured database, stopping the private cluster afterwards
/// if this command started it.
pub async fn with_store<F, Fut>(settings: &Settings, work: F) -> anyhow::Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (store, cluster) = crate::startup::open_database(settings).await?;
    let result = work(store.clone()).await;
    store.close();
    if let Some(cluster) = cluster {
        if cluster.started_here() {
            cluster.stop().await?;
        }
    }
    result
}

#[derive(Debug, clap::Args)]
pub struct TenantExportArgs {
    /// The tenant's id.
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// The archive to write (default: ./ecoupon-export-<TENANT>.tar.gz).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TenantPurgeArgs {
    /// The tenant's id.
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// The tenant's exact name, to show you mean it.
    #[arg(long, value_name = "NAME")]
    pub confirm: String,
    /// Who is purging, for the certificate and the audit log (default: $SUDO_USER, $USER).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Where the certificate goes (default: <data dir>/certificates).
    #[arg(long, value_name = "DIR")]
    pub certificate_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CertificateCommand {
    /// Check an erasure certificate's signature offline (no database needed).
    Verify {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Insist on this signer (base64 Ed25519 public key), e.g. the one published for
        /// the installation; without it the key inside the certificate is used.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
    },
    /// Print this installation's public key (base64), to publish for `verify --public-key`.
    PublicKey {
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn tenant_id(text: &str) -> anyhow::Result<uuid::Uuid> {
    text.trim().parse().map_err(|_| {
        anyhow::anyhow!("TENANT: {text:?} is not a tenant id (the tenant_id printed by `ecoupon tenant create`)")
    })
}

pub async fn tenant_export(settings: Settings, args: TenantExportArgs) -> anyhow::Result<()> {
    let tenant = tenant_id(&args.tenant)?;
    let mut settings = settings;
    if let Some(d) = args.data_dir {
        settings.data_dir = d;
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("ecoupon-export-{tenant}.tar.gz")));
    with_store(&settings, |store| async move {
        let progress = Progress::new("export", None);
        let outcome = super::tenant::export(&store, tenant, &out, &progress).await?;
        drop(progress);
        let rows: i64 = outcome.manifest.files.values().filter_map(|f| f.rows).sum();
        tracing::info!(files = outcome.manifest.files.len(), rows, "export written");
        println!("{}", outcome.path.display());
        Ok(())
    })
    .await
}

pub async fn tenant_purge(settings: Settings, args: TenantPurgeArgs) -> anyhow::Result<()> {
    let tenant = tenant_id(&args.tenant)?;
    let mut settings = settings;
    if let Some(d) = args.data_dir {
        settings.data_dir = d;
    }
    let operator = args
        .operator
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into());
    let dir = args
        .certificate_dir
        .unwrap_or_else(|| settings.data_dir.join("certificates"));
    let key = installation_key(&settings)?;
    let installation = settings.public_url();
    let confirm = args.confirm;
    with_store(&settings, |store| async move {
        crate::store::run_migrations(&store).await?;
        let progress = Progress::new("purge", None);
        progress.note("deleting every row of the tenant in one transaction");
        let purged = super::tenant::purge(
            &store,
            tenant,
            &confirm,
            &operator,
            &installation,
            &key,
            &dir,
        )
        .await?;
        drop(progress);
        let body = &purged.certificate.body;
        println!(
            "purged tenant {} ({}): {} rows, {} audit entries erased, {} files",
            body.tenant_id,
            body.tenant_name,
            body.total_rows_removed,
            body.audit_entries_erased,
            body.files_removed
        );
        println!("certificate: {}", purged.json.display());
        println!("printable:   {}", purged.html.display());
        Ok(())
    })
    .await
}

pub fn certificate(settings: Settings, command: CertificateCommand) -> anyhow::Result<()> {
    match command {
        CertificateCommand::PublicKey { data_dir } => {
            let mut settings = settings;
            if let Some(d) = data_dir {
                settings.data_dir = d;
            }
            let key = installation_key(&settings)?;
            println!("{}", super::keys::show_key(&key.public_key()));
            Ok(())
        }
        CertificateCommand::Verify { file, public_key } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let certificate = super::certificate::verify(&text, public_key.as_deref())
                .map_err(|e| anyhow::anyhow!("{}: certificate NOT valid: {e}", file.display()))?;
            let body = certificate.body;
            println!(
                "valid: erasure of tenant {} ({}) at {}, {} rows, signed by {}",
                body.tenant_id,
                body.tenant_name,
                body.purged_at,
                body.total_rows_removed,
                body.public_key
            );
            Ok(())
        }
    }
}

/// Who is acting, for certificates and the audit log: the flag, else the login name.
pub(super) fn operator_name(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into())
}
