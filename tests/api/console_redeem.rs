//! The staff redemption screen: the check code always required and always checked, the
//! full-screen outcomes, the store and staff recorded, undo, and tenant boundaries.

use serde_json::json;

use crate::check_codes::{claimed, code_at, wrong_code};
use crate::console_helpers::{console_page, console_post};
use crate::helpers::{spawn_app, spawn_app_on, test_settings, TestApp};

/// The `data-outcome` of a result page.
fn outcome(html: &str) -> &str {
    let at = html
        .find("id=\"redeem-result\" data-outcome=\"")
        .expect("a result")
        + 33;
    html[at..].split('"').next().unwrap()
}

async fn add_store(app: &TestApp, name: &str, code: &str) -> String {
    let (_, manager) = app.console_user("manager").await;
    let res = console_post(
        app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", name), ("code", code)],
    )
    .await;
    assert_eq!(res.status(), 303);
    app.db
        .client()
        .await
        .query_one("SELECT id::text FROM stores WHERE code = $1", &[&code])
        .await
        .unwrap()
        .get(0)
}

async fn redeem(app: &TestApp, client: &reqwest::Client, fields: &[(&str, &str)]) -> (u16, String) {
    let res = console_post(app, client, "/merchant/redeem", "/merchant/redeem", fields).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

#[actix_web::test]
async fn staff_redeem_with_the_check_code_then_see_already_used() {
    let app = spawn_app().await;
    let store = add_store(&app, "渋谷店", "SHIBUYA").await;
    let (email, staff) = app.console_user("staff").await;
    let (code, secret) = claimed(
        &app,
        json!({"name": "春のコーヒーフェア", "total_limit": 5, "status": "active",
               "discount": {"kind": "amount_off_yen", "amount": 300}}),
    )
    .await;

    // The screen: camera button (shown by script where it works), code, check code, store.
    let (status, html) = console_page(&app, &staff, "/merchant/redeem").await;
    assert_eq!(status, 200);
    for id in [
        "redeem-form",
        "coupon-code",
        "check-code",
        "store",
        "redeem-button",
        "scan-button",
        "scan-video",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "#{id}");
    }
    assert!(html.contains("name=\"check_code\"") && html.contains("name=\"store_id\""));
    assert!(
        html.contains(&format!("<option value=\"{store}\" selected>")),
        "one store is chosen for you"
    );

    // Staff type codes any old way.
    let typed = code.to_lowercase();
    let check = code_at(&secret, 0).await;
    let (status, html) = redeem(
        &app,
        &staff,
        &[
            ("code", &typed),
            ("check_code", &check),
            ("store_id", &store),
        ],
    )
    .await;
    assert_eq!((status, outcome(&html)), (200, "ok"), "{html}");
    assert!(
        html.contains("300円引き") && html.contains("春のコーヒーフェア"),
        "{html}"
    );
    assert!(html.contains("id=\"undo-button\""));

    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT r.store_id::text, r.store, r.staff, u.email FROM redemptions r
             JOIN merchant_users u ON u.id = r.staff_user_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), Some(store.clone()));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("渋谷店"));
    assert_eq!(row.get::<_, Option<String>>(2), Some(email.clone()));
    assert_eq!(row.get::<_, String>(3), email);

    // Again, with the right code: already used, at what time and which store.
    let check = code_at(&secret, 0).await;
    let (_, html) = redeem(
        &app,
        &staff,
        &[
            ("code", &code),
            ("check_code", &check),
            ("store_id", &store),
        ],
    )
    .await;
    assert_eq!(outcome(&html), "already_used");
    assert!(html.contains("渋谷店 で使用されています"), "{html}");
    assert!(!html.contains("id=\"undo-button\""));
}

