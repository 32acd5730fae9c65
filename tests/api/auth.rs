use crate::helpers::spawn_app;

async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.expect("JSON error body");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
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
    assert_eq!(error_code(res).await, (401, "missing_api_key".into()));

    for header in ["Basic abc", "Bearer", "", "Bearer\u{7f}x"] {
        let req = app
            .client
            .get(&url)
            .header("Authorization", header.as_bytes());
        let Ok(res) = req.send().await else { continue }; // reqwest refuses some bytes itself
        let (status, code) = error_code(res).await;
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
    assert_eq!(error_code(res).await, (401, "invalid_api_key".into()));

    let client = app.db.client().await;
    client
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    let res = app.get("/api/v1/tenant").send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_api_key".into()));
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
    assert_eq!(
        error_code(res).await,
        (401, "malformed_authorization".into())
    );
}

#[actix_web::test]
async fn a_revoked_key_stops_working_within_a_second_even_while_in_use() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/api/v1/tenant").send().await.unwrap().status(),
        200
    );
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    tokio::time::sleep(
        ecoupon::web::auth::ApiKeyCache::FRESH + std::time::Duration::from_millis(100),
    )
    .await;
    let res = app.get("/api/v1/tenant").send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_api_key".into()));
}
