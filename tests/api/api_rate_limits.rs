//! Per-key rate limits: RateLimit-* headers on every keyed answer, 429 `rate_limited` with
//! Retry-After past the limit, and another key unaffected.

use crate::helpers::{
    error_code, fresh_database, key_with_scopes, spawn_app_on, test_settings, OpenApiCheck,
};

#[actix_web::test]
async fn a_key_over_its_rate_gets_429_with_ratelimit_headers() {
    let app = spawn_app_on(fresh_database().await, |db| {
        let mut s = test_settings(db);
        s.api.requests_per_key_per_second = 1;
        s
    })
    .await;
    let header = |res: &reqwest::Response, name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let res = app.get("/api/v1/tenant").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "RateLimit-Limit").as_deref(), Some("2"));
    assert_eq!(header(&res, "RateLimit-Remaining").as_deref(), Some("1"));
    assert!(header(&res, "RateLimit-Reset").is_some());

    let mut oa = OpenApiCheck::default();
    let mut limited = None;
    for _ in 0..10 {
        let res = app.get("/api/v1/tenant").send().await.unwrap();
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("the key is limited within 10 quick requests");
    let retry: u64 = header(&res, "Retry-After").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(header(&res, "RateLimit-Limit").as_deref(), Some("2"));
    assert_eq!(header(&res, "RateLimit-Remaining").as_deref(), Some("0"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "rate_limited");
    oa.record("get", "/api/v1/tenant", 429, &body);

    // Another key of the same merchant has its own budget.
    let other = key_with_scopes(&app, &["campaigns:read"]).await;
    let res = app
        .client
        .get(app.url("/api/v1/tenant"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    oa.check(&app).await;
}
