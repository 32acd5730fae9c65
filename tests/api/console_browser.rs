//! The merchant console in headless Chromium, as issue 8's "Tests" asks: a manager signs in,
//! creates a campaign with an image while the preview follows the typing, activates it; a
//! consumer claims it in another browser; staff redeem it on the staff screen with the
//! consumer's check code, and a second try says "already used"; the manager downloads the
//! redemptions CSV and it holds the redemption. Then every console page is opened in
//! Japanese and in English (the API keys page also just after a key is made): a
//! full-page screenshot of each goes to
//! `test-artifacts/screenshots/console-<page>-<lang>.png`, and axe-core checks each against
//! WCAG 2 A/AA.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use crate::axe::{assert_accessible, violations};
use crate::console_helpers::{console_post, PASSWORD};
use crate::helpers::{browser, chromedriver, eventually, scratch_dir, spawn_app, TestApp};

mod page;
use page::{
    assert_image_loaded, attr, click, text, type_into, wait_attr, wait_for, wait_text, Seen,
};

/// A laptop for the office pages; the staff screen keeps the phone size `browser()` opens.
const DESK: (u32, u32) = (1280, 900);
const NAME: &str = "春のコーヒーフェア";

#[actix_web::test]
async fn sign_in_create_claim_redeem_export_and_every_page_in_both_languages() {
    let driver = chromedriver().await;
    let app = spawn_app().await;
    let seen = Seen::default();
    let (manager, staff, owner) = (
        app.add_user("manager").await,
        app.add_user("staff").await,
        app.add_user("owner").await,
    );
    // One store, so the staff screen offers it and the redemption records it.
    let owner_http = app.console_as(&owner).await;
    let res = console_post(
        &app,
        &owner_http,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", "渋谷店"), ("code", "SHIBUYA")],
    )
    .await;
    assert!(
        res.status().is_redirection(),
        "store created: {}",
        res.status()
    );

    // 1. The manager signs in and creates a campaign with an image, watching the preview.
    let desk = browser(&driver).await;
    desk.set_window_size(DESK.0, DESK.1).await.unwrap();
    sign_in(&desk, &app, &manager, "ja").await;
    let campaign_page = create_campaign(&seen, &desk, &app).await;

    // 2. It is activated from its page, which shows the claim URL.
    click(&desk, "#action-activate").await;
    wait_attr(&desk, "#campaign-status", "data-status", "active").await;
    let claim_url = attr(&desk, "#claim-url", "href").await;
    assert!(claim_url.starts_with(&app.url("/c/")), "{claim_url}");
    seen.look(&desk, "campaign-page-active", "ja").await;

    // 3. A consumer claims it on their phone and sees the coupon with its check code.
    let phone = browser(&driver).await;
    phone.goto(&format!("{claim_url}?lang=ja")).await.unwrap();
    assert_image_loaded(&phone, ".claim__image").await;
    assert_accessible(&phone, "claim page with the campaign's image").await;
    click(&phone, "#claim-button").await;
    let coupon_code = text(&phone, "#coupon-code").await;
    let coupon_url = phone.current_url().await.unwrap().to_string();

    // 4. Staff redeem it at the till: a wrong check code first, then the consumer's.
    let till = browser(&driver).await;
    sign_in(&till, &app, &staff, "ja").await;
    let at_till = Till {
        seen: &seen,
        client: &till,
        app: &app,
    };
    let wrong = wrong_code(&text(&phone, "#check-code").await);
    at_till
        .redeem(&coupon_code, &wrong, "wrong_check_code", "ja")
        .await;
    let check = text(&phone, "#check-code").await;
    assert!(
        check.len() == 6 && check.bytes().all(|b| b.is_ascii_digit()),
        "{check}"
    );
    at_till.redeem(&coupon_code, &check, "ok", "ja").await;
    till.find(Locator::Css("#undo-button"))
        .await
        .expect("undo is offered");
    // The consumer's screen agrees.
    phone.goto(&coupon_url).await.unwrap();
    wait_text(&phone, "#used-stamp", "使用済み").await;

    // 5. A second try is refused as already used (whatever code is typed: the used
    //    coupon's screen shows none), in both languages. A second consumer's coupon with
    //    a wrong code gives the English "wrong check code" screen.
    at_till
        .redeem(&coupon_code, &check, "already_used", "ja")
        .await;
    at_till
        .redeem(&coupon_code, &check, "already_used", "en")
        .await;
    let phone2 = browser(&driver).await;
    phone2.goto(&format!("{claim_url}?lang=en")).await.unwrap();
    click(&phone2, "#claim-button").await;
    let second_coupon = text(&phone2, "#coupon-code").await;
    let wrong = wrong_code(&text(&phone2, "#check-code").await);
    at_till
        .redeem(&second_coupon, &wrong, "wrong_check_code", "en")
        .await;
    phone2.close().await.unwrap();
    till.goto(&app.url("/merchant/redeem?lang=en"))
        .await
        .unwrap();
    seen.look(&till, "redeem", "en").await;
    till.goto(&app.url("/merchant/redeem?lang=ja"))
        .await
        .unwrap();
    seen.look(&till, "redeem", "ja").await;

    // 6. The campaign page counts both coupons and the one use; the redemptions CSV
    //    holds that use.
    desk.goto(&app.url(&campaign_page)).await.unwrap();
    assert_eq!(text(&desk, "#stat-issued").await, "2");
    assert_eq!(text(&desk, "#stat-redeemed").await, "1");
    assert_eq!(text(&desk, "#stat-remaining").await, "8");
    let rows = download_csv(&desk, "redemptions").await;
    let col = |name: &str| {
        rows[0]
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("a {name} column: {:?}", rows[0]))
    };
    let plain = |code: &str| code.replace(['-', ' '], "");
    let used: Vec<_> = rows[1..]
        .iter()
        .filter(|r| plain(&r[col("coupon_code")]) == plain(&coupon_code))
        .collect();
    assert_eq!(used.len(), 1, "one redemption of {coupon_code}: {rows:?}");
    assert_eq!(
        rows.len(),
        2,
        "and no other (wrong codes never redeem): {rows:?}"
    );
    let row = used[0];
    assert_eq!(row[col("store_code")], "SHIBUYA", "{row:?}");
    assert_eq!(row[col("campaign_name")], NAME, "{row:?}");
    assert_eq!(row[col("staff")], staff, "{row:?}");

    // 7. Every page, in both languages: a screenshot each, and axe.
    let office = browser(&driver).await;
    office.set_window_size(DESK.0, DESK.1).await.unwrap();
    sign_in(&office, &app, &owner, "ja").await;
    let guest = browser(&driver).await;
    guest.set_window_size(DESK.0, DESK.1).await.unwrap();
    let invite = invite_link(&office, &app).await;
    // (name, path, an element only that page has: proof it opened, not an error page)
    let pages = [
        ("home", "/merchant".to_string(), "table#campaigns"),
        (
            "campaign-new",
            "/merchant/campaigns/new".into(),
            "form#campaign-form",
        ),
        (
            "campaign-edit",
            format!("{campaign_page}/edit"),
            "form#campaign-form",
        ),
        ("campaign-page", campaign_page.clone(), "#claim-url"),
        ("stores", "/merchant/stores".into(), "#store-form"),
        ("users", "/merchant/users".into(), "#invite-form"),
        ("settings", "/merchant/settings".into(), "#settings-form"),
        ("keys", "/merchant/keys".into(), "#key-form"),
        ("account", "/merchant/account".into(), "#mfa"),
        (
            "export",
            "/merchant/export".into(),
            "#export-redemptions-form",
        ),
        ("password", "/merchant/password".into(), "#password-button"),
    ];
    for lang in ["ja", "en"] {
        // The keys page as it is once: just after a key is made, its secret showing.
        office
            .goto(&app.url(&format!("/merchant/keys?lang={lang}")))
            .await
            .unwrap();
        type_into(&office, "#key-name", &format!("POS {lang}")).await;
        click(&office, "#scope-campaigns-read").await;
        click(&office, "#scope-claims-write").await;
        click(&office, "#key-create").await;
        wait_text(&office, "#new-key-secret", "eck_").await;
        seen.look(&office, "keys-created", lang).await;
        for (name, path, mark) in &pages {
            office
                .goto(&app.url(&format!("{path}?lang={lang}")))
                .await
                .unwrap();
            wait_for(&office, mark).await;
            seen.look(&office, name, lang).await;
        }
        guest.goto(&format!("{invite}?lang={lang}")).await.unwrap();
        wait_for(&guest, "#accept-button").await;
        seen.look(&guest, "invite", lang).await;
        guest
            .goto(&app.url(&format!("/merchant/login?lang={lang}")))
            .await
            .unwrap();
        wait_for(&guest, "#login-button").await;
        seen.look(&guest, "login", lang).await;
    }

    for client in [desk, phone, till, office, guest] {
        client.close().await.unwrap();
    }
    seen.assert_all_accessible();
}

