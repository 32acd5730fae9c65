//! The operator console in headless Chromium, in Japanese and English: sign in, schedule an
//! emergency maintenance and post an incident through the forms, approve a pending
//! operator, look at the outbox, turn on the second factor and sign in with it. Every page
//! is screenshotted (full page, desktop width) into `test-artifacts/screenshots/ops-*.png`
//! (and `$OPS_SHOTS_DIR` when set) and checked by axe against WCAG 2 A/AA.

use std::time::Duration;

use chrono::{FixedOffset, TimeDelta, Utc};
use fantoccini::{Client, Locator};
use serde_json::json;

use ecoupon::domain::merchant::TotpSecret;

use crate::axe::accessibility_report;
use crate::browser::artifacts;
use crate::helpers::{browser, chromedriver, spawn_app, TestApp};
use crate::ops_console::{add_operator, OPS_PASSWORD};

async fn wait_for(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appears: {e}"));
}

async fn click(client: &Client, css: &str) {
    wait_for(client, css).await;
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_into(client: &Client, css: &str, text: &str) {
    wait_for(client, css).await;
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// `datetime-local` fields take their value from script more reliably than from keys.
async fn set_value(client: &Client, css: &str, value: &str) {
    wait_for(client, css).await;
    client
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            vec![json!(css), json!(value)],
        )
        .await
        .unwrap();
}

/// A full-page screenshot, then axe; returns axe's report if it found something.
async fn look(client: &Client, name: &str) -> Option<String> {
    let (_, _, width, height) = client.get_window_rect().await.unwrap();
    let full = client
        .execute(
            "return Math.ceil(document.documentElement.scrollHeight) + Math.max(0, window.outerHeight - window.innerHeight);",
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
    std::fs::write(artifacts().join(format!("ops-{name}.png")), &png).unwrap();
    if let Some(dir) = std::env::var_os("OPS_SHOTS_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            std::path::Path::new(&dir).join(format!("ops-{name}.png")),
            &png,
        )
        .unwrap();
    }
    accessibility_report(client, &format!("operator console {name}")).await
}

async fn sign_in(client: &Client, app: &TestApp, email: &str, lang: &str) {
    client
        .goto(&app.url(&format!("/ops/login?lang={lang}")))
        .await
        .unwrap();
    type_into(client, "#email", email).await;
    type_into(client, "#password", OPS_PASSWORD).await;
    click(client, "#login-button").await;
    wait_for(client, "#maintenance-form").await;
}

#[actix_web::test]
async fn the_operator_console_in_both_languages() {
    let driver = chromedriver().await;
    let app = spawn_app().await;
    app.add_user("admin").await;
    let (alice_id, alice) = add_operator(&app, "active").await;
    let (bob_id, _) = add_operator(&app, "pending").await;
    add_operator(&app, "disabled").await;
    let client = browser(&driver).await;
    client.set_window_size(1280, 900).await.unwrap();
    let mut problems = Vec::new();

    client.goto(&app.url("/ops/login?lang=ja")).await.unwrap();
    wait_for(&client, "#login-form").await;
    problems.extend(look(&client, "login-ja").await);

    // A wrong password first: the same page, with the message.
    type_into(&client, "#email", &alice).await;
    type_into(&client, "#password", "not it").await;
    click(&client, "#login-button").await;
    wait_for(&client, "#login-error").await;
    sign_in(&client, &app, &alice, "ja").await;

    // Schedule an emergency maintenance two days ahead through the form.
    let jst = FixedOffset::east_opt(9 * 3600).unwrap();
    let start = (Utc::now() + TimeDelta::days(2)).with_timezone(&jst);
    let end = start + TimeDelta::hours(2);
    // Too soon without the box: the reason is shown next to the field.
    set_value(
        &client,
        "#m-start",
        &start.format("%Y-%m-%dT%H:%M").to_string(),
    )
    .await;
    set_value(&client, "#m-end", &end.format("%Y-%m-%dT%H:%M").to_string()).await;
    type_into(&client, "#m-title", "決済サーバーの緊急更新").await;
    click(&client, "#maintenance-button").await;
    wait_for(&client, "#m-start-error").await;
    problems.extend(look(&client, "notices-refused-ja").await);
    set_value(
        &client,
        "#m-start",
        &start.format("%Y-%m-%dT%H:%M").to_string(),
    )
    .await;
    set_value(&client, "#m-end", &end.format("%Y-%m-%dT%H:%M").to_string()).await;
    type_into(
        &client,
        "#m-body",
        "セキュリティ修正のため、7日前のお知らせができません。",
    )
    .await;
    click(&client, "#m-emergency").await;
    click(&client, "#maintenance-button").await;
    wait_for(&client, "#flash").await;
    wait_for(&client, "[data-emergency=\"true\"]").await;

    type_into(&client, "#i-title", "クーポン受け取りの遅延").await;
    type_into(
        &client,
        "#i-body",
        "一部の受け取りに数秒かかっています。調査中です。",
    )
    .await;
    click(&client, "#incident-button").await;
    wait_for(&client, "[data-kind=\"incident\"]").await;
    problems.extend(look(&client, "notices-ja").await);

    client.goto(&app.url("/ops/operators")).await.unwrap();
    wait_for(&client, "#operators").await;
    problems.extend(look(&client, "operators-ja").await);
    click(&client, &format!("#approve-{bob_id}")).await;
    wait_for(&client, "#flash").await;
    let status = client
        .find(Locator::Css(&format!(
            "tr[data-operator-id=\"{bob_id}\"] [data-field=\"status\"]"
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(status, "有効");

    client.goto(&app.url("/ops/mail")).await.unwrap();
    wait_for(&client, "#outbox").await;
    problems.extend(look(&client, "mail-ja").await);

    // The same pages in English.
    client.goto(&app.url("/ops/notices?lang=en")).await.unwrap();
    wait_for(&client, "#maintenance-form").await;
    problems.extend(look(&client, "notices-en").await);
    client.goto(&app.url("/ops/operators")).await.unwrap();
    wait_for(&client, "#operators").await;
    problems.extend(look(&client, "operators-en").await);
    client.goto(&app.url("/ops/mail")).await.unwrap();
    wait_for(&client, "#outbox").await;
    problems.extend(look(&client, "mail-en").await);
    click(&client, "#logout").await;
    wait_for(&client, "#login-form").await;
    problems.extend(look(&client, "login-en").await);

    // A phone-sized window: the notices page still reads.
    client.set_window_size(412, 915).await.unwrap();
    sign_in(&client, &app, &alice, "ja").await;
    problems.extend(look(&client, "notices-phone-ja").await);

    // The second factor: enrol on the account page, then sign-in asks for the code.
    client.set_window_size(1280, 900).await.unwrap();
    client.goto(&app.url("/ops/account")).await.unwrap();
    wait_for(&client, "[data-mfa=\"off\"]").await;
    problems.extend(look(&client, "account-ja").await);
    click(&client, "#change-password").await;
    wait_for(&client, "#password-form").await;
    problems.extend(look(&client, "password-ja").await);
    client.goto(&app.url("/ops/account")).await.unwrap();
    click(&client, "#totp-start").await;
    wait_for(&client, "#totp-qr").await;
    problems.extend(look(&client, "account-enrolling-ja").await);
    let secret: Vec<u8> = app
        .db_value(
            "SELECT totp_secret FROM operators WHERE id = $1",
            &[&alice_id],
        )
        .await;
    let secret = TotpSecret::from_bytes(secret);
    let now = || Utc::now().timestamp() as u64;
    type_into(&client, "#totp-code", &secret.code_at(now()).unwrap()).await;
    click(&client, "#totp-confirm-button").await;
    wait_for(&client, "[data-mfa=\"on\"]").await;
    client.goto(&app.url("/ops/account?lang=en")).await.unwrap();
    wait_for(&client, "[data-mfa=\"on\"]").await;
    problems.extend(look(&client, "account-en").await);
    click(&client, "#logout").await;
    type_into(&client, "#email", &alice).await;
    type_into(&client, "#password", OPS_PASSWORD).await;
    click(&client, "#login-button").await;
    wait_for(&client, "#totp-form").await;
    problems.extend(look(&client, "totp-en").await);
    type_into(&client, "#code", &secret.code_at(now() + 30).unwrap()).await;
    click(&client, "#totp-button").await;
    wait_for(&client, "#maintenance-form").await;

    client.close().await.unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
