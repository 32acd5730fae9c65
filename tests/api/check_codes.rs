//! The coupon screen's check code in the API (current and previous step only; a wrong one
//! never redeems; a tenant may require it), the API's free-text store mapped onto stores,
//! and the consumer's single-use confirm token and staff QR code.

use std::time::Duration;

use chrono::Utc;
use ecoupon::domain::verification::{check_code, seconds_left};
use serde_json::json;

use crate::console_helpers::console_post;
use crate::helpers::{csrf_of, error_code, html_client, location, page, spawn_app, TestApp};

/// The default step of the coupon screen's code.
pub const STEP: u64 = 30;

/// A claimed coupon's code (canonical) and its secret, read back from the database.
pub async fn claimed(app: &TestApp, campaign: serde_json::Value) -> (String, Vec<u8>) {
    let c = app.create_campaign(campaign).await;
    let (status, body) = app.claim(c["id"].as_str().unwrap(), "someone").await;
    assert_eq!(status, 201, "{body}");
    let code = body["coupon"]["code"].as_str().unwrap().to_string();
    let secret = app
        .db
        .client()
        .await
        .query_one("SELECT secret FROM coupons WHERE code = $1", &[&code])
        .await
        .unwrap()
        .get(0);
    (code, secret)
}

/// The code `steps_back` steps before now, taken far enough from a step boundary that
/// "now" is still the same step when the server checks it.
pub async fn code_at(secret: &[u8], steps_back: i64) -> String {
    let now = Utc::now().timestamp();
    if seconds_left(now, STEP) < 5 {
        tokio::time::sleep(Duration::from_secs(seconds_left(now, STEP) + 1)).await;
    }
    let now = Utc::now().timestamp();
    check_code(secret, now - steps_back * STEP as i64, STEP)
}

/// Six digits that are neither the current nor the previous code.
pub async fn wrong_code(secret: &[u8]) -> String {
    let (now, prev) = (code_at(secret, 0).await, code_at(secret, 1).await);
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| *c != now && *c != prev)
        .unwrap()
}

async fn uses_left(app: &TestApp, code: &str) -> i32 {
    app.db_value("SELECT uses_left FROM coupons WHERE code = $1", &[&code])
        .await
}

#[actix_web::test]
async fn the_current_and_previous_codes_redeem_and_nothing_else_does() {
    let app = spawn_app().await;
    let (code, secret) = claimed(
        &app,
        json!({"name": "回数券", "total_limit": 5, "status": "active", "uses_per_coupon": 4}),
    )
    .await;

    let (status, body) = app
        .redeem(&code, json!({"check_code": code_at(&secret, 0).await}))
        .await;
    assert_eq!(
        (status, &body["redemption"]["uses_left"]),
        (201, &json!(3)),
        "{body}"
    );
    // Staff need a few seconds to type: the previous step's code still works.
    let (status, body) = app
        .redeem(&code, json!({"check_code": code_at(&secret, 1).await}))
        .await;
    assert_eq!(
        (status, &body["redemption"]["uses_left"]),
        (201, &json!(2)),
        "{body}"
    );

    // Two steps old (a screenshot), wrong, or not even six digits: 409 and nothing used.
    let stale = code_at(&secret, 2).await;
    let wrong = wrong_code(&secret).await;
    for bad in [stale.as_str(), wrong.as_str(), "12ab56", "1234567"] {
        let (status, body) = app.redeem(&code, json!({"check_code": bad})).await;
        assert_eq!(
            (status, error_code(&body)),
            (409, "wrong_check_code"),
            "{bad}: {body}"
        );
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("check code"));
    }
    assert_eq!(
        uses_left(&app, &code).await,
        2,
        "a wrong code never redeems"
    );
    let recorded: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM redemptions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 2);

    // Full-width digits from a Japanese keyboard are the same digits.
    let full_width: String = code_at(&secret, 0)
        .await
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
        .collect();
    let (status, body) = app.redeem(&code, json!({"check_code": full_width})).await;
    assert_eq!(status, 201, "{body}");
    // Without the requirement, no code (or an empty one) is fine.
    let (status, _) = app.redeem(&code, json!({"check_code": ""})).await;
    assert_eq!(status, 201);
    // A used coupon says so, whatever code comes with it.
    let (status, body) = app.redeem(&code, json!({"check_code": wrong})).await;
    assert_eq!((status, error_code(&body)), (409, "already_used"));
    let (status, body) = app.redeem(&code, json!({"check_code": 123456})).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "invalid_json"),
        "a number loses leading zeros"
    );
}

