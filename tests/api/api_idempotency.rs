//! `Idempotency-Key` on claims and redemptions: replay, reuse, concurrency, lost answers.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{error_code, eventually, spawn_app, TestApp};

/// A claim under `Idempotency-Key`: status, the `Idempotent-Replayed` header, the body.
pub(crate) async fn keyed_claim(
    app: &TestApp,
    campaign: &str,
    key: &str,
    consumer: &str,
) -> (u16, Option<String>, serde_json::Value) {
    let res = app
        .post(&format!("/api/v1/campaigns/{campaign}/claims"))
        .header("Idempotency-Key", key)
        .json(&json!({ "consumer": consumer }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let replayed = res
        .headers()
        .get("Idempotent-Replayed")
        .map(|v| v.to_str().unwrap().to_string());
    (status, replayed, res.json().await.unwrap())
}

async fn active_campaign(app: &TestApp) -> String {
    app.create_campaign_id(
        json!({"name": "x", "total_limit": 100, "status": "active", "per_consumer_limit": 5}),
    )
    .await
}

async fn coupons_of(app: &TestApp, campaign: &str, consumer: &str) -> i64 {
    app.db_value(
        "SELECT count(*) FROM coupons WHERE campaign_id = $1::text::uuid AND consumer = 'api:' || $2",
        &[&campaign, &consumer],
    )
    .await
}

#[actix_web::test]
async fn a_retried_claim_replays_the_first_answer() {
    let app = spawn_app().await;
    let id = active_campaign(&app).await;
    let (status, replayed, first) = keyed_claim(&app, &id, "till-1-0001", "alice").await;
    assert_eq!((status, replayed), (201, None), "{first}");
    let (status, replayed, again) = keyed_claim(&app, &id, "till-1-0001", "alice").await;
    assert_eq!((status, replayed.as_deref()), (201, Some("true")));
    assert_eq!(again, first);
    assert_eq!(coupons_of(&app, &id, "alice").await, 1);

    // Another key is another claim; the same key with another body is refused.
    let (status, _, other) = keyed_claim(&app, &id, "till-1-0002", "alice").await;
    assert_eq!(status, 201);
    assert_ne!(other["coupon"]["id"], first["coupon"]["id"]);
    let (status, _, body) = keyed_claim(&app, &id, "till-1-0001", "bob").await;
    assert_eq!((status, error_code(&body)), (422, "idempotency_key_reused"));
    // So is the same key on another URL.
    let other_campaign = active_campaign(&app).await;
    let (status, _, body) = keyed_claim(&app, &other_campaign, "till-1-0001", "alice").await;
    assert_eq!((status, error_code(&body)), (422, "idempotency_key_reused"));
    assert_eq!(coupons_of(&app, &id, "bob").await, 0);

    // Refusals are answers too: replayed, not re-run.
    let ended = app
        .create_campaign_id(json!({"name": "y", "total_limit": 1, "status": "active"}))
        .await;
    let (status, _, _) = keyed_claim(&app, &ended, "k-sold", "first").await;
    assert_eq!(status, 201);
    let (status, _, body) = keyed_claim(&app, &ended, "k-second", "second").await;
    assert_eq!((status, error_code(&body)), (409, "sold_out"));
    let (status, replayed, body) = keyed_claim(&app, &ended, "k-second", "second").await;
    assert_eq!(
        (status, replayed.as_deref(), error_code(&body)),
        (409, Some("true"), "sold_out")
    );

    // Too long or empty keys are refused before anything runs.
    let long = "k".repeat(256);
    let (status, _, body) = keyed_claim(&app, &id, &long, "carol").await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "invalid_idempotency_key")
    );
    let (status, _, _) = keyed_claim(&app, &id, &"k".repeat(255), "carol").await;
    assert_eq!(status, 201);
}

