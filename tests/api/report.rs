//! `ecoupon report monthly` as operators run it: flags checked first, each problem naming
//! its flag; without an answer from Prometheus the report still prints, availability
//! "unknown" with the reason.

use crate::helpers::spawn_app;
use crate::metrics::small_sale;

fn report(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ecoupon"));
    cmd.env_remove("DATABASE_URL")
        .env("ECOUPON_LOG__FORMAT", "json")
        .env("ECOUPON_LOG__LEVEL", "warn")
        .args(["report", "monthly"])
        .args(args);
    cmd
}

#[actix_web::test]
async fn bad_flags_fail_with_one_line_naming_the_flag() {
    for (args, flag) in [
        (vec!["--month", "2026-13"], "--month"),
        (vec!["--month", "November"], "--month"),
        (vec!["--month", "2099-01"], "--month"),
        (vec!["--month", "2026-11", "--format", "xml"], "--format"),
        (vec!["--month", "2026-11", "--tenant", "nobody"], "--tenant"),
    ] {
        let out = report(&args).output().await.unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            stderr.starts_with(&format!("error: {flag}: ")),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[actix_web::test]
async fn without_prometheus_availability_is_unknown_with_the_reason() {
    let app = spawn_app().await;
    small_sale(&app).await;
    let month = ecoupon::ops::report::month_of(chrono::Utc::now()).to_string();

    let out = report(&["--month", &month, "--format", "json"])
        .env("DATABASE_URL", &app.db.url)
        .env("ECOUPON_REPORT__PROMETHEUS_URL", "http://127.0.0.1:1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(json["slo"]["availability"].is_null(), "{json}");
    let reason = json["slo"]["unknown_reason"].as_str().unwrap();
    assert!(
        reason.contains("http://127.0.0.1:1") && reason.contains("did not answer"),
        "{reason}"
    );
    assert_eq!(json["coupons_issued"], 3);
    assert_eq!(json["redemptions"], 1);
    assert_eq!(json["month"], month);

    // Not configured at all: the same, saying so; markdown by default.
    let out = report(&["--month", &month])
        .env("DATABASE_URL", &app.db.url)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("- Availability: unknown (report.prometheus_url is not set"),
        "{text}"
    );
    assert!(text.contains(&format!("# ecoupon monthly report: {month}")));
    assert!(text.contains("coupons issued: 3, redemptions: 1"), "{text}");
}