#[actix_web::test]
async fn guessing_check_codes_is_cut_off_after_ten_tries() {
    let app = spawn_app().await;
    let (code, secret) = claimed(
        &app,
        json!({"name": "guess", "total_limit": 5, "status": "active"}),
    )
    .await;
    let wrong = wrong_code(&secret).await;
    for _ in 0..10 {
        let (status, body) = app.redeem(&code, json!({"check_code": wrong})).await;
        assert_eq!((status, error_code(&body)), (409, "wrong_check_code"));
    }
    // Now even the right code waits: the guesser learns nothing more for a while.
    let right = code_at(&secret, 0).await;
    let (status, body) = app.redeem(&code, json!({"check_code": right})).await;
    assert_eq!(
        (status, error_code(&body)),
        (429, "too_many_check_code_attempts")
    );
    assert_eq!(uses_left(&app, &code).await, 1, "nothing was used");
    // Other coupons are not affected.
    let (other, other_secret) = claimed(
        &app,
        json!({"name": "other", "total_limit": 5, "status": "active"}),
    )
    .await;
    let right = code_at(&other_secret, 0).await;
    assert_eq!(
        app.redeem(&other, json!({"check_code": right})).await.0,
        201
    );
}

#[actix_web::test]
async fn a_tenant_can_require_the_check_code() {
    let app = spawn_app().await;
    let (code, secret) = claimed(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active", "uses_per_coupon": 3}),
    )
    .await;
    let tenant: serde_json::Value = app
        .get("/api/v1/tenant")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenant["tenant"]["require_check_code"], false);

    let res = app
        .patch("/api/v1/tenant")
        .json(&json!({"require_check_code": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tenant"]["require_check_code"], true);
    let tenant: serde_json::Value = app
        .get("/api/v1/tenant")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenant["tenant"]["require_check_code"], true);

    for body in [json!({}), json!({"check_code": "", "store": "Shibuya"})] {
        let (status, answer) = app.redeem(&code, body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (422, "check_code_required"),
            "{answer}"
        );
    }
    let res = app
        .post(&format!("/api/v1/coupons/{code}/redemptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "no body at all is no code either");
    assert_eq!(uses_left(&app, &code).await, 3);
    let wrong = wrong_code(&secret).await;
    let (status, body) = app.redeem(&code, json!({"check_code": wrong})).await;
    assert_eq!((status, error_code(&body)), (409, "wrong_check_code"));
    let (status, _) = app
        .redeem(&code, json!({"check_code": code_at(&secret, 0).await}))
        .await;
    assert_eq!(status, 201);

    // Other settings leave it as it is; false lifts it.
    let res = app
        .patch("/api/v1/tenant")
        .json(&json!({"brand_color": "#1d4ed8"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tenant"]["require_check_code"], true, "{body}");
    let res = app
        .patch("/api/v1/tenant")
        .json(&json!({"require_check_code": "yes"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    app.patch("/api/v1/tenant")
        .json(&json!({"require_check_code": false}))
        .send()
        .await
        .unwrap();
    let (status, body) = app.redeem(&code, json!({})).await;
    assert_eq!(status, 201, "{body}");
}

#[actix_web::test]
async fn the_api_store_text_maps_onto_a_store() {
    let app = spawn_app().await;
    let (_, manager) = app.console_user("manager").await;
    for (name, code) in [("渋谷店", "SHIBUYA"), ("新宿店", "SHINJUKU")] {
        let res = console_post(
            &app,
            &manager,
            "/merchant/stores",
            "/merchant/stores",
            &[("name", name), ("code", code)],
        )
        .await;
        assert_eq!(res.status(), 303);
    }
    let db = app.db.client().await;
    let store_id = |code: &'static str| {
        let db = &db;
        async move {
            db.query_one("SELECT id::text FROM stores WHERE code = $1", &[&code])
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    let (code, _) = claimed(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active", "uses_per_coupon": 5}),
    )
    .await;
    // By code in any case, by exact name; anything else stays free text.
    for (text, expected) in [
        ("shibuya", Some(store_id("SHIBUYA").await)),
        ("新宿店", Some(store_id("SHINJUKU").await)),
        ("Ikebukuro pop-up", None),
        ("新宿", None),
    ] {
        let (status, body) = app.redeem(&code, json!({"store": text})).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["redemption"]["store_id"].as_str().map(str::to_owned),
            expected,
            "{text}"
        );
        let row = db
            .query_one(
                "SELECT store, store_id::text FROM redemptions WHERE id = $1::text::uuid",
                &[&body["redemption"]["id"].as_str().unwrap()],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), text, "the text is kept as given");
        assert_eq!(row.get::<_, Option<String>>(1), expected);
    }
}

/// The confirm page's form, and its hidden single-use token.
fn use_token_of(html: &str) -> String {
    let at = html
        .find("name=\"use_token\" value=\"")
        .expect("a use token")
        + 24;
    html[at..].split('"').next().unwrap().to_string()
}

#[actix_web::test]
async fn a_double_submit_of_the_confirm_form_spends_one_use() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(
            json!({"name": "回数券", "total_limit": 5, "status": "active", "uses_per_coupon": 3}),
        )
        .await;
    let slug = c["slug"].as_str().unwrap();
    let phone = html_client(Some("ja"));
    let (_, claim) = page(&phone, &app.url(&format!("/c/{slug}"))).await;
    let res = phone
        .post(app.url(&format!("/c/{slug}/claim")))
        .form(&[("csrf", csrf_of(&claim))])
        .send()
        .await
        .unwrap();
    let coupon_url = location(&res).to_string();
    let coupon_id = coupon_url.rsplit('/').next().unwrap().to_string();
    let left = async || -> i32 {
        app.db_value(
            "SELECT uses_left FROM coupons WHERE id = $1::text::uuid",
            &[&coupon_id],
        )
        .await
    };

    let (_, confirm) = page(&phone, &app.url(&format!("{coupon_url}/use"))).await;
    let form = [
        ("csrf", csrf_of(&confirm)),
        ("use_token", use_token_of(&confirm)),
    ];
    let send = || {
        phone
            .post(app.url(&format!("{coupon_url}/use")))
            .form(&form)
            .send()
    };
    // Two at once (a double tap), then once more (a resubmitted page).
    let (a, b) = tokio::join!(send(), send());
    let c = send().await.unwrap();
    for res in [a.unwrap(), b.unwrap(), c] {
        assert_eq!(
            (res.status().as_u16(), location(&res)),
            (303, coupon_url.as_str())
        );
    }
    assert_eq!(left().await, 2, "one confirm form, one use");
    let (_, shown) = page(&phone, &app.url(&coupon_url)).await;
    assert!(shown.contains("残り 2 回"), "{shown}");

    // A new confirm page is a new use.
    let (_, confirm) = page(&phone, &app.url(&format!("{coupon_url}/use"))).await;
    let res = phone
        .post(app.url(&format!("{coupon_url}/use")))
        .form(&[
            ("csrf", csrf_of(&confirm)),
            ("use_token", use_token_of(&confirm)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), coupon_url);
    assert_eq!(left().await, 1);

    // No token, a made-up one, or an expired one: nothing is used, and the page says why.
    let (_, confirm) = page(&phone, &app.url(&format!("{coupon_url}/use"))).await;
    let token = use_token_of(&confirm);
    app.db
        .client()
        .await
        .execute("UPDATE coupon_use_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL", &[])
        .await
        .unwrap();
    for token in ["", "made-up", token.as_str()] {
        let res = phone
            .post(app.url(&format!("{coupon_url}/use")))
            .form(&[("csrf", csrf_of(&confirm).as_str()), ("use_token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&res), format!("{coupon_url}?r=confirm_expired"));
    }
    assert_eq!(left().await, 1);
    let (_, notice) = page(&phone, &app.url(&format!("{coupon_url}?r=confirm_expired"))).await;
    assert!(
        notice.contains("確認画面の有効期限が切れました"),
        "{notice}"
    );

    // Two tabs, each with its own form, for the last use: the second is told it is used.
    let url = app.url(&format!("{coupon_url}/use"));
    let (_, tab_a) = page(&phone, &url).await;
    let (_, tab_b) = page(&phone, &url).await;
    for (tab, to) in [
        (&tab_a, coupon_url.clone()),
        (&tab_b, format!("{coupon_url}?r=already_used")),
    ] {
        let form = [("csrf", csrf_of(tab)), ("use_token", use_token_of(tab))];
        let res = phone.post(&url).form(&form).send().await.unwrap();
        assert_eq!(location(&res), to);
    }
    assert_eq!(left().await, 0);
}

#[actix_web::test]
async fn the_coupon_page_shows_a_qr_code_of_the_code_only() {
    use qrcode::render::svg;
    use qrcode::{EcLevel, QrCode};
    let app = spawn_app().await;
    let c = app
        .create_campaign(json!({"name": "x", "total_limit": 5, "status": "active"}))
        .await;
    let slug = c["slug"].as_str().unwrap();
    let phone = html_client(Some("ja"));
    let (_, claim) = page(&phone, &app.url(&format!("/c/{slug}"))).await;
    let res = phone
        .post(app.url(&format!("/c/{slug}/claim")))
        .form(&[("csrf", csrf_of(&claim))])
        .send()
        .await
        .unwrap();
    let coupon_url = location(&res).to_string();
    let (_, html) = page(&phone, &app.url(&coupon_url)).await;
    let qr_url = format!("{coupon_url}/qr.svg");
    assert!(
        html.contains(&format!("src=\"{qr_url}\"")) && html.contains("id=\"coupon-qr\""),
        "{html}"
    );

    let res = phone.get(app.url(&qr_url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let body = res.text().await.unwrap();
    // The same QR code as the coupon code alone would make: no secret, no check code.
    let code: String = app
        .db
        .client()
        .await
        .query_one("SELECT code FROM coupons", &[])
        .await
        .unwrap()
        .get(0);
    let expected = QrCode::with_error_correction_level(code.as_bytes(), EcLevel::M)
        .unwrap()
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    assert_eq!(body, expected);
    // Only the coupon's owner gets it.
    let (status, _) = page(&html_client(Some("ja")), &app.url(&qr_url)).await;
    assert_eq!(status, 404);
}
