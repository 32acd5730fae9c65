//! The consumer flow in headless Chromium (Debian `chromium` + `chromium-driver`), driven
//! over WebDriver by fantoccini: claim, see the coupon, watch the check code change, use it,
//! see 使用済み; a second window of the same person sees it used; the next device sees sold
//! out. Screenshots of each page, in Japanese and English, go to `test-artifacts/`, and
//! axe-core checks each of them against WCAG 2 A/AA.

use std::path::PathBuf;
use std::time::Duration;

use ecoupon::config::{ClientSettings, Secret};
use fantoccini::{Client, Locator};
use serde_json::json;

use crate::axe::assert_accessible;
use crate::helpers::{
    browser, chromedriver, eventually, fresh_database, spawn_app_on, test_settings,
};

pub(crate) fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the page and fails if axe finds it inaccessible.
async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
    assert_accessible(client, name).await;
}

/// Waits until the element's visible text contains `needle` (animations may hide it briefly).
async fn wait_text(client: &Client, css: &str, needle: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("{css} shows {needle:?}"),
        async || text_of(client, css).await.contains(needle).then_some(()),
    )
    .await;
}

/// Waits until the element's animations have finished, so a screenshot shows where they land.
async fn wait_still(client: &Client, css: &str) {
    let script = "return document.querySelector(arguments[0]).getAnimations()
                  .every(a => a.playState === 'finished');";
    eventually(
        Duration::from_secs(10),
        &format!("{css} stops animating"),
        async || {
            let done = client.execute(script, vec![json!(css)]).await.unwrap();
            (done == json!(true)).then_some(())
        },
    )
    .await;
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .text()
        .await
        .unwrap()
}

