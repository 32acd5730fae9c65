//! Consumer pages over real HTTP, as a browser without JavaScript would use them.

use reqwest::header;
use serde_json::json;

use crate::helpers::{
    csrf_of, fresh_database, html_client, location, page, post_form, spawn_app, spawn_app_on,
    test_settings, TestApp,
};

async fn campaign(app: &TestApp, body: serde_json::Value) -> (String, String) {
    let c = app.create_campaign(body).await;
    (
        c["slug"].as_str().unwrap().to_string(),
        c["id"].as_str().unwrap().to_string(),
    )
}

/// Sends a confirm page's form: its CSRF token and its single-use token.
async fn post_confirm(client: &reqwest::Client, url: &str, confirm: &str) -> reqwest::Response {
    let at = confirm
        .find("name=\"use_token\" value=\"")
        .expect("a use token")
        + 24;
    let token = confirm[at..].split('"').next().unwrap();
    client
        .post(url)
        .form(&[("csrf", csrf_of(confirm).as_str()), ("use_token", token)])
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn claim_see_and_use_a_coupon_without_javascript() {
    let app = spawn_app().await;
    let (slug, _) = campaign(
        &app,
        json!({"name": "春のコーヒーフェア", "total_limit": 5, "status": "active",
               "discount": {"kind": "amount_off_yen", "amount": 300}, "terms": "お一人様1回限り"}),
    )
    .await;
    let phone = html_client(Some("ja,en;q=0.5"));
    let res = phone
        .get(app.url(&format!("/c/{slug}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!csp.contains("unsafe-inline"));
    let html = res.text().await.unwrap();
    assert!(
        html.contains("春のコーヒーフェア")
            && html.contains("300円引き")
            && html.contains("残り 5 枚"),
        "{html}"
    );
    assert!(html.contains("data-state=\"open\"") && !html.contains("<script>"));

    let res = post_form(
        &phone,
        &app.url(&format!("/c/{slug}/claim")),
        &csrf_of(&html),
    )
    .await;
    assert_eq!(res.status(), 303);
    let coupon_url = location(&res).to_string();
    assert!(coupon_url.starts_with("/my/coupons/"), "{coupon_url}");

    let (status, html) = page(&phone, &app.url(&coupon_url)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"check-code\"") && html.contains("id=\"clock\""),
        "{html}"
    );
    let (_, confirm) = page(&phone, &app.url(&format!("{coupon_url}/use"))).await;
    assert!(
        confirm.contains("スタッフにこの画面を見せてください"),
        "{confirm}"
    );
    // A second tab with its own confirm form (its own single-use token).
    let (_, second_tab) = page(&phone, &app.url(&format!("{coupon_url}/use"))).await;
    let res = post_confirm(&phone, &app.url(&format!("{coupon_url}/use")), &confirm).await;
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (303, coupon_url.as_str())
    );
    let (_, used) = page(&phone, &app.url(&coupon_url)).await;
    assert!(
        used.contains("id=\"used-stamp\"") && used.contains("使用済み"),
        "{used}"
    );

    // A second press from a second tab is told clearly.
    let res = post_confirm(&phone, &app.url(&format!("{coupon_url}/use")), &second_tab).await;
    assert!(location(&res).ends_with("?r=already_used"));
    let (_, again) = page(&phone, &app.url(location(&res))).await;
    assert!(again.contains("このクーポンはすでに使用されています"));

    // Back on the claim page: already claimed, with a link to the coupon.
    let (_, back) = page(&phone, &app.url(&format!("/c/{slug}"))).await;
    assert!(back.contains("data-state=\"claimed\"") && back.contains(&coupon_url));
    let (_, wallet) = page(&phone, &app.url("/my")).await;
    assert!(wallet.contains(&coupon_url) && wallet.contains("春のコーヒーフェア"));

    // Another device cannot see this coupon.
    let (status, _) = page(&html_client(Some("ja")), &app.url(&coupon_url)).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn forms_need_the_sessions_csrf_token() {
    let app = spawn_app().await;
    let (slug, _) = campaign(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active"}),
    )
    .await;
    let phone = html_client(Some("ja"));
    let (_, html) = page(&phone, &app.url(&format!("/c/{slug}"))).await;
    let res = post_form(&phone, &app.url(&format!("/c/{slug}/claim")), "forged").await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("csrf_failed"));
    // A token from another session is no good either.
    let other = html_client(Some("ja"));
    let res = post_form(
        &other,
        &app.url(&format!("/c/{slug}/claim")),
        &csrf_of(&html),
    )
    .await;
    assert_eq!(res.status(), 403);
}

#[actix_web::test]
async fn english_by_accept_language_or_switch() {
    let app = spawn_app().await;
    let (slug, _) = campaign(
        &app,
        json!({"name": "Spring", "total_limit": 5, "status": "active",
        "discount": {"kind": "percent_off", "percent": 10}}),
    )
    .await;
    let (_, html) = page(
        &html_client(Some("en-US,en;q=0.9")),
        &app.url(&format!("/c/{slug}")),
    )
    .await;
    assert!(
        html.contains("Get this coupon")
            && html.contains("10% off")
            && html.contains("lang=\"en\"")
    );
    let phone = html_client(Some("ja"));
    let (_, html) = page(&phone, &app.url(&format!("/c/{slug}?lang=en"))).await;
    assert!(html.contains("Get this coupon"));
    // The choice sticks.
    let (_, html) = page(&phone, &app.url(&format!("/c/{slug}"))).await;
    assert!(html.contains("5 left"), "{html}");
}

#[actix_web::test]
async fn every_claim_page_state_is_clear() {
    let app = spawn_app().await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let (soon, _) = campaign(
        &app,
        json!({"name": "s", "total_limit": 5, "status": "active", "claim_starts_at": later}),
    )
    .await;
    let (_, html) = page(&html_client(Some("ja")), &app.url(&format!("/c/{soon}"))).await;
    assert!(
        html.contains("data-state=\"not_started\"") && html.contains("data-countdown-to"),
        "{html}"
    );

    let (one, id) = campaign(
        &app,
        json!({"name": "o", "total_limit": 1, "status": "active"}),
    )
    .await;
    let first = html_client(Some("ja"));
    let (_, html) = page(&first, &app.url(&format!("/c/{one}"))).await;
    let res = post_form(
        &first,
        &app.url(&format!("/c/{one}/claim")),
        &csrf_of(&html),
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(&html_client(Some("ja")), &app.url(&format!("/c/{one}"))).await;
    assert!(
        html.contains("data-state=\"sold_out\"") && html.contains("配布終了"),
        "{html}"
    );

    app.patch(&format!("/api/v1/campaigns/{id}"))
        .json(&json!({"action": "pause"}))
        .send()
        .await
        .unwrap();
    let (_, html) = page(&html_client(Some("en")), &app.url(&format!("/c/{one}"))).await;
    assert!(html.contains("data-state=\"paused\""), "{html}");

    let (lost, _) = campaign(
        &app,
        json!({"name": "l", "total_limit": 5, "status": "active", "win_probability": 0.000001}),
    )
    .await;
    let unlucky = html_client(Some("ja"));
    let (_, html) = page(&unlucky, &app.url(&format!("/c/{lost}"))).await;
    let res = post_form(
        &unlucky,
        &app.url(&format!("/c/{lost}/claim")),
        &csrf_of(&html),
    )
    .await;
    assert_eq!(location(&res), format!("/c/{lost}"));
    let (_, html) = page(&unlucky, &app.url(&format!("/c/{lost}"))).await;
    assert!(
        html.contains("data-state=\"lottery_lost\"") && html.contains("はずれ"),
        "{html}"
    );

    let (status, html) = page(&html_client(Some("ja")), &app.url("/c/nonexistent")).await;
    assert_eq!(status, 404);
    assert!(html.contains("ページが見つかりません"), "{html}");
}

#[actix_web::test]
async fn qr_codes_assets_and_themes_are_served() {
    let app = spawn_app().await;
    let (slug, _) = campaign(
        &app,
        json!({"name": "q", "total_limit": 5, "status": "active"}),
    )
    .await;
    let res = app
        .client
        .get(app.url(&format!("/c/{slug}/qr.svg")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/svg+xml");
    assert!(res.text().await.unwrap().contains("<svg"));
    let res = app
        .client
        .get(app.url(&format!("/c/{slug}/qr.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(&res.bytes().await.unwrap()[..8], b"\x89PNG\r\n\x1a\n");

    let (_, html) = page(&html_client(Some("ja")), &app.url(&format!("/c/{slug}"))).await;
    let css = html
        .split("href=\"/assets/app.")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let res = app
        .client
        .get(app.url(&format!("/assets/app.{css}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(
        app.client
            .get(app.url("/assets/app.css"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let res = app
        .client
        .get(app.url(&format!("/t/{}/theme.css", app.tenant_id)))
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("--brand:#"));
}

#[actix_web::test]
async fn a_flood_from_one_device_gets_429_with_retry_after() {
    let app = spawn_app().await;
    let (slug, _) = campaign(
        &app,
        json!({"name": "r", "total_limit": 5, "status": "active"}),
    )
    .await;
    let phone = html_client(Some("ja"));
    // The page visit gives the device its cookie; the device limit is the tighter one.
    page(&phone, &app.url(&format!("/c/{slug}"))).await;
    let mut limited = None;
    for _ in 0..200 {
        let res = phone
            .get(app.url(&format!("/c/{slug}/status")))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("rate limited within 200 requests");
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert!(res.text().await.unwrap().contains("rate_limited"));
}

#[actix_web::test]
async fn a_sign_in_campaign_sends_devices_to_sign_in_first() {
    let app = spawn_app().await;
    let (slug, _) = campaign(
        &app,
        json!({"name": "members", "total_limit": 5, "status": "active", "signin": "required"}),
    )
    .await;
    let phone = html_client(Some("ja"));
    let (_, html) = page(&phone, &app.url(&format!("/c/{slug}"))).await;
    assert!(
        html.contains("id=\"signin-button\"") && !html.contains("id=\"claim-form\""),
        "{html}"
    );
    let res = post_form(
        &phone,
        &app.url(&format!("/c/{slug}/claim")),
        &csrf_of_session(&phone, &app, &slug).await,
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("/auth/signin?return_to=/c/{slug}"));
    let db = app.db.client().await;
    let n: i64 = db
        .query_one("SELECT count(*) FROM coupons", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "no device claim on a sign-in campaign");
}

/// The CSRF token of this browser's session, from a page that has a form.
async fn csrf_of_session(client: &reqwest::Client, app: &TestApp, slug: &str) -> String {
    let (slug2, _) = campaign(
        app,
        json!({"name": "any", "total_limit": 5, "status": "active"}),
    )
    .await;
    let _ = slug;
    let (_, html) = page(client, &app.url(&format!("/c/{slug2}"))).await;
    csrf_of(&html)
}

#[actix_web::test]
async fn behind_a_trusted_proxy_clients_are_limited_by_their_forwarded_address() {
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        s.pages.trust_forwarded_for = true;
        s.pages.per_ip_per_second = 1;
        s
    })
    .await;
    let (slug, _) = campaign(
        &app,
        json!({"name": "p", "total_limit": 5, "status": "active"}),
    )
    .await;
    let url = app.url(&format!("/c/{slug}/status"));
    let from = |ip: &str| app.client.get(&url).header("X-Forwarded-For", ip).send();
    let mut limited = false;
    for _ in 0..30 {
        if from("203.0.113.1").await.unwrap().status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "one client is limited");
    assert_eq!(
        from("203.0.113.2").await.unwrap().status(),
        200,
        "another client is not"
    );
}
