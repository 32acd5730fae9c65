//! Long CLI work off a terminal (as under systemd or cron): progress comes as plain log
//! lines, never a bar's carriage returns; a failure is one `error:` line and a non-zero
//! exit.

use crate::helpers::{scratch_dir, spawn_app};
use crate::ops_backup::{ecoupon, fail};

#[actix_web::test]
async fn progress_is_log_lines_off_a_terminal_and_failures_are_one_line() {
    let app = spawn_app().await;
    let data = scratch_dir("data");
    let dir = data.join("backups");
    let out = ecoupon(Some(&app.db.url), &data)
        .env("ECOUPON_LOG__LEVEL", "info")
        .args(["backup", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("\"task\":\"backup\""))
        .collect();
    assert!(!progress.is_empty(), "{stderr}");
    assert!(
        progress
            .iter()
            .all(|l| l.starts_with('{') && l.ends_with('}')),
        "{progress:?}"
    );
    assert!(!stderr.contains('\r'), "no progress bar off a terminal");
    let written = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(std::path::Path::new(&written).is_file(), "{written}");

    // Each long command, failing: one clear line naming the problem.
    let unreachable = "postgres://postgres@127.0.0.1:1/nothing";
    let line = fail(
        ecoupon(Some(unreachable), &data)
            .args(["backup", "--dir"])
            .arg(&dir),
    );
    assert!(line.len() > "error: ".len(), "{line}");
    let line = fail(
        ecoupon(Some(unreachable), &data)
            .args(["backup", "drill", "--dir"])
            .arg(&dir),
    );
    assert!(line.len() > "error: ".len(), "{line}");
    let line = fail(
        ecoupon(None, &data)
            .arg("restore")
            .arg(data.join("no-such-backup.dump"))
            .args(["--into", &app.db.url]),
    );
    assert!(line.contains("no-such-backup.dump"), "{line}");
    let line = fail(ecoupon(Some(&app.db.url), &data).args(["tenant", "export", "no-such-tenant"]));
    assert!(line.contains("no-such-tenant"), "{line}");
    let line = fail(ecoupon(Some(&app.db.url), &data).args([
        "tenant",
        "purge",
        "no-such-tenant",
        "--confirm",
        "no-such-tenant",
    ]));
    assert!(line.contains("no-such-tenant"), "{line}");
}
