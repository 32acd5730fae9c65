//! Webhooks: signed deliveries to a real HTTP receiver that fails the first ones, nothing
//! lost across a server killed with SIGKILL and started again, and events queued in the
//! change itself.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{eventually, fresh_database, spawn_app_on};
use crate::webhook_support::*;

#[actix_web::test]
async fn signed_events_arrive_after_failures_and_a_kill_9_loses_none() {
    let db = fresh_database().await;
    let api = spawn_app_on(db.clone(), api_only).await;
    let receiver = Receiver::start(3);
    let created = register(&api, &receiver.url, &ALL_EVENTS).await;
    *receiver.secret.lock().unwrap() = created["secret"].as_str().unwrap().to_string();
    let endpoint = created["id"].as_str().unwrap().to_string();

    let mut node = Node::start(&db, &api.client).await;
    let campaign = api
        .create_campaign_id(json!({"name": "hooks", "total_limit": 400, "status": "active"}))
        .await;

    // Claims pour into the node; it is killed while they are in flight.
    let (a, base, c) = (api.client.clone(), node.base.clone(), campaign.clone());
    let key = api.api_key.clone();
    // Counted as the answers arrive: the kill must come after the client holds acks, not
    // merely after rows exist (on a loaded machine answers trail the commits).
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = answered.clone();
    let load = actix_web::rt::spawn(async move {
        futures_util::stream::iter(0..300usize)
            .map(|i| {
                let (a, base, c, key) = (a.clone(), base.clone(), c.clone(), key.clone());
                let counter = counter.clone();
                async move {
                    let res = a
                        .post(format!("{base}/api/v1/campaigns/{c}/claims"))
                        .bearer_auth(&key)
                        .json(&json!({ "consumer": format!("k-{i}") }))
                        .send()
                        .await
                        .ok()?;
                    if res.status() != 201 {
                        return None;
                    }
                    let body: serde_json::Value = res.json().await.ok()?;
                    let id = body["coupon"]["id"].as_str().map(str::to_string);
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    id
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
    });
    eventually(
        Duration::from_secs(60),
        "the node has claimed and delivered some",
        async || {
            let acked = answered.load(std::sync::atomic::Ordering::SeqCst);
            (acked >= 100 && receiver.accepted().contains_key("coupon.claimed")).then_some(())
        },
    )
    .await;
    node.kill();
    let mut acked: Vec<String> = load.await.unwrap().into_iter().flatten().collect();
    assert!(
        acked.len() >= 100,
        "claims were acknowledged before the kill"
    );
    let pending: i64 = api
        .db_value(
            "SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL",
            &[],
        )
        .await;
    assert!(pending > 0, "the kill left deliveries to be made");

    // Started again: what the dead node committed is delivered, and the rest of the sale.
    let node = Node::start(&db, &api.client).await;
    let coupon = claim_at(&api, &node.base, &campaign, "redeemer")
        .await
        .unwrap();
    acked.push(coupon.clone());
    let code: String = api
        .db_value(
            "SELECT code FROM coupons WHERE id = $1::text::uuid",
            &[&coupon],
        )
        .await;
    let (status, redeemed) = api.redeem(&code, json!({"store": "Shibuya"})).await;
    assert_eq!(status, 201, "{redeemed}");
    let redemption = redeemed["redemption"]["id"].as_str().unwrap().to_string();
    let res = api
        .delete(&format!("/api/v1/redemptions/{redemption}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    // Sell out the rest (the dead node's unused stock comes back once reaped), then end
    // the campaign.
    let mut late = 0;
    eventually(
        Duration::from_secs(60),
        "the campaign sells out",
        async || {
            let issued: i64 = api
                .db_value("SELECT count(*) FROM coupons WHERE won", &[])
                .await;
            for _ in issued..400 {
                late += 1;
                if let Some(id) =
                    claim_at(&api, &node.base, &campaign, &format!("late-{late}")).await
                {
                    acked.push(id);
                }
            }
            (issued == 400).then_some(())
        },
    )
    .await;
    let res = api
        .patch(&format!("/api/v1/campaigns/{campaign}"))
        .json(&json!({"action": "end"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let every_coupon: HashSet<String> = acked.iter().cloned().collect();
    let accepted = eventually(
        Duration::from_secs(90),
        "every event is delivered",
        async || {
            let accepted = receiver.accepted();
            let claimed: HashSet<String> = accepted
                .get("coupon.claimed")?
                .iter()
                .map(|d| d["coupon_id"].as_str().unwrap().to_string())
                .collect();
            let done = every_coupon.is_subset(&claimed)
                && accepted.contains_key("campaign.sold_out")
                && accepted.contains_key("campaign.ended")
                && accepted.contains_key("redemption.undone");
            done.then_some(accepted)
        },
    )
    .await;
    let seen = receiver.seen();
    assert!(
        seen.iter().all(|r| r.signature_ok),
        "every request is signed with the endpoint's secret"
    );
    // The first three were refused and sent again under the same webhook-id.
    for refused in seen.iter().take(3) {
        assert_eq!(refused.status, 500);
        assert!(
            seen.iter().any(|r| r.id == refused.id && r.status == 204),
            "refused delivery {} was retried until accepted",
            refused.id
        );
    }
    let claimed_events = &accepted["coupon.claimed"];
    assert_eq!(claimed_events.len(), 400, "one event per issued coupon");
    // The merchant's own reference comes back as given, not as stored (`api:<ref>`).
    assert!(
        claimed_events.iter().all(|e| e["consumer"]
            .as_str()
            .is_some_and(|c| !c.starts_with("api:"))),
        "{:?}",
        claimed_events.first()
    );
    assert_eq!(accepted["campaign.sold_out"].len(), 1, "sold out once");
    assert_eq!(accepted["campaign.sold_out"][0]["total_limit"], 400);
    assert_eq!(accepted["coupon.redeemed"][0]["code"], code.as_str());
    assert_eq!(accepted["coupon.redeemed"][0]["store"], "Shibuya");
    assert_eq!(
        accepted["redemption.undone"][0]["redemption_id"],
        redemption.as_str()
    );
    assert_eq!(
        accepted["campaign.ended"][0]["campaign_id"],
        campaign.as_str()
    );

    // The endpoint's log shows each delivery and the retries.
    let res = api
        .get(&format!("/api/v1/webhooks/{endpoint}/deliveries?limit=200"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log: serde_json::Value = res.json().await.unwrap();
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 200);
    assert!(log["next_cursor"].is_string());
    let retried: i64 = api
        .db_value(
            "SELECT count(*) FROM webhook_deliveries WHERE attempts >= 2 AND delivered_at IS NOT NULL",
            &[],
        )
        .await;
    assert!(retried >= 1, "the refused deliveries were retried");
    let attempts: i64 = api
        .db_value(
            "SELECT count(*) FROM webhook_attempts WHERE status = 500",
            &[],
        )
        .await;
    assert_eq!(attempts, 3, "each refusal is in the log");
    let next = log["next_cursor"].as_str().unwrap();
    let res = api
        .get(&format!(
            "/api/v1/webhooks/{endpoint}/deliveries?limit=200&cursor={next}"
        ))
        .send()
        .await
        .unwrap();
    let page: serde_json::Value = res.json().await.unwrap();
    let first: HashSet<&str> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| !first.contains(d["id"].as_str().unwrap())));
    // The sender keeps the outbox-lag gauge current (0 once everything is delivered).
    let metrics_url = format!("{}/metrics", node.base);
    eventually(
        Duration::from_secs(10),
        "the lag gauge reads 0",
        async || {
            let text = api
                .client
                .get(&metrics_url)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.lines()
                .any(|l| l == "ecoupon_outbox_lag_seconds{kind=\"webhook\"} 0")
                .then_some(())
        },
    )
    .await;
    drop(node);
}

#[actix_web::test]
async fn only_subscribed_events_are_queued_in_the_change_itself() {
    let app = spawn_app_on(fresh_database().await, |db| {
        let mut s = loopback_allowed(db);
        s.webhooks.enabled = false;
        s
    })
    .await;
    let campaign = app
        .create_campaign_id(json!({"name": "quiet", "total_limit": 10, "status": "active"}))
        .await;
    // No endpoint: a claim writes no outbox row.
    assert_eq!(app.claim(&campaign, "a").await.0, 201);
    let queued = async || -> i64 {
        app.db_value("SELECT count(*) FROM webhook_deliveries", &[])
            .await
    };
    assert_eq!(queued().await, 0);
    // Subscribed to redemptions only: claims still write none; a redemption writes one.
    register(&app, "http://127.0.0.1:9/hooks", &["coupon.redeemed"]).await;
    let (_, claimed) = app.claim(&campaign, "b").await;
    assert_eq!(queued().await, 0);
    let code = claimed["coupon"]["code"].as_str().unwrap();
    assert_eq!(app.redeem(code, json!({})).await.0, 201);
    assert_eq!(queued().await, 1);
    // Committed with the claim batch: every won coupon of a subscribed tenant has its row.
    register(&app, "http://127.0.0.1:9/other", &["coupon.claimed"]).await;
    for i in 0..5 {
        assert_eq!(app.claim(&campaign, &format!("c-{i}")).await.0, 201);
    }
    let rows: i64 = app
        .db_value(
            "SELECT count(*) FROM webhook_deliveries WHERE event_type = 'coupon.claimed'",
            &[],
        )
        .await;
    assert_eq!(rows, 5);
}
