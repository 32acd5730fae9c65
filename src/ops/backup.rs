//! Backups: `pg_dump` in custom format with a SHA-256 manifest beside each file, the
//! newest N kept; restores that refuse a file whose checksum fails; and the drill, which
//! restores the newest backup into a scratch database and compares row counts per table
//! with those the source had in the dump's own snapshot.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pg_tools;
use super::progress::Progress;
use crate::store::backups::{self, DumpSnapshot};
use crate::store::Store;

const PREFIX: &str = "ecoupon-";
const EXTENSION: &str = "dump";
const MANIFEST_FORMAT: &str = "ecoupon-backup-v1";

/// Written next to each dump as `<file>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub created_at: DateTime<Utc>,
    pub database: String,
    pub server_version: String,
    /// Rows per table in the snapshot the dump was taken from.
    pub tables: BTreeMap<String, i64>,
}

pub struct BackupOutcome {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub removed: Vec<PathBuf>,
}

pub fn manifest_path(dump: &Path) -> PathBuf {
    let mut name = dump.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Dumps the database behind `store` into `dir`, writes the manifest, then keeps only the
/// newest `keep` backups there.
pub async fn backup(
    store: &Store,
    dir: &Path,
    keep: usize,
    progress: &Progress,
) -> anyhow::Result<BackupOutcome> {
    create_private_dir(dir)?;
    let config = store.connect_config();
    let database = config.get_dbname().unwrap_or("postgres").to_string();
    progress.note("counting rows in the dump's snapshot");
    let snapshot: DumpSnapshot = store
        .dump_snapshot()
        .await
        .map_err(|e| anyhow::anyhow!("backup: {}", crate::store::describe_pg_error(&e)))?;
    progress.set_total(snapshot.counts.len() as u64);
    let created_at = Utc::now();
    let name = format!(
        "{PREFIX}{}-{}.{EXTENSION}",
        safe_name(&database),
        created_at.format("%Y%m%dT%H%M%S%.3fZ")
    );
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let mut cmd = pg_tools::command("pg_dump", &config)?;
    cmd.arg("--format=custom")
        .arg("--verbose")
        .arg(format!("--snapshot={}", snapshot.id))
        .arg("--file")
        .arg(&partial);
    let dumped = pg_tools::run(cmd, |line| {
        if let Some(table) = line.split("dumping contents of table ").nth(1) {
            progress.step(format!("dumped {}", table.trim_matches('"')));
        }
    })
    .await;
    // The snapshot only had to live until pg_dump attached to it.
    let counts = snapshot.counts.clone();
    let server_version = snapshot.server_version.clone();
    let _ = snapshot.finish().await;
    if let Err(e) = dumped {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    progress.note("computing SHA-256");
    let (sha256, bytes) = file_sha256(&partial)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        file: name.clone(),
        sha256,
        bytes,
        created_at,
        database,
        server_version,
        tables: counts,
    };
    sync_file(&partial)?;
    std::fs::rename(&partial, &path).map_err(|e| io_error(&path, e))?;
    write_manifest(&manifest_path(&path), &manifest)?;
    let removed = rotate(dir, keep)?;
    Ok(BackupOutcome {
        path,
        manifest,
        removed,
    })
}

/// Backups in `dir`, newest first (names carry a sortable UTC time).
pub fn list(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, e)),
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stamp = name
                .strip_prefix(PREFIX)?
                .strip_suffix(&format!(".{EXTENSION}"))?
                .rsplit('-')
                .next()?
                .to_string();
            Some((stamp, e.path()))
        })
        .collect();
    found.sort();
    Ok(found.into_iter().rev().map(|(_, p)| p).collect())
}

/// Deletes all but the newest `keep` backups (each with its manifest).
pub fn rotate(dir: &Path, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for old in list(dir)?.into_iter().skip(keep) {
        std::fs::remove_file(&old).map_err(|e| io_error(&old, e))?;
        let _ = std::fs::remove_file(manifest_path(&old));
        removed.push(old);
    }
    Ok(removed)
}

/// The manifest beside `file`, after checking the file against its SHA-256.
pub fn checked_manifest(file: &Path) -> anyhow::Result<Manifest> {
    let manifest_file = manifest_path(file);
    let text = std::fs::read_to_string(&manifest_file).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot read its manifest {} ({e}); refusing a backup whose checksum cannot be checked",
            file.display(),
            manifest_file.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a backup manifest: {e}", manifest_file.display()))?;
    if manifest.format != MANIFEST_FORMAT {
        anyhow::bail!(
            "{}: unknown manifest format {:?}",
            manifest_file.display(),
            manifest.format
        );
    }
    let (sha256, bytes) = file_sha256(file)?;
    if sha256 != manifest.sha256 || bytes != manifest.bytes {
        anyhow::bail!(
            "{}: checksum mismatch (SHA-256 {sha256}, {bytes} bytes; the manifest says {}, {} bytes): the file is damaged, refusing to restore it",
            file.display(),
            manifest.sha256,
            manifest.bytes
        );
    }
    Ok(manifest)
}

