//! The engine's promises under load: exact limits across two nodes, a node killed
//! mid-sale, a restart, a lowered limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{
    claim_with, eventually, fresh_database, scratch_dir, spawn_app_on, stock_counts, test_settings,
    TestApp, TestDatabase,
};

fn fast_leases(db: &TestDatabase) -> ecoupon::config::Settings {
    let mut s = test_settings(db);
    s.engine.lease_ttl = Duration::from_secs(2);
    s.database.pool_size = 16;
    s
}

/// One claim against any node, with the campaign owner's key.
async fn claim_at(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    campaign: &str,
    consumer: &str,
) -> (u16, serde_json::Value) {
    let res = client
        .post(format!("{base}/api/v1/campaigns/{campaign}/claims"))
        .bearer_auth(key)
        .json(&json!({ "consumer": consumer }))
        .send()
        .await;
    match res {
        Ok(res) => {
            let status = res.status().as_u16();
            (status, res.json().await.unwrap_or_default())
        }
        // A killed node's connections fail; that is an unacknowledged claim.
        Err(e) => (0, serde_json::Value::String(format!("{e:?}"))),
    }
}

async fn assert_every_ack_is_stored(db: &TestDatabase, acked: &[String]) {
    let client = db.client().await;
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM coupons WHERE id::text = ANY($1)",
            &[&acked],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored as usize, acked.len(), "every 201 has its row");
}

