//! Retention of usage and access records: claims (with redemptions) that can no longer
//! matter, old sign-ins and sent notice mail go after 365 days, in batches; claims of a
//! campaign still taking claims stay whatever their age; `serve` runs the job by itself.

use std::time::Duration;

use ecoupon::config::{RetentionSettings, SecretSettings, Secrets};
use ecoupon::ops::keys::InstallationKey;
use ecoupon::store::Store;
use serde_json::json;

use crate::helpers::{
    eventually, fresh_database, scratch_dir, spawn_app, spawn_app_on, test_settings, TestApp,
};

async fn claim_and_redeem(app: &TestApp, campaign: &str, consumer: &str) -> String {
    let (status, body) = app.claim(campaign, consumer).await;
    assert_eq!(status, 201, "{body}");
    let code = body["coupon"]["code"].as_str().unwrap().to_string();
    let (status, body) = app.redeem(&code, json!({})).await;
    assert_eq!(status, 201, "{body}");
    body["redemption"]["coupon_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Makes a coupon look claimed and used up `days` ago.
async fn age(app: &TestApp, coupon: &str, days: i32) {
    let client = app.db.client().await;
    let id: uuid::Uuid = coupon.parse().unwrap();
    client
        .execute(
            "UPDATE coupons SET claimed_at = now() - make_interval(days => $2),
                                valid_from = now() - make_interval(days => $2),
                                expires_at = now() - make_interval(days => $2 - 1)
             WHERE id = $1",
            &[&id, &days],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE redemptions SET redeemed_at = now() - make_interval(days => $2) WHERE coupon_id = $1",
            &[&id, &days],
        )
        .await
        .unwrap();
}

#[actix_web::test]
async fn old_claims_sign_ins_and_mail_go_and_the_rest_stays() {
    let app = spawn_app().await;
    let ended = app
        .create_campaign_id(json!({"name": "Last year", "total_limit": 100, "status": "active"}))
        .await;
    let running = app
        .create_campaign_id(json!({"name": "Evergreen", "total_limit": 100, "status": "active"}))
        .await;
    let old = claim_and_redeem(&app, &ended, "member-1").await;
    let recent = claim_and_redeem(&app, &ended, "member-2").await;
    let old_running = claim_and_redeem(&app, &running, "member-3").await;
    let res = app
        .patch(&format!("/api/v1/campaigns/{ended}"))
        .json(&json!({"action": "end"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    age(&app, &old, 400).await;
    age(&app, &recent, 100).await;
    age(&app, &old_running, 400).await;
    let client = app.db.client().await;
    client
        .batch_execute(&format!(
            "UPDATE campaign_leases SET released_at = coalesce(released_at, now());
             INSERT INTO signin_requests (state_hash, provider, nonce, pkce_verifier, return_to, browser_hash, created_at, expires_at)
             VALUES ('\\x01', 'line', 'n', 'v', '/', '\\x02', now() - interval '400 days', now() - interval '400 days'),
                    ('\\x03', 'line', 'n', 'v', '/', '\\x04', now(), now() + interval '10 minutes');
             INSERT INTO mail_outbox (tenant_id, kind, recipient, subject, body, sent_at)
             VALUES ('{t}', 'old', 'owner@test.example', 's', 'b', now() - interval '400 days'),
                    ('{t}', 'new', 'owner@test.example', 's', 'b', now() - interval '1 day');",
            t = app.tenant_id
        ))
        .await
        .unwrap();

    let store = Store::connect(
        app.db.url.parse().unwrap(),
        &test_settings(&app.db).database,
    )
    .await
    .unwrap();
    let secrets = Secrets::resolve(&SecretSettings::default(), &scratch_dir("data")).unwrap();
    let settings = RetentionSettings {
        batch: 1,
        ..RetentionSettings::default()
    };
    let report = ecoupon::ops::retention::run(&store, &settings, &InstallationKey::new(&secrets))
        .await
        .unwrap();
    assert_eq!(report.deleted.coupons, 1, "{report:?}");
    assert_eq!(report.deleted.redemptions, 1, "{report:?}");
    assert_eq!(report.deleted.signin_requests, 1, "{report:?}");
    assert_eq!(report.deleted.mail_outbox, 1, "{report:?}");
    let gone: i64 = app
        .db_value("SELECT count(*) FROM coupons WHERE id::text = $1", &[&old])
        .await;
    assert_eq!(gone, 0);
    for kept in [&recent, &old_running] {
        let n: i64 = app
            .db_value("SELECT count(*) FROM coupons WHERE id::text = $1", &[kept])
            .await;
        assert_eq!(n, 1, "{kept} should stay");
    }
    // The running campaign's old claim still counts against its consumer.
    let (status, body) = app.claim(&running, "member-3").await;
    assert_eq!(status, 409, "{body}");
    store.close();
}

#[actix_web::test]
async fn serve_runs_the_retention_job_by_itself() {
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        s.retention.every = Duration::from_millis(300);
        s
    })
    .await;
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO mail_outbox (tenant_id, kind, recipient, subject, body, sent_at)
             VALUES ($1, 'old', 'owner@test.example', 's', 'b', now() - interval '400 days')",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the old mail is deleted",
        async || {
            let n: i64 = app.db_value("SELECT count(*) FROM mail_outbox", &[]).await;
            (n == 0).then_some(())
        },
    )
    .await;
}
