//! Console sign-in: sessions, forced password change, throttling, sign-out, disabling.

use crate::console_helpers::{console_page, console_post, sign_in, PASSWORD};
use crate::helpers::{html_client, location, page, spawn_app};

#[actix_web::test]
async fn signing_in_and_out() {
    let app = spawn_app().await;
    let browser = html_client(Some("ja"));
    // Not signed in: every console page sends the browser to the sign-in form.
    let res = browser.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/merchant/login"));

    let email = app.add_user("manager").await;
    // A wrong password and an unknown address get the same page and message.
    let wrong = sign_in(&app, &browser, &email, "not the password at all").await;
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    let unknown = sign_in(&app, &browser, "nobody@shop.example", PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    let unknown = unknown.text().await.unwrap();
    let message = |html: &str| {
        html.split("id=\"login-error\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(message(&wrong), message(&unknown));

    let res = sign_in(&app, &browser, &email, PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/merchant");
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("ecoupon_console="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let (status, html) = page(&browser, &app.url("/merchant")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&email));

    // Sign out ends the session on the server: the old cookie no longer works.
    let res = console_post(&app, &browser, "/merchant", "/merchant/logout", &[]).await;
    assert_eq!(res.status(), 303);
    let res = browser.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed out");
    let live: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM merchant_sessions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 0);
}

#[actix_web::test]
async fn a_stolen_session_id_is_useless_after_sign_in_rotates_it() {
    let app = spawn_app().await;
    let email = app.add_user("admin").await;
    let browser = html_client(None);
    sign_in(&app, &browser, &email, PASSWORD).await;
    let first: Vec<Vec<u8>> = app
        .db
        .client()
        .await
        .query("SELECT id_hash FROM merchant_sessions", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    sign_in(&app, &browser, &email, PASSWORD).await;
    let second: Vec<Vec<u8>> = app
        .db
        .client()
        .await
        .query("SELECT id_hash FROM merchant_sessions", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!((first.len(), second.len()), (1, 1), "the old session ends");
    assert_ne!(first, second, "a new id at each sign-in");
}

#[actix_web::test]
async fn the_owner_from_tenant_create_must_change_the_printed_password() {
    let app = spawn_app().await;
    let db = app.db.client().await;
    let hash = ecoupon::domain::tenant::hash_password("printed-password-123");
    db.execute(
        "UPDATE merchant_users SET password_hash = $1, email = 'first@shop.example' WHERE tenant_id = $2 AND role = 'owner'",
        &[&hash, &app.tenant_id],
    )
    .await
    .unwrap();
    let browser = html_client(Some("en"));
    let res = sign_in(&app, &browser, "first@shop.example", "printed-password-123").await;
    assert_eq!(res.status(), 303);
    let res = browser.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(
        location(&res),
        "/merchant/password",
        "made to change it first"
    );
    // Too short, leaked, or not confirmed: refused with a message next to the field.
    for (new, confirm, field) in [
        ("short", "short", "new-error"),
        ("!LoveRockAndRoll", "!LoveRockAndRoll", "new-error"),
        (PASSWORD, "something else entirely", "confirm-error"),
    ] {
        let res = console_post(
            &app,
            &browser,
            "/merchant/password",
            "/merchant/password",
            &[
                ("current", "printed-password-123"),
                ("new", new),
                ("confirm", confirm),
            ],
        )
        .await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains(field), "{new}");
    }
    let res = console_post(
        &app,
        &browser,
        "/merchant/password",
        "/merchant/password",
        &[
            ("current", "printed-password-123"),
            ("new", PASSWORD),
            ("confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (status, _) = console_page(&app, &browser, "/merchant").await;
    assert_eq!(status, 200, "in, with the new password's fresh session");
    let old = html_client(None);
    assert_eq!(
        sign_in(&app, &old, "first@shop.example", "printed-password-123")
            .await
            .status(),
        401
    );
}

#[actix_web::test]
async fn repeated_failures_make_the_account_wait_and_disabling_signs_out_at_once() {
    let app = spawn_app().await;
    let email = app.add_user("manager").await;
    let attacker = html_client(None);
    for _ in 0..5 {
        let res = sign_in(&app, &attacker, &email, "guessing wrong again").await;
        assert_eq!(res.status(), 401);
    }
    // Now even the right password waits (the account is blocked for a while).
    let res = sign_in(&app, &attacker, &email, PASSWORD).await;
    assert_eq!(res.status(), 401, "blocked after five failures");
    app.db
        .client()
        .await
        .execute(
            "UPDATE merchant_users SET sign_in_blocked_until = NULL WHERE email = $1",
            &[&email],
        )
        .await
        .unwrap();
    let browser = app.console_as(&email).await;
    assert_eq!(console_page(&app, &browser, "/merchant").await.0, 200);
    app.db
        .client()
        .await
        .execute(
            "UPDATE merchant_users SET disabled = true WHERE email = $1",
            &[&email],
        )
        .await
        .unwrap();
    let res = browser.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(
        res.status(),
        303,
        "a disabled user is out on the next request"
    );
    assert_eq!(
        sign_in(&app, &html_client(None), &email, PASSWORD)
            .await
            .status(),
        401
    );
}

#[actix_web::test]
async fn sign_in_forms_need_their_csrf_token_and_staff_land_on_the_redemption_screen() {
    let app = spawn_app().await;
    let email = app.add_user("staff").await;
    let browser = html_client(None);
    let res = browser
        .post(app.url("/merchant/login"))
        .form(&[
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let staff = app.console_as(&email).await;
    let res = staff.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(location(&res), "/merchant/redeem");
}
