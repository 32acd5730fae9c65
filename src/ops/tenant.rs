//! Termination: `tenant export` (one tar.gz: a CSV per table, the uploaded images, and a
//! manifest with row counts and SHA-256s) and `tenant purge` (every row in one
//! transaction, then a signed erasure certificate).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uuid::Uuid;

use super::certificate::Certificate;
use super::keys::InstallationKey;
use super::progress::Progress;
use crate::store::Store;

#[derive(Debug, Serialize)]
pub struct ExportManifest {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub exported_at: String,
    /// Per file in the archive: rows (CSV) and SHA-256.
    pub files: BTreeMap<String, ExportedFile>,
    pub withheld: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ExportedFile {
    pub rows: Option<i64>,
    pub bytes: u64,
    pub sha256: String,
}

pub struct ExportOutcome {
    pub path: PathBuf,
    pub manifest: ExportManifest,
}

/// Writes the tenant's archive to `out` (a `.partial` file renamed at the end).
pub async fn export(
    store: &Store,
    tenant: Uuid,
    out: &Path,
    progress: &Progress,
) -> anyhow::Result<ExportOutcome> {
    let name = store
        .tenant_name(tenant)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no tenant {tenant}"))?;
    let tables = store.tenant_tables().await?;
    progress.set_total(tables.len() as u64 + 1);
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .map_err(|e| anyhow::anyhow!("{}: {e}", partial.display()))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut archive = tar::Builder::new(gz);
    let root = format!("ecoupon-export-{tenant}");
    let mut files = BTreeMap::new();
    let scratch = tempfile_in(out)?;
    for table in &tables {
        let rows = store.tenant_rows(table, tenant).await?;
        let mut csv = std::fs::File::create(&scratch)?;
        store
            .copy_tenant_csv(table, tenant, |chunk| csv.write_all(chunk))
            .await?;
        csv.sync_all()?;
        drop(csv);
        let entry = format!("tables/{}.csv", table.name);
        let (sha256, bytes) = super::backup::file_sha256(&scratch)?;
        archive.append_path_with_name(&scratch, format!("{root}/{entry}"))?;
        files.insert(
            entry,
            ExportedFile {
                rows: Some(rows),
                bytes,
                sha256,
            },
        );
        progress.step(format!("{} ({rows} rows)", table.name));
    }
    let _ = std::fs::remove_file(&scratch);
    // One image in memory at a time, straight into the archive.
    let images = store
        .tenant_images(tenant, |id, content_type, bytes| {
            let ext = match content_type {
                "image/png" => "png",
                "image/jpeg" => "jpg",
                "image/webp" => "webp",
                _ => "bin",
            };
            let entry = format!("images/{id}.{ext}");
            append_bytes(&mut archive, &format!("{root}/{entry}"), bytes)
                .map_err(std::io::Error::other)?;
            files.insert(
                entry,
                ExportedFile {
                    rows: None,
                    bytes: bytes.len() as u64,
                    sha256: hex::encode(crate::domain::token::sha256(bytes)),
                },
            );
            Ok(())
        })
        .await?;
    progress.step(format!("{images} images"));
    let manifest = ExportManifest {
        tenant_id: tenant,
        tenant_name: name,
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        files,
        withheld: "credentials (password and key hashes, TOTP secrets, session and invitation tokens) and per-coupon check-code keys",
    };
    let text = serde_json::to_vec_pretty(&manifest)?;
    append_bytes(&mut archive, &format!("{root}/manifest.json"), &text)?;
    let gz = archive.into_inner()?;
    gz.finish()?.sync_all()?;
    std::fs::rename(&partial, out).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    Ok(ExportOutcome {
        path: out.to_path_buf(),
        manifest,
    })
}

fn append_bytes<W: Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(chrono::Utc::now().timestamp() as u64);
    header.set_cksum();
    archive.append_data(&mut header, path, bytes)?;
    Ok(())
}

fn tempfile_in(out: &Path) -> anyhow::Result<PathBuf> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(dir.join(format!(".ecoupon-export-{}.csv", Uuid::new_v4().simple())))
}

pub struct Purged {
    pub certificate: Certificate,
    pub json: PathBuf,
    pub html: PathBuf,
}

/// Purges the tenant (after checking `confirm` is its exact name) and writes the
/// certificate into `dir`.
pub async fn purge(
    store: &Store,
    tenant: Uuid,
    confirm: &str,
    operator: &str,
    installation: &str,
    key: &InstallationKey,
    dir: &Path,
) -> anyhow::Result<Purged> {
    let name = store
        .tenant_name(tenant)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no tenant {tenant}"))?;
    if name != confirm {
        anyhow::bail!("--confirm: {confirm:?} is not the tenant's name; give its exact name ({name:?}) to purge it");
    }
    let outcome = store
        .purge_tenant(tenant, operator)
        .await
        .map_err(|e| anyhow::anyhow!("purge: {}", crate::store::describe_pg_error(&e)))?
        .ok_or_else(|| anyhow::anyhow!("there is no tenant {tenant}"))?;
    let certificate = Certificate::issue(tenant, &outcome, operator, installation, key);
    let (json, html) = certificate.write(dir)?;
    Ok(Purged {
        certificate,
        json,
        html,
    })
}
