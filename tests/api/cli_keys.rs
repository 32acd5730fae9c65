//! `ecoupon key create|list|revoke`, and what a key's scopes let it do.

use std::process::Command;

use serde_json::json;

use crate::helpers::{error_code, spawn_app, TestApp};

pub(crate) fn ecoupon(app: &TestApp) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecoupon"));
    cmd.env("DATABASE_URL", &app.db.url)
        .env("ECOUPON_LOG__FORMAT", "json")
        .env("ECOUPON_LOG__LEVEL", "warn");
    cmd
}

pub(crate) fn run_ok(app: &TestApp, args: &[&str]) -> String {
    let out = ecoupon(app).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[actix_web::test]
async fn keys_are_created_listed_and_revoked_from_the_cli() {
    let app = spawn_app().await;
    let tenant = app.tenant_id.to_string();
    let out = run_ok(
        &app,
        &[
            "key",
            "create",
            "--tenant",
            &tenant,
            "--scope",
            "campaigns:read",
        ],
    );
    let key = field(&out, "api_key").to_string();
    let prefix = field(&out, "prefix").to_string();
    assert!(key.starts_with(&prefix), "{out}");
    assert!(!field(&out, "id").is_empty());

    // The new key reads, but may not claim: 403 naming the scope.
    let client = reqwest::Client::new();
    let c = app
        .create_campaign(json!({"name": "x", "total_limit": 5, "status": "active"}))
        .await;
    let id = c["id"].as_str().unwrap();
    let res = client
        .get(app.url(&format!("/api/v1/campaigns/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .post(app.url(&format!("/api/v1/campaigns/{id}/claims")))
        .bearer_auth(&key)
        .json(&json!({"consumer": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "insufficient_scope");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claims:write"),
        "{body}"
    );

    let list = run_ok(&app, &["key", "list", "--tenant", &tenant]);
    let line = list
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains("campaigns:read"), "{line}");
    assert!(line.ends_with("\t-"), "not revoked yet: {line}");
    assert!(!list.contains(&key), "the secret is never listed");

    let out = run_ok(&app, &["key", "revoke", &prefix]);
    assert!(out.contains("revoked"), "{out}");
    let list = run_ok(&app, &["key", "list"]);
    let line = list.lines().find(|l| l.starts_with(&prefix)).unwrap();
    assert!(!line.ends_with("\t-"), "revoked: {line}");
    // The key cache holds a key for at most a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = client
        .get(app.url(&format!("/api/v1/campaigns/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[actix_web::test]
async fn unknown_scopes_tenants_and_prefixes_are_one_clear_error() {
    let app = spawn_app().await;
    let tenant = app.tenant_id.to_string();
    let fail = |args: &[&str]| {
        let out = ecoupon(&app).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    };
    let stderr = fail(&[
        "key",
        "create",
        "--tenant",
        &tenant,
        "--scope",
        "claims:write",
        "--scope",
        "claims:delete",
    ]);
    assert!(stderr.contains("claims:delete"), "{stderr}");
    let stderr = fail(&[
        "key",
        "create",
        "--tenant",
        "nope",
        "--scope",
        "claims:write",
    ]);
    assert!(stderr.contains("--tenant"), "{stderr}");
    let other = uuid::Uuid::new_v4().to_string();
    let stderr = fail(&[
        "key",
        "create",
        "--tenant",
        &other,
        "--scope",
        "claims:write",
    ]);
    assert!(stderr.contains("no tenant"), "{stderr}");
    let stderr = fail(&["key", "revoke", "eck_NOTAKEY1"]);
    assert!(stderr.contains("eck_NOTAKEY1"), "{stderr}");
}
