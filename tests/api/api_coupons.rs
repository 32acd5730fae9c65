//! Coupon lookups: by code, and a consumer's coupons in a campaign.

use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_on, test_settings};

#[actix_web::test]
async fn a_coupon_is_found_by_code_with_its_redemptions() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(
            json!({"name": "x", "total_limit": 5, "status": "active", "uses_per_coupon": 2}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    let (status, claimed) = app.claim(id, "till-7").await;
    assert_eq!(status, 201, "{claimed}");
    let code = claimed["coupon"]["code"].as_str().unwrap();

    let res = app
        .get(&format!("/api/v1/coupons/{code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let coupon = &body["coupon"];
    assert_eq!(coupon["id"], claimed["coupon"]["id"]);
    assert_eq!(coupon["code"], code);
    assert_eq!(coupon["campaign_id"], id);
    assert_eq!(coupon["consumer"], "till-7");
    assert_eq!(coupon["status"], "active");
    assert_eq!(coupon["uses_left"], 2);
    assert_eq!(coupon["redemptions"], json!([]));

    let (status, redeemed) = app.redeem(code, json!({"store": "Shibuya"})).await;
    assert_eq!(status, 201, "{redeemed}");
    let (status, _) = app.redeem(code, json!({})).await;
    assert_eq!(status, 201);
    // Typed any old way, like the redemption endpoint accepts.
    let typed = code.to_lowercase();
    let body: serde_json::Value = app
        .get(&format!("/api/v1/coupons/{typed}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let coupon = &body["coupon"];
    assert_eq!(coupon["status"], "used");
    assert_eq!(coupon["uses_left"], 0);
    let redemptions = coupon["redemptions"].as_array().unwrap();
    assert_eq!(redemptions.len(), 2);
    assert_eq!(redemptions[0]["id"], redeemed["redemption"]["id"]);
    assert_eq!(redemptions[0]["store"], "Shibuya");
}

#[actix_web::test]
async fn unknown_and_other_tenants_codes_are_not_found() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), test_settings).await;
    let c = a
        .create_campaign(json!({"name": "x", "total_limit": 5, "status": "active"}))
        .await;
    let id = c["id"].as_str().unwrap();
    let (_, claimed) = a.claim(id, "someone").await;
    let code = claimed["coupon"]["code"].as_str().unwrap();
    for (app, path) in [
        (&b, format!("/api/v1/coupons/{code}")),
        (&a, "/api/v1/coupons/ZZZZZZZZZZ".to_string()),
        (&a, "/api/v1/coupons/%F0%9F%98%80".to_string()),
        (
            &b,
            format!("/api/v1/campaigns/{id}/coupons?consumer=someone"),
        ),
        (
            &a,
            format!(
                "/api/v1/campaigns/{}/coupons?consumer=someone",
                uuid::Uuid::new_v4()
            ),
        ),
    ] {
        let res = app.get(&path).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "not_found", "{path}");
    }
}

#[actix_web::test]
async fn a_till_that_lost_the_answer_finds_the_coupon_by_consumer() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(
            json!({"name": "x", "total_limit": 5, "status": "active", "per_consumer_limit": 2}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    let (_, first) = app.claim(id, "member-42").await;
    let (_, second) = app.claim(id, "member-42").await;
    let (_, _) = app.claim(id, "member-43").await;
    // The retry is refused, but the coupons are still there to be found.
    let (status, body) = app.claim(id, "member-42").await;
    assert_eq!((status, error_code(&body)), (409, "consumer_limit_reached"));

    let res = app
        .get(&format!(
            "/api/v1/campaigns/{id}/coupons?consumer=member-42"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let coupons = body["coupons"].as_array().unwrap();
    assert_eq!(coupons.len(), 2);
    assert_eq!(coupons[0]["code"], first["coupon"]["code"]);
    assert_eq!(coupons[1]["code"], second["coupon"]["code"]);
    assert!(coupons.iter().all(|c| c["consumer"] == "member-42"));

    let body: serde_json::Value = app
        .get(&format!("/api/v1/campaigns/{id}/coupons?consumer=nobody"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["coupons"], json!([]));

    let res = app
        .get(&format!("/api/v1/campaigns/{id}/coupons"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_consumer");
}
