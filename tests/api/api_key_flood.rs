//! A flood of made-up API keys: remembered as unknown (no second query for the same key),
//! an address over its failure budget gets 429 `too_many_auth_failures` without a query,
//! unknown-key queries from everywhere are capped, and good keys keep working throughout.
//! "Without a query" is shown by holding an exclusive lock on `api_keys`: an answer that
//! comes back meanwhile did not touch the table.

use std::time::Duration;

use ecoupon::domain::api_key::NewApiKey;
use serde_json::json;

use crate::helpers::{
    error_code, eventually, fresh_database, spawn_app_on, test_settings, TestApp,
};

fn made_up() -> String {
    NewApiKey::generate().plaintext
}

/// (status, error code, Retry-After) of `GET /api/v1/tenant` with `key`, failing if the
/// answer takes longer than 10 s (it would be waiting on the locked table).
async fn ask(app: &TestApp, key: &str) -> (u16, String, Option<String>) {
    let res = app
        .client
        .get(app.url("/api/v1/tenant"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("answered without waiting for the api_keys table");
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: serde_json::Value = res.json().await.unwrap_or(json!({}));
    (status, error_code(&body).to_string(), retry)
}

/// Runs `during` while another transaction holds `api_keys` exclusively.
async fn with_keys_locked<F: std::future::Future<Output = ()>>(app: &TestApp, during: F) {
    let mut client = app.db.client().await;
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    during.await;
    tx.commit().await.unwrap();
}

#[actix_web::test]
async fn an_address_over_its_failure_budget_gets_429_without_a_query_and_good_keys_still_work() {
    let app = spawn_app_on(fresh_database().await, |db| {
        let mut s = test_settings(db);
        s.api.auth_failures_per_ip_per_minute = 5;
        s
    })
    .await;
    assert_eq!(ask(&app, &app.api_key).await.0, 200);

    for _ in 0..5 {
        let (status, code, _) = ask(&app, &made_up()).await;
        assert_eq!((status, code.as_str()), (401, "invalid_api_key"));
    }
    let (status, code, retry) = ask(&app, &made_up()).await;
    assert_eq!((status, code.as_str()), (429, "too_many_auth_failures"));
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Malformed keys count too, and are refused the same way.
    assert_eq!(ask(&app, "eck_short").await.0, 429);

    with_keys_locked(&app, async {
        for _ in 0..20 {
            let (status, code, _) = ask(&app, &made_up()).await;
            assert_eq!((status, code.as_str()), (429, "too_many_auth_failures"));
        }
    })
    .await;
    // A till behind the same address with a good key is not locked out.
    assert_eq!(ask(&app, &app.api_key).await.0, 200);
}

#[actix_web::test]
async fn unknown_keys_are_remembered_and_their_lookups_capped() {
    let app = spawn_app_on(fresh_database().await, |db| {
        let mut s = test_settings(db);
        s.api.auth_failures_per_ip_per_minute = 10_000;
        s.api.unknown_key_lookups_per_second = 1;
        s
    })
    .await;
    assert_eq!(ask(&app, &app.api_key).await.0, 200);
    let once = made_up();
    let (status, _, _) = ask(&app, &once).await;
    assert!(status == 401 || status == 429, "{status}");

    // Distinct made-up keys soon find the cap (1 a second, bursts of 2; two are spent).
    let mut capped = None;
    for _ in 0..10 {
        let (status, code, retry) = ask(&app, &made_up()).await;
        if status == 429 {
            capped = Some((code, retry));
            break;
        }
        assert_eq!(status, 401);
    }
    let (code, retry) = capped.expect("unknown-key lookups are capped");
    assert_eq!(code, "too_many_auth_failures");
    assert!(retry.is_some());

    // Once the cap lets a lookup through again, a made-up key is looked up once and then
    // remembered as unknown: asked again, it is refused without the table.
    let known = made_up();
    eventually(
        Duration::from_secs(10),
        "a lookup is allowed again",
        async || (ask(&app, &known).await.0 == 401).then_some(()),
    )
    .await;
    with_keys_locked(&app, async {
        for _ in 0..5 {
            let (status, code, _) = ask(&app, &known).await;
            assert_eq!((status, code.as_str()), (401, "invalid_api_key"));
        }
    })
    .await;
    assert_eq!(ask(&app, &app.api_key).await.0, 200);
}
