//! The command line. `main.rs` only calls [`main`].

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde_json::json;
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::campaign::{CampaignDraft, NewCampaign, RawDiscount, RulesParams};
use crate::domain::merchant::Role;
use crate::domain::tenant::{Email, NewTenant, TenantName};
use crate::domain::token::{random_token, sha256};
use crate::startup::{open_database, Application};
use crate::store::{run_migrations, AuditEntry, CampaignRecord, Store};

#[derive(Debug, Parser)]
#[command(
    name = "ecoupon",
    version,
    about = "Self-hosted digital coupons with exact flash-sale limits"
)]
pub struct Cli {
    /// Settings file (default: ./ecoupon.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default when no command is given).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage merchants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage merchants' console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Reports: `report monthly --month 2026-11` (availability against the SLO, error
    /// budget, incidents, claims and redemptions).
    #[command(subcommand)]
    Report(crate::ops::report::ReportCommand),
    /// Back up the database (pg_dump, SHA-256 manifest, newest 7 kept); `backup drill`
    /// test-restores the newest one.
    Backup(crate::ops::cli::BackupArgs),
    /// Restore a backup into a new database, refusing a file whose checksum fails.
    Restore(crate::ops::cli::RestoreArgs),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(crate::ops::cli::AuditCommand),
    /// Erasure certificates.
    #[command(subcommand)]
    Certificate(crate::ops::cli::CertificateCommand),
    /// Maintenance windows and incidents: mailed, shown as banners and on /status.
    #[command(subcommand)]
    Notice(crate::ops::cli::NoticeCommand),
    /// Operator accounts: request, approval by another operator, disable.
    #[command(subcommand)]
    Operator(crate::ops::cli::OperatorCommand),
    /// API keys: create (printed once), list, revoke by prefix.
    #[command(subcommand)]
    Key(crate::cli_keys::KeyCommand),
}

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8080 (overrides config `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where secrets and the private database live (overrides config `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not create a demo tenant on an empty database.
    #[arg(long)]
    pub no_demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a merchant with an owner account and an API key (each shown once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "EMAIL")]
        owner_email: String,
        /// Print JSON instead of `key: value` lines.
        #[arg(long)]
        json: bool,
        /// Data directory of the private database (when DATABASE_URL is not set).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Write everything of a merchant into one archive (a CSV per table and its images).
    Export(crate::ops::cli::TenantExportArgs),
    /// Delete every row of a merchant and write a signed erasure certificate.
    Purge(crate::ops::cli::TenantPurgeArgs),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Invite someone to a merchant's console: prints a one-time link to send them (the
    /// way in when no mail is configured).
    Invite {
        /// The merchant (the tenant_id printed by `tenant create`).
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// owner, admin, manager or staff.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// Data directory of the private database (when DATABASE_URL is not set).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// Parses arguments, runs the command, and turns any failure into one line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = actix_web::rt::System::new().block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => {
            if let Some(listen) = args.listen {
                settings.listen = listen;
            }
            if let Some(dir) = args.data_dir {
                settings.data_dir = dir;
            }
            if args.no_demo {
                settings.demo = false;
            }
            serve(settings).await
        }
        Command::Report(command) => crate::ops::report::run(command, settings).await,
        Command::Migrate => {
            with_store(&settings, |store| async move {
                run_migrations(&store).await?;
                println!("migrations applied");
                Ok(())
            })
            .await
        }
        Command::Tenant(TenantCommand::Create {
            name,
            owner_email,
            json,
            data_dir,
        }) => {
            let name = TenantName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let email =
                Email::parse(&owner_email).map_err(|e| anyhow::anyhow!("--owner-email: {e}"))?;
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            with_store(&settings, |store| async move {
                run_migrations(&store).await?;
                let tenant = generate_tenant(move || NewTenant::generate(name, email)).await?;
                store.insert_tenant(&tenant).await?;
                print_tenant(&tenant, json);
                Ok(())
            })
            .await
        }
        Command::User(UserCommand::Invite {
            tenant,
            email,
            role,
            data_dir,
        }) => {
            // Every flag is checked before anything is opened, each problem naming its flag.
            let tenant_id: Uuid = tenant.trim().parse().map_err(|_| {
                anyhow::anyhow!("--tenant: {tenant:?} is not a tenant id (the tenant_id printed by `ecoupon tenant create`)")
            })?;
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let role: Role = role
                .trim()
                .to_lowercase()
                .parse()
                .map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            let base = link_base(
                settings.public_url.as_deref(),
                settings.listen,
                settings.listen.port(),
            );
            let ttl = chrono::TimeDelta::from_std(settings.console.invite_ttl)
                .map_err(|e| anyhow::anyhow!("console.invite_ttl: {e}"))?;
            with_store(&settings, |store| async move {
                run_migrations(&store).await?;
                let invite = invite_user(&store, tenant_id, &email, role, Utc::now() + ttl).await?;
                println!("invite_url: {base}/merchant/invite/{}", invite.token);
                println!("expires_at: {}", invite.expires_at.to_rfc3339());
                Ok(())
            })
            .await
        }
        Command::Backup(args) => crate::ops::cli::backup(settings, args).await,
        Command::Restore(args) => crate::ops::cli::restore(args).await,
        Command::Audit(command) => crate::ops::cli::audit(settings, command).await,
        Command::Certificate(command) => crate::ops::cli::certificate(settings, command),
        Command::Notice(command) => crate::ops::cli::notice(settings, command).await,
        Command::Operator(command) => crate::ops::cli::operator(settings, command).await,
        Command::Key(command) => crate::cli_keys::run(&settings, command).await,
        Command::Tenant(TenantCommand::Export(args)) => {
            crate::ops::cli::tenant_export(settings, args).await
        }
        Command::Tenant(TenantCommand::Purge(args)) => {
            crate::ops::cli::tenant_purge(settings, args).await
        }
    }
}

