//! The API keys page: a key made in the console works on the API with exactly its scopes,
//! its secret is shown once; revoking it there shuts it out of the API; keys made by the
//! API and the CLI are listed; roles, CSRF and tenant boundaries.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::cli_keys::{field, run_ok};
use crate::console_helpers::{console_page, console_post};
use crate::helpers::{
    claim_with, csrf_of, error_code, eventually, key_with_scopes, location, spawn_app, TestApp,
};

/// The secret shown on the page after creating a key.
fn shown_secret(html: &str) -> String {
    let at = html
        .find("id=\"new-key-secret\">")
        .unwrap_or_else(|| panic!("a new key on the page: {html}"))
        + "id=\"new-key-secret\">".len();
    html[at..].split('<').next().unwrap().to_string()
}

/// Posts the creating form with `name` and `scopes` (each a ticked checkbox).
async fn create_in_console(
    app: &TestApp,
    client: &reqwest::Client,
    name: &str,
    scopes: &[&str],
) -> reqwest::Response {
    let mut fields = vec![("name", name)];
    fields.extend(scopes.iter().map(|s| ("scopes", *s)));
    console_post(app, client, "/merchant/keys", "/merchant/keys", &fields).await
}

/// Sends `req` with `key`: (status, error code).
async fn api_status(key: &str, req: reqwest::RequestBuilder) -> (u16, String) {
    let res = req.bearer_auth(key).send().await.unwrap();
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (status, error_code(&body).to_string())
}

fn get(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    app.client.get(app.url(path))
}

