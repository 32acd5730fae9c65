//! Backups through the binary: backup, change, restore into a new database and compare;
//! nine backups leave seven; a damaged file is refused; the drill; the private cluster;
//! and the daily backup inside `serve`, done by one node of two.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    empty_database, eventually, fresh_database, require_tool, scratch_dir, spawn_app, spawn_app_on,
    test_settings, TestApp,
};

pub fn ecoupon(database_url: Option<&str>, data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecoupon"));
    cmd.env_remove("DATABASE_URL")
        .env("ECOUPON_LOG__FORMAT", "json")
        .env("ECOUPON_LOG__LEVEL", "warn")
        .env("ECOUPON_DATA_DIR", data_dir);
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

/// Runs and returns stdout, failing the test with stderr when the command fails.
pub fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {stderr}\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its one-line stderr.
pub fn fail(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should have failed");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    errors[0].to_string()
}

/// A digest of a table's whole contents, to compare databases.
async fn contents(client: &tokio_postgres::Client, table: &str) -> String {
    let sql = format!(
        "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"
    );
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

async fn sale(app: &TestApp, consumers: std::ops::Range<u32>) -> String {
    let id = app
        .create_campaign_id(json!({"name": "Backup sale", "total_limit": 1000, "status": "active"}))
        .await;
    for i in consumers {
        let (status, body) = app.claim(&id, &format!("member-{i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    id
}

fn backup(app: &TestApp, dir: &Path, data: &Path) -> PathBuf {
    let out = succeed(
        ecoupon(Some(&app.db.url), data)
            .arg("backup")
            .arg("--dir")
            .arg(dir),
    );
    let path = PathBuf::from(out.trim());
    assert!(path.is_file(), "{out}");
    path
}

#[actix_web::test]
async fn backup_then_restore_into_a_new_database_gives_the_same_contents() {
    require_tool("pg_dump");
    let app = spawn_app().await;
    let (dir, data) = (scratch_dir("backups"), scratch_dir("data"));
    sale(&app, 0..25).await;
    let source = app.db.client().await;
    let before = [
        contents(&source, "coupons").await,
        contents(&source, "campaigns").await,
        contents(&source, "tenants").await,
    ];
    let file = backup(&app, &dir, &data);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}.json", file.display())).unwrap())
            .unwrap();
    assert_eq!(manifest["tables"]["coupons"], 25, "{manifest}");
    assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);

    // Change data after the backup: the restore must show the backup's state.
    sale(&app, 100..110).await;
    let target = empty_database().await;
    let out = succeed(
        ecoupon(None, &data)
            .arg("restore")
            .arg(&file)
            .arg("--into")
            .arg(&target.url),
    );
    assert!(out.contains("restored"), "{out}");
    let restored = target.client().await;
    let after = [
        contents(&restored, "coupons").await,
        contents(&restored, "campaigns").await,
        contents(&restored, "tenants").await,
    ];
    assert_eq!(before, after);
    let n: i64 = restored
        .query_one("SELECT count(*) FROM coupons", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 25);

    // A database that already has tables is not overwritten.
    let line = fail(
        ecoupon(None, &data)
            .arg("restore")
            .arg(&file)
            .arg("--into")
            .arg(&target.url),
    );
    assert!(line.contains("already has tables"), "{line}");
}

#[actix_web::test]
async fn nine_backups_keep_seven_and_a_damaged_file_is_refused() {
    require_tool("pg_dump");
    let app = spawn_app().await;
    let (dir, data) = (scratch_dir("backups"), scratch_dir("data"));
    let mut written = Vec::new();
    for _ in 0..9 {
        written.push(backup(&app, &dir, &data));
    }
    let dumps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dump"))
        .collect();
    assert_eq!(dumps.len(), 7, "{dumps:?}");
    for gone in &written[..2] {
        assert!(
            !gone.exists(),
            "the oldest should be gone: {}",
            gone.display()
        );
    }
    for kept in &written[2..] {
        assert!(kept.exists() && PathBuf::from(format!("{}.json", kept.display())).exists());
    }

    // One byte changed in the middle of the newest: refused, nothing restored.
    let newest = written.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(newest, bytes).unwrap();
    let target = empty_database().await;
    let line = fail(
        ecoupon(None, &data)
            .arg("restore")
            .arg(newest)
            .arg("--into")
            .arg(&target.url),
    );
    assert!(line.contains("checksum mismatch"), "{line}");
    let tables: i64 = target
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);

    // A file without its manifest is refused too.
    std::fs::remove_file(format!("{}.json", written[3].display())).unwrap();
    let line = fail(
        ecoupon(None, &data)
            .arg("restore")
            .arg(&written[3])
            .arg("--into")
            .arg(&target.url),
    );
    assert!(line.contains("manifest"), "{line}");
}

#[actix_web::test]
async fn the_drill_restores_the_newest_backup_and_reports_equal_counts() {
    require_tool("pg_restore");
    let app = spawn_app().await;
    let (dir, data) = (scratch_dir("backups"), scratch_dir("data"));
    sale(&app, 0..12).await;
    backup(&app, &dir, &data);
    let out = succeed(
        ecoupon(Some(&app.db.url), &data)
            .args(["backup", "drill", "--dir"])
            .arg(&dir),
    );
    assert!(out.contains("restore drill passed"), "{out}");
    let coupons = out.lines().find(|l| l.starts_with("coupons ")).unwrap();
    assert_eq!(
        coupons.split_whitespace().collect::<Vec<_>>(),
        ["coupons", "12", "12"],
        "{out}"
    );
    assert!(out.contains("audit chain intact"), "{out}");
    // The scratch database is gone again.
    let left: i64 = app
        .db_value(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ecoupon_drill_%'",
            &[],
        )
        .await;
    assert_eq!(left, 0);

    // With nothing to drill with, one clear line.
    let empty = scratch_dir("backups");
    let line = fail(
        ecoupon(Some(&app.db.url), &data)
            .args(["backup", "drill", "--dir"])
            .arg(&empty),
    );
    assert!(line.contains("no backup"), "{line}");
}

#[actix_web::test]
async fn the_private_cluster_is_backed_up_the_same_way() {
    require_tool("pg_dump");
    let data = scratch_dir("data");
    // As `serve` would leave it: the private cluster with the schema in place.
    succeed(ecoupon(None, &data).arg("migrate"));
    let out = succeed(ecoupon(None, &data).arg("backup"));
    let file = PathBuf::from(out.trim());
    assert!(file.starts_with(data.join("backups")), "{out}");
    assert!(file.is_file());
    let out = succeed(ecoupon(None, &data).args(["backup", "drill"]));
    assert!(out.contains("restore drill passed"), "{out}");
}

#[actix_web::test]
async fn serve_backs_up_each_slot_once_across_two_nodes() {
    require_tool("pg_dump");
    let db = fresh_database().await;
    let dir = scratch_dir("backups");
    let tweak = |dir: PathBuf| {
        move |db: &crate::helpers::TestDatabase| {
            let mut s = test_settings(db);
            s.backup.dir = Some(dir.clone());
            s.backup.interval = Duration::from_secs(2);
            s.backup.keep = 3;
            s
        }
    };
    let a = spawn_app_on(db.clone(), tweak(dir.clone())).await;
    let _b = spawn_app_on(db.clone(), tweak(dir.clone())).await;
    let runs: i64 = eventually(
        Duration::from_secs(30),
        "three scheduled backups",
        async || {
            let n: i64 = a
                .db_value("SELECT count(*) FROM backup_runs WHERE ok", &[])
                .await;
            (n >= 3).then_some(n)
        },
    )
    .await;
    assert!(runs >= 3);
    // One row per slot (its primary key), never a failure, and the files rotated to 3.
    let failed: i64 = a
        .db_value("SELECT count(*) FROM backup_runs WHERE ok IS FALSE", &[])
        .await;
    assert_eq!(failed, 0);
    let dumps = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "dump")
        })
        .count();
    assert!(dumps <= 3, "{dumps}");
    let metrics = a
        .client
        .get(a.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ecoupon_backup_last_success_timestamp_seconds"),
        "{metrics}"
    );
}
