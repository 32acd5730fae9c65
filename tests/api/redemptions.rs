use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    error_code, eventually, fresh_database, spawn_app, spawn_app_on, test_settings, TestApp,
};

async fn claimed_code(app: &TestApp, campaign: serde_json::Value) -> String {
    let c = app.create_campaign(campaign).await;
    let (status, body) = app.claim(c["id"].as_str().unwrap(), "someone").await;
    assert_eq!(status, 201, "{body}");
    body["coupon"]["code"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn a_coupon_is_used_once_and_the_use_is_recorded() {
    let app = spawn_app().await;
    let code_text = claimed_code(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active"}),
    )
    .await;
    // Staff type codes any old way: lower case, spaces, full-width.
    let typed = code_text
        .to_lowercase()
        .chars()
        .flat_map(|c| [c, ' '])
        .collect::<String>();
    let (status, body) = app
        .redeem(
            &typed.trim().replace(' ', "-"),
            json!({"store": "Shibuya", "staff": "Tanaka"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["redemption"]["uses_left"], 0);
    let db = app.db.client().await;
    let row = db
        .query_one(
            "SELECT store, staff FROM redemptions WHERE id = $1::text::uuid",
            &[&body["redemption"]["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("Shibuya".into(), "Tanaka".into())
    );

    let (status, body) = app.redeem(&code_text, json!({})).await;
    assert_eq!((status, error_code(&body)), (409, "already_used"));
    let (status, body) = app.redeem("ZZZZZZZZZZ", json!({})).await;
    assert_eq!((status, error_code(&body)), (404, "unknown_code"));
    let (status, body) = app.redeem("%F0%9F%98%80", json!({})).await;
    assert_eq!((status, error_code(&body)), (404, "unknown_code"));
    // No body at all is fine too.
    let res = app
        .post("/api/v1/coupons/ZZZZZZZZZZ/redemptions")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[actix_web::test]
async fn fifty_racing_redemptions_use_a_coupon_exactly_once() {
    let app = spawn_app().await;
    let code_text = claimed_code(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active"}),
    )
    .await;
    let attempts = (0..50).map(|_| app.redeem(&code_text, json!({})));
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let used = results
        .iter()
        .filter(|(s, b)| *s == 409 && error_code(b) == "already_used")
        .count();
    assert_eq!((created, used), (1, 49), "{results:?}");
    let db = app.db.client().await;
    let n: i64 = db
        .query_one("SELECT count(*) FROM redemptions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[actix_web::test]
async fn multi_use_tickets_count_down_and_undo_gives_a_use_back() {
    let app = spawn_app().await;
    let code_text = claimed_code(
        &app,
        json!({"name": "回数券", "total_limit": 5, "status": "active", "uses_per_coupon": 3}),
    )
    .await;
    let mut last = None;
    for expected in [2, 1, 0] {
        let (status, body) = app.redeem(&code_text, json!({})).await;
        assert_eq!(
            (status, body["redemption"]["uses_left"].as_i64()),
            (201, Some(expected))
        );
        last = Some(body["redemption"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(app.redeem(&code_text, json!({})).await.0, 409);
    let last = last.unwrap();
    let (status, body) = undo(&app, &last).await;
    assert_eq!((status, &body["redemption"]["uses_left"]), (200, &json!(1)));
    let (status, body) = undo(&app, &last).await;
    assert_eq!((status, error_code(&body)), (409, "already_undone"));
    assert_eq!(app.redeem(&code_text, json!({})).await.0, 201);
}

#[actix_web::test]
async fn undo_after_the_window_is_refused() {
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        s.engine.undo_window = Duration::ZERO;
        s
    })
    .await;
    let code_text = claimed_code(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active"}),
    )
    .await;
    let (_, body) = app.redeem(&code_text, json!({})).await;
    let id = body["redemption"]["id"].as_str().unwrap();
    // The database judges the window by its own clock: wait until that has moved past the
    // redemption (then a zero window is over), without undoing anything meanwhile.
    let db = app.db.client().await;
    eventually(
        Duration::from_secs(5),
        "the database clock passes the redemption",
        async || {
            let row = db
                .query_one(
                    "SELECT now() > redeemed_at FROM redemptions WHERE id = $1::text::uuid",
                    &[&id],
                )
                .await
                .unwrap();
            row.get::<_, bool>(0).then_some(())
        },
    )
    .await;
    let (status, body) = undo(&app, id).await;
    assert_eq!((status, error_code(&body)), (409, "undo_window_passed"));
}

/// Undoes a redemption: (status, body).
async fn undo(app: &TestApp, redemption: &str) -> (u16, serde_json::Value) {
    let res = app
        .delete(&format!("/api/v1/redemptions/{redemption}"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[actix_web::test]
async fn not_yet_valid_and_expired_coupons_are_refused() {
    let app = spawn_app().await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let early = claimed_code(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active", "use_starts_at": tomorrow}),
    )
    .await;
    let (status, body) = app.redeem(&early, json!({})).await;
    assert_eq!((status, error_code(&body)), (409, "not_yet_valid"));

    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let brief = claimed_code(
        &app,
        json!({"name": "y", "total_limit": 5, "status": "active", "use_ends_at": soon}),
    )
    .await;
    // Expiry is judged by the database's clock: wait (without redeeming) until it has passed.
    let db = app.db.client().await;
    eventually(
        Duration::from_secs(10),
        "the coupon's expiry passes by the database clock",
        async || {
            let row = db
                .query_one(
                    "SELECT now() >= expires_at FROM coupons WHERE code = $1 AND tenant_id = $2",
                    &[&brief, &app.tenant_id],
                )
                .await
                .unwrap();
            let passed: Option<bool> = row.get(0);
            passed.expect("the coupon has an expiry").then_some(())
        },
    )
    .await;
    let (status, body) = app.redeem(&brief, json!({})).await;
    assert_eq!((status, error_code(&body)), (409, "expired"));

    // Another tenant's code does not exist for this tenant.
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let (status, body) = other.redeem(&early, json!({})).await;
    assert_eq!((status, error_code(&body)), (404, "unknown_code"));
}