/// Restores `file` into the (new or empty) database at `target`, creating it if absent.
pub async fn restore(
    file: &Path,
    target: &tokio_postgres::Config,
    progress: &Progress,
) -> anyhow::Result<Manifest> {
    progress.note("checking the SHA-256");
    let manifest = checked_manifest(file)?;
    progress.set_total(manifest.tables.len() as u64);
    let name = target
        .get_dbname()
        .ok_or_else(|| anyhow::anyhow!("--into: the URL names no database"))?
        .to_string();
    let mut server = target.clone();
    server.dbname("postgres");
    crate::store::ensure_database(&server, &name, std::time::Duration::from_secs(10))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "--into: cannot {} on the target server: {}",
                e.action,
                crate::store::describe_pg_error(&e.error.into())
            )
        })?;
    let empty = backups::has_no_tables(target)
        .await
        .map_err(|e| anyhow::anyhow!("--into: {}", crate::store::describe_pg_error(&e)))?;
    if !empty {
        anyhow::bail!(
            "--into: database {name} already has tables; restore into a new or empty database"
        );
    }
    let mut cmd = pg_tools::command("pg_restore", target)?;
    cmd.args([
        "--verbose",
        "--exit-on-error",
        "--single-transaction",
        "--no-owner",
        "--no-privileges",
    ])
    .arg("--dbname")
    .arg(&name)
    .arg(file);
    pg_tools::run(cmd, |line| {
        if let Some(table) = line.split("processing data for table ").nth(1) {
            progress.step(format!("restored {}", table.trim_matches('"')));
        }
    })
    .await?;
    Ok(manifest)
}

/// One table's line in a drill report.
#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub expected: Option<i64>,
    pub restored: Option<i64>,
}

impl TableCheck {
    pub fn ok(&self) -> bool {
        self.expected == self.restored
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub file: PathBuf,
    pub backup_created_at: DateTime<Utc>,
    pub scratch_database: String,
    pub tables: Vec<TableCheck>,
    /// `audit verify` on the restored copy.
    pub audit_chain: Result<String, String>,
}

impl DrillReport {
    pub fn ok(&self) -> bool {
        self.tables.iter().all(TableCheck::ok) && self.audit_chain.is_ok()
    }
}

/// Restores the newest backup in `dir` into a scratch database next to the source,
/// compares row counts with the manifest, verifies the audit chain there, and drops it.
pub async fn drill(
    store: &Store,
    settings: &crate::config::Settings,
    dir: &Path,
    progress: &Progress,
) -> anyhow::Result<DrillReport> {
    let newest = list(dir)?.into_iter().next().ok_or_else(|| {
        anyhow::anyhow!(
            "no backup in {} to drill with: run `ecoupon backup` first",
            dir.display()
        )
    })?;
    let source = store.connect_config();
    let scratch = format!("ecoupon_drill_{}", Utc::now().format("%Y%m%d%H%M%S%3f"));
    let mut target = source.clone();
    target.dbname(&scratch);
    let mut server = source.clone();
    server.dbname("postgres");
    let result = drill_into(&newest, &target, settings, progress).await;
    if let Err(e) = backups::drop_database(&server, &scratch).await {
        tracing::warn!(database = %scratch, error = %crate::store::describe_pg_error(&e), "the drill's scratch database was not dropped");
    }
    let (manifest, restored, audit_chain) = result?;
    let mut names: Vec<&String> = manifest.tables.keys().chain(restored.keys()).collect();
    names.sort();
    names.dedup();
    let tables = names
        .into_iter()
        .map(|t| TableCheck {
            table: t.clone(),
            expected: manifest.tables.get(t).copied(),
            restored: restored.get(t).copied(),
        })
        .collect();
    Ok(DrillReport {
        file: newest,
        backup_created_at: manifest.created_at,
        scratch_database: scratch,
        tables,
        audit_chain,
    })
}

type Drilled = (Manifest, BTreeMap<String, i64>, Result<String, String>);

async fn drill_into(
    file: &Path,
    target: &tokio_postgres::Config,
    settings: &crate::config::Settings,
    progress: &Progress,
) -> anyhow::Result<Drilled> {
    let manifest = restore(file, target, progress).await?;
    progress.note("counting restored rows");
    let restored = backups::table_counts(target)
        .await
        .map_err(|e| anyhow::anyhow!("drill: {}", crate::store::describe_pg_error(&e)))?;
    let copy = Store::connect(target.clone(), &settings.database).await?;
    let secrets = crate::config::Secrets::resolve(&settings.secrets, &settings.data_dir)?;
    let audit =
        match super::audit::verify(&copy, &super::keys::InstallationKey::new(&secrets)).await {
            Ok(report) if report.intact() => Ok(report.summary()),
            Ok(report) => Err(report.summary()),
            Err(e) => Err(e.to_string()),
        };
    copy.close();
    Ok((manifest, restored, audit))
}

fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error(dir, e))
}

pub fn file_sha256(path: &Path) -> anyhow::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(path, e))
}

fn write_manifest(path: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.partial");
    let text = serde_json::to_string_pretty(manifest)? + "\n";
    std::fs::write(&tmp, text).map_err(|e| io_error(&tmp, e))?;
    sync_file(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("{}: {e}", path.display())
}
