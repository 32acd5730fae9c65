use crate::helpers::{empty_database, error_code, spawn_app, spawn_app_on, test_settings};

#[actix_web::test]
async fn livez_and_readyz_answer_ok() {
    let app = spawn_app().await;
    let live = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().contains_key("x-request-id"));
}

#[actix_web::test]
async fn readyz_reports_pending_migrations() {
    let app = spawn_app().await;
    let client = app.db.client().await;
    client
        .execute("DELETE FROM refinery_schema_history", &[])
        .await
        .unwrap();
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "not_ready");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("migrations"),
        "{body}"
    );
}

#[actix_web::test]
async fn two_nodes_migrating_one_empty_database_at_once_both_start() {
    let db = empty_database().await;
    let (a, b) = tokio::join!(
        spawn_app_on(db.clone(), test_settings),
        spawn_app_on(db.clone(), test_settings)
    );
    for app in [&a, &b] {
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let client = db.client().await;
    // Versions need not be contiguous (V10 is reserved for the engine work): the newest
    // applied is this build's newest, and each was applied once.
    let (newest, applied, distinct): (i32, i64, i64) = {
        let row = client
            .query_one(
                "SELECT max(version), count(*), count(DISTINCT version) FROM refinery_schema_history",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(newest, ecoupon::store::latest_migration());
    assert_eq!(applied, distinct);
}

#[actix_web::test]
async fn unknown_routes_get_json_or_html_errors() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "not_found");

    let res = app
        .client
        .get(app.url("/no/such/page"))
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("not_found"), "{html}");

    let res = app.client.delete(app.url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "method_not_allowed");
}
