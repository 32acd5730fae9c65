//! The engine under stress of its own: bounded queues answer `busy`, a failed batch gives
//! its stock back, an idle actor leaves and its successor reloads from the database.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    error_code, eventually, fresh_database, spawn_app_on, stock_counts, test_settings,
};

#[actix_web::test]
async fn past_the_queue_bound_claims_get_busy_at_once() {
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        s.engine.max_queued_claims = 4;
        s.engine.max_inflight_batches = 1;
        s.engine.batch_linger = Duration::from_millis(300);
        s
    })
    .await;
    let id = app
        .create_campaign_id(json!({"name": "x", "total_limit": 1000, "status": "active"}))
        .await;
    let attempts = (0..40).map(|i| {
        let (app, id) = (&app, id.clone());
        async move {
            let res = app
                .post(&format!("/api/v1/campaigns/{id}/claims"))
                .json(&json!({"consumer": format!("c{i}")}))
                .send()
                .await
                .unwrap();
            let retry = res.headers().get("retry-after").is_some();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, error_code(&body).to_string(), retry)
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let busy = results
        .iter()
        .filter(|(s, code, retry)| *s == 503 && code == "busy" && *retry)
        .count();
    let issued = results.iter().filter(|(s, _, _)| *s == 201).count();
    assert!(busy > 0, "the bound was never hit: {results:?}");
    assert!(issued >= 4, "queued claims still go through: {results:?}");
    assert_eq!(busy + issued, 40, "{results:?}");
}

#[actix_web::test]
async fn a_failed_batch_fails_its_claims_and_gives_the_stock_back() {
    let db = fresh_database().await;
    let app = spawn_app_on(db.clone(), test_settings).await;
    let id = app
        .create_campaign_id(json!({"name": "x", "total_limit": 100, "status": "active"}))
        .await;
    assert_eq!(app.claim(&id, "before").await.0, 201);

    // Make every insert fail, as a full disk or a lost connection would.
    let admin = db.client().await;
    admin
        .batch_execute(
            "ALTER TABLE coupons ADD CONSTRAINT no_more CHECK (consumer = 'api:before') NOT VALID",
        )
        .await
        .unwrap();
    let (status, body) = app.claim(&id, "during").await;
    assert_eq!((status, error_code(&body)), (503, "busy"), "{body}");

    // The database refused the batch, so nothing was written and its unit went straight
    // back to the lease: what is allocated is exactly what was issued plus what live leases
    // still hold, at once.
    let (allocated, issued, live_unused) = eventually(
        Duration::from_secs(10),
        "the stock is accounted for",
        async || {
            let row = admin
                .query_one(
                    "SELECT c.allocated,
                            (SELECT count(*) FROM coupons WHERE campaign_id = c.id AND won),
                            (SELECT coalesce(sum(l.size - (SELECT count(*) FROM coupons x WHERE x.lease_id = l.id)), 0)::bigint
                             FROM campaign_leases l WHERE l.campaign_id = c.id AND l.released_at IS NULL),
                            (SELECT count(*) FROM campaign_leases l
                             WHERE l.campaign_id = c.id AND l.released_at IS NOT NULL AND l.returned > 0)
                     FROM campaigns c WHERE c.id = $1::text::uuid",
                    &[&id],
                )
                .await
                .unwrap();
            let (allocated, issued, live_unused, released): (i64, i64, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            (released == 0).then_some((allocated, issued, live_unused))
        },
    )
    .await;
    assert_eq!(allocated, issued + live_unused, "no stock stranded");
    admin
        .batch_execute("ALTER TABLE coupons DROP CONSTRAINT no_more")
        .await
        .unwrap();
    assert_eq!(app.claim(&id, "after").await.0, 201);
    assert_eq!(stock_counts(&db, &id).await.0, 2);
}

#[actix_web::test]
async fn an_idle_actor_leaves_and_its_successor_reloads_from_the_database() {
    let db = fresh_database().await;
    let app = spawn_app_on(db.clone(), |db| {
        let mut s = test_settings(db);
        s.engine.actor_idle = Duration::from_millis(300);
        s
    })
    .await;
    let id = app
        .create_campaign_id(json!({"name": "x", "total_limit": 100, "status": "active"}))
        .await;
    assert_eq!(app.claim(&id, "a").await.0, 201);
    assert_eq!(app.engine.active_actors(), 1);

    eventually(
        Duration::from_secs(10),
        "the idle actor leaves and gives its unused stock back",
        async || {
            (app.engine.active_actors() == 0 && stock_counts(&db, &id).await.1 == 1).then_some(())
        },
    )
    .await;

    let mut events = app.engine.subscribe();
    assert_eq!(app.claim(&id, "b").await.0, 201);
    let issued = loop {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let ecoupon::engine::events::EngineEvent::Counters { issued, .. } = *e {
            break issued;
        }
    };
    assert_eq!(issued, 2, "the new actor counted what the database holds");
}

#[actix_web::test]
async fn a_crashed_actor_is_replaced_and_reloads_its_state() {
    let db = fresh_database().await;
    let app = spawn_app_on(db.clone(), test_settings).await;
    let id = app
        .create_campaign_id(json!({"name": "x", "total_limit": 3, "status": "active"}))
        .await;
    assert_eq!(app.claim(&id, "a").await.0, 201);
    assert_eq!(app.claim(&id, "b").await.0, 201);

    app.engine.crash_actor(id.parse().unwrap());

    // The successor knows "a" already has a coupon and that only one is left. A claim that
    // met the crash itself may be answered busy; "a" asking again changes nothing, so ask
    // until a live actor answers.
    let (status, body) = eventually(
        Duration::from_secs(10),
        "a successor actor answers claims",
        async || Some(app.claim(&id, "a").await).filter(|(status, _)| *status != 503),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (409, "consumer_limit_reached"),
        "{body}"
    );
    assert_eq!(app.claim(&id, "c").await.0, 201);
    let (status, body) = app.claim(&id, "d").await;
    assert_eq!((status, error_code(&body)), (409, "sold_out"), "{body}");
    let (issued, allocated, _) = stock_counts(&db, &id).await;
    assert_eq!((allocated, issued), (3, 3));
    // Proof that a new actor took over: it released its predecessor's lease and took one.
    let leases: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM campaign_leases WHERE campaign_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leases, 2);
}
