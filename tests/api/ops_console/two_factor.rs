//! Operators' TOTP second factor: enrolled on /ops/account, then sign-in asks for a code
//! that works once, and a session that gave only the password opens no page. Turning it
//! off needs the password; another operator resets a lost one with the CLI.

use ecoupon::domain::merchant::TotpSecret;
use uuid::Uuid;

use super::{add_operator, audit_trail, ops_as, ops_post, ops_sign_in, OPS_PASSWORD};
use crate::helpers::{csrf_of, html_client, location, page, scratch_dir, spawn_app, TestApp};
use crate::ops_operators::with_password;

async fn stored_secret(app: &TestApp, id: Uuid) -> Option<TotpSecret> {
    let secret: Option<Vec<u8>> = app
        .db_value("SELECT totp_secret FROM operators WHERE id = $1", &[&id])
        .await;
    secret.map(TotpSecret::from_bytes)
}

async fn enabled(app: &TestApp, id: Uuid) -> bool {
    app.db_value("SELECT totp_enabled FROM operators WHERE id = $1", &[&id])
        .await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Posts `code` on the sign-in step's form.
async fn code_step(app: &TestApp, client: &reqwest::Client, code: &str) -> reqwest::Response {
    let (status, html) = page(client, &app.url("/ops/login/totp")).await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/ops/login/totp\""), "{html}");
    client
        .post(app.url("/ops/login/totp"))
        .form(&[
            ("code", code),
            ("csrf", &csrf_of(&html)),
            ("next", "/ops/operators"),
        ])
        .send()
        .await
        .unwrap()
}

