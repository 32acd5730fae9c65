//! The TOTP second factor: enrolment, then sign-in asks for a code that works once; a
//! tenant that requires it sends users to set it up and keeps it on.

use ecoupon::domain::merchant::TotpSecret;
use uuid::Uuid;

use super::user_id;
use crate::console_helpers::{console_page, console_post, sign_in, PASSWORD};
use crate::helpers::{csrf_of, html_client, location, page, spawn_app, TestApp};

/// The TOTP secret stored for a user.
async fn totp_secret(app: &TestApp, id: Uuid) -> TotpSecret {
    let secret: Vec<u8> = app
        .db
        .client()
        .await
        .query_one(
            "SELECT totp_secret FROM merchant_users WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    TotpSecret::from_bytes(secret)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Posts a code on the sign-in TOTP step.
async fn totp_step(app: &TestApp, client: &reqwest::Client, code: &str) -> reqwest::Response {
    let (status, html) = page(client, &app.url("/merchant/login/totp")).await;
    assert_eq!(status, 200);
    client
        .post(app.url("/merchant/login/totp"))
        .form(&[
            ("code", code),
            ("csrf", &csrf_of(&html)),
            ("next", "/merchant"),
        ])
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_second_factor_is_enrolled_then_asked_for_at_sign_in_and_works_once() {
    let app = spawn_app().await;
    let (email, client) = app.console_user("manager").await;
    let id = user_id(&app, &email).await;
    let (_, html) = console_page(&app, &client, "/merchant/account").await;
    assert!(html.contains("data-mfa=\"off\""));

    let res = console_post(
        &app,
        &client,
        "/merchant/account",
        "/merchant/account/totp",
        &[],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = console_page(&app, &client, "/merchant/account").await;
    assert!(html.contains("data-mfa=\"enrolling\"") && html.contains("id=\"totp-secret\""));
    let secret = totp_secret(&app, id).await;
    assert!(
        html.contains(&secret.base32()[..4]),
        "the key is shown to type in"
    );
    let qr = client
        .get(app.url("/merchant/account/totp.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));

    let res = console_post(
        &app,
        &client,
        "/merchant/account",
        "/merchant/account/totp/confirm",
        &[("code", "000000")],
    )
    .await;
    // 000000 is right once in a million; then this test would fail, not lie.
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("id=\"totp-code-error\""));
    let enrol_code = secret.code_at(now()).unwrap();
    let res = console_post(
        &app,
        &client,
        "/merchant/account",
        "/merchant/account/totp/confirm",
        &[("code", &enrol_code)],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = console_page(&app, &client, "/merchant/account").await;
    assert!(html.contains("data-mfa=\"on\""));
    let qr = client
        .get(app.url("/merchant/account/totp.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 404, "the secret is not shown again");

    // Sign out; signing in now needs a code, and the one used to enrol is spent.
    console_post(&app, &client, "/merchant/account", "/merchant/logout", &[]).await;
    let browser = html_client(Some("en"));
    let res = sign_in(&app, &browser, &email, PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/merchant/login/totp"));
    let res = browser.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(
        location(&res),
        "/merchant/login/totp",
        "no way round the code"
    );
    let res = totp_step(&app, &browser, &enrol_code).await;
    assert_eq!(res.status(), 401, "a replayed code is refused");
    // The next step's code (one step of skew is allowed) is fresh.
    let next = secret.code_at(now() + 30).unwrap();
    let res = totp_step(&app, &browser, &next).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/merchant");
    let (status, _) = console_page(&app, &browser, "/merchant").await;
    assert_eq!(status, 200);
    // The same code once more, from another browser: refused.
    let other = html_client(None);
    sign_in(&app, &other, &email, PASSWORD).await;
    let res = totp_step(&app, &other, &next).await;
    assert_eq!(res.status(), 401);

    // Turning it off needs the password.
    let disable = "/merchant/account/totp/disable";
    let res = console_post(
        &app,
        &browser,
        "/merchant/account",
        disable,
        &[("password", "not my password at all")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("id=\"totp-password-error\""));
    let res = console_post(
        &app,
        &browser,
        "/merchant/account",
        disable,
        &[("password", PASSWORD)],
    )
    .await;
    assert_eq!(res.status(), 303);
    let enabled: bool = app
        .db
        .client()
        .await
        .query_one(
            "SELECT totp_enabled FROM merchant_users WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!enabled);
    let audit: Vec<String> = app
        .db
        .client()
        .await
        .query(
            "SELECT action FROM audit_log WHERE action LIKE 'account.%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(audit, ["account.mfa_enable", "account.mfa_disable"]);
}

#[actix_web::test]
async fn a_tenant_that_requires_mfa_sends_users_to_set_it_up_and_keeps_it_on() {
    let app = spawn_app().await;
    let (email, client) = app.console_user("staff").await;
    let id = user_id(&app, &email).await;
    app.db
        .client()
        .await
        .execute(
            "UPDATE tenants SET require_mfa = true WHERE id = $1",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    let res = client.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/merchant/account");
    let (status, html) = console_page(&app, &client, "/merchant/account").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"mfa-required\""), "the page says why");

    console_post(
        &app,
        &client,
        "/merchant/account",
        "/merchant/account/totp",
        &[],
    )
    .await;
    let code = totp_secret(&app, id).await.code_at(now()).unwrap();
    let res = console_post(
        &app,
        &client,
        "/merchant/account",
        "/merchant/account/totp/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = console_page(&app, &client, "/merchant/account").await;
    assert!(html.contains("id=\"mfa-cannot-disable\"") && !html.contains("totp-disable-form"));
    let res = console_post(
        &app,
        &client,
        "/merchant/account",
        "/merchant/account/totp/disable",
        &[("password", PASSWORD)],
    )
    .await;
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(body.contains("二要素認証が必須"), "{body}");
}

#[actix_web::test]
async fn giving_the_password_again_does_not_buy_more_guesses_at_the_code() {
    let app = spawn_app().await;
    let (email, _) = app.console_user("staff").await;
    let id = user_id(&app, &email).await;
    let secret = TotpSecret::generate();
    app.db
        .client()
        .await
        .execute(
            "UPDATE merchant_users SET totp_secret = $2, totp_enabled = true WHERE id = $1",
            &[&id, &secret.as_bytes()],
        )
        .await
        .unwrap();
    let failures = || async {
        let n: i32 = app
            .db_value(
                "SELECT failed_sign_ins FROM merchant_users WHERE id = $1",
                &[&id],
            )
            .await;
        n
    };
    let browser = html_client(None);
    let wrong = (secret.code_at(now()).unwrap().parse::<u32>().unwrap() + 500_000) % 1_000_000;
    let wrong = format!("{wrong:06}");
    for round in 0..2 {
        let res = sign_in(&app, &browser, &email, PASSWORD).await;
        assert!(
            location(&res).starts_with("/merchant/login/totp"),
            "round {round}"
        );
        for _ in 0..2 {
            assert_eq!(totp_step(&app, &browser, &wrong).await.status(), 401);
        }
    }
    assert_eq!(
        failures().await,
        4,
        "the password step left the count alone"
    );
    // Signing in with the code starts it over.
    sign_in(&app, &browser, &email, PASSWORD).await;
    let res = totp_step(&app, &browser, &secret.code_at(now()).unwrap()).await;
    assert_eq!(res.status(), 303);
    assert_eq!(failures().await, 0);
}
