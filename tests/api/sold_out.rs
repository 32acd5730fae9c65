//! Sold-out answers without the actor (`engine/sold_out.rs`): the crowd after the last
//! coupon is answered by the HTTP worker from the view the campaign's actor publishes,
//! and every answer is the one the actor would give.

use serde_json::json;

use crate::api_idempotency::keyed_claim;
use crate::helpers::{claim_with, error_code, spawn_app, spawn_app_on, test_settings, TestApp};
use crate::metrics::scrape;

async fn answered_without_actor(app: &TestApp) -> f64 {
    scrape(app)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("ecoupon_claims_sold_out_without_actor_total "))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Status and coupon id of a claim under an idempotency key.
async fn keyed(app: &TestApp, campaign: &str, key: &str, consumer: &str) -> (u16, String) {
    let (status, _, body) = keyed_claim(app, campaign, key, consumer).await;
    let id = body["coupon"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, id)
}

#[actix_web::test]
async fn sold_out_answers_skip_the_actor_and_say_what_it_would() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "last one", "total_limit": 3, "status": "active"}))
        .await;
    assert_eq!(app.claim(&id, "a").await.0, 201);
    assert_eq!(app.claim(&id, "b").await.0, 201);
    let (status, first) = keyed(&app, &id, "till-7-0001", "k").await;
    assert_eq!(status, 201);
    let (status, body) = app.claim(&id, "late-0").await;
    assert_eq!((status, error_code(&body)), (409, "sold_out"));

    // The crowd: every answer sold_out, and (once the actor has published its view,
    // which it does again after each of its once-a-second re-checks) given without it.
    let before = answered_without_actor(&app).await;
    let started = std::time::Instant::now();
    let mut round = 0;
    while answered_without_actor(&app).await - before < 20.0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no sold-out answer came from the view"
        );
        round += 1;
        let consumers: Vec<String> = (0..20).map(|i| format!("late-{round}-{i}")).collect();
        let answers =
            futures_util::future::join_all(consumers.iter().map(|c| app.claim(&id, c))).await;
        for (status, body) in answers {
            assert_eq!((status, error_code(&body)), (409, "sold_out"), "{body}");
        }
    }

    // Consumers the actor knows at their limit hear that first, as from the actor.
    let (status, body) = app.claim(&id, "a").await;
    assert_eq!((status, error_code(&body)), (409, "consumer_limit_reached"));
    // A retry under its idempotency key gets its first answer, not sold_out.
    assert_eq!(keyed(&app, &id, "till-7-0001", "k").await, (201, first));
    // Another tenant's key does not learn that this campaign exists.
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let (status, body) = claim_with(&app, &other.api_key, &id, "x").await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));

    // A change is seen by the very next claim: no answer from the old view.
    let paused = app
        .patch(&format!("/api/v1/campaigns/{id}"))
        .json(&json!({"action": "pause"}))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    let (status, body) = app.claim(&id, "late-paused").await;
    assert_eq!((status, error_code(&body)), (409, "paused"));
    let raised = app
        .patch(&format!("/api/v1/campaigns/{id}"))
        .json(&json!({"action": "resume", "total_limit": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(raised.status(), 200);
    let (status, body) = app.claim(&id, "late-lucky").await;
    assert_eq!(status, 201, "a raised limit is claimable at once: {body}");
    let (status, body) = app.claim(&id, "late-again").await;
    assert_eq!((status, error_code(&body)), (409, "sold_out"));
}
