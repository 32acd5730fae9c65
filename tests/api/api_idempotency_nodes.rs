//! `Idempotency-Key` across two nodes on one database: 50 concurrent duplicates split
//! between them have one effect, the answer replays from the other node, and for 24 hours.

use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_on, test_settings, TestApp};

/// A keyed claim with `api_key` sent to `node`: (status, replayed, body).
async fn keyed_claim_on(
    node: &TestApp,
    api_key: &str,
    campaign: &str,
    key: &str,
    consumer: &str,
) -> (u16, bool, serde_json::Value) {
    let res = node
        .client
        .post(node.url(&format!("/api/v1/campaigns/{campaign}/claims")))
        .bearer_auth(api_key)
        .header("Idempotency-Key", key)
        .json(&json!({ "consumer": consumer }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let replayed = res.headers().get("Idempotent-Replayed").is_some();
    (status, replayed, res.json().await.unwrap())
}

#[actix_web::test]
async fn fifty_duplicates_across_two_nodes_have_one_effect_and_replay_on_both() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), test_settings).await;
    let id = a
        .create_campaign_id(
            json!({"name": "two nodes", "total_limit": 100, "status": "active", "per_consumer_limit": 5}),
        )
        .await;
    let key = a.api_key.clone();
    let results = futures_util::future::join_all((0..50).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        keyed_claim_on(node, &key, &id, "two-node-key", "gina")
    }))
    .await;
    let mut coupons = std::collections::HashSet::new();
    for (status, _, body) in &results {
        match status {
            201 => {
                coupons.insert(body["coupon"]["id"].as_str().unwrap().to_string());
            }
            409 => assert_eq!(error_code(body), "idempotency_key_in_use", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(coupons.len(), 1, "{results:?}");
    let held: i64 = a
        .db_value(
            "SELECT count(*) FROM coupons WHERE consumer = 'api:gina'",
            &[],
        )
        .await;
    assert_eq!(held, 1);

    // Each node replays the one answer.
    for node in [&a, &b] {
        let (status, replayed, body) =
            keyed_claim_on(node, &key, &id, "two-node-key", "gina").await;
        assert_eq!((status, replayed), (201, true), "{body}");
        assert!(coupons.contains(body["coupon"]["id"].as_str().unwrap()));
    }
    // Another body under the key is refused on either node.
    let (status, _, body) = keyed_claim_on(&b, &key, &id, "two-node-key", "hana").await;
    assert_eq!((status, error_code(&body)), (422, "idempotency_key_reused"));

    // Replayed for 24 hours; after that the key is new again.
    let age = |hours: i32| {
        let db = a.db.clone();
        async move {
            db.client()
                .await
                .execute(
                    "UPDATE idempotency_keys SET created_at = now() - make_interval(hours => $1)
                     WHERE key = 'two-node-key'",
                    &[&hours],
                )
                .await
                .unwrap();
        }
    };
    age(23).await;
    let (status, replayed, _) = keyed_claim_on(&b, &key, &id, "two-node-key", "gina").await;
    assert_eq!((status, replayed), (201, true));
    age(25).await;
    let (status, replayed, body) = keyed_claim_on(&b, &key, &id, "two-node-key", "gina").await;
    assert_eq!((status, replayed), (201, false), "{body}");
    assert!(!coupons.contains(body["coupon"]["id"].as_str().unwrap()));
}
