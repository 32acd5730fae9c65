//! Console settings: the form and its field errors (nothing half saved), the IP
//! allow-list for the console and the API, its lock-out confirmation, and which
//! `X-Forwarded-For` is believed.

use ecoupon::config::{ClientSettings, Secret};

use crate::console_helpers::console_page;
use crate::helpers::{
    csrf_of, error_code, eventually, fresh_database, spawn_app, spawn_app_on, test_settings,
    TestApp,
};

/// A real 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";

/// A multipart/form-data body as a browser sends it: text fields, then the logo file
/// (empty when none is chosen). Returns (content type, body).
fn multipart(fields: &[(&str, &str)], logo: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----ecoupon-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let filename = if logo.is_empty() { "" } else { "logo.png" };
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(logo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The fields of a valid form, to change one at a time.
fn valid() -> Vec<(&'static str, &'static str)> {
    vec![
        ("brand_color", "#0b6e4f"),
        ("accent_color", "#1f2937"),
        ("ip_allowlist", ""),
    ]
}

async fn save(
    app: &TestApp,
    client: &reqwest::Client,
    fields: &[(&str, &str)],
    logo: &[u8],
) -> reqwest::Response {
    let (status, html) = console_page(app, client, "/merchant/settings").await;
    assert_eq!(status, 200, "the settings page opens");
    let csrf = csrf_of(&html);
    let mut all = fields.to_vec();
    all.push(("csrf", &csrf));
    let (content_type, body) = multipart(&all, logo);
    client
        .post(app.url("/merchant/settings"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// (brand, accent, logo set, require_check_code, require_mfa, allow-list)
async fn stored(app: &TestApp) -> (String, String, bool, bool, bool, Vec<String>) {
    let r = app
        .db
        .client()
        .await
        .query_one(
            "SELECT brand_color, accent_color, logo_image_id IS NOT NULL, require_check_code,
                    require_mfa, ip_allowlist FROM tenants WHERE id = $1",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    app.db
        .client()
        .await
        .query(
            "SELECT action FROM audit_log WHERE action LIKE 'settings.%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The address the settings page says the user is at.
fn shown_ip(html: &str) -> String {
    let at = html.find("id=\"your-ip\">").expect("the user's address") + 13;
    html[at..].split('<').next().unwrap().to_owned()
}

#[actix_web::test]
async fn settings_show_contrast_and_refuse_bad_fields_without_saving_any() {
    let app = spawn_app().await;
    let (_, admin) = app.console_user("admin").await;
    let before = stored(&app).await;
    let (status, html) = console_page(&app, &admin, "/merchant/settings").await;
    assert_eq!(status, 200);
    assert_eq!(shown_ip(&html), "127.0.0.1");
    // The default colours with their contrast next to them.
    let contrast = html
        .split("id=\"brand-contrast\"")
        .nth(1)
        .expect("the brand contrast");
    let contrast = contrast
        .split('>')
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(
        contrast.contains(":1 · "),
        "a ratio and a verdict: {contrast}"
    );

    let mut fields = valid();
    fields[0] = ("brand_color", "#ffff66");
    fields[1] = ("accent_color", "blue");
    fields[2] = ("ip_allowlist", "127.0.0.1\n10.0.0.300");
    fields.push(("require_mfa", "1"));
    fields.push(("require_check_code", "1"));
    let res = save(&app, &admin, &fields, b"<svg onload=alert(1)>").await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    for id in [
        "brand_color-error",
        "accent_color-error",
        "ip_allowlist-error",
        "logo-error",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("10.0.0.300"), "the bad entry is named");
    assert!(
        html.contains("value=\"#ffff66\""),
        "what was typed is shown again"
    );
    assert_eq!(stored(&app).await, before, "nothing half saved");
    assert!(audit_actions(&app).await.is_empty());

    let mut fields = valid();
    fields.push(("require_check_code", "1"));
    let res = save(&app, &admin, &fields, PNG).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        "/merchant/settings?saved=1"
    );
    let (brand, accent, logo, check, mfa, list) = stored(&app).await;
    assert_eq!((brand.as_str(), accent.as_str()), ("#0b6e4f", "#1f2937"));
    assert!(logo && check && !mfa && list.is_empty());
    let (_, html) = console_page(&app, &admin, "/merchant/settings?saved=1").await;
    assert!(html.contains("id=\"settings-saved\"") && html.contains("id=\"current-logo\""));
    assert!(html.contains("id=\"require_check_code\" name=\"require_check_code\" type=\"checkbox\" value=\"1\" checked"));
    assert_eq!(audit_actions(&app).await, ["settings.update"]);

    // A logo over the limit is refused next to its field, the rest of the form kept.
    let mut huge = PNG.to_vec();
    huge.resize(2 * 1024 * 1024 + 10, 0);
    let mut fields = valid();
    fields[0] = ("brand_color", "#1f2937");
    let res = save(&app, &admin, &fields, &huge).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"logo-error\"") && html.contains("value=\"#1f2937\""));
    assert_eq!(stored(&app).await.0, "#0b6e4f");
    // Saving again without a file keeps the logo; unticking turns the requirement off.
    let res = save(&app, &admin, &valid(), b"").await;
    assert_eq!(res.status(), 303);
    let (_, _, logo, check, _, _) = stored(&app).await;
    assert!(logo && !check);
    // A form without its CSRF token changes nothing.
    let (content_type, body) = multipart(&[("brand_color", "#000000"), ("csrf", "forged")], b"");
    let res = admin
        .post(app.url("/merchant/settings"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(stored(&app).await.0, "#0b6e4f");
}

#[actix_web::test]
async fn a_list_that_shuts_out_the_user_needs_confirming() {
    let app = spawn_app().await;
    let (_, owner) = app.console_user("owner").await;
    let mut fields = valid();
    fields[2] = ("ip_allowlist", "203.0.113.0/24");
    let res = save(&app, &owner, &fields, b"").await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"ip_allowlist-error\"") && html.contains("127.0.0.1"));
    assert!(
        html.contains("id=\"confirm_lockout\""),
        "the confirmation is offered"
    );
    assert!(stored(&app).await.5.is_empty(), "not saved");

    // With the user's own address on it, it saves at once.
    fields[2] = ("ip_allowlist", "203.0.113.0/24\n127.0.0.0/8 # office");
    let res = save(&app, &owner, &fields, b"").await;
    assert_eq!(res.status(), 303);
    assert_eq!(stored(&app).await.5, ["203.0.113.0/24", "127.0.0.0/8"]);
    let (status, html) = console_page(&app, &owner, "/merchant/settings").await;
    assert_eq!(status, 200);
    assert!(html.contains("203.0.113.0/24\n127.0.0.0/8</textarea>"));

    // Confirmed, the lock-out happens: the next request is refused.
    fields[2] = ("ip_allowlist", "203.0.113.0/24");
    fields.push(("confirm_lockout", "1"));
    let res = save(&app, &owner, &fields, b"").await;
    assert_eq!(res.status(), 303);
    let (status, _) = console_page(&app, &owner, "/merchant/settings").await;
    assert_eq!(status, 403);
    assert_eq!(
        audit_actions(&app).await,
        // The colours of `valid()` once, then each list on its own.
        [
            "settings.update",
            "settings.allowlist",
            "settings.allowlist"
        ]
    );
}

async fn set_allowlist(app: &TestApp, list: &[&str]) {
    let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    app.db
        .client()
        .await
        .execute(
            "UPDATE tenants SET ip_allowlist = $2 WHERE id = $1",
            &[&app.tenant_id, &list],
        )
        .await
        .unwrap();
}

/// Status of the API's tenant endpoint and of a console page, sent with `forwarded` as
/// `X-Forwarded-For` when given.
async fn reach(
    app: &TestApp,
    console: &reqwest::Client,
    forwarded: Option<&str>,
) -> (u16, String, u16) {
    let mut api = app.get("/api/v1/tenant");
    let mut page = console.get(app.url("/merchant/account"));
    if let Some(f) = forwarded {
        api = api.header("X-Forwarded-For", f);
        page = page.header("X-Forwarded-For", f);
    }
    let api = api.send().await.unwrap();
    let api_status = api.status().as_u16();
    let body: serde_json::Value = api.json().await.unwrap_or_default();
    let page = page.send().await.unwrap().status().as_u16();
    (api_status, error_code(&body).to_owned(), page)
}

#[actix_web::test]
async fn the_allow_list_refuses_the_console_and_the_api_from_outside() {
    let app = spawn_app().await;
    let (_, staff) = app.console_user("staff").await;
    // The tests connect from 127.0.0.1, which this list leaves out.
    set_allowlist(&app, &["203.0.113.0/24", "2001:db8::/32"]).await;
    let (api, code, page) = reach(&app, &staff, None).await;
    assert_eq!((api, code.as_str(), page), (403, "ip_not_allowed", 403));
    // Claiming another address does not help without a trusted proxy.
    let (api, _, page) = reach(&app, &staff, Some("203.0.113.5")).await;
    assert_eq!((api, page), (403, 403));

    set_allowlist(&app, &["203.0.113.0/24", "127.0.0.1/32"]).await;
    // API keys are cached for a second, their tenant's list with them.
    eventually(
        std::time::Duration::from_secs(5),
        "the API lets 127.0.0.1 in",
        async || {
            let (api, _, page) = reach(&app, &staff, None).await;
            (api == 200 && page == 200).then_some(())
        },
    )
    .await;
}

#[actix_web::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        s.pages.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        s
    })
    .await;
    let (_, admin) = app.console_user("admin").await;
    let seen = |forwarded: &'static str| {
        let admin = admin.clone();
        let url = app.url("/merchant/settings");
        async move {
            let html = admin
                .get(url)
                .header("X-Forwarded-For", forwarded)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            shown_ip(&html)
        }
    };
    // Read right to left, past trusted proxies; a forged entry at the left is never used.
    assert_eq!(seen("203.0.113.9").await, "203.0.113.9");
    assert_eq!(seen("198.51.100.1, 203.0.113.9").await, "203.0.113.9");
    assert_eq!(
        seen("198.51.100.1, 203.0.113.9, 127.0.0.5").await,
        "203.0.113.9"
    );
    assert_eq!(
        seen("203.0.113.9, garbage").await,
        "127.0.0.1",
        "unreadable: the peer"
    );

    // The allow-list judges the forwarded client, for the console and the API.
    set_allowlist(&app, &["203.0.113.0/24"]).await;
    let (api, _, page) = reach(&app, &admin, Some("203.0.113.9")).await;
    assert_eq!((api, page), (200, 200));
    let (api, code, page) = reach(&app, &admin, Some("198.51.100.1")).await;
    assert_eq!((api, code.as_str(), page), (403, "ip_not_allowed", 403));
    let (api, _, page) = reach(&app, &admin, None).await;
    assert_eq!(
        (api, page),
        (403, 403),
        "the proxy itself is not on the list"
    );
}

#[actix_web::test]
async fn accepted_sign_in_providers_are_the_configured_ones() {
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        // Configured only so the page lists them; nobody signs in with them here.
        let client = |id: &str| ClientSettings {
            client_id: id.into(),
            client_secret: Secret::new("unused".into()),
            issuer: Some("http://127.0.0.1:9".into()),
        };
        s.signin.line = Some(client("line"));
        s.signin.google = Some(client("google"));
        s
    })
    .await;
    let (_, admin) = app.console_user("admin").await;
    let (_, html) = console_page(&app, &admin, "/merchant/settings").await;
    assert!(html.contains("id=\"provider-line\"") && html.contains("id=\"provider-google\""));

    let mut fields = valid();
    fields.push(("signin_providers", "myspace"));
    let res = save(&app, &admin, &fields, b"").await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("id=\"signin_providers-error\""));

    let mut fields = valid();
    fields.push(("signin_providers", "line"));
    let res = save(&app, &admin, &fields, b"").await;
    assert_eq!(res.status(), 303);
    let providers: Vec<String> = app
        .db
        .client()
        .await
        .query_one(
            "SELECT signin_providers FROM tenants WHERE id = $1",
            &[&app.tenant_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(providers, ["line"]);
    let (_, html) = console_page(&app, &admin, "/merchant/settings").await;
    assert!(html.contains("value=\"line\" checked") && !html.contains("value=\"google\" checked"));
}

mod in_the_browser;
