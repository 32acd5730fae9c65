//! The HTTP API against its own OpenAPI document, with schemathesis (PyPI; installed by
//! `.ci/install-deps` into `~/.cache/ecoupon/schemathesis`): the real server, requests
//! generated from `/api/v1/openapi.json` (valid and invalid ones), and two checks on every
//! answer: no 5xx, and the answer matches the document.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{fresh_database, missing_dependency, spawn_app_on, test_settings};

/// `st` from `.ci/install-deps`' virtual environment, `$ECOUPON_SCHEMATHESIS`, or PATH.
fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .map(|home| home.join(".cache/ecoupon/schemathesis/bin/st"));
    let from_env = std::env::var_os("ECOUPON_SCHEMATHESIS").map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("st"));
    from_env
        .into_iter()
        .chain(venv)
        .chain(on_path)
        .find(|p| p.is_file())
        .unwrap_or_else(|| missing_dependency("schemathesis (st) is not installed"))
}

#[actix_web::test]
async fn the_api_answers_as_its_openapi_document_says_and_never_with_5xx() {
    let st = schemathesis();
    // Its negative cases send made-up keys: past the per-address limit on failed
    // authentications, even the good key would get 429 and the operations' own logic (a
    // campaign's PATCH, say) would go untested.
    let app = spawn_app_on(fresh_database().await, |db| {
        let mut settings = test_settings(db);
        settings.api.auth_failures_per_ip_per_minute = 1_000_000;
        settings
    })
    .await;
    // Something to find: generated ids mostly miss, but list and show calls see a record.
    let campaign = app
        .create_campaign(json!({"name": "Schema sale", "total_limit": 50, "status": "active"}))
        .await;
    let (status, _) = app.claim(campaign["id"].as_str().unwrap(), "someone").await;
    assert_eq!(status, 201);

    let res = app.get("/api/v1/openapi.json").send().await.unwrap();
    assert_eq!(res.status(), 200, "the API serves its document");

    let report = crate::helpers::scratch_dir("schemathesis");
    let run = tokio::process::Command::new(&st)
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args(["--url", &app.address])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        // Revoking its own key (the stateful phase links GET /keys to DELETE /keys/{id})
        // would leave every later operation untested behind 401.
        .args(["--exclude-operation-id", "revokeKey"])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", app.api_key),
        ])
        // Bounded and repeatable: a fixed seed and a fixed number of cases per operation.
        .args(["--max-examples", "30", "--seed", "1414", "--workers", "1"])
        .args(["--request-timeout", "30"])
        .arg("--no-color")
        .current_dir(&report)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(900), run)
        .await
        .expect("schemathesis finishes within 15 minutes")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    // It really exercised the API (a document with no operations would pass vacuously).
    assert!(
        stdout.contains("passed") && !stdout.contains("No operations"),
        "{stdout}"
    );
    app.stop().await;
}
