//! The command line. `main.rs` only calls [`main`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::config::Settings;
use crate::domain::tenant::{Email, NewTenant, TenantName};
use crate::startup::{open_database, Application};
use crate::store::{run_migrations, Store};

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
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let demo = settings.demo;
    let public_url = settings.public_url();
    let app = Application::build(settings).await?;
    if demo {
        let demo = generate_tenant(NewTenant::demo).await?;
        if app.store().insert_tenant_if_none(&demo).await? {
            println!("Demo tenant created. These secrets are shown once:");
            print_tenant(&demo, false);
            println!(
                "Try: curl -H 'Authorization: Bearer {}' {public_url}/api/v1/tenant",
                demo.api_key.plaintext
            );
        }
    }
    tracing::info!(port = app.port(), url = %public_url, "serving");
    app.run_until_stopped().await
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
        println!("tenant_id: {}", tenant.id);
        println!("owner_email: {}", tenant.owner.as_str());
        println!("owner_password: {password}");
        println!("api_key: {}", tenant.api_key.plaintext);
    }
}