#[actix_web::test]
async fn a_wrong_check_code_never_redeems_and_says_what_to_do() {
    let app = spawn_app().await;
    let (_, staff) = app.console_user("staff").await;
    let (code, secret) = claimed(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active"}),
    )
    .await;
    let stale = code_at(&secret, 2).await;
    let wrong = wrong_code(&secret).await;
    for bad in [wrong.as_str(), stale.as_str()] {
        let (status, html) = redeem(&app, &staff, &[("code", &code), ("check_code", bad)]).await;
        assert_eq!((status, outcome(&html)), (200, "wrong_check_code"));
        assert!(
            html.contains("確認コードが違います") && html.contains("30 秒ごとに変わります"),
            "{html}"
        );
        assert!(html.contains("id=\"retry\""), "a way to type it again");
    }
    let uses: i32 = app
        .db
        .client()
        .await
        .query_one("SELECT uses_left FROM coupons WHERE code = $1", &[&code])
        .await
        .unwrap()
        .get(0);
    assert_eq!(uses, 1);

    // The console always wants the check code, and says so next to the field.
    let (status, html) = redeem(&app, &staff, &[("code", &code), ("check_code", "")]).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("id=\"check-code-error\"")
            && html.contains("6 桁の確認コードを入力してください"),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{code}\"")),
        "what was typed stays"
    );
    let (status, html) = redeem(&app, &staff, &[("code", ""), ("check_code", "12a")]).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("id=\"coupon-code-error\"") && html.contains("確認コードは 6 桁の数字です"),
        "{html}"
    );
    let (status, html) = redeem(&app, &staff, &[("code", "AB!CD"), ("check_code", "123456")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("使えない文字"), "{html}");

    // The previous step's code is still accepted (it takes a moment to type).
    let check = code_at(&secret, 1).await;
    let (_, html) = redeem(&app, &staff, &[("code", &code), ("check_code", &check)]).await;
    assert_eq!(outcome(&html), "ok", "{html}");
}