/// Enrols a second factor for the signed-in operator `id`; returns the secret and the
/// code that confirmed it (spent).
async fn enrol(app: &TestApp, client: &reqwest::Client, id: Uuid) -> (TotpSecret, String) {
    let res = ops_post(app, client, "/ops/account", "/ops/account/totp", &[]).await;
    assert_eq!(res.status(), 303);
    let secret = stored_secret(app, id).await.expect("a secret is stored");
    let code = secret.code_at(now()).unwrap();
    let res = ops_post(
        app,
        client,
        "/ops/account",
        "/ops/account/totp/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(enabled(app, id).await);
    (secret, code)
}

#[actix_web::test]
async fn an_operator_enrols_a_second_factor_and_sign_in_then_asks_for_a_code_once() {
    let app = spawn_app().await;
    let (id, email) = add_operator(&app, "active").await;
    let (client, _) = ops_as(&app, &email, "en").await;
    let (status, html) = page(&client, &app.url("/ops/account")).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-mfa=\"off\"") && html.contains("href=\"/ops/account\""));

    // Enrolment: a secret shown as a QR code and as a key; a wrong code does not turn it on.
    let res = ops_post(&app, &client, "/ops/account", "/ops/account/totp", &[]).await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(&client, &app.url("/ops/account")).await;
    let secret = stored_secret(&app, id).await.unwrap();
    assert!(html.contains("data-mfa=\"enrolling\""));
    assert!(html.contains(&secret.base32()[..4]), "the key to type in");
    assert!(html.contains("action=\"/ops/account/totp/confirm\""));
    let qr = client
        .get(app.url("/ops/account/totp.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["cache-control"], "no-store");
    assert!(qr.text().await.unwrap().contains("<svg"));
    let res = ops_post(
        &app,
        &client,
        "/ops/account",
        "/ops/account/totp/confirm",
        &[("code", "000000")],
    )
    .await;
    // 000000 is right once in a million; then this test fails, it does not lie.
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("id=\"totp-code-error\""));
    assert!(!enabled(&app, id).await);
    let enrol_code = secret.code_at(now()).unwrap();
    let res = ops_post(
        &app,
        &client,
        "/ops/account",
        "/ops/account/totp/confirm",
        &[("code", &enrol_code)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(enabled(&app, id).await);
    let (_, html) = page(&client, &app.url("/ops/account")).await;
    assert!(html.contains("data-mfa=\"on\""));
    let qr = client
        .get(app.url("/ops/account/totp.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 404, "the secret is not shown again");
    let (_, list) = page(&client, &app.url("/ops/operators")).await;
    assert!(
        list.contains("data-field=\"mfa\""),
        "the list shows who has 2FA"
    );

    // Signing in again: the password alone opens nothing.
    ops_post(&app, &client, "/ops/account", "/ops/logout", &[]).await;
    let browser = html_client(Some("ja"));
    let res = ops_sign_in(&app, &browser, &email, OPS_PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with("/ops/login/totp"),
        "{}",
        location(&res)
    );
    for path in ["/ops/notices", "/ops/account", "/ops/operators"] {
        let res = browser.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(
            location(&res),
            "/ops/login/totp",
            "{path}: no way round the code"
        );
    }
    let res = code_step(&app, &browser, &enrol_code).await;
    assert_eq!(res.status(), 401, "the code that enrolled is spent");
    let next = secret.code_at(now() + 30).unwrap();
    let res = code_step(&app, &browser, &next).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ops/operators");
    let (status, _) = page(&browser, &app.url("/ops/notices")).await;
    assert_eq!(status, 200);
    // The same code from another browser that knows the password: refused.
    let other = html_client(None);
    ops_sign_in(&app, &other, &email, OPS_PASSWORD).await;
    assert_eq!(code_step(&app, &other, &next).await.status(), 401);

    // Turning it off needs the password.
    let disable = "/ops/account/totp/disable";
    let res = ops_post(
        &app,
        &browser,
        "/ops/account",
        disable,
        &[("password", "not the password")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("id=\"totp-password-error\""));
    assert!(enabled(&app, id).await);
    let res = ops_post(
        &app,
        &browser,
        "/ops/account",
        disable,
        &[("password", OPS_PASSWORD)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(!enabled(&app, id).await);
    assert!(stored_secret(&app, id).await.is_none());

    let trail = audit_trail(&app, "operator.").await;
    let expected = [
        format!("operator.sign_in {email} {email}"),
        format!("operator.mfa_enable {email} {email}"),
        format!("operator.sign_out {email} {email}"),
        // Only the browser that gave the code signed in.
        format!("operator.sign_in {email} {email}"),
        format!("operator.mfa_disable {email} {email}"),
    ];
    assert_eq!(trail, expected);
}

#[actix_web::test]
async fn another_operator_resets_a_lost_second_factor_and_its_sessions_end() {
    let app = spawn_app().await;
    let data = scratch_dir("data");
    let url = app.db.url.clone();
    let (id, email) = add_operator(&app, "active").await;
    let (_, other) = add_operator(&app, "active").await;
    let (client, _) = ops_as(&app, &email, "en").await;
    let reset = |target: &str, by: &str, password: &str| {
        with_password(&url, &data, &["reset-2fa", target, "--by", by], password)
    };

    let err = reset(&email, &other, OPS_PASSWORD).unwrap_err();
    assert!(err.contains("has no second factor"), "{err}");
    enrol(&app, &client, id).await;
    let err = reset(&email, &email, OPS_PASSWORD).unwrap_err();
    assert!(err.contains("cannot reset their own"), "{err}");
    let err = reset(&email, &other, "wrong password").unwrap_err();
    assert!(err.starts_with("error:"), "{err}");
    assert!(enabled(&app, id).await);

    let out = reset(&email, &other, OPS_PASSWORD).unwrap();
    assert!(out.contains("second factor removed"), "{out}");
    assert!(!enabled(&app, id).await);
    let res = client.get(app.url("/ops/notices")).send().await.unwrap();
    assert_eq!(res.status(), 303, "the session ended with the reset");
    // The password alone signs in again, and the operator can enrol a new phone.
    let (client, _) = ops_as(&app, &email, "en").await;
    let (status, html) = page(&client, &app.url("/ops/account")).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-mfa=\"off\""));
    let trail = audit_trail(&app, "operator.mfa_reset").await;
    assert_eq!(trail, [format!("operator.mfa_reset {other} {email}")]);
}

#[actix_web::test]
async fn wrong_codes_make_the_account_wait_and_the_password_alone_does_not_reset_that() {
    let app = spawn_app().await;
    let (id, email) = add_operator(&app, "active").await;
    let (client, _) = ops_as(&app, &email, "en").await;
    let (secret, _) = enrol(&app, &client, id).await;
    ops_post(&app, &client, "/ops/account", "/ops/logout", &[]).await;

    let browser = html_client(None);
    let res = ops_sign_in(&app, &browser, &email, OPS_PASSWORD).await;
    assert!(location(&res).starts_with("/ops/login/totp"));
    let wrong = (secret.code_at(now()).unwrap().parse::<u32>().unwrap() + 500_000) % 1_000_000;
    let wrong = format!("{wrong:06}");
    for _ in 0..4 {
        assert_eq!(code_step(&app, &browser, &wrong).await.status(), 401);
    }
    // The password again (the account is not waiting yet): it must not start the count
    // over, or four guesses at a time would go on for ever.
    let res = ops_sign_in(&app, &browser, &email, OPS_PASSWORD).await;
    assert!(location(&res).starts_with("/ops/login/totp"));
    assert_eq!(code_step(&app, &browser, &wrong).await.status(), 401);
    let failures: i32 = app
        .db_value(
            "SELECT failed_sign_ins FROM operators WHERE id = $1",
            &[&id],
        )
        .await;
    assert_eq!(failures, 5, "the password step did not reset the count");
    // Now the account waits: even the right code is refused, and so is the password.
    let right = secret.code_at(now() + 30).unwrap();
    assert_eq!(code_step(&app, &browser, &right).await.status(), 401);
    let res = ops_sign_in(&app, &html_client(None), &email, OPS_PASSWORD).await;
    assert_eq!(res.status(), 401);
}
