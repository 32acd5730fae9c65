//! CSV export at volume: a big file arrives in pieces and complete, and downloads given up
//! half way give their database connections back (their queries cancelled).

use serde_json::json;

use crate::console_export::{download, parse};
use crate::helpers::{page, spawn_app};

#[actix_web::test]
async fn a_large_export_streams_in_chunks_and_stays_complete() {
    let app = spawn_app().await;
    let (_, client) = app.console_user("manager").await;
    let campaign = app
        .create_campaign_id(json!({"name": "bulk", "total_limit": 100000, "status": "active"}))
        .await;
    let rows: i64 = 30_000;
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO coupons (id, tenant_id, campaign_id, consumer, seq, won, code, claimed_at,
                                  valid_from, uses_left, secret)
             SELECT gen_random_uuid(), $1, $2::text::uuid, 'device-' || g, 1, true,
                    'B' || lpad(g::text, 9, '0'), now(), now(), 1, '\\x00'::bytea
             FROM generate_series(1, $3::bigint) g",
            &[&app.tenant_id, &campaign, &rows],
        )
        .await
        .unwrap();
    let mut res = client
        .get(app.url("/merchant/export/coupons.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get(reqwest::header::CONTENT_LENGTH).is_none(),
        "streamed, not built in memory first"
    );
    let (mut chunks, mut body) = (0, Vec::new());
    while let Some(chunk) = res.chunk().await.unwrap() {
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    assert!(chunks > 1, "arrives in pieces");
    assert!(body.len() > 3 * 64 * 1024);
    let (_, records) = parse(&body);
    assert_eq!(records.len() as i64, rows);
    let codes: std::collections::HashSet<_> = records.iter().map(|r| r[3].clone()).collect();
    assert_eq!(codes.len() as i64, rows, "every row once");
    assert!(codes.contains("B000000001") && codes.contains(&format!("B{rows:09}")));
    // The connection went back to the pool in good order: the app still answers.
    assert_eq!(
        download(&app, &client, "/merchant/export/campaigns.csv")
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn an_abandoned_download_does_not_hurt_the_pool() {
    let app = spawn_app().await;
    let (_, client) = app.console_user("manager").await;
    let campaign = app
        .create_campaign_id(json!({"name": "bulk", "total_limit": 1000000, "status": "active"}))
        .await;
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO coupons (id, tenant_id, campaign_id, consumer, seq, won, code, claimed_at,
                                  valid_from, uses_left, secret)
             SELECT gen_random_uuid(), $1, $2::text::uuid, 'device-' || g, 1, true,
                    'A' || lpad(g::text, 9, '0'), now(), now(), 1, '\\x00'::bytea
             FROM generate_series(1, 100000) g",
            &[&app.tenant_id, &campaign],
        )
        .await
        .unwrap();
    // More abandoned downloads than the pool has connections (8 in tests).
    for _ in 0..10 {
        let mut res = client
            .get(app.url("/merchant/export/coupons.csv"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.chunk().await.unwrap().is_some());
        drop(res);
    }
    // Their queries were cancelled, not left reading rows nobody wants.
    let db = app.db.client().await;
    crate::helpers::eventually(
        std::time::Duration::from_secs(15),
        "no abandoned export query is still running",
        async || {
            let running: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%FROM coupons k JOIN%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (running == 0).then_some(())
        },
    )
    .await;
    let (status, _) = page(&client, &app.url("/merchant")).await;
    assert_eq!(status, 200);
    let d = download(&app, &client, "/merchant/export/campaigns.csv").await;
    assert_eq!(d.status, 200);
    assert_eq!(parse(&d.body).1.len(), 1);
}
