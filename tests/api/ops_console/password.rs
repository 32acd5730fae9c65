//! An operator changes their own password at /ops/password under the password rules;
//! every other session of theirs ends, this browser stays signed in, and only the new
//! password signs in from then on.

use super::{add_operator, audit_trail, ops_as, ops_post, ops_sign_in, OPS_PASSWORD};
use crate::helpers::{html_client, location, page, spawn_app};

const NEW: &str = "the ferry leaves at dawn from pier seven";

#[actix_web::test]
async fn an_operator_changes_their_password_and_their_other_sessions_end() {
    let app = spawn_app().await;
    let (_, email) = add_operator(&app, "active").await;
    let (client, _) = ops_as(&app, &email, "en").await;
    let (other, _) = ops_as(&app, &email, "ja").await;
    let (status, html) = page(&client, &app.url("/ops/account")).await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/ops/password\""));
    let (status, html) = page(&client, &app.url("/ops/password")).await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/ops/password\""));
    assert!(
        html.contains("href=\"/ops/account\" aria-current=\"page\""),
        "the menu shows the account as the current place"
    );

    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        let client = client.clone();
        let app = &app;
        async move {
            ops_post(
                app,
                &client,
                "/ops/password",
                "/ops/password",
                &[("current", current), ("new", new), ("confirm", confirm)],
            )
            .await
        }
    };
    for (current, new, confirm, field) in [
        ("not my password", NEW, NEW, "current-error"),
        (OPS_PASSWORD, "too short", "too short", "new-error"),
        (OPS_PASSWORD, OPS_PASSWORD, OPS_PASSWORD, "new-error"),
        (
            OPS_PASSWORD,
            NEW,
            "the ferry leaves at dusk",
            "confirm-error",
        ),
    ] {
        let res = change(current, new, confirm).await;
        assert_eq!(res.status(), 422, "{field}");
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("id=\"{field}\"")), "{field}: {html}");
    }
    let res = change(OPS_PASSWORD, NEW, NEW).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ops/account");
    let (status, _) = page(&client, &app.url("/ops/notices")).await;
    assert_eq!(status, 200, "this browser stays signed in");
    let res = other.get(app.url("/ops/notices")).send().await.unwrap();
    assert_eq!(res.status(), 303, "every other session ended");

    let res = ops_sign_in(&app, &html_client(None), &email, OPS_PASSWORD).await;
    assert_eq!(res.status(), 401, "the old password no longer signs in");
    let res = ops_sign_in(&app, &html_client(None), &email, NEW).await;
    assert_eq!(res.status(), 303);
    let trail = audit_trail(&app, "operator.password").await;
    assert_eq!(trail, [format!("operator.password_change {email} {email}")]);
}
