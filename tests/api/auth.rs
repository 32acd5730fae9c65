use std::time::Duration;

use crate::helpers::{error_code, eventually, spawn_app, TestApp};

/// (status, error code) of a refusal.
async fn refusal(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.expect("JSON error body");
    (status, error_code(&body).to_string())
}

/// Revokes every API key of the app's tenant, straight in the database.
async fn revoke_keys(app: &TestApp) {
    app.db
        .client()
        .await
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
}

#[actix_web::test]
async fn a_valid_key_identifies_its_tenant() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/tenant").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tenant"]["id"], app.tenant_id.to_string());
    assert!(body["tenant"]["name"]
        .as_str()
        .unwrap()
        .starts_with("Test "));

    let client = app.db.client().await;
    let used: Option<chrono::DateTime<chrono::Utc>> = client
        .query_one(
            "SELECT last_used_at FROM api_keys WHERE tenant_id = $1",
            &[&app.tenant_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(used.is_some(), "last_used_at is recorded");
}

#[actix_web::test]
async fn missing_malformed_unknown_and_revoked_keys_get_401() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/tenant");

    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(refusal(res).await, (401, "missing_api_key".into()));

    for header in ["Basic abc", "Bearer", "", "Bearer\u{7f}x"] {
        let req = app
            .client
            .get(&url)
            .header("Authorization", header.as_bytes());
        let Ok(res) = req.send().await else { continue }; // reqwest refuses some bytes itself
        let (status, code) = refusal(res).await;
        assert_eq!(status, 401, "{header:?}");
        assert!(
            code == "malformed_authorization" || code == "invalid_api_key",
            "{header:?}: {code}"
        );
    }

    let res = app
        .client
        .get(&url)
        .bearer_auth("eck_abcdefgh_abcdefghabcdefghabcdefghabcdefgh")
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, (401, "invalid_api_key".into()));

    revoke_keys(&app).await;
    let res = app.get("/api/v1/tenant").send().await.unwrap();
    assert_eq!(refusal(res).await, (401, "invalid_api_key".into()));
}

#[actix_web::test]
async fn non_utf8_authorization_is_a_401_not_a_500() {
    let app = spawn_app().await;
    let value = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    let res = app
        .client
        .get(app.url("/api/v1/tenant"))
        .header("Authorization", value)
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, (401, "malformed_authorization".into()));
}

#[actix_web::test]
async fn a_revoked_key_stops_working_within_a_second_even_while_in_use() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/api/v1/tenant").send().await.unwrap().status(),
        200
    );
    revoke_keys(&app).await;
    // A node may go on trusting a key it used for up to ApiKeyCache::FRESH; keep using it
    // until it is refused, which must happen within a few seconds.
    let res = eventually(
        ecoupon::web::auth::ApiKeyCache::FRESH + Duration::from_secs(2),
        "the revoked key is refused",
        async || {
            let res = app.get("/api/v1/tenant").send().await.unwrap();
            (res.status() != 200).then_some(res)
        },
    )
    .await;
    assert_eq!(refusal(res).await, (401, "invalid_api_key".into()));
}
