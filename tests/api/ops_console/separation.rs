//! Operators and merchants' users are kept apart both ways: an operator's session opens
//! nothing in the merchant console or the API, a merchant's session opens nothing in the
//! operator console, neither's password signs in on the other's page (even for the same
//! e-mail address), and no operator page shows merchants' users or their credentials.

use crate::console_helpers::PASSWORD;
use crate::helpers::{html_client, location, page, spawn_app};
use crate::ops_console::{
    add_operator_as, cookie_value, ops_as, ops_post, ops_sign_in, set_cookie, OPS_PASSWORD,
};

/// A client that sends exactly this cookie and follows no redirect.
fn with_cookie(cookie: &str) -> reqwest::Client {
    use reqwest::header::{HeaderMap, ACCEPT, COOKIE};
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, "text/html".parse().unwrap());
    headers.insert(COOKIE, cookie.parse().unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

#[actix_web::test]
async fn operator_and_merchant_sessions_open_nothing_of_each_other() {
    let app = spawn_app().await;
    // The same person is both: a merchant's owner and an operator, with two passwords.
    let email = app.add_user("owner").await;
    add_operator_as(&app, &email, "active", OPS_PASSWORD).await;

    let merchant = html_client(Some("en"));
    let res = crate::console_helpers::sign_in(&app, &merchant, &email, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let merchant_session =
        cookie_value(&set_cookie(&res, "ecoupon_console").expect("a merchant session"));
    let (operator, operator_session) = ops_as(&app, &email, "en").await;

    // Each browser is signed in where it signed in, and nowhere else.
    let (status, _) = page(&merchant, &app.url("/merchant")).await;
    assert_eq!(status, 200);
    let (status, _) = page(&operator, &app.url("/ops/notices")).await;
    assert_eq!(status, 200);
    for path in [
        "/merchant",
        "/merchant/users",
        "/merchant/settings",
        "/merchant/export",
    ] {
        let res = operator.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert!(location(&res).starts_with("/merchant/login"), "{path}");
    }
    for path in ["/ops/notices", "/ops/operators", "/ops/mail"] {
        let res = merchant.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert!(location(&res).starts_with("/ops/login"), "{path}");
    }

    // A session id moved to the other cookie opens nothing.
    let forged = with_cookie(&format!("ecoupon_console={operator_session}"));
    let res = forged.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/merchant/login"));
    let forged = with_cookie(&format!("ecoupon_ops={merchant_session}"));
    let res = forged.get(app.url("/ops/notices")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/ops/login"));

    // The API takes neither session, as a cookie or as a bearer token.
    for client in [&operator, &merchant] {
        let res = client
            .get(app.url("/api/v1/tenant"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    for token in [&operator_session, &merchant_session] {
        let res = app
            .client
            .get(app.url("/api/v1/tenant"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    // Nor does the live dashboard socket take an operator's session.
    let res = operator
        .get(app.url("/merchant/live"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("origin", &app.address)
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 101);

    // Each password signs in on its own page only.
    let res = ops_sign_in(&app, &html_client(None), &email, PASSWORD).await;
    assert_eq!(
        res.status(),
        401,
        "a merchant's password does not open the operator console"
    );
    let res = crate::console_helpers::sign_in(&app, &html_client(None), &email, OPS_PASSWORD).await;
    assert_eq!(
        res.status(),
        401,
        "an operator's password does not open the merchant console"
    );

    // Operator pages show no merchant user, even after notices were mailed to them.
    let res = ops_post(
        &app,
        &operator,
        "/ops/notices",
        "/ops/notices/incident",
        &[("title", "Claims slow")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let queued: i64 = app.db_value("SELECT count(*) FROM mail_outbox", &[]).await;
    assert!(queued >= 2, "mail to the owners: {queued}");
    let hash: String = app
        .db_value(
            "SELECT password_hash FROM merchant_users WHERE email = $1",
            &[&email],
        )
        .await;
    for path in ["/ops/notices", "/ops/operators", "/ops/mail"] {
        let (status, html) = page(&operator, &app.url(path)).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains("owner@test.example"), "{path}: {html}");
        assert!(!html.contains(&hash) && !html.contains("$argon2"), "{path}");
        // The operator's own address is in the header; no other merchant user appears.
        assert!(
            !html.contains("@shop.example")
                || html.matches("@shop.example").count() == html.matches(email.as_str()).count(),
            "{path}: {html}"
        );
    }

    // Signing out of one leaves the other alone.
    let res = ops_post(&app, &operator, "/ops/notices", "/ops/logout", &[]).await;
    assert_eq!(res.status(), 303);
    let (status, _) = page(&merchant, &app.url("/merchant")).await;
    assert_eq!(status, 200, "the merchant session lives on");
}