/// The page that shows a new key's secret answers a POST; reloading it must not send the
/// form again and make a second key (console.js points the address bar at the list).
#[actix_web::test]
async fn reloading_the_page_with_a_new_keys_secret_makes_no_second_key() {
    let driver = chromedriver().await;
    let app = spawn_app().await;
    let owner = app.add_user("owner").await;
    let office = browser(&driver).await;
    office.set_window_size(DESK.0, DESK.1).await.unwrap();
    sign_in(&office, &app, &owner, "en").await;
    office.goto(&app.url("/merchant/keys")).await.unwrap();
    type_into(&office, "#key-name", "Till 1").await;
    click(&office, "#scope-claims-write").await;
    click(&office, "#key-create").await;
    wait_text(&office, "#new-key-secret", "eck_").await;
    let keys = async || {
        app.db_value::<i64>(
            "SELECT count(*) FROM api_keys WHERE name = 'Till 1' AND tenant_id = $1",
            &[&app.tenant_id],
        )
        .await
    };
    assert_eq!(keys().await, 1);
    assert_eq!(
        office.current_url().await.unwrap().path(),
        "/merchant/keys",
        "the address bar names the list"
    );
    office.refresh().await.unwrap();
    wait_for(&office, "#key-form").await;
    assert!(
        office.find(Locator::Css("#new-key-secret")).await.is_err(),
        "the secret is shown once"
    );
    assert_eq!(keys().await, 1, "a reload made no second key");
    office.close().await.unwrap();
}