struct Invite {
    token: String,
    expires_at: DateTime<Utc>,
}

/// Stores an invitation (only its token's SHA-256) and audits it as done by "cli".
async fn invite_user(
    store: &Store,
    tenant_id: Uuid,
    email: &Email,
    role: Role,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<Invite> {
    if !store.tenant_exists(tenant_id).await? {
        anyhow::bail!("--tenant: there is no tenant {tenant_id}");
    }
    if store.email_taken(email.as_str()).await? {
        anyhow::bail!("--email: {} already signs in to a console", email.as_str());
    }
    let token = random_token();
    store
        .create_invite(
            tenant_id,
            email.as_str(),
            role,
            &sha256(&token),
            None,
            expires_at,
        )
        .await?;
    store
        .audit(AuditEntry {
            tenant_id: Some(tenant_id),
            actor_id: None,
            actor: "cli",
            action: "user.invite",
            target: email.as_str(),
            ip: "",
            detail: json!({"role": role.as_str(), "expires_at": expires_at}),
        })
        .await?;
    Ok(Invite { token, expires_at })
}

/// Where links printed for a person should point: the public URL when one is set, else
/// the address really listened on (a wildcard address is not one a browser can open).
fn link_base(public_url: Option<&str>, listen: SocketAddr, port: u16) -> String {
    if let Some(url) = public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{port}")
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let demo = settings.demo;
    let (public_url, listen) = (settings.public_url.clone(), settings.listen);
    let data_dir = settings.data_dir.clone();
    let app = Application::build(settings).await?;
    let base = link_base(public_url.as_deref(), listen, app.port());
    if demo {
        let demo = generate_tenant(NewTenant::demo).await?;
        if app.store().insert_tenant_if_none(&demo).await? {
            // The secrets: on a terminal for the person who started it; otherwise stdout
            // is usually a journal or a container log that others read, so into a file
            // only this user can read.
            let secrets = format!(
                "{}\nTry: curl -H 'Authorization: Bearer {}' {base}/api/v1/tenant\n\
                 Console sign-in:         {base}/merchant/login  (e-mail {}, password {})\n",
                tenant_lines(&demo),
                demo.api_key.plaintext,
                demo.owner.as_str(),
                demo.owner_password.expose()
            );
            if std::io::stdout().is_terminal() {
                println!("Demo tenant created. These secrets are shown once:");
                print!("{secrets}");
            } else {
                let path = write_private(&data_dir, DEMO_CREDENTIALS, &secrets)?;
                tracing::info!(file = %path.display(), "demo tenant created; its owner password and API key are in this file");
                println!(
                    "Demo tenant created. Its owner password and API key are in {} (readable by this user only).",
                    path.display()
                );
                println!("Console sign-in:         {base}/merchant/login  (e-mail {}, password in that file)", demo.owner.as_str());
            }
            // The secrets are out already: a campaign that fails must not stop the server.
            let campaign = demo_campaign(app.store(), demo.id, app.engine().clock().now()).await;
            if let Err(e) = &campaign {
                tracing::warn!(error = %e, "the demo campaign was not created");
            }
            if let Ok(c) = &campaign {
                println!("Demo coupon (customers): {base}/c/{}", c.slug);
            }
            println!("Staff redemption screen: {base}/merchant/redeem");
        }
    }
    tracing::info!(port = app.port(), url = %base, "serving");
    app.run_until_stopped().await
}

/// The demo tenant's one campaign, live at once, so a newcomer can claim and redeem a
/// coupon in their first minute.
async fn demo_campaign(
    store: &Store,
    tenant_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<CampaignRecord> {
    let draft = CampaignDraft {
        name: "オープン記念 コーヒー1杯無料".into(),
        description: Some(
            "ecoupon のデモキャンペーンです。受け取ったクーポンはお店のスタッフに画面を見せて使います。\n\
             This is ecoupon's demo campaign: claim a coupon, then show it to the staff."
                .into(),
        ),
        terms: Some("お一人様1枚まで。受け取りから7日間有効です。".into()),
        discount: Some(RawDiscount::FreeItem {
            item: "コーヒー1杯".into(),
        }),
        rules: RulesParams {
            total_limit: 100,
            per_consumer_limit: 1,
            claim_starts_at: None,
            claim_ends_at: None,
            use_starts_at: None,
            use_ends_at: None,
            valid_for_seconds: Some(7 * 86_400),
            uses_per_coupon: 1,
            win_probability: None,
        },
        status: Some("active".into()),
        signin: None,
        code_length: None,
        code_prefix: None,
        code_charset: None,
    };
    let campaign = NewCampaign::parse(draft, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(store
        .insert_campaign(
            Uuid::new_v4(),
            tenant_id,
            &crate::domain::campaign::new_slug(),
            &campaign,
        )
        .await?)
}

/// Runs `work` against the configured database, stopping the private cluster afterwards
/// if this command was the one that started it.
async fn with_store<F, Fut>(settings: &Settings, work: F) -> anyhow::Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (store, cluster) = open_database(settings).await?;
    let result = work(store).await;
    if let Some(cluster) = cluster {
        if cluster.started_here() {
            cluster.stop().await?;
        }
    }
    result
}

/// Argon2 hashing inside takes tens of milliseconds: keep it off the async workers.
async fn generate_tenant(
    make: impl FnOnce() -> NewTenant + Send + 'static,
) -> anyhow::Result<NewTenant> {
    Ok(tokio::task::spawn_blocking(make).await?)
}

/// Where `serve` writes the demo tenant's secrets when stdout is not a terminal.
pub const DEMO_CREDENTIALS: &str = "demo-credentials.txt";

/// Writes `text` to `dir/name`, readable and writable by this user only (0600 from the
/// moment it exists, replacing any older file).
fn write_private(dir: &std::path::Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn tenant_lines(tenant: &NewTenant) -> String {
    format!(
        "tenant_id: {}\nowner_email: {}\nowner_password: {}\napi_key: {}",
        tenant.id,
        tenant.owner.as_str(),
        tenant.owner_password.expose(),
        tenant.api_key.plaintext
    )
}

fn print_tenant(tenant: &NewTenant, as_json: bool) {
    let password = tenant.owner_password.expose();
    if as_json {
        println!(
            "{}",
            json!({
                "tenant_id": tenant.id,
                "owner_email": tenant.owner.as_str(),
                "owner_password": password,
                "api_key": tenant.api_key.plaintext,
            })
        );
    } else {
        println!("{}", tenant_lines(tenant));
    }
}