#[actix_web::test]
async fn claim_watch_the_code_use_and_see_it_used() {
    let driver = chromedriver().await;
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        // The test clock: codes rotate every 2 s instead of 30.
        s.pages.code_step = Duration::from_secs(2);
        // Providers only so the sign-in page lists them; no sign-in is started here.
        let client = |id: &str| ClientSettings {
            client_id: id.into(),
            client_secret: Secret::new("unused".into()),
            issuer: Some("http://127.0.0.1:9".into()),
        };
        s.signin.line = Some(client("line"));
        s.signin.google = Some(client("google"));
        s
    })
    .await;
    let c = app
        .create_campaign(json!({
            "name": "春のコーヒーフェア", "total_limit": 1, "status": "active",
            "description": "期間中、全店でドリンクが300円引きになります。",
            "terms": "お一人様1回限り。他の割引との併用はできません。",
            "discount": {"kind": "amount_off_yen", "amount": 300}, "valid_for_seconds": 604800
        }))
        .await;
    let claim_url = c["claim_url"].as_str().unwrap().to_string();

    let phone = browser(&driver).await;
    phone.goto(&format!("{claim_url}?lang=en")).await.unwrap();
    shot(&phone, "claim_en").await;
    phone.goto(&format!("{claim_url}?lang=ja")).await.unwrap();
    assert_eq!(
        phone
            .find(Locator::Css("#claim-state"))
            .await
            .unwrap()
            .attr("data-state")
            .await
            .unwrap()
            .as_deref(),
        Some("open")
    );
    shot(&phone, "claim_ja").await;

    // 1. Claim anonymously.  2. See the coupon.
    phone
        .find(Locator::Css("#claim-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let first = text_of(&phone, "#check-code").await;
    let coupon_url = phone.current_url().await.unwrap().to_string();
    assert!(coupon_url.contains("/my/coupons/"), "{coupon_url}");
    assert_eq!(first.len(), 6, "a six-digit code: {first}");
    let clock = text_of(&phone, "#clock").await;
    assert!(
        clock.contains(':') && !clock.contains('-'),
        "the live clock runs: {clock}"
    );
    shot(&phone, "coupon_ja").await;

    // 3. The code changes when its step passes (2 s here).
    eventually(
        Duration::from_secs(10),
        "the check code rotates",
        async || (text_of(&phone, "#check-code").await != first).then_some(()),
    )
    .await;

    phone.goto(&format!("{coupon_url}?lang=en")).await.unwrap();
    text_of(&phone, "#check-code").await;
    shot(&phone, "coupon_en").await;
    phone.goto(&format!("{coupon_url}?lang=ja")).await.unwrap();

    // 4. Press use and confirm.  5. See USED.
    phone
        .find(Locator::Css("#use-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    phone
        .wait()
        .for_element(Locator::Css("#confirm-use-button"))
        .await
        .unwrap();
    shot(&phone, "confirm_ja").await;
    let mut confirm_url = phone.current_url().await.unwrap();
    confirm_url.set_query(Some("lang=en"));
    phone.goto(confirm_url.as_str()).await.unwrap();
    text_of(&phone, "#confirm-use-button").await;
    shot(&phone, "confirm_en").await;
    // Back in Japanese: the form just loaded carries a fresh single-use token.
    confirm_url.set_query(Some("lang=ja"));
    phone.goto(confirm_url.as_str()).await.unwrap();
    phone
        .find(Locator::Css("#confirm-use-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&phone, "#used-stamp", "使用済み").await;
    // Let the stamp land before the picture.
    wait_still(&phone, "#used-stamp").await;
    shot(&phone, "used_ja").await;

    // A second window of the same person (same session cookie) sees it used.
    let cookie = phone.get_named_cookie("ecoupon_session").await.unwrap();
    let second = browser(&driver).await;
    second.goto(&app.url("/livez")).await.unwrap();
    second.add_cookie(cookie).await.unwrap();
    second.goto(&format!("{coupon_url}?lang=en")).await.unwrap();
    wait_text(&second, "#used-stamp", "USED").await;
    wait_still(&second, "#used-stamp").await;
    shot(&second, "used_en").await;

    // The next device, after the last coupon, sees sold out.
    let late = browser(&driver).await;
    late.goto(&format!("{claim_url}?lang=ja")).await.unwrap();
    let state = late
        .find(Locator::Css("#claim-state"))
        .await
        .unwrap()
        .attr("data-state")
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("sold_out"));
    shot(&late, "sold_out_ja").await;
    late.goto(&format!("{claim_url}?lang=en")).await.unwrap();
    shot(&late, "sold_out_en").await;

    // The wallet, with the used coupon in it.
    for lang in ["ja", "en"] {
        phone
            .goto(&app.url(&format!("/my?lang={lang}")))
            .await
            .unwrap();
        phone
            .wait()
            .for_element(Locator::Css(".wallet__item--used"))
            .await
            .unwrap();
        shot(&phone, &format!("wallet_{lang}")).await;
    }

    // The root page, with its ways in (coupons, the merchant console).
    for lang in ["ja", "en"] {
        late.goto(&app.url(&format!("/?lang={lang}")))
            .await
            .unwrap();
        shot(&late, &format!("index_{lang}")).await;
    }

    // The sign-in page, with its provider buttons (never followed here: see signin.rs).
    let slug = c["slug"].as_str().unwrap();
    for lang in ["ja", "en"] {
        late.goto(&app.url(&format!("/auth/signin?return_to=/c/{slug}&lang={lang}")))
            .await
            .unwrap();
        late.wait()
            .for_element(Locator::Css(".provider--line"))
            .await
            .unwrap();
        shot(&late, &format!("signin_{lang}")).await;
    }

    for client in [phone, second, late] {
        client.close().await.unwrap();
    }
}

/// The theme check lets a merchant pick any colour that reaches 4.5:1; the pages must stay
/// readable at exactly that edge, not only with the default colours.
#[actix_web::test]
async fn a_theme_at_the_contrast_limit_keeps_the_pages_accessible() {
    let driver = chromedriver().await;
    let app = crate::helpers::spawn_app().await;
    // 4.51:1 and 4.56:1 against the page background, more against white: just readable.
    let res = app
        .patch("/api/v1/tenant")
        .json(&json!({"brand_color": "#c4420d", "accent_color": "#287789"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let c = app
        .create_campaign(json!({
            "name": "限界の色", "total_limit": 5, "status": "active",
            "discount": {"kind": "percent_off", "percent": 10}, "valid_for_seconds": 3600
        }))
        .await;
    let phone = browser(&driver).await;
    phone
        .goto(&format!("{}?lang=ja", c["claim_url"].as_str().unwrap()))
        .await
        .unwrap();
    assert_accessible(&phone, "claim at the contrast limit").await;
    phone
        .find(Locator::Css("#claim-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_of(&phone, "#check-code").await;
    assert_accessible(&phone, "coupon at the contrast limit").await;
    phone
        .find(Locator::Css("#use-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let confirm = phone
        .wait()
        .for_element(Locator::Css("#confirm-use-button"))
        .await
        .unwrap();
    assert_accessible(&phone, "confirm at the contrast limit").await;
    confirm.click().await.unwrap();
    wait_text(&phone, "#used-stamp", "使用済み").await;
    // Mid-animation the stamp is still fading in; axe would measure it half transparent.
    wait_still(&phone, "#used-stamp").await;
    assert_accessible(&phone, "used coupon at the contrast limit").await;
    phone.goto(&app.url("/my")).await.unwrap();
    assert_accessible(&phone, "wallet at the contrast limit").await;
    phone.close().await.unwrap();
}
