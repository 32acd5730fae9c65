//! The system under test: a fresh database and ecoupon's release binary as a separate
//! process, with its logs in a file.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use ecoupon::private_cluster::EmbeddedPostgres;
use tokio::process::{Child, Command};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

/// The binary `cargo bench` built next to this bench, with the bench profile (= release).
pub const BINARY: &str = env!("CARGO_BIN_EXE_ecoupon");

/// A database made for this run, on `$DATABASE_URL`'s server, else 127.0.0.1:5432, else a
/// private cluster (started by ecoupon's own code) in the run's temp directory.
pub struct Database {
    admin: Config,
    pub name: String,
    pub config: Config,
    cluster: Option<EmbeddedPostgres>,
}

async fn connect(config: &Config) -> anyhow::Result<Client> {
    let (client, conn) = tokio::time::timeout(Duration::from_secs(10), config.connect(NoTls))
        .await
        .context("connecting to PostgreSQL timed out")??;
    tokio::spawn(conn);
    Ok(client)
}

impl Database {
    pub async fn create(scratch: &Path) -> anyhow::Result<Database> {
        let mut cluster = None;
        let admin: Config = match std::env::var("DATABASE_URL") {
            Ok(url) => url.parse().context("DATABASE_URL")?,
            Err(_) => {
                let local: Config = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
                    .parse()
                    .expect("a valid connection string");
                if connect(&local).await.is_ok() {
                    local
                } else {
                    println!("no PostgreSQL at 127.0.0.1:5432: starting a private cluster");
                    let pg = EmbeddedPostgres::start(&scratch.join("postgres")).await?;
                    let config = pg.connect_config("postgres");
                    cluster = Some(pg);
                    config
                }
            }
        };
        let name = format!("ecoupon_kit_{}", uuid::Uuid::new_v4().simple());
        connect(&admin)
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .context("creating the run's database")?;
        let mut config = admin.clone();
        config.dbname(&name);
        Ok(Database {
            admin,
            name,
            config,
            cluster,
        })
    }

    pub async fn client(&self) -> anyhow::Result<Client> {
        connect(&self.config).await
    }

    /// Where the server is, for the report (no password).
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let private = if self.cluster.is_some() {
            " (private cluster)"
        } else {
            ""
        };
        format!("{host}:{port}/{}{private}", self.name)
    }

    /// A libpq `key=value` string for ecoupon's `DATABASE_URL`.
    pub fn conninfo(&self) -> String {
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let c = &self.config;
        let mut parts = Vec::new();
        if let Some(host) = c.get_hosts().first() {
            let host = match host {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.display().to_string(),
            };
            parts.push(format!("host={}", quote(&host)));
        }
        if let Some(port) = c.get_ports().first() {
            parts.push(format!("port={port}"));
        }
        if let Some(user) = c.get_user() {
            parts.push(format!("user={}", quote(user)));
        }
        if let Some(password) = c.get_password() {
            parts.push(format!(
                "password={}",
                quote(&String::from_utf8_lossy(password))
            ));
        }
        parts.push(format!("dbname={}", quote(&self.name)));
        parts.join(" ")
    }

    /// Drops the database (and stops the private cluster, if the kit started one).
    pub async fn drop_all(self) -> anyhow::Result<()> {
        let result = async {
            connect(&self.admin)
                .await?
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await?;
            Ok(())
        }
        .await;
        if let Some(cluster) = &self.cluster {
            cluster.stop().await?;
        }
        result
    }
}

/// A running `ecoupon serve`; killed if dropped without [`Server::stop`].
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub log: PathBuf,
}

/// A port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// ecoupon with this run's database and settings; none of the caller's ECOUPON_* or
/// RUST_LOG, so the defaults are what is measured.
fn ecoupon(db: &Database, scratch: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(BINARY);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("ECOUPON_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("DATABASE_URL", db.conninfo())
        .current_dir(scratch)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// The settings that differ from the defaults, and why:
/// - the consumer scenario sends each simulated phone's address in `X-Forwarded-For` (as
///   a reverse proxy would), so the per-IP limit sees many phones, not one machine;
/// - no actor stops for idleness during the run, so the memory phase measures every idle
///   campaign having had an actor however long its claims take (the default is 5 min);
/// - the kit's one API key may make as many requests as the server can answer: the kit
///   measures capacity, and the per-key limit (5,000/s by default) would measure itself.
pub const SETTINGS: &str = "[pages]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\n\
                            [engine]\nactor_idle = \"2h\"\n\n\
                            [api]\nrequests_per_key_per_second = 10000000\n";

fn write_config(scratch: &Path) -> anyhow::Result<PathBuf> {
    let path = scratch.join("ecoupon.toml");
    std::fs::write(&path, SETTINGS)?;
    Ok(path)
}

/// `ecoupon tenant create --json`: the API key of a new merchant.
pub async fn create_tenant(db: &Database, scratch: &Path) -> anyhow::Result<String> {
    let config = write_config(scratch)?;
    let run = ecoupon(db, scratch, &config)
        .args(["tenant", "create", "--name", "Load test", "--json"])
        .args(["--owner-email", "kit@loadtest.example"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .context("`ecoupon tenant create` did not finish within 120 s")??;
    if !out.status.success() {
        bail!(
            "`ecoupon tenant create` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tenant: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .context("no JSON line from `ecoupon tenant create --json`")?;
    tenant["api_key"]
        .as_str()
        .map(str::to_string)
        .context("no api_key in `ecoupon tenant create --json`")
}

impl Server {
    /// Starts `ecoupon serve` on a free port and waits until `/livez` answers.
    pub async fn start(db: &Database, scratch: &Path, log: PathBuf) -> anyhow::Result<Server> {
        let config = write_config(scratch)?;
        let port = free_port()?;
        let file = std::fs::File::create(&log)?;
        let child = ecoupon(db, scratch, &config)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--no-demo")
            .arg("--data-dir")
            .arg(scratch.join("data"))
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {BINARY}"))?;
        let pid = child.id().context("ecoupon exited at once")?;
        let mut server = Server {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "ecoupon exited ({status}) while starting; its log ({}):\n{}",
                    server.log.display(),
                    server.log_tail(20)
                );
            }
            let live = http
                .get(format!("{}/livez", server.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if live.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "ecoupon did not answer /livez within 90 s; its log ({}):\n{}",
                    server.log.display(),
                    server.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM (a graceful stop returns leased stock), SIGKILL after 30 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        use nix::sys::signal::{kill, Signal};
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = kill(pid, Signal::SIGTERM);
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("ecoupon did not stop within 30 s of SIGTERM; killed")
            }
        }
    }
}