#[actix_web::test]
async fn undo_within_the_window() {
    let app = spawn_app().await;
    let (_, staff) = app.console_user("staff").await;
    let (code, secret) = claimed(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active", "uses_per_coupon": 2}),
    )
    .await;
    let check = code_at(&secret, 0).await;
    let (_, html) = redeem(&app, &staff, &[("code", &code), ("check_code", &check)]).await;
    assert_eq!(outcome(&html), "ok");
    assert!(html.contains("残り 1 回"), "{html}");
    let undo_url = html
        .split("action=\"")
        .find(|s| s.starts_with("/merchant/redeem/"))
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let res = console_post(&app, &staff, "/merchant/redeem", &undo_url, &[]).await;
    let html = res.text().await.unwrap();
    assert_eq!(outcome(&html), "undone");
    let left = async || -> i32 {
        app.db
            .client()
            .await
            .query_one("SELECT uses_left FROM coupons WHERE code = $1", &[&code])
            .await
            .unwrap()
            .get(0)
    };
    assert_eq!(left().await, 2);
    let res = console_post(&app, &staff, "/merchant/redeem", &undo_url, &[]).await;
    assert_eq!(outcome(&res.text().await.unwrap()), "already_undone");

    // Past the window, refused.
    let check = code_at(&secret, 0).await;
    let (_, html) = redeem(&app, &staff, &[("code", &code), ("check_code", &check)]).await;
    assert_eq!(outcome(&html), "ok");
    app.db
        .client()
        .await
        .execute("UPDATE redemptions SET redeemed_at = now() - interval '1 hour' WHERE undone_at IS NULL", &[])
        .await
        .unwrap();
    let undo_url = html
        .split("action=\"")
        .find(|s| s.starts_with("/merchant/redeem/"))
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let res = console_post(&app, &staff, "/merchant/redeem", &undo_url, &[]).await;
    assert_eq!(outcome(&res.text().await.unwrap()), "undo_window_passed");
    assert_eq!(left().await, 1);

    // Without the session's CSRF token, nothing.
    let res = staff
        .post(app.url(&undo_url))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[actix_web::test]
async fn coupons_and_redemptions_of_another_tenant_are_unknown() {
    let app = spawn_app().await;
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let (_, staff) = app.console_user("staff").await;
    let (code, secret) = claimed(
        &other,
        json!({"name": "x", "total_limit": 5, "status": "active"}),
    )
    .await;
    // Even with the right check code, another merchant's coupon does not exist here.
    let check = code_at(&secret, 0).await;
    let (_, html) = redeem(&app, &staff, &[("code", &code), ("check_code", &check)]).await;
    assert_eq!(outcome(&html), "unknown_code");
    assert!(html.contains("このコードのクーポンはありません"));

    // Another tenant's redemption cannot be undone from here, nor its store chosen.
    let (status, body) = other.redeem(&code, json!({})).await;
    assert_eq!(status, 201);
    let id = body["redemption"]["id"].as_str().unwrap();
    let res = console_post(
        &app,
        &staff,
        "/merchant/redeem",
        &format!("/merchant/redeem/{id}/undo"),
        &[],
    )
    .await;
    assert_eq!(res.status(), 404);
    let their_store = add_store(&other, "他社の店", "OTHER").await;
    add_store(&app, "渋谷店", "SHIBUYA").await;
    add_store(&app, "新宿店", "SHINJUKU").await;
    let (mine, secret) = claimed(
        &app,
        json!({"name": "y", "total_limit": 5, "status": "active"}),
    )
    .await;
    let check = code_at(&secret, 0).await;
    for store in ["", their_store.as_str(), "not-a-uuid"] {
        let (status, html) = redeem(
            &app,
            &staff,
            &[("code", &mine), ("check_code", &check), ("store_id", store)],
        )
        .await;
        assert_eq!(status, 422, "{store}");
        assert!(html.contains("id=\"store-error\"") && html.contains("店舗を選んでください"));
    }
}

#[actix_web::test]
async fn the_store_choice_is_remembered_and_states_are_told() {
    let app = spawn_app().await;
    add_store(&app, "渋谷店", "SHIBUYA").await;
    let shinjuku = add_store(&app, "新宿店", "SHINJUKU").await;
    let (_, staff) = app.console_user("staff").await;
    let (_, html) = console_page(&app, &staff, "/merchant/redeem").await;
    assert!(!html.contains(" selected>"), "two stores: no guess");

    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (code, secret) = claimed(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active", "use_starts_at": later}),
    )
    .await;
    let check = code_at(&secret, 0).await;
    let (_, html) = redeem(
        &app,
        &staff,
        &[
            ("code", &code),
            ("check_code", &check),
            ("store_id", &shinjuku),
        ],
    )
    .await;
    assert_eq!(outcome(&html), "not_yet_valid");
    assert!(html.contains("利用開始"), "{html}");
    let (_, html) = console_page(&app, &staff, "/merchant/redeem").await;
    assert!(
        html.contains(&format!("<option value=\"{shinjuku}\" selected>")),
        "the last store is remembered"
    );

    app.db
        .client()
        .await
        .execute("UPDATE coupons SET valid_from = now() - interval '2 days', expires_at = now() - interval '1 minute'", &[])
        .await
        .unwrap();
    let (_, html) = redeem(
        &app,
        &staff,
        &[
            ("code", &code),
            ("check_code", &check),
            ("store_id", &shinjuku),
        ],
    )
    .await;
    assert_eq!(outcome(&html), "expired");
    assert!(html.contains("有効期限"), "{html}");
}

#[actix_web::test]
async fn every_role_may_redeem_and_only_managers_up_manage_stores() {
    let app = spawn_app().await;
    for role in ["owner", "admin", "manager", "staff"] {
        let (_, client) = app.console_user(role).await;
        let (status, _) = console_page(&app, &client, "/merchant/redeem").await;
        assert_eq!(status, 200, "{role}");
        let (status, _) = console_page(&app, &client, "/merchant/stores").await;
        assert_eq!(status, if role == "staff" { 403 } else { 200 }, "{role}");
    }
    // Not signed in: to the sign-in page.
    let browser = crate::helpers::html_client(Some("ja"));
    let res = browser
        .get(app.url("/merchant/redeem"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // The screen in English too.
    let email = app.add_user("staff").await;
    let english = app.console_lang(&email, "en").await;
    let (_, html) = console_page(&app, &english, "/merchant/redeem").await;
    assert!(
        html.contains("Check code (6 digits)") && html.contains("lang=\"en\""),
        "{html}"
    );
}
