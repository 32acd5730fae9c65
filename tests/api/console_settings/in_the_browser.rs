//! The settings and account pages in headless Chromium: the contrast follows the
//! typing (assets/console.js), the lock-out confirmation and the TOTP enrolment are
//! looked at in both languages (screenshots in `test-artifacts/screenshots/`) and
//! checked by axe.

use std::time::Duration;

use ecoupon::domain::merchant::TotpSecret;
use fantoccini::{Client, Locator};
use serde_json::json;

use crate::axe::assert_accessible;
use crate::browser::artifacts;
use crate::console_helpers::PASSWORD;
use crate::helpers::{browser, chromedriver, eventually, spawn_app, TestApp};

async fn wait_for(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} appears: {e}"));
}

async fn attr(client: &Client, css: &str, name: &str) -> String {
    let element = client.find(Locator::Css(css)).await.unwrap();
    element.attr(name).await.unwrap().unwrap_or_default()
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn replace_text(client: &Client, css: &str, value: &str) {
    let element = client.find(Locator::Css(css)).await.unwrap();
    element.clear().await.unwrap();
    element.send_keys(value).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// A full-page screenshot (the window grows to the page for it), then axe.
async fn look(client: &Client, name: &str) {
    let (_, _, width, height) = client.get_window_rect().await.unwrap();
    let full = client
        .execute(
            "return Math.ceil(document.documentElement.scrollHeight);",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(height)
        .clamp(height, 8000);
    client
        .set_window_size(width as u32, full as u32)
        .await
        .unwrap();
    let png = client.screenshot().await.expect("screenshot");
    client
        .set_window_size(width as u32, height as u32)
        .await
        .unwrap();
    std::fs::write(artifacts().join(format!("console-{name}.png")), png).unwrap();
    assert_accessible(client, name).await;
}

async fn sign_in(client: &Client, app: &TestApp, email: &str) {
    client
        .goto(&app.url("/merchant/login?lang=ja"))
        .await
        .unwrap();
    replace_text(client, "#email", email).await;
    replace_text(client, "#password", PASSWORD).await;
    click(client, "#login-button").await;
    eventually(Duration::from_secs(20), "sign-in finishes", async || {
        let url = client.current_url().await.ok()?;
        (!url.path().starts_with("/merchant/login")).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn contrast_lockout_and_enrolment_in_both_languages() {
    let driver = chromedriver().await;
    let app = spawn_app().await;
    let email = app.add_user("owner").await;
    let desk = browser(&driver).await;
    desk.set_window_size(1280, 1100).await.unwrap();
    sign_in(&desk, &app, &email).await;

    desk.goto(&app.url("/merchant/settings")).await.unwrap();
    wait_for(&desk, "#settings-form").await;
    assert_eq!(text(&desk, "#your-ip").await, "127.0.0.1");
    // The ratio follows the typing, with the server's rule (4.5:1).
    replace_text(&desk, "#brand_color", "#ffff66").await;
    assert_eq!(attr(&desk, "#brand-contrast", "data-ok").await, "false");
    assert!(text(&desk, "#brand-contrast").await.contains("1.1:1"));
    replace_text(&desk, "#brand_color", "#0b6e4f").await;
    assert_eq!(attr(&desk, "#brand-contrast", "data-ok").await, "true");

    for lang in ["ja", "en"] {
        desk.goto(&app.url(&format!("/merchant/settings?lang={lang}")))
            .await
            .unwrap();
        wait_for(&desk, "#settings-form").await;
        replace_text(&desk, "#ip_allowlist", "203.0.113.0/24").await;
        click(&desk, "#settings-button").await;
        wait_for(&desk, "#confirm_lockout").await;
        assert_eq!(attr(&desk, "#ip_allowlist", "aria-invalid").await, "true");
        look(&desk, &format!("settings-lockout-{lang}")).await;
    }

    for lang in ["ja", "en"] {
        desk.goto(&app.url(&format!("/merchant/account?lang={lang}")))
            .await
            .unwrap();
        wait_for(&desk, "#mfa").await;
        let restart = if lang == "ja" {
            "#totp-start"
        } else {
            "#totp-restart"
        };
        click(&desk, restart).await;
        wait_for(&desk, "#totp-qr").await;
        let loaded = desk
            .execute(
                "const i = document.querySelector('#totp-qr');
                 return i.complete && i.naturalWidth > 0;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(loaded, json!(true), "the QR code shows");
        look(&desk, &format!("account-enrol-{lang}")).await;
    }
    let secret: Vec<u8> = app
        .db
        .client()
        .await
        .query_one(
            "SELECT totp_secret FROM merchant_users WHERE email = $1",
            &[&email],
        )
        .await
        .unwrap()
        .get(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = TotpSecret::from_bytes(secret).code_at(now).unwrap();
    replace_text(&desk, "#totp-code", &code).await;
    click(&desk, "#totp-confirm-button").await;
    wait_for(&desk, "#mfa-status[data-mfa='on']").await;
    look(&desk, "account-mfa-on-en").await;

    // The users page with a fresh invitation link, and the invitation it opens.
    let guest = browser(&driver).await;
    for lang in ["ja", "en"] {
        desk.goto(&app.url(&format!("/merchant/users?lang={lang}")))
            .await
            .unwrap();
        replace_text(&desk, "#invite-email", &format!("new-{lang}@shop.example")).await;
        click(&desk, "#invite-button").await;
        wait_for(&desk, "#invite-link").await;
        look(&desk, &format!("users-invited-{lang}")).await;
        let link = attr(&desk, "#invite-link", "href").await;
        guest.goto(&format!("{link}?lang={lang}")).await.unwrap();
        wait_for(&guest, "#accept-form").await;
        replace_text(&guest, "#new", "short").await;
        click(&guest, "#accept-button").await;
        wait_for(&guest, "#new-error").await;
        look(&guest, &format!("invite-error-{lang}")).await;
    }
    guest.close().await.unwrap();
    desk.close().await.unwrap();
}
