//! The operations commands' arguments (clap) and what each runs; `crate::cli` only
//! dispatches here, so its file stays about serving and merchants.

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
            with_store(&settings, |store| async move {
                crate::store::run_migrations(&store).await?;
                let progress = Progress::new("backup", None);
                let slot = chrono::Utc::now();
                store.claim_backup_slot(slot, "cli").await?;
                let outcome = super::backup::backup(&store, &dir, keep, &progress).await;
                let (file, error) = match &outcome {
                    Ok(o) => (Some(o.path.display().to_string()), None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                };
                store
                    .finish_backup_run(slot, file.as_deref(), error.as_deref())
                    .await?;
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
            with_store(&settings, |store| async move {
                crate::store::run_migrations(&store).await?;
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

fn operator_name(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into())
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
            super::notices::show_time(n.starts_at),
            n.ends_at.map(super::notices::show_time).unwrap_or_default(),
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
                let n = super::notices::schedule_maintenance(
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
                let n =
                    super::notices::post_incident(&store, &title, &body, &operator, &status_url)
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
                let n = super::notices::update(&store, id, &status, &body, &status_url).await?;
                audit_notice(&store, &operator, "notice.update", &n).await?;
                print(&n);
                Ok(())
            })
            .await
        }
        NoticeCommand::List { data_dir } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            with_store(&settings, |store| async move {
                let since = store.database_now().await? - super::notices::HISTORY;
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
    store
        .audit(crate::store::AuditEntry {
            tenant_id: None,
            actor_id: None,
            actor: operator,
            action,
            target: &n.id.to_string(),
            ip: "",
            detail: serde_json::json!({"title": n.title, "status": n.status, "starts_at": n.starts_at, "ends_at": n.ends_at, "emergency": n.emergency}),
        })
        .await?;
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create a pending operator with a generated password (shown once). A different
    /// active operator must approve it.
    Request {
        #[arg(value_name = "EMAIL")]
        email: String,
        /// Create the very first operator, active at once (only while there is none).
        #[arg(long)]
        bootstrap: bool,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Approve a pending operator. The approver's password is read from standard input.
    Approve {
        #[arg(value_name = "EMAIL")]
        email: String,
        /// The approving operator (must be active and someone else).
        #[arg(long, value_name = "EMAIL")]
        by: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Disable an operator at once. The acting operator's password is read from standard
    /// input.
    Disable {
        #[arg(value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "EMAIL")]
        by: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Every operator and their state.
    List {
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// One line from standard input (prompted on a terminal), without echoing on a terminal
/// being out of scope: pipe it in from a password manager.
fn read_password(for_whom: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        eprint!("password for {for_whom}: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        anyhow::bail!("--by: no password given on standard input for {for_whom}");
    }
    Ok(password)
}

pub async fn operator(settings: Settings, command: OperatorCommand) -> anyhow::Result<()> {
    let mut settings = settings;
    match command {
        OperatorCommand::Request {
            email,
            bootstrap,
            data_dir,
        } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let requested_by = if bootstrap {
                "bootstrap".to_string()
            } else {
                operator_name(None)
            };
            with_store(&settings, |store| async move {
                crate::store::run_migrations(&store).await?;
                let r = super::operators::request(&store, &email, &requested_by, bootstrap).await?;
                println!("operator: {}", r.email);
                println!(
                    "status: {}",
                    if r.active {
                        "active"
                    } else {
                        "pending (a different active operator must approve)"
                    }
                );
                println!("password: {}", r.password.expose());
                Ok(())
            })
            .await
        }
        OperatorCommand::Approve {
            email,
            by,
            data_dir,
        } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let password = read_password(&by)?;
            with_store(&settings, |store| async move {
                super::operators::approve(&store, &email, &by, &password).await?;
                println!("approved: {email} (by {by})");
                Ok(())
            })
            .await
        }
        OperatorCommand::Disable {
            email,
            by,
            data_dir,
        } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let password = read_password(&by)?;
            with_store(&settings, |store| async move {
                super::operators::disable(&store, &email, &by, &password).await?;
                println!("disabled: {email}");
                Ok(())
            })
            .await
        }
        OperatorCommand::List { data_dir } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            with_store(&settings, |store| async move {
                for op in store.operators().await? {
                    println!(
                        "{:<32} {:<9} approved by {}  since {}",
                        op.email,
                        op.status,
                        op.approved_by.as_deref().unwrap_or("-"),
                        op.created_at.to_rfc3339()
                    );
                }
                Ok(())
            })
            .await
        }
    }
}