#[actix_web::test]
async fn two_nodes_issue_exactly_the_limit_under_20000_concurrent_claims() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), fast_leases).await;
    let b = spawn_app_on(db.clone(), fast_leases).await;
    let id = a
        .create_campaign_id(json!({"name": "flash", "total_limit": 1000, "status": "active"}))
        .await;
    let nodes = [a.address.clone(), b.address.clone()];

    let results: Vec<(String, u16, serde_json::Value)> = futures_util::stream::iter(0..20_000usize)
        .map(|i| {
            let (client, key, id) = (a.client.clone(), a.api_key.clone(), id.clone());
            let base = nodes[i % 2].clone();
            let consumer = format!("consumer-{}", i % 5000);
            async move {
                // 503 `busy` means nothing was written and says "retry": a client does.
                // (In the full suite, beside other tests, a node can run short of
                // connections for a moment.) What is asserted is what was written.
                let mut answer = claim_at(&client, &base, &key, &id, &consumer).await;
                for _ in 0..20 {
                    if answer.0 != 503 || answer.1["error"]["code"] != "busy" {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    answer = claim_at(&client, &base, &key, &id, &consumer).await;
                }
                (consumer, answer.0, answer.1)
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;

    let mut per_consumer: HashMap<&str, usize> = HashMap::new();
    let mut acked = Vec::new();
    for (consumer, status, body) in &results {
        match status {
            201 => {
                *per_consumer.entry(consumer).or_default() += 1;
                acked.push(body["coupon"]["id"].as_str().unwrap().to_string());
            }
            409 => assert!(
                matches!(
                    body["error"]["code"].as_str(),
                    Some("sold_out" | "consumer_limit_reached")
                ),
                "{body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(acked.len(), 1000, "exactly the limit was acknowledged");
    assert!(
        per_consumer.values().all(|n| *n == 1),
        "no consumer over the limit"
    );
    let (issued, _, _) = stock_counts(&db, &id).await;
    assert_eq!(issued, 1000);
    assert_every_ack_is_stored(&db, &acked).await;
    let client = db.client().await;
    let worst: i64 = client
        .query_one(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM coupons GROUP BY consumer) x",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(worst, 1);
}

#[actix_web::test]
async fn a_killed_node_strands_no_stock_once_reaped() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), fast_leases).await;
    let id = a
        .create_campaign_id(json!({"name": "crash", "total_limit": 3000, "status": "active"}))
        .await;

    // Node B is a real process, killed with SIGKILL: no graceful anything.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base_b = format!("http://127.0.0.1:{port}");
    let mut b = std::process::Command::new(env!("CARGO_BIN_EXE_ecoupon"))
        .args([
            "serve",
            "--no-demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(scratch_dir("node-b"))
        .env("DATABASE_URL", &db.url)
        .env("ECOUPON_ENGINE__LEASE_TTL", "2s")
        .env("ECOUPON_LOG__LEVEL", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "node B is ready", async || {
        let res = a.client.get(format!("{base_b}/readyz")).send().await;
        res.ok().filter(|r| r.status() == 200)
    })
    .await;

    // Claims pour into B; B is killed while they are in flight.
    let client = a.client.clone();
    let (key, id2, base) = (a.api_key.clone(), id.clone(), base_b.clone());
    let load = actix_web::rt::spawn(async move {
        futures_util::stream::iter(0..4000usize)
            .map(|i| {
                let (client, key, id, base) =
                    (client.clone(), key.clone(), id2.clone(), base.clone());
                async move { claim_at(&client, &base, &key, &id, &format!("b-{i}")).await }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await
    });
    eventually(
        Duration::from_secs(30),
        "node B has issued 300 coupons",
        async || (stock_counts(&db, &id).await.0 >= 300).then_some(()),
    )
    .await;
    b.kill().unwrap();
    b.wait().unwrap();
    let results = load.await.unwrap();
    let acked: Vec<String> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, body)| body["coupon"]["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!acked.is_empty(), "node B issued before it died");
    assert_every_ack_is_stored(&db, &acked).await;

    // A's reaper notices B's silence and gives its unused stock back.
    eventually(
        Duration::from_secs(30),
        "node B's stranded stock comes back",
        async || {
            let (issued, allocated, _) = stock_counts(&db, &id).await;
            assert!(
                issued <= allocated,
                "never more coupons than stock handed out"
            );
            (issued == allocated).then_some(())
        },
    )
    .await;

    // Every remaining unit can still be claimed, and not one more.
    let (issued_before, _, limit) = stock_counts(&db, &id).await;
    let left = (limit - issued_before) as usize;
    let statuses: Vec<u16> = futures_util::stream::iter(0..left + 50)
        .map(|i| {
            let a = &a;
            let id = id.clone();
            async move { a.claim(&id, &format!("a-{i}")).await.0 }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), left);
    let (issued, _, _) = stock_counts(&db, &id).await;
    assert_eq!(issued, limit, "exactly the limit, after a crash");
}

#[actix_web::test]
async fn a_restarted_node_counts_what_the_database_holds() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), fast_leases).await;
    let id = a
        .create_campaign_id(json!({"name": "restart", "total_limit": 500, "status": "active"}))
        .await;
    for i in 0..30 {
        assert_eq!(a.claim(&id, &format!("c{i}")).await.0, 201);
    }
    a.stop().await;
    // Graceful stop returns the unused part of the lease.
    eventually(
        Duration::from_secs(10),
        "the stopped node returns its unused stock",
        async || (stock_counts(&db, &id).await.1 == 30).then_some(()),
    )
    .await;

    let a2 = spawn_app_on(db.clone(), fast_leases).await;
    let mut events = a2.engine.subscribe();
    let (status, _) = claim_with(&a2, &a.api_key, &id, "c30").await;
    assert_eq!(status, 201);
    let counted = loop {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let ecoupon::engine::events::EngineEvent::Counters { issued, .. } = *e {
            break issued;
        }
    };
    assert_eq!(counted, 31);
    assert_eq!(stock_counts(&db, &id).await.0, 31);
}

#[actix_web::test]
async fn lowering_the_limit_takes_back_leased_stock() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), fast_leases).await;
    let id = a
        .create_campaign_id(json!({"name": "lower", "total_limit": 200, "status": "active"}))
        .await;
    for i in 0..10 {
        assert_eq!(a.claim(&id, &format!("c{i}")).await.0, 201);
    }
    let res = a
        .patch(&format!("/api/v1/campaigns/{id}"))
        .json(&json!({"total_limit": 12}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut issued = 0;
    for i in 10..20 {
        if a.claim(&id, &format!("c{i}")).await.0 == 201 {
            issued += 1;
        }
    }
    assert_eq!(issued, 2);
    assert_eq!(stock_counts(&db, &id).await.0, 12);
}

#[actix_web::test]
async fn other_nodes_hear_about_claims_through_notify() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), fast_leases).await;
    let b: TestApp = spawn_app_on(db.clone(), fast_leases).await;
    let mut events = a.engine.subscribe();
    let id = a
        .create_campaign_id(json!({"name": "n", "total_limit": 50, "status": "active"}))
        .await;
    for i in 0..5 {
        assert_eq!(
            claim_with(&b, &a.api_key, &id, &format!("r{i}")).await.0,
            201
        );
    }
    let mut heard = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while heard < 5 {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = tokio::time::timeout(left, events.recv())
            .await
            .expect("remote claims heard")
            .unwrap();
        if let ecoupon::engine::events::EngineEvent::Remote(change) = &*e {
            assert_eq!(change.campaign_id.to_string(), id);
            assert_eq!(change.node, b.engine.node_id());
            heard += change.issued;
        }
    }
    assert_eq!(heard, 5);
}
