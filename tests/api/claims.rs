use serde_json::json;

use crate::helpers::{error_code, spawn_app};

#[actix_web::test]
async fn a_claim_returns_a_durable_coupon() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(
            json!({"name": "x", "total_limit": 5, "status": "active", "valid_for_seconds": 3600}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    let (status, body) = app.claim(id, "alice").await;
    assert_eq!(status, 201, "{body}");
    let coupon = &body["coupon"];
    assert_eq!(coupon["uses_left"], 1);
    assert!(coupon["expires_at"].is_string());
    let code_text = coupon["code"].as_str().unwrap();
    assert_eq!(code_text.len(), 10);
    assert!(code_text
        .chars()
        .all(|ch| "23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(ch)));

    let db = app.db.client().await;
    let row = db
        .query_one(
            "SELECT consumer, code, won FROM coupons WHERE id = $1::text::uuid",
            &[&coupon["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    // Stored in the merchant's namespace (see `domain::consumer`).
    assert_eq!(row.get::<_, String>(0), "api:alice");
    assert_eq!(row.get::<_, String>(1), code_text);

    let (status, body) = app.claim(id, "alice").await;
    assert_eq!((status, error_code(&body)), (409, "consumer_limit_reached"));
}

#[actix_web::test]
async fn every_state_is_answered_with_its_own_code() {
    let app = spawn_app().await;
    let draft = app
        .create_campaign(json!({"name": "d", "total_limit": 5}))
        .await;
    let (status, body) = app.claim(draft["id"].as_str().unwrap(), "a").await;
    assert_eq!((status, error_code(&body)), (409, "not_active"));

    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let future = app
        .create_campaign(
            json!({"name": "f", "total_limit": 5, "status": "active", "claim_starts_at": later}),
        )
        .await;
    let (status, body) = app.claim(future["id"].as_str().unwrap(), "a").await;
    assert_eq!((status, error_code(&body)), (409, "not_started"));

    let past_start = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let past_end = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let over = app
        .create_campaign(json!({"name": "o", "total_limit": 5, "status": "active", "claim_starts_at": past_start, "claim_ends_at": past_end}))
        .await;
    let (status, body) = app.claim(over["id"].as_str().unwrap(), "a").await;
    assert_eq!((status, error_code(&body)), (409, "ended"));

    let small = app
        .create_campaign(json!({"name": "s", "total_limit": 2, "status": "active"}))
        .await;
    let id = small["id"].as_str().unwrap();
    assert_eq!(app.claim(id, "a").await.0, 201);
    assert_eq!(app.claim(id, "b").await.0, 201);
    let (status, body) = app.claim(id, "c").await;
    assert_eq!((status, error_code(&body)), (409, "sold_out"));

    let (status, body) = app.claim(&uuid::Uuid::new_v4().to_string(), "a").await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let res = app
        .post(&format!("/api/v1/campaigns/{id}/claims"))
        .json(&json!({"consumer": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

#[actix_web::test]
async fn a_lost_draw_counts_as_the_attempt_and_takes_no_stock() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(json!({"name": "lottery", "total_limit": 1, "status": "active", "win_probability": 0.000001}))
        .await;
    let id = c["id"].as_str().unwrap();
    let (status, body) = app.claim(id, "unlucky").await;
    assert_eq!((status, error_code(&body)), (409, "lottery_lost"));
    let (status, body) = app.claim(id, "unlucky").await;
    assert_eq!((status, error_code(&body)), (409, "consumer_limit_reached"));
    let shown: serde_json::Value = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["stats"]["issued"], 0);
    assert_eq!(shown["stats"]["remaining"], 1);
}

#[actix_web::test]
async fn per_consumer_limits_above_one_are_exact() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(
            json!({"name": "x", "total_limit": 100, "status": "active", "per_consumer_limit": 3}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_string();
    let attempts = (0..10).map(|_| {
        let app = &app;
        let id = id.clone();
        async move { app.claim(&id, "greedy").await.0 }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
}

#[actix_web::test]
async fn claims_are_published_to_subscribers() {
    let app = spawn_app().await;
    let mut events = app.engine.subscribe();
    let c = app
        .create_campaign(json!({"name": "x", "total_limit": 10, "status": "active"}))
        .await;
    let id = c["id"].as_str().unwrap();
    let (_, body) = app.claim(id, "a").await;
    let coupon_id = body["coupon"]["id"].as_str().unwrap().to_string();
    let (mut saw_claim, mut saw_counters) = (false, false);
    while !(saw_claim && saw_counters) {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        let json = serde_json::to_value(&*event).unwrap();
        match json["type"].as_str() {
            Some("claimed") => saw_claim |= json["coupons"][0]["coupon_id"] == coupon_id,
            Some("counters") => saw_counters |= json["issued"] == 1 && json["remaining"] == 9,
            _ => {}
        }
    }
}

#[actix_web::test]
async fn a_campaign_chooses_how_its_codes_look() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(json!({"name": "x", "total_limit": 5, "status": "active",
            "code_length": 8, "code_prefix": "SPR", "code_charset": "digits"}))
        .await;
    assert_eq!(
        (c["code_length"].as_i64(), c["code_prefix"].as_str()),
        (Some(8), Some("SPR"))
    );
    let (status, body) = app.claim(c["id"].as_str().unwrap(), "a").await;
    assert_eq!(status, 201);
    let code_text = body["coupon"]["code"].as_str().unwrap();
    assert!(
        code_text.starts_with("SPR") && code_text.len() == 11,
        "{code_text}"
    );
    assert!(
        code_text[3..].chars().all(|ch| ch.is_ascii_digit()),
        "{code_text}"
    );

    for (field, value, code) in [
        ("code_length", json!(4), "invalid_code_length"),
        ("code_prefix", json!("spr-"), "invalid_code_prefix"),
        ("code_charset", json!("ABC"), "invalid_code_charset"),
    ] {
        let mut body = json!({"name": "y", "total_limit": 5});
        body[field] = value;
        let (status, err) = app.try_create_campaign(body).await;
        assert_eq!((status, error_code(&err)), (422, code), "{field}");
    }
}

#[actix_web::test]
async fn made_up_or_foreign_campaign_ids_start_no_actor() {
    let app = spawn_app().await;
    for _ in 0..200 {
        let (status, body) = app
            .claim(&uuid::Uuid::new_v4().to_string(), "someone")
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(error_code(&body), "not_found");
    }
    assert_eq!(app.engine.active_actors(), 0, "no actor for an unknown id");

    // Another tenant's campaign is as unknown to this key.
    let other = crate::helpers::spawn_app_on(app.db.clone(), crate::helpers::test_settings).await;
    let theirs = other
        .create_campaign_id(json!({"name": "theirs", "total_limit": 5, "status": "active"}))
        .await;
    let (status, _) = app.claim(&theirs, "someone").await;
    assert_eq!(status, 404);
    assert_eq!(app.engine.active_actors(), 0);

    // A real one starts exactly one.
    let ours = app
        .create_campaign_id(json!({"name": "ours", "total_limit": 5, "status": "active"}))
        .await;
    assert_eq!(app.claim(&ours, "someone").await.0, 201);
    assert_eq!(app.engine.active_actors(), 1);
}
