//! Console users: role boundaries, owners and the last owner, disabling, invitations, and
//! the TOTP second factor from enrolment to sign-in.

use uuid::Uuid;

use crate::console_helpers::{console_page, console_post, sign_in, PASSWORD};
use crate::helpers::{csrf_of, html_client, location, page, spawn_app, TestApp};

/// The id of the user with this e-mail.
pub(super) async fn user_id(app: &TestApp, email: &str) -> Uuid {
    app.db_value("SELECT id FROM merchant_users WHERE email = $1", &[&email])
        .await
}

/// (role, disabled) of a user, straight from the database.
async fn user_row(app: &TestApp, id: Uuid) -> (String, bool) {
    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT role, disabled FROM merchant_users WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn change_user(
    app: &TestApp,
    client: &reqwest::Client,
    id: Uuid,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let action = format!("/merchant/users/{id}");
    console_post(app, client, "/merchant/account", &action, fields).await
}

#[actix_web::test]
async fn only_owners_and_admins_manage_users_and_settings() {
    let app = spawn_app().await;
    for role in ["manager", "staff"] {
        let (_, client) = app.console_user(role).await;
        for path in ["/merchant/users", "/merchant/settings"] {
            let (status, _) = console_page(&app, &client, path).await;
            assert_eq!(status, 403, "{role} {path}");
        }
        let res = console_post(
            &app,
            &client,
            "/merchant/account",
            "/merchant/users/invite",
            &[("email", "someone@shop.example"), ("role", "staff")],
        )
        .await;
        assert_eq!(res.status(), 403, "{role} cannot invite");
        // Everyone has their own account page.
        let (status, html) = console_page(&app, &client, "/merchant/account").await;
        assert_eq!(status, 200);
        assert!(!html.contains("href=\"/merchant/users\""), "no Users link");
    }
    // Staff land on the redemption screen, never the campaign list.
    let (_, staff) = app.console_user("staff").await;
    let res = staff.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(location(&res), "/merchant/redeem");
    let invites: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM merchant_invites", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(invites, 0, "nothing was created");

    let (_, admin) = app.console_user("admin").await;
    for path in ["/merchant/users", "/merchant/settings"] {
        let (status, html) = console_page(&app, &admin, path).await;
        assert_eq!(status, 200, "admin {path}");
        assert!(html.contains("href=\"/merchant/users\""));
    }
}

#[actix_web::test]
async fn admins_cannot_make_owners_nor_touch_them() {
    let app = spawn_app().await;
    let (_, admin) = app.console_user("admin").await;
    let owner = user_id(&app, &app.add_user("owner").await).await;
    let manager = user_id(&app, &app.add_user("manager").await).await;

    // The invitation form offers no owner role to an admin, and a hand-made one is refused.
    let (_, html) = console_page(&app, &admin, "/merchant/users").await;
    let invite_roles = html.split("id=\"invite-role\"").nth(1).unwrap();
    let invite_roles = invite_roles.split("</select>").next().unwrap();
    assert!(!invite_roles.contains("value=\"owner\""), "{invite_roles}");
    let res = console_post(
        &app,
        &admin,
        "/merchant/users",
        "/merchant/users/invite",
        &[("email", "boss@shop.example"), ("role", "owner")],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("id=\"invite-role-error\""));

    let res = change_user(&app, &admin, manager, &[("role", "owner")]).await;
    assert_eq!(res.status(), 403);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains(&format!("user-error-{manager}")));
    assert_eq!(user_row(&app, manager).await, ("manager".into(), false));
    for fields in [vec![("disabled", "1")], vec![("role", "staff")]] {
        let res = change_user(&app, &admin, owner, &fields).await;
        assert_eq!(res.status(), 403, "{fields:?}");
        assert_eq!(user_row(&app, owner).await, ("owner".into(), false));
    }
    // What an admin may do: move a manager to admin or staff.
    let res = change_user(&app, &admin, manager, &[("role", "admin")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(user_row(&app, manager).await.0, "admin");

    // An owner may make an owner.
    let (_, owner_client) = app.console_user("owner").await;
    let res = change_user(&app, &owner_client, manager, &[("role", "owner")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(user_row(&app, manager).await.0, "owner");
    let actions: Vec<String> = app
        .db
        .client()
        .await
        .query(
            "SELECT action FROM audit_log WHERE action LIKE 'user.%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "user.role_change").count(),
        2
    );
    // Another tenant's user does not exist here.
    let other = app
        .db
        .client()
        .await
        .query_one(
            "INSERT INTO tenants (id, name) VALUES ($1, 'Other') RETURNING id",
            &[&Uuid::new_v4()],
        )
        .await
        .unwrap()
        .get::<_, Uuid>(0);
    let stranger = user_id(&app, &app.add_user_to(other, "staff").await).await;
    let res = change_user(&app, &owner_client, stranger, &[("disabled", "1")]).await;
    assert_eq!(res.status(), 404);
    assert_eq!(user_row(&app, stranger).await, ("staff".into(), false));
}

#[actix_web::test]
async fn the_last_active_owner_is_never_demoted_or_disabled() {
    let app = spawn_app().await;
    let email = app.add_user("owner").await;
    let me = user_id(&app, &email).await;
    let client = app.console_as(&email).await;
    // The tenant's first owner steps down: one active owner is left.
    let first = user_id(&app, "owner@test.example").await;
    let res = change_user(&app, &client, first, &[("role", "admin")]).await;
    assert_eq!(res.status(), 303);

    let res = change_user(&app, &client, me, &[("role", "admin")]).await;
    assert_eq!(res.status(), 409);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("id=\"user-error-{me}\"")), "{html}");
    assert_eq!(user_row(&app, me).await, ("owner".into(), false));
    // Nor can they disable themselves (of all the ways to lock a tenant out).
    let res = change_user(&app, &client, me, &[("disabled", "1")]).await;
    assert_eq!(res.status(), 422);
    assert_eq!(user_row(&app, me).await, ("owner".into(), false));
    // With a second owner, stepping down is fine.
    let res = change_user(&app, &client, first, &[("role", "owner")]).await;
    assert_eq!(res.status(), 303);
    let res = change_user(&app, &client, me, &[("role", "admin")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(user_row(&app, me).await.0, "admin");
}

#[actix_web::test]
async fn a_disabled_user_is_out_on_the_next_request() {
    let app = spawn_app().await;
    let (_, admin) = app.console_user("admin").await;
    let (manager_email, manager) = app.console_user("manager").await;
    let id = user_id(&app, &manager_email).await;
    let (status, _) = console_page(&app, &manager, "/merchant").await;
    assert_eq!(status, 200);

    let res = change_user(&app, &admin, id, &[("disabled", "1")]).await;
    assert_eq!(res.status(), 303);
    let res = manager.get(app.url("/merchant")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/merchant/login"));
    let sessions: i64 = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM merchant_sessions WHERE user_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sessions, 0);
    let again = sign_in(&app, &html_client(None), &manager_email, PASSWORD).await;
    assert_eq!(again.status(), 401, "cannot sign in while disabled");
    let (_, html) = console_page(&app, &admin, "/merchant/users").await;
    assert!(html.contains(&format!(
        "data-user-id=\"{id}\" data-role=\"manager\" data-disabled=\"true\""
    )));

    let res = change_user(&app, &admin, id, &[("disabled", "0")]).await;
    assert_eq!(res.status(), 303);
    let back = sign_in(&app, &html_client(None), &manager_email, PASSWORD).await;
    assert_eq!(back.status(), 303);
    let audit: Vec<String> = app
        .db
        .client()
        .await
        .query(
            "SELECT action FROM audit_log WHERE target = $1 AND action LIKE 'user.%able' ORDER BY id",
            &[&manager_email],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(audit, ["user.disable", "user.enable"]);
}

/// The invitation link shown on the users page.
fn invite_link(html: &str) -> String {
    let at = html.find("id=\"invite-link\"").expect("an invitation link");
    let href = html[at..].split("href=\"").nth(1).unwrap();
    href.split('"').next().unwrap().to_owned()
}

#[actix_web::test]
async fn an_invitation_is_used_once_to_join_with_its_role() {
    let app = spawn_app().await;
    let (admin_email, admin) = app.console_user("admin").await;
    // Bad addresses and one that already signs in get a message next to the field.
    for (email, why) in [
        ("", "missing"),
        ("not-an-address", "invalid"),
        (admin_email.as_str(), "taken"),
    ] {
        let res = console_post(
            &app,
            &admin,
            "/merchant/users",
            "/merchant/users/invite",
            &[("email", email), ("role", "staff")],
        )
        .await;
        assert_eq!(res.status(), 422, "{why}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("id=\"invite-email-error\""),
            "{why}"
        );
    }
    let res = console_post(
        &app,
        &admin,
        "/merchant/users",
        "/merchant/users/invite",
        &[("email", "Hanako@Shop.example"), ("role", "manager")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let link = invite_link(&res.text().await.unwrap());
    let path = link
        .strip_prefix(&app.address)
        .expect("a link to this server")
        .to_owned();
    let token = path.strip_prefix("/merchant/invite/").unwrap().to_owned();
    // Only the token's hash is stored.
    let stored: Vec<u8> = app
        .db
        .client()
        .await
        .query_one("SELECT token_hash FROM merchant_invites", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, ecoupon::domain::token::sha256(&token));
    let (_, html) = console_page(&app, &admin, "/merchant/users").await;
    assert!(html.contains("id=\"open-invites\"") && html.contains("hanako@shop.example"));
    assert!(!html.contains(&token), "the link is shown once");

    let invitee = html_client(Some("en"));
    let (status, html) = page(&invitee, &link).await;
    assert_eq!(status, 200);
    assert!(html.contains("hanako@shop.example"));
    let csrf = csrf_of(&html);
    let post = |new: &'static str, confirm: &'static str| {
        invitee
            .post(&link)
            .form(&[("new", new), ("confirm", confirm), ("csrf", &csrf)])
            .send()
    };
    let res = post("short", "short").await.unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("id=\"new-error\""));
    let res = post(PASSWORD, "something else entirely").await.unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("id=\"confirm-error\""));
    // A post without the form's token does nothing.
    let res = html_client(None)
        .post(&link)
        .form(&[("new", PASSWORD), ("confirm", PASSWORD), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let res = post(PASSWORD, PASSWORD).await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"invite-done\"") && html.contains("href=\"/merchant/login\""));

    let (status, html) = page(&invitee, &link).await;
    assert_eq!(status, 410, "used");
    assert!(html.contains("data-reason=\"used\""));
    let res = post(PASSWORD, PASSWORD).await.unwrap();
    assert_eq!(res.status(), 410, "not twice");

    let newcomer = app.console_as("hanako@shop.example").await;
    let (status, _) = console_page(&app, &newcomer, "/merchant").await;
    assert_eq!(status, 200, "a manager sees the campaigns");
    let (status, _) = console_page(&app, &newcomer, "/merchant/users").await;
    assert_eq!(status, 403, "but not the users");
    let id = user_id(&app, "hanako@shop.example").await;
    assert_eq!(user_row(&app, id).await, ("manager".into(), false));
}

#[actix_web::test]
async fn unknown_and_expired_invitations_say_so() {
    let app = spawn_app().await;
    let browser = html_client(Some("ja"));
    let (status, html) = page(
        &browser,
        &app.url(&format!("/merchant/invite/{}", "x".repeat(43))),
    )
    .await;
    assert_eq!(status, 404);
    assert!(html.contains("data-reason=\"unknown\""));
    let (status, _) = page(&browser, &app.url("/merchant/invite/short")).await;
    assert_eq!(status, 404);

    let (_, admin) = app.console_user("owner").await;
    let res = console_post(
        &app,
        &admin,
        "/merchant/users",
        "/merchant/users/invite",
        &[("email", "late@shop.example"), ("role", "staff")],
    )
    .await;
    let link = invite_link(&res.text().await.unwrap());
    app.db
        .client()
        .await
        .execute(
            "UPDATE merchant_invites SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let (status, html) = page(&browser, &link).await;
    assert_eq!(status, 410);
    assert!(html.contains("data-reason=\"expired\""));
}

mod totp;
