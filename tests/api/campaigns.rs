use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_on, test_settings};

#[actix_web::test]
async fn creating_needs_only_a_name_and_a_limit_and_fills_the_defaults() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(json!({"name": "春のセール", "total_limit": 100}))
        .await;
    assert_eq!(c["name"], "春のセール");
    assert_eq!(c["per_consumer_limit"], 1);
    assert_eq!(c["uses_per_coupon"], 1);
    assert_eq!(c["status"], "draft");
    assert!(c["claim_ends_at"].is_null() && c["win_probability"].is_null());
    let slug = c["slug"].as_str().unwrap();
    assert_eq!(c["claim_url"], format!("{}/c/{slug}", app.address));

    let id = c["id"].as_str().unwrap();
    let res = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let shown: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        shown["stats"],
        json!({"issued": 0, "redeemed": 0, "remaining": 100})
    );
}

#[actix_web::test]
async fn bad_campaigns_get_clear_codes() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "x", "total_limit": 0}),
            422,
            "invalid_total_limit",
        ),
        (json!({"name": " ", "total_limit": 5}), 422, "invalid_name"),
        (
            json!({"name": "x", "total_limit": 5, "win_probability": 1.5}),
            422,
            "invalid_win_probability",
        ),
        (
            json!({"name": "x", "total_limit": 5, "status": "ended"}),
            422,
            "invalid_initial_status",
        ),
        (
            json!({"name": "x", "total_limit": 5, "colour": "red"}),
            400,
            "invalid_json",
        ),
        (json!({"total_limit": 5}), 400, "invalid_json"),
        (
            json!({"name": "x", "total_limit": 5, "discount": {"kind": "percent_off", "percent": 0}}),
            422,
            "invalid_discount_percent",
        ),
    ];
    for (body, status, code) in cases {
        let answer = app.try_create_campaign(body.clone()).await;
        assert_eq!((answer.0, error_code(&answer.1)), (status, code), "{body}");
    }
    let res = app
        .post("/api/v1/campaigns")
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[actix_web::test]
async fn status_changes_and_limits_follow_the_rules() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(json!({"name": "x", "total_limit": 3, "status": "active"}))
        .await;
    let id = c["id"].as_str().unwrap();
    let patch = |body: serde_json::Value| {
        let req = app.patch(&format!("/api/v1/campaigns/{id}")).json(&body);
        async move {
            let res = req.send().await.unwrap();
            (
                res.status().as_u16(),
                res.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    for consumer in ["a", "b"] {
        assert_eq!(app.claim(id, consumer).await.0, 201);
    }
    let (status, body) = patch(json!({"action": "pause"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("paused")));
    let (status, body) = app.claim(id, "c").await;
    assert_eq!((status, error_code(&body)), (409, "paused"));
    assert_eq!(patch(json!({"action": "resume"})).await.0, 200);
    let (status, body) = patch(json!({"action": "activate"})).await;
    assert_eq!((status, error_code(&body)), (409, "invalid_transition"));
    let (status, body) = patch(json!({"total_limit": 1})).await;
    assert_eq!((status, error_code(&body)), (409, "limit_below_issued"));
    let (status, body) = patch(json!({"total_limit": 10})).await;
    assert_eq!((status, body["total_limit"].as_i64()), (200, Some(10)));
    assert_eq!(body["stats"]["remaining"], 8);
    let (status, body) = patch(json!({})).await;
    assert_eq!((status, error_code(&body)), (422, "empty_patch"));
    assert_eq!(patch(json!({"action": "end"})).await.0, 200);
    let (status, body) = app.claim(id, "d").await;
    assert_eq!((status, error_code(&body)), (409, "ended"));
}

#[actix_web::test]
async fn another_tenants_campaign_is_not_found() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), test_settings).await;
    let c = a
        .create_campaign(json!({"name": "mine", "total_limit": 5, "status": "active"}))
        .await;
    let id = c["id"].as_str().unwrap();
    let res = b
        .get(&format!("/api/v1/campaigns/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let (status, _) = b.claim(id, "x").await;
    assert_eq!(status, 404);
    let res = b
        .patch(&format!("/api/v1/campaigns/{id}"))
        .json(&json!({"action": "end"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = a.get("/api/v1/campaigns/not-a-uuid").send().await.unwrap();
    assert_eq!(res.status(), 404);
}