/// The pages forbid inline script (CSP `script-src 'self'`); axe still runs because
/// WebDriver's scripts are not page scripts. This shows both, rather than assuming.
#[actix_web::test]
async fn axe_runs_under_the_pages_csp() {
    let driver = chromedriver().await;
    let app = spawn_app().await;
    let guest = browser(&driver).await;
    guest.goto(&app.url("/merchant/login")).await.unwrap();
    let inline_ran = guest
        .execute(
            "window.__inline = false;
             const s = document.createElement('script');
             s.textContent = 'window.__inline = true;';
             document.head.appendChild(s);
             return window.__inline;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(inline_ran, json!(false), "the CSP blocks an inline script");
    let found = violations(&guest, "login").await;
    let version = guest
        .execute("return window.axe && window.axe.version;", vec![])
        .await
        .unwrap();
    assert!(
        version.as_str().is_some_and(|v| v.starts_with('4')),
        "{version}"
    );
    assert!(found.is_empty(), "{found:?}");
    guest.close().await.unwrap();
}

/// Signs in through the form, in `lang`; lands on the role's home.
async fn sign_in(client: &Client, app: &TestApp, email: &str, lang: &str) {
    client
        .goto(&app.url(&format!("/merchant/login?lang={lang}")))
        .await
        .unwrap();
    type_into(client, "#email", email).await;
    type_into(client, "#password", PASSWORD).await;
    click(client, "#login-button").await;
    eventually(Duration::from_secs(20), "sign-in finishes", async || {
        let url = client.current_url().await.ok()?;
        (!url.path().starts_with("/merchant/login")).then_some(())
    })
    .await;
}

/// Fills the editor, checking the preview follows in both languages; saves; returns the
/// campaign page's path.
async fn create_campaign(seen: &Seen, desk: &Client, app: &TestApp) -> String {
    desk.goto(&app.url("/merchant?lang=ja")).await.unwrap();
    seen.look(desk, "home-empty", "ja").await;
    click(desk, "#new-campaign").await;
    wait_for(desk, "form#campaign-form").await;
    type_into(desk, "#name", NAME).await;
    wait_text(desk, "#preview-ja .preview-name", NAME).await;
    wait_text(desk, "#preview-en .preview-name", NAME).await;
    type_into(desk, "#description", "期間中、全店でドリンクが300円引き。").await;
    desk.find(Locator::Css("#discount_kind"))
        .await
        .unwrap()
        .select_by_value("amount_off_yen")
        .await
        .unwrap();
    type_into(desk, "#discount_value", "300").await;
    wait_text(desk, "#preview-ja .preview-discount", "300").await;
    wait_text(desk, "#preview-en .preview-discount", "300").await;
    type_into(desk, "#total_limit", "10").await;
    type_into(desk, "#valid_for_days", "7").await;
    let image = test_png();
    desk.find(Locator::Css("#image"))
        .await
        .unwrap()
        .send_keys(image.to_str().unwrap())
        .await
        .unwrap();
    assert_image_loaded(desk, "#preview-ja .preview-image").await;
    if let Ok(status) = desk.find(Locator::Css("#status")).await {
        status.select_by_value("draft").await.unwrap();
    }
    seen.look(desk, "campaign-new-filled", "ja").await;
    click(desk, "#save-campaign").await;
    wait_for(desk, "#claim-url").await;
    wait_attr(desk, "#campaign-status", "data-status", "draft").await;
    assert_image_loaded(desk, ".c-editor__current-image").await;
    // Its path only: the redirect may carry a notice in the query.
    desk.current_url().await.unwrap().path().to_string()
}

/// The staff screen in a browser signed in as staff.
struct Till<'a> {
    seen: &'a Seen,
    client: &'a Client,
    app: &'a TestApp,
}

