//! Counts and feeds across nodes, and what readers see during and after a sale: the
//! stats `GET /api/v1/campaigns/{id}` answers from the actors' counters must agree with
//! the database once the sale is quiet, on every node; a redemption on one node shows in
//! another node's dashboard feed; an idle console session ends its socket.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{
    claim_with, eventually, fresh_database, spawn_app_on, stock_counts, test_settings, TestApp,
};
use crate::live::{active_campaign, close_of, cookie_of, next_json, open, until};

async fn stats_on(node: &TestApp, key: &str, id: &str) -> Value {
    let res = node
        .client
        .get(node.url(&format!("/api/v1/campaigns/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["stats"].clone()
}

async fn redeem_on(node: &TestApp, key: &str, code: &str, store: &str) {
    let res = node
        .client
        .post(node.url(&format!("/api/v1/coupons/{code}/redemptions")))
        .bearer_auth(key)
        .json(&json!({"store": store, "staff": "Sato"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

#[actix_web::test]
async fn stats_agree_with_the_database_on_both_nodes_once_the_sale_is_quiet() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), test_settings).await;
    let b = spawn_app_on(db.clone(), test_settings).await;
    let key = a.api_key.clone();
    let id = active_campaign(&a, "both nodes", 200).await;

    // Claims through both nodes at once: both run an actor for the campaign, each hearing
    // the other's deltas by NOTIFY.
    let mut tasks = Vec::new();
    for n in 0..60 {
        let node = if n % 2 == 0 { &a } else { &b };
        let (url, key, id) = (node.address.clone(), key.clone(), id.clone());
        let client = node.client.clone();
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(format!("{url}/api/v1/campaigns/{id}/claims"))
                .bearer_auth(&key)
                .json(&json!({"consumer": format!("c{n}")}))
                .send()
                .await
                .unwrap();
            let body: Value = res.json().await.unwrap();
            body["coupon"]["code"].as_str().map(str::to_owned)
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap().expect("every claim issued"));
    }
    // A few uses, on each node.
    for (i, code) in codes.iter().take(6).enumerate() {
        redeem_on(if i % 2 == 0 { &a } else { &b }, &key, code, "Ginza").await;
    }

    let (issued, _, _) = stock_counts(&db, &id).await;
    let redeemed: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM redemptions WHERE campaign_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((issued, redeemed), (60, 6), "the table");
    let want = json!({"issued": 60, "redeemed": 6, "remaining": 140});
    for node in [&a, &b] {
        eventually(Duration::from_secs(5), "stats agree", async || {
            (stats_on(node, &key, &id).await == want).then_some(())
        })
        .await;
    }

    // A node that never ran the campaign's actor answers from the database.
    let c = spawn_app_on(db.clone(), test_settings).await;
    assert_eq!(stats_on(&c, &key, &id).await, want);
}

#[actix_web::test]
async fn a_change_is_seen_at_once_on_its_node_and_within_a_second_on_the_other() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), test_settings).await;
    let b = spawn_app_on(db.clone(), test_settings).await;
    let key = a.api_key.clone();
    let id = active_campaign(&a, "limit change", 10).await;
    assert_eq!(claim_with(&b, &key, &id, "one").await.0, 201);
    // Both nodes have read the row (and would answer from memory from now on).
    stats_on(&a, &key, &id).await;
    stats_on(&b, &key, &id).await;

    let res = a
        .patch(&format!("/api/v1/campaigns/{id}"))
        .json(&json!({"total_limit": 25, "action": "pause"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let read = async |node: &TestApp| -> Value {
        let res = node
            .client
            .get(node.url(&format!("/api/v1/campaigns/{id}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        res.json().await.unwrap()
    };
    let on_a = read(&a).await;
    assert_eq!(
        (on_a["status"].clone(), on_a["total_limit"].clone()),
        (json!("paused"), json!(25))
    );
    assert_eq!(on_a["stats"]["remaining"], 24);
    let started = Instant::now();
    eventually(
        Duration::from_secs(1),
        "node b sees the change",
        async || {
            let on_b = read(&b).await;
            (on_b["status"] == "paused" && on_b["stats"]["remaining"] == 24).then_some(())
        },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[actix_web::test]
async fn a_redemption_on_node_b_is_a_feed_line_on_node_a_within_a_second() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), test_settings).await;
    let b = spawn_app_on(db.clone(), test_settings).await;
    let id = active_campaign(&a, "feed across nodes", 5).await;
    let (status, body) = claim_with(&b, &a.api_key, &id, "walk-in").await;
    assert_eq!(status, 201, "{body}");
    let code = body["coupon"]["code"].as_str().unwrap().to_string();
    let mut ws = open(&a, &cookie_of(&a, "owner").await).await;
    until(&mut ws, Duration::from_secs(5), "snapshot", |v| {
        v["type"] == "snapshot"
    })
    .await;

    let started = Instant::now();
    redeem_on(&b, &a.api_key, &code, "Umeda").await;
    let (feed, _) = until(
        &mut ws,
        Duration::from_secs(1),
        "a remote redemption",
        |v| v["type"] == "redemption",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(feed["campaign_id"], id.as_str());
    assert_eq!(feed["store"], "Umeda");
    assert_eq!(feed["staff"], "Sato");
}

#[actix_web::test]
async fn an_idle_console_session_loses_its_socket() {
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        s.console.idle_timeout = Duration::from_secs(3);
        s
    })
    .await;
    let cookie = cookie_of(&app, "owner").await;
    let mut ws = open(&app, &cookie).await;
    next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("a snapshot while the session is fresh");
    // Only the socket is open: no page view refreshes the session.
    let (code, reason) = close_of_within(&mut ws, Duration::from_secs(8)).await;
    assert_eq!((code, reason.as_str()), (CloseCode::Policy, "signed out"));
}

/// `close_of`, after waiting out `wait` (pings keep arriving meanwhile).
async fn close_of_within(ws: &mut crate::live::Socket, wait: Duration) -> (CloseCode, String) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = Instant::now() + wait;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        ws.next(),
    )
    .await
    {
        if let Message::Close(Some(f)) = msg {
            return (f.code, f.reason.to_string());
        }
    }
    close_of(ws).await
}