#[actix_web::test]
async fn a_console_key_has_its_scopes_is_shown_once_and_is_revoked_from_the_console() {
    let app = spawn_app().await;
    let (email, owner) = app.console_user("owner").await;
    let (status, html) = console_page(&app, &owner, "/merchant/keys").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("href=\"/merchant/keys\" aria-current=\"page\""),
        "in the navigation: {html}"
    );
    for scope in [
        "campaigns:read",
        "campaigns:write",
        "claims:write",
        "redemptions:write",
        "export:read",
        "keys:admin",
    ] {
        assert!(html.contains(&format!("value=\"{scope}\"")), "{scope}");
    }

    // No scope: the form comes back with its message and what was typed; nothing stored.
    let before: i64 = app.db_value("SELECT count(*) FROM api_keys", &[]).await;
    let res = create_in_console(&app, &owner, "レジ <1>", &[]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"key-scopes-error\"") && html.contains("権限を 1 つ以上選んでください"),
        "{html}"
    );
    assert!(html.contains("value=\"レジ &lt;1&gt;\""), "escaped: {html}");
    let res = create_in_console(&app, &owner, &"x".repeat(101), &["keys:nope"]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"key-name-error\"") && html.contains("id=\"key-scopes-error\""));
    let after: i64 = app.db_value("SELECT count(*) FROM api_keys", &[]).await;
    assert_eq!(before, after);

    let res = create_in_console(
        &app,
        &owner,
        " 渋谷店 POS ",
        &["campaigns:read", "claims:write"],
    )
    .await;
    assert_eq!(res.status(), 200, "the secret is in this answer, not a URL");
    assert!(res.headers().get("location").is_none());
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let secret = shown_secret(&html);
    assert!(secret.starts_with("eck_"), "{secret}");
    assert!(html.contains("二度と表示されません"), "{html}");
    let prefix = &secret[..12];
    let (name, scopes): (String, Vec<String>) = {
        let row = app
            .db
            .client()
            .await
            .query_one(
                "SELECT name, scopes FROM api_keys WHERE prefix = $1",
                &[&prefix],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(name, "渋谷店 POS");
    assert_eq!(scopes, ["campaigns:read", "claims:write"]);
    let (action, actor, detail): (String, String, String) = {
        let row = app
            .db
            .client()
            .await
            .query_one(
                "SELECT action, actor, detail::text FROM audit_log WHERE target = $1",
                &[&prefix],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(
        (action.as_str(), actor.as_str()),
        ("api_key.create", email.as_str())
    );
    assert!(
        !detail.contains(&secret[13..]),
        "no secret in the audit log"
    );

    // On the API it has exactly those scopes.
    let campaign = app
        .create_campaign_id(json!({"name": "x", "total_limit": 5, "status": "active"}))
        .await;
    assert_eq!(
        api_status(&secret, get(&app, "/api/v1/campaigns")).await.0,
        200
    );
    let (status, _) = claim_with(&app, &secret, &campaign, "consumer-1").await;
    assert_eq!(status, 201, "claims:write");
    let undo = format!("/api/v1/redemptions/{}", Uuid::new_v4());
    for (what, req) in [
        ("keys:admin", get(&app, "/api/v1/keys")),
        (
            "campaigns:write",
            app.client
                .post(app.url("/api/v1/campaigns"))
                .json(&json!({"name": "y", "total_limit": 5})),
        ),
        ("redemptions:write", app.client.delete(app.url(&undo))),
    ] {
        assert_eq!(
            api_status(&secret, req).await,
            (403, "insufficient_scope".to_string()),
            "{what}"
        );
    }

    // The list shows it, without its secret, from now on.
    let (_, html) = console_page(&app, &owner, "/merchant/keys").await;
    assert!(!html.contains(&secret[13..]), "the secret is shown once");
    assert!(!html.contains("id=\"new-key-secret\""));
    let id: Uuid = app
        .db_value("SELECT id FROM api_keys WHERE prefix = $1", &[&prefix])
        .await;
    assert!(html.contains(&format!("data-key-id=\"{id}\"")), "{html}");
    assert!(html.contains(prefix) && html.contains("渋谷店 POS"));

    // Revoked from the console: the API refuses it (on every node within a second).
    let res = console_post(
        &app,
        &owner,
        "/merchant/keys",
        &format!("/merchant/keys/{id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (303, "/merchant/keys?done=revoked")
    );
    let (_, html) = console_page(&app, &owner, "/merchant/keys?done=revoked").await;
    assert!(html.contains("キーを無効にしました"), "{html}");
    assert!(
        !html.contains(&format!("id=\"key-{id}-revoke\"")),
        "no second revoke button"
    );
    eventually(
        Duration::from_secs(5),
        "the revoked key is refused",
        async || {
            let (status, _) = api_status(&secret, get(&app, "/api/v1/campaigns")).await;
            (status == 401).then_some(())
        },
    )
    .await;
    let res = console_post(
        &app,
        &owner,
        "/merchant/keys",
        &format!("/merchant/keys/{id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(location(&res), "/merchant/keys?done=already_revoked");
    let audits: i64 = app
        .db_value(
            "SELECT count(*) FROM audit_log WHERE action = 'api_key.revoke' AND target = $1",
            &[&prefix],
        )
        .await;
    assert_eq!(audits, 1);
}

#[actix_web::test]
async fn keys_from_the_api_and_the_cli_are_listed_in_english_too() {
    let app = spawn_app().await;
    let res = app
        .post("/api/v1/keys")
        .json(&json!({"name": "from the API", "scopes": ["export:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let api_prefix = res.json::<serde_json::Value>().await.unwrap()["key"]["prefix"]
        .as_str()
        .unwrap()
        .to_string();
    let tenant = app.tenant_id.to_string();
    let out = run_ok(
        &app,
        &[
            "key",
            "create",
            "--tenant",
            &tenant,
            "--name",
            "from the CLI",
            "--scope",
            "redemptions:write",
        ],
    );
    let cli_prefix = field(&out, "prefix").to_string();

    let email = app.add_user("admin").await;
    let admin = app.console_lang(&email, "en").await;
    let (status, html) = console_page(&app, &admin, "/merchant/keys").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("API keys") && html.contains("Never"),
        "{html}"
    );
    for (prefix, name, scope) in [
        (api_prefix.as_str(), "from the API", "export:read"),
        (cli_prefix.as_str(), "from the CLI", "redemptions:write"),
    ] {
        let at = html
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix} listed: {html}"));
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        assert!(row.contains(name) && row.contains(scope), "{row}");
        assert!(row.contains("Revoke"), "{row}");
    }
    // The test app's own key, the API's and the CLI's are all active.
    let (_, html) = console_page(&app, &admin, "/merchant/keys?lang=en").await;
    assert!(html.matches("Active").count() >= 3, "{html}");
}

#[actix_web::test]
async fn only_owners_and_admins_manage_keys_and_only_their_own() {
    let app = spawn_app().await;
    let victim = key_with_scopes(&app, &["campaigns:read"]).await;
    let victim_id: Uuid = app
        .db_value(
            "SELECT id FROM api_keys WHERE prefix = $1",
            &[&&victim[..12]],
        )
        .await;
    for role in ["manager", "staff"] {
        let (_, client) = app.console_user(role).await;
        let (status, html) = console_page(&app, &client, "/merchant/keys").await;
        assert_eq!(status, 403, "{role}");
        assert!(!html.contains("eck_"), "{role} sees no key");
        let (_, home) = console_page(&app, &client, "/merchant/account").await;
        assert!(
            !home.contains("href=\"/merchant/keys\""),
            "no link for {role}"
        );
        let csrf = csrf_of(&home);
        for (action, fields) in [
            ("/merchant/keys".to_string(), vec![("scopes", "keys:admin")]),
            (format!("/merchant/keys/{victim_id}/revoke"), vec![]),
        ] {
            let mut all = fields.clone();
            all.push(("csrf", &csrf));
            let res = client
                .post(app.url(&action))
                .form(&all)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{role} {action}");
        }
    }
    let keys: i64 = app.db_value("SELECT count(*) FROM api_keys", &[]).await;
    assert_eq!(keys, 2, "nothing made");

    // Without the form's CSRF token nothing happens.
    let (_, owner) = app.console_user("owner").await;
    for (action, fields) in [
        ("/merchant/keys".to_string(), vec![("scopes", "keys:admin")]),
        (format!("/merchant/keys/{victim_id}/revoke"), vec![]),
    ] {
        for csrf in [None, Some("forged")] {
            let mut all = fields.clone();
            if let Some(c) = csrf {
                all.push(("csrf", c));
            }
            let res = owner
                .post(app.url(&action))
                .form(&all)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{action} csrf {csrf:?}");
        }
    }
    let keys: i64 = app.db_value("SELECT count(*) FROM api_keys", &[]).await;
    assert_eq!(keys, 2, "nothing made");

    // Another tenant's key is not found here, and stays working.
    let other: Uuid = app
        .db_value(
            "INSERT INTO tenants (id, name) VALUES ($1, 'Other') RETURNING id",
            &[&Uuid::new_v4()],
        )
        .await;
    let stranger = Uuid::new_v4();
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes)
             VALUES ($1, $2, 'theirs', 'eck_THEIRS01', '\\x00', '{campaigns:read}')",
            &[&stranger, &other],
        )
        .await
        .unwrap();
    for id in [stranger, Uuid::new_v4()] {
        let res = console_post(
            &app,
            &owner,
            "/merchant/keys",
            &format!("/merchant/keys/{id}/revoke"),
            &[],
        )
        .await;
        assert_eq!(res.status(), 404);
    }
    let (_, html) = console_page(&app, &owner, "/merchant/keys").await;
    assert!(!html.contains("eck_THEIRS01") && !html.contains("theirs"));
    let revoked: Option<chrono::DateTime<chrono::Utc>> = app
        .db_value(
            "SELECT revoked_at FROM api_keys WHERE id = $1",
            &[&stranger],
        )
        .await;
    assert_eq!(revoked, None);
    assert_eq!(
        api_status(&victim, get(&app, "/api/v1/campaigns")).await.0,
        200,
        "nobody revoked it"
    );
}