#[actix_web::test]
async fn fifty_concurrent_claims_with_one_key_make_one_coupon() {
    let app = spawn_app().await;
    let id = active_campaign(&app).await;
    let results = futures_util::future::join_all(
        (0..50).map(|_| keyed_claim(&app, &id, "burst-key", "dave")),
    )
    .await;
    let mut coupon_ids = std::collections::HashSet::new();
    for (status, _, body) in &results {
        match status {
            201 => {
                coupon_ids.insert(body["coupon"]["id"].as_str().unwrap().to_string());
            }
            409 => assert_eq!(error_code(body), "idempotency_key_in_use"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(coupon_ids.len(), 1, "{results:?}");
    assert_eq!(coupons_of(&app, &id, "dave").await, 1);
    // After the burst, a retry gets the one coupon.
    let (status, replayed, body) = keyed_claim(&app, &id, "burst-key", "dave").await;
    assert_eq!((status, replayed.as_deref()), (201, Some("true")));
    assert!(coupon_ids.contains(body["coupon"]["id"].as_str().unwrap()));
}

#[actix_web::test]
async fn a_claim_whose_answer_was_lost_is_replayed_on_retry() {
    let app = spawn_app().await;
    let id = active_campaign(&app).await;
    // The client gives up at once; the server may or may not have started the claim.
    let _ = app
        .post(&format!("/api/v1/campaigns/{id}/claims"))
        .header("Idempotency-Key", "lost-answer")
        .json(&json!({"consumer": "erin"}))
        .timeout(Duration::from_millis(1))
        .send()
        .await;
    let body = eventually(
        Duration::from_secs(10),
        "the retry is answered",
        async || {
            let (status, _, body) = keyed_claim(&app, &id, "lost-answer", "erin").await;
            (status != 409).then_some((status, body))
        },
    )
    .await;
    assert_eq!(body.0, 201, "{}", body.1);
    assert_eq!(coupons_of(&app, &id, "erin").await, 1);
}

#[actix_web::test]
async fn a_retried_redemption_is_used_once() {
    let app = spawn_app().await;
    let id = active_campaign(&app).await;
    let (_, claimed) = app.claim(&id, "frank").await;
    let code = claimed["coupon"]["code"].as_str().unwrap();
    let redeem = |key: &'static str, store: &'static str| {
        app.post(&format!("/api/v1/coupons/{code}/redemptions"))
            .header("Idempotency-Key", key)
            .json(&json!({ "store": store }))
            .send()
    };
    let first = redeem("r-1", "Shibuya").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = redeem("r-1", "Shibuya").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["Idempotent-Replayed"], "true");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);
    let other = redeem("r-1", "Ginza").await.unwrap();
    assert_eq!(other.status(), 422);
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(error_code(&body), "idempotency_key_reused");
    let uses: i64 = app
        .db_value(
            "SELECT count(*) FROM redemptions WHERE coupon_id = $1::text::uuid",
            &[&claimed["coupon"]["id"].as_str().unwrap()],
        )
        .await;
    assert_eq!(uses, 1);
}

/// The key is written by the claim's own batch statement: the key's row and the coupon's
/// share a transaction.
#[actix_web::test]
async fn a_keyed_claim_is_written_in_the_same_transaction_as_its_coupon() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "batched keys", "total_limit": 500, "status": "active"}))
        .await;
    let results = futures_util::future::join_all((0..60).map(|i| {
        let (app, id) = (&app, &id);
        async move { keyed_claim(app, id, &format!("batch-key-{i}"), &format!("p{i}")).await }
    }))
    .await;
    for (status, replayed, body) in &results {
        assert_eq!((*status, replayed.as_deref()), (201, None), "{body}");
    }
    // Every key names its coupon, committed by the same transaction.
    let keyed: i64 = app
        .db_value(
            "SELECT count(*) FROM idempotency_keys k JOIN coupons c ON c.id = k.unsettled_id
             WHERE k.key LIKE 'batch-key-%' AND k.xmin::text = c.xmin::text
               AND c.consumer = 'api:p' || substr(k.key, 11)",
            &[],
        )
        .await;
    assert_eq!(keyed, 60);
    // No first transaction claimed the keys and no second one recorded the answers: each
    // row is as the batch inserted it.
    let recorded: i64 = app
        .db_value(
            "SELECT count(*) FROM idempotency_keys
             WHERE key LIKE 'batch-key-%' AND (status IS NOT NULL OR body IS NOT NULL)",
            &[],
        )
        .await;
    assert_eq!(recorded, 0);
    // And each replays its own coupon.
    for (i, (_, _, first)) in results.iter().enumerate().step_by(13) {
        let (status, replayed, again) =
            keyed_claim(&app, &id, &format!("batch-key-{i}"), &format!("p{i}")).await;
        assert_eq!((status, replayed.as_deref()), (201, Some("true")));
        assert_eq!(&again, first);
    }
}

/// A duplicate that reaches the actor while the first claim with its key is still in the
/// batch must not be refused `consumer_limit_reached` and have that stored as the key's
/// answer: the key stays the first claim's.
#[actix_web::test]
async fn a_duplicate_never_turns_the_first_claim_into_a_refusal() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "one each", "total_limit": 100, "status": "active"}))
        .await;
    for round in 0..5 {
        let key = format!("dup-{round}");
        let consumer = format!("kei-{round}");
        let results =
            futures_util::future::join_all((0..8).map(|_| keyed_claim(&app, &id, &key, &consumer)))
                .await;
        for (status, _, body) in &results {
            assert!(
                *status == 201 || (*status == 409 && error_code(body) == "idempotency_key_in_use"),
                "{status} {body}"
            );
        }
        let (status, replayed, body) = keyed_claim(&app, &id, &key, &consumer).await;
        assert_eq!((status, replayed.as_deref()), (201, Some("true")), "{body}");
        assert_eq!(coupons_of(&app, &id, &consumer).await, 1);
    }
}