impl Till<'_> {
    /// Submits the staff form and waits for the result screen's outcome; looks at it.
    async fn redeem(&self, code: &str, check: &str, outcome: &str, lang: &str) {
        let till = self.client;
        till.goto(&self.app.url(&format!("/merchant/redeem?lang={lang}")))
            .await
            .unwrap();
        type_into(till, "#coupon-code", code).await;
        type_into(till, "#check-code", check).await;
        click(till, "#redeem-button").await;
        wait_attr(till, "#redeem-result", "data-outcome", outcome).await;
        let page = format!("redeem-result-{outcome}");
        self.seen.look(till, &page, lang).await;
    }
}

/// Owner invites someone; the one-time link shown on screen.
async fn invite_link(office: &Client, app: &TestApp) -> String {
    office
        .goto(&app.url("/merchant/users?lang=ja"))
        .await
        .unwrap();
    type_into(office, "#invite-email", "newcomer@shop.example").await;
    office
        .find(Locator::Css("#invite-role"))
        .await
        .unwrap()
        .select_by_value("staff")
        .await
        .unwrap();
    click(office, "#invite-button").await;
    attr(office, "#invite-link", "href").await
}

/// Fetches a CSV export from inside the signed-in browser (its cookie, its session) and
/// parses it: today ± 1 day in Japan, with the Excel BOM.
async fn download_csv(desk: &Client, dataset: &str) -> Vec<Vec<String>> {
    let today = (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive();
    let url = format!(
        "/merchant/export/{dataset}.csv?from={}&to={}&bom=1",
        today.pred_opt().unwrap(),
        today.succ_opt().unwrap()
    );
    let fetched = desk
        .execute_async(
            "const [url, done] = arguments;
             fetch(url, { credentials: 'same-origin' })
               .then(async r => done({ status: r.status, type: r.headers.get('content-type'),
                 // r.text() would drop the BOM, which is what is being checked.
                 body: new TextDecoder('utf-8', { ignoreBOM: true })
                         .decode(await r.arrayBuffer()) }))
               .catch(e => done({ status: 0, error: String(e) }));",
            vec![json!(url)],
        )
        .await
        .unwrap();
    assert_eq!(fetched["status"], 200, "{url}: {fetched}");
    let content_type = fetched["type"].as_str().unwrap_or_default();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let body = fetched["body"].as_str().unwrap_or_default();
    let body = body
        .strip_prefix('\u{feff}')
        .unwrap_or_else(|| panic!("bom=1 starts with a BOM: {body:?}"));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| {
            r.expect("RFC 4180 CSV")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    assert!(rows.len() >= 2, "a header and a row: {rows:?}");
    rows
}

/// A small real PNG (a warm gradient) made here, for the image upload.
fn test_png() -> PathBuf {
    let path = scratch_dir("upload").join("coffee.png");
    let (w, h) = (120u32, 80u32);
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut encoder = png::Encoder::new(file, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let pixels: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| [200 + (x / 4) as u8, 90 + y as u8, 40]))
        .collect();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    path
}

/// Six digits that are not `code` (nor next to it, so no step of the clock matches).
fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap_or(0);
    format!("{:06}", (n + 500_000) % 1_000_000)
}
