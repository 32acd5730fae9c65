//! The staff redemption screen: the check code always required and always checked, the
//! full-screen outcomes, the store and staff recorded, undo, and tenant boundaries.

use serde_json::json;

use crate::check_codes::{claimed, code_at, wrong_code};
use crate::console_helpers::{console_page, console_post};
use crate::helpers::{spawn_app, spawn_app_on, test_settings, TestApp};

/// The `data-outcome` of a result page.
pub fn outcome(html: &str) -> &str {
    let at = html
        .find("id=\"redeem-result\" data-outcome=\"")
        .expect("a result")
        + 33;
    html[at..].split('"').next().unwrap()
}

pub async fn add_store(app: &TestApp, name: &str, code: &str) -> String {
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
    app.db_value("SELECT id::text FROM stores WHERE code = $1", &[&code])
        .await
}

pub async fn redeem(
    app: &TestApp,
    client: &reqwest::Client,
    fields: &[(&str, &str)],
) -> (u16, String) {
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
        app.db_value("SELECT uses_left FROM coupons WHERE code = $1", &[&code])
            .await
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

/// Stands in for a camera and a browser with BarcodeDetector (headless Chromium on Linux
/// has neither): a canvas stream, and a detector that sees `code` on its second look.
const FAKE_CAMERA: &str = r#"
const code = arguments[0];
let looks = 0;
window.BarcodeDetector = function (options) { this.formats = options.formats; };
window.BarcodeDetector.prototype.detect = function () {
  looks += 1;
  return Promise.resolve(looks < 2 ? [] : [{ rawValue: code, format: 'qr_code' }]);
};
navigator.mediaDevices.getUserMedia = function () {
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  canvas.getContext('2d').fillRect(0, 0, 64, 64);
  return Promise.resolve(canvas.captureStream(5));
};
// The page's script decided at load that there was no camera: load it again.
const again = document.createElement('script');
again.src = document.querySelector('script[src*="console"]').src;
document.head.appendChild(again);
"#;

#[actix_web::test]
async fn in_a_browser_the_camera_fills_the_code_and_every_screen_is_accessible() {
    use crate::axe::assert_accessible;
    use crate::helpers::{browser, chromedriver, eventually};
    use fantoccini::{Client, Locator};
    use std::time::Duration;

    async fn fill(client: &Client, css: &str, value: &str) {
        let input = client.find(Locator::Css(css)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    async fn js(client: &Client, script: &str) -> serde_json::Value {
        client.execute(script, vec![]).await.unwrap()
    }
    let driver = chromedriver().await;
    let app = spawn_app().await;
    add_store(&app, "渋谷店", "SHIBUYA").await;
    let staff = app.add_user("staff").await;
    let (code, secret) = claimed(
        &app,
        json!({"name": "春のコーヒーフェア", "total_limit": 5, "status": "active",
               "discount": {"kind": "percent_off", "percent": 10}}),
    )
    .await;

    let till = browser(&driver).await;
    till.goto(&app.url("/merchant/login?lang=ja"))
        .await
        .unwrap();
    fill(&till, "#email", &staff).await;
    fill(&till, "#password", crate::console_helpers::PASSWORD).await;
    till.find(Locator::Css("#login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the staff screen opens",
        async || {
            let url = till.current_url().await.ok()?;
            (url.path() == "/merchant/redeem").then_some(())
        },
    )
    .await;
    // Without BarcodeDetector the camera button stays hidden; typing always works.
    let has_detector = js(&till, "return 'BarcodeDetector' in window;").await;
    let shown = till
        .find(Locator::Css("#scan-button"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap();
    assert_eq!(json!(shown), has_detector);
    assert_accessible(&till, "staff redemption screen").await;

    till.execute(FAKE_CAMERA, vec![json!(code)]).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the camera button appears",
        async || {
            let b = till.find(Locator::Css("#scan-button")).await.ok()?;
            b.is_displayed().await.ok()?.then_some(b)
        },
    )
    .await
    .click()
    .await
    .unwrap();
    eventually(
        Duration::from_secs(10),
        "the scanned code is filled in",
        async || {
            let v = js(
                &till,
                "return document.getElementById('coupon-code').value;",
            )
            .await;
            (v == json!(code)).then_some(())
        },
    )
    .await;
    let state = js(
        &till,
        "return [document.activeElement.id, document.getElementById('scan-live').hidden,
                 document.getElementById('scan-video').srcObject === null];",
    )
    .await;
    assert_eq!(
        state,
        json!(["check-code", true, true]),
        "camera off, on to the check code"
    );

    // A wrong code first, then the right one: each answer fills the screen. (A fresh page:
    // the script loaded twice above would count each submit twice.)
    till.goto(&app.url("/merchant/redeem")).await.unwrap();
    fill(&till, "#coupon-code", &code).await;
    fill(&till, "#check-code", &wrong_code(&secret).await).await;
    till.find(Locator::Css("#redeem-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let outcome_of = async |want: &str| {
        eventually(Duration::from_secs(15), want, async || {
            let el = till.find(Locator::Css("#redeem-result")).await.ok()?;
            (el.attr("data-outcome").await.ok()?.as_deref() == Some(want)).then_some(())
        })
        .await
    };
    outcome_of("wrong_check_code").await;
    assert_accessible(&till, "wrong check code").await;
    till.find(Locator::Css("#retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&till, "#check-code", &code_at(&secret, 0).await).await;
    till.find(Locator::Css("#redeem-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    outcome_of("ok").await;
    let discount = till
        .find(Locator::Css("#result-discount"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(discount, "10% OFF");
    assert_accessible(&till, "redeemed").await;
    till.find(Locator::Css("#undo-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    outcome_of("undone").await;
    assert_accessible(&till, "undone").await;

    // The stores page, as a manager.
    let manager = app.add_user("manager").await;
    let desk = browser(&driver).await;
    desk.goto(&app.url("/merchant/login?lang=en"))
        .await
        .unwrap();
    fill(&desk, "#email", &manager).await;
    fill(&desk, "#password", crate::console_helpers::PASSWORD).await;
    desk.find(Locator::Css("#login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "signed in", async || {
        let url = desk.current_url().await.ok()?;
        (url.path() == "/merchant").then_some(())
    })
    .await;
    desk.goto(&app.url("/merchant/stores")).await.unwrap();
    assert_accessible(&desk, "stores").await;
}
