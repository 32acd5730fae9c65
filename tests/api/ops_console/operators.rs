//! Signing in to the operator console, and approving and disabling operators there.

use crate::helpers::{
    csrf_of, fresh_database, html_client, location, page, spawn_app, spawn_app_on, test_settings,
};
use crate::ops_console::{
    add_operator, audit_trail, ops_as, ops_post, ops_sign_in, set_cookie, OPS_PASSWORD,
};

#[actix_web::test]
async fn operators_sign_in_on_their_own_page_with_their_own_cookie() {
    let app = spawn_app().await;
    let (_, alice) = add_operator(&app, "active").await;
    let (_, pending) = add_operator(&app, "pending").await;
    let (_, gone) = add_operator(&app, "disabled").await;
    let browser = html_client(Some("en"));

    // Every page wants a session first.
    for path in ["/ops", "/ops/notices", "/ops/operators", "/ops/mail"] {
        let res = browser.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert!(location(&res).starts_with("/ops/login?next="), "{path}");
    }

    let res = browser.get(app.url("/ops/login")).send().await.unwrap();
    let csrf_cookie = set_cookie(&res, "ecoupon_ops_login_csrf").expect("a CSRF cookie");
    assert!(
        csrf_cookie.contains("HttpOnly")
            && csrf_cookie.contains("SameSite=Strict")
            && csrf_cookie.contains("Path=/ops/login"),
        "{csrf_cookie}"
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("Operator sign-in"), "{html}");

    // Without the form's token: refused before any password is looked at.
    let res = browser
        .post(app.url("/ops/login"))
        .form(&[
            ("email", alice.as_str()),
            ("password", OPS_PASSWORD),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Wrong password, unknown, pending, disabled: one answer for all.
    let mut answers = Vec::new();
    for (email, password) in [
        (alice.as_str(), "not the password at all"),
        ("nobody@ops.example", OPS_PASSWORD),
        (pending.as_str(), OPS_PASSWORD),
        (gone.as_str(), OPS_PASSWORD),
    ] {
        let res = ops_sign_in(&app, &browser, email, password).await;
        assert_eq!(res.status(), 401, "{email}");
        assert!(set_cookie(&res, "ecoupon_ops").is_none());
        let html = res.text().await.unwrap();
        let at = html.find("id=\"login-error\"").expect("an error message");
        answers.push(html[at..at + 150].to_string());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");

    let res = ops_sign_in(&app, &browser, &alice, OPS_PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ops/notices");
    let cookie = set_cookie(&res, "ecoupon_ops").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    let (status, html) = page(&browser, &app.url("/ops/notices")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&alice) && html.contains("Maintenance &amp; incidents"));
    let stored: i64 = app
        .db_value("SELECT count(*) FROM operator_sessions", &[])
        .await;
    assert_eq!(stored, 1);

    // Signing out ends the session on the server.
    let res = ops_post(&app, &browser, "/ops/notices", "/ops/logout", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ops/login");
    let res = browser.get(app.url("/ops/notices")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let left: i64 = app
        .db_value("SELECT count(*) FROM operator_sessions", &[])
        .await;
    assert_eq!(left, 0);
    let trail = audit_trail(&app, "operator.sign").await;
    assert_eq!(
        trail,
        vec![
            format!("operator.sign_in {alice} {alice}"),
            format!("operator.sign_out {alice} {alice}")
        ]
    );
}

#[actix_web::test]
async fn operator_sign_in_is_rate_limited_per_address_and_per_account() {
    let app = spawn_app_on(fresh_database().await, |db| {
        let mut s = test_settings(db);
        s.console.sign_ins_per_ip_per_minute = 3;
        s
    })
    .await;
    let (_, alice) = add_operator(&app, "active").await;
    let browser = html_client(Some("ja"));
    let (_, html) = page(&browser, &app.url("/ops/login")).await;
    let csrf = csrf_of(&html);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = browser
            .post(app.url("/ops/login"))
            .form(&[
                ("email", alice.as_str()),
                ("password", "guess"),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);

    // Per account, across addresses: after five failures the account waits.
    let app = spawn_app().await;
    let (id, bob) = add_operator(&app, "active").await;
    let browser = html_client(Some("ja"));
    for _ in 0..5 {
        let res = ops_sign_in(&app, &browser, &bob, "wrong guess").await;
        assert_eq!(res.status(), 401);
    }
    let waiting: bool = app
        .db_value(
            "SELECT sign_in_blocked_until > now() FROM operators WHERE id = $1",
            &[&id],
        )
        .await;
    assert!(waiting);
    // As after many more failures (the first waits are seconds, shorter than a slow
    // machine's Argon2 in a debug build): even the right password waits.
    app.db
        .client()
        .await
        .execute(
            "UPDATE operators SET sign_in_blocked_until = now() + interval '1 minute' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let res = ops_sign_in(&app, &browser, &bob, OPS_PASSWORD).await;
    assert_eq!(res.status(), 401, "even the right password waits");
}

#[actix_web::test]
async fn a_different_operator_approves_and_disabling_ends_sessions_at_once() {
    let app = spawn_app().await;
    let (alice_id, alice) = add_operator(&app, "active").await;
    let (bob_id, bob) = add_operator(&app, "pending").await;
    let (alice_browser, _) = ops_as(&app, &alice, "en").await;

    let (status, html) = page(&alice_browser, &app.url("/ops/operators")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("id=\"approve-{bob_id}\"")), "{html}");
    assert!(!html.contains(&format!("id=\"approve-{alice_id}\"")));
    assert!(!html.contains(&format!("id=\"disable-{alice_id}\"")));
    assert!(html.contains("1 request(s) waiting for approval"), "{html}");

    // Pending: bob cannot sign in yet.
    let bob_browser = html_client(Some("ja"));
    let res = ops_sign_in(&app, &bob_browser, &bob, OPS_PASSWORD).await;
    assert_eq!(res.status(), 401);

    // Nobody approves or disables themselves, even by posting the form by hand.
    for action in ["approve", "disable"] {
        let res = ops_post(
            &app,
            &alice_browser,
            "/ops/operators",
            &format!("/ops/operators/{alice_id}/{action}"),
            &[],
        )
        .await;
        assert_eq!(res.status(), 409, "{action}");
        assert!(res.text().await.unwrap().contains("yourself"));
    }
    // Forms need the session's CSRF token.
    let res = alice_browser
        .post(app.url(&format!("/ops/operators/{bob_id}/approve")))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let status: String = app
        .db_value("SELECT status FROM operators WHERE id = $1", &[&bob_id])
        .await;
    assert_eq!(status, "pending");

    let res = ops_post(
        &app,
        &alice_browser,
        "/ops/operators",
        &format!("/ops/operators/{bob_id}/approve"),
        &[],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ops/operators?done=approved");
    let (status, approver): (String, uuid::Uuid) = {
        let row = app
            .db
            .client()
            .await
            .query_one(
                "SELECT status, approved_by FROM operators WHERE id = $1",
                &[&bob_id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((status.as_str(), approver), ("active", alice_id));
    let res = ops_post(
        &app,
        &alice_browser,
        "/ops/operators",
        &format!("/ops/operators/{bob_id}/approve"),
        &[],
    )
    .await;
    assert_eq!(res.status(), 409, "approved once only");

    // Bob signs in, twice (two browsers); alice disables him: both sessions end at once.
    let (bob_browser, _) = ops_as(&app, &bob, "ja").await;
    let (bob_laptop, _) = ops_as(&app, &bob, "en").await;
    let (status, _) = page(&bob_browser, &app.url("/ops/operators")).await;
    assert_eq!(status, 200);
    let res = ops_post(
        &app,
        &alice_browser,
        "/ops/operators",
        &format!("/ops/operators/{bob_id}/disable"),
        &[],
    )
    .await;
    assert_eq!(res.status(), 303);
    for b in [&bob_browser, &bob_laptop] {
        let res = b.get(app.url("/ops/operators")).send().await.unwrap();
        assert_eq!(res.status(), 303, "bob is signed out");
        assert!(location(&res).starts_with("/ops/login"));
    }
    let sessions: i64 = app
        .db_value(
            "SELECT count(*) FROM operator_sessions WHERE operator_id = $1",
            &[&bob_id],
        )
        .await;
    assert_eq!(sessions, 0);
    let res = ops_sign_in(&app, &html_client(None), &bob, OPS_PASSWORD).await;
    assert_eq!(res.status(), 401, "a disabled operator cannot sign in");

    let trail = audit_trail(&app, "operator.").await;
    let steps: Vec<&String> = trail
        .iter()
        .filter(|l| !l.starts_with("operator.sign_"))
        .collect();
    assert_eq!(
        steps,
        vec![
            &format!("operator.approve {alice} {bob}"),
            &format!("operator.disable {alice} {bob}")
        ]
    );
    // A quick look that the page says so, in Japanese too.
    let (alice_ja, _) = ops_as(&app, &alice, "ja").await;
    let (_, html) = page(&alice_ja, &app.url("/ops/operators?done=disabled")).await;
    assert!(html.contains("無効にしました"), "{html}");
}
