//! `pg_dump` and `pg_restore`: found where the private cluster finds the machine's
//! PostgreSQL binaries (newest version first, so they can read any server it runs), given
//! the connection through libpq's environment variables (never the command line, where
//! `ps` would show a password).

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_postgres::config::{Host, SslMode};

/// Variables from the caller's environment that would redirect the tools elsewhere.
const PG_ENV: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGDATABASE",
    "PGOPTIONS",
    "PGSERVICE",
    "PGSSLMODE",
    "PGAPPNAME",
];

pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    if let Ok(bins) = crate::private_cluster::find_binaries() {
        let path = bins.bindir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{name} not found: install PostgreSQL's client programs (e.g. `apt-get install postgresql-client`)"
            )
        })
}

/// A command for `name` that connects to `config`.
pub fn command(name: &str, config: &tokio_postgres::Config) -> anyhow::Result<Command> {
    let mut cmd = Command::new(tool(name)?);
    for var in PG_ENV {
        cmd.env_remove(var);
    }
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(h) => h.clone(),
            Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    if !hosts.is_empty() {
        cmd.env("PGHOST", hosts.join(","));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        cmd.env("PGPORT", ports.join(","));
    }
    if let Some(user) = config.get_user() {
        cmd.env("PGUSER", user);
    }
    if let Some(password) = config.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    if let Some(db) = config.get_dbname() {
        cmd.env("PGDATABASE", db);
    }
    let ssl = match config.get_ssl_mode() {
        SslMode::Disable => "disable",
        SslMode::Require => "require",
        _ => "prefer",
    };
    cmd.env("PGSSLMODE", ssl)
        .env("PGAPPNAME", "ecoupon-ops")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    Ok(cmd)
}

/// Runs `cmd`, handing each line it writes to stderr (`--verbose` progress) to `line`.
/// Fails with the tool's last words when it exits non-zero.
pub async fn run(mut cmd: Command, mut line: impl FnMut(&str)) -> anyhow::Result<()> {
    let program = cmd
        .as_std()
        .get_program()
        .to_string_lossy()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {program}: {e}"))?;
    let mut errors: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let mut lines = BufReader::new(stderr).lines();
        while let Some(text) = lines.next_line().await? {
            line(&text);
            if !text.contains(": processing ") && !text.contains(": dumping ") {
                errors.push(text);
                if errors.len() > 5 {
                    errors.remove(0);
                }
            }
        }
    }
    let status = child.wait().await?;
    if !status.success() {
        let said: Vec<&str> = errors
            .iter()
            .map(|l| l.trim())
            .filter(|l| l.contains("error") || l.contains("FATAL"))
            .collect();
        let said = if said.is_empty() {
            errors
                .last()
                .map(String::as_str)
                .unwrap_or("no output")
                .to_string()
        } else {
            said.join("; ")
        };
        anyhow::bail!("{program} failed ({status}): {said}");
    }
    Ok(())
}
