//! CSV export (`/merchant/export`) and the root page: every dataset with its header and
//! rows, the BOM only when asked, Japanese-day date filters, formula cells neutralised,
//! role boundaries, tenant isolation, bad dates.

use reqwest::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::json;

use crate::helpers::{
    error_code, html_client, page, spawn_app, spawn_app_on, test_settings, TestApp,
};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A downloaded file: status, headers we check, and its bytes.
pub struct Download {
    pub status: u16,
    pub content_type: String,
    pub disposition: String,
    pub body: Vec<u8>,
}

pub async fn download(app: &TestApp, client: &reqwest::Client, path: &str) -> Download {
    let res = client.get(app.url(path)).send().await.unwrap();
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, disposition) = (header(CONTENT_TYPE), header(CONTENT_DISPOSITION));
    Download {
        status: res.status().as_u16(),
        content_type,
        disposition,
        body: res.bytes().await.unwrap().to_vec(),
    }
}

/// The header row and the records, parsed as any CSV reader would.
pub fn parse(body: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let mut reader = csv::Reader::from_reader(body);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// The value of `column` in `row`.
fn cell<'a>(header: &[String], row: &'a [String], column: &str) -> &'a str {
    let i = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    &row[i]
}

/// A campaign named `name` with one coupon claimed by each of `consumers`; their codes.
async fn campaign_with_claims(
    app: &TestApp,
    name: &str,
    consumers: &[&str],
) -> (String, Vec<String>) {
    let id = app
        .create_campaign_id(json!({"name": name, "total_limit": 50, "status": "active",
                                   "discount": {"kind": "amount_off_yen", "amount": 300}}))
        .await;
    let mut codes = Vec::new();
    for consumer in consumers {
        let (status, body) = app.claim(&id, consumer).await;
        assert_eq!(status, 201, "{body}");
        codes.push(body["coupon"]["code"].as_str().unwrap().to_string());
    }
    (id, codes)
}

#[actix_web::test]
async fn every_dataset_downloads_with_its_header_and_rows() {
    let app = spawn_app().await;
    let (owner, client) = app.console_user("owner").await;
    let staff = app.add_user("staff").await;
    let (campaign, codes) = campaign_with_claims(
        &app,
        "=HYPERLINK(\"http://evil.example\")",
        &["a", "b", "c"],
    )
    .await;
    let (status, body) = app
        .redeem(&codes[0], json!({"store": "-Shibuya", "staff": "@Tanaka"}))
        .await;
    assert_eq!(status, 201, "{body}");

    let d = download(&app, &client, "/merchant/export/campaigns.csv").await;
    assert_eq!(d.status, 200);
    assert_eq!(d.content_type, "text/csv; charset=utf-8");
    assert_eq!(
        d.disposition,
        "attachment; filename=\"ecoupon-campaigns.csv\""
    );
    assert!(!d.body.starts_with(BOM), "no BOM unless asked");
    assert!(
        d.body.windows(2).any(|w| w == b"\r\n"),
        "RFC 4180 line ends"
    );
    let (header, rows) = parse(&d.body);
    assert_eq!(&header[..4], ["id", "name", "status", "claim_url"]);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(cell(&header, row, "id"), campaign);
    // The formula is text now, whatever spreadsheet opens it.
    assert_eq!(
        cell(&header, row, "name"),
        "'=HYPERLINK(\"http://evil.example\")"
    );
    assert_eq!(cell(&header, row, "status"), "active");
    assert!(cell(&header, row, "claim_url").starts_with(&app.url("/c/")));
    assert_eq!(cell(&header, row, "discount_kind"), "amount_off_yen");
    assert_eq!(cell(&header, row, "discount_value"), "300");
    assert_eq!(cell(&header, row, "issued"), "3");
    assert_eq!(cell(&header, row, "redeemed"), "1");
    assert_eq!(cell(&header, row, "total_limit"), "50");
    // Japan time, with the offset.
    assert!(
        cell(&header, row, "created_at").ends_with("+09:00"),
        "{row:?}"
    );
    assert_eq!(cell(&header, row, "claim_ends_at"), "");

    let (header, rows) = parse(
        &download(&app, &client, "/merchant/export/coupons.csv")
            .await
            .body,
    );
    assert_eq!(
        header,
        [
            "id",
            "campaign_id",
            "campaign_name",
            "code",
            "won",
            "consumer",
            "claim_number",
            "claimed_at",
            "valid_from",
            "expires_at",
            "uses_left"
        ]
    );
    let mut exported: Vec<_> = rows
        .iter()
        .map(|r| cell(&header, r, "code").to_string())
        .collect();
    exported.sort();
    let mut claimed = codes.clone();
    claimed.sort();
    assert_eq!(exported, claimed);
    let used = rows
        .iter()
        .find(|r| cell(&header, r, "code") == codes[0])
        .unwrap();
    assert_eq!(cell(&header, used, "uses_left"), "0");
    assert_eq!(cell(&header, used, "won"), "true");
    assert_eq!(cell(&header, used, "campaign_id"), campaign);

    let (header, rows) = parse(
        &download(&app, &client, "/merchant/export/redemptions.csv")
            .await
            .body,
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(cell(&header, &rows[0], "coupon_code"), codes[0]);
    assert_eq!(cell(&header, &rows[0], "store"), "'-Shibuya");
    assert_eq!(cell(&header, &rows[0], "staff"), "'@Tanaka");
    assert_eq!(cell(&header, &rows[0], "undone_at"), "");

    let (header, rows) = parse(
        &download(&app, &client, "/merchant/export/users.csv")
            .await
            .body,
    );
    assert_eq!(header[..3], ["id", "email", "role"]);
    let users: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                cell(&header, r, "email").to_string(),
                cell(&header, r, "role").to_string(),
            )
        })
        .collect();
    assert!(
        users.contains(&(owner.clone(), "owner".into())),
        "{users:?}"
    );
    assert!(users.contains(&(staff, "staff".into())), "{users:?}");
    assert!(users.contains(&("owner@test.example".into(), "owner".into())));

    let (header, rows) = parse(
        &download(&app, &client, "/merchant/export/audit.csv")
            .await
            .body,
    );
    assert_eq!(
        header,
        ["id", "at", "actor", "action", "target", "ip", "detail"]
    );
    let exports: Vec<_> = rows
        .iter()
        .filter(|r| cell(&header, r, "action") == "export.download")
        .collect();
    assert_eq!(exports.len(), 4, "each earlier download is in the log");
    assert!(exports.iter().all(|r| cell(&header, r, "actor") == owner));
    let detail: serde_json::Value =
        serde_json::from_str(cell(&header, exports[0], "detail")).unwrap();
    assert_eq!(detail["dataset"], "campaigns");

    let (status, _) = page(&client, &app.url("/merchant/export/secrets.csv")).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn the_bom_is_there_only_when_asked_and_the_page_offers_it() {
    let app = spawn_app().await;
    let (_, client) = app.console_user("manager").await;
    campaign_with_claims(&app, "カフェ桜 春のキャンペーン", &["x"]).await;

    let (status, html) = page(&client, &app.url("/merchant/export")).await;
    assert_eq!(status, 200);
    for d in ["campaigns", "coupons", "redemptions"] {
        assert!(
            html.contains(&format!("action=\"/merchant/export/{d}.csv\"")),
            "{d}"
        );
        assert!(
            html.contains(&format!("id=\"{d}-from\"")) && html.contains(&format!("id=\"{d}-bom\""))
        );
    }
    // Managers may not see accounts.
    assert!(
        !html.contains("/merchant/export/users.csv")
            && !html.contains("/merchant/export/audit.csv")
    );

    let with = download(&app, &client, "/merchant/export/campaigns.csv?bom=1").await;
    assert!(with.body.starts_with(BOM));
    let (_, rows) = parse(&with.body);
    assert_eq!(
        rows[0][1], "カフェ桜 春のキャンペーン",
        "UTF-8 Japanese intact"
    );
    let without = download(&app, &client, "/merchant/export/campaigns.csv?bom=0").await;
    assert!(without.body.starts_with(b"id,"));
    assert_eq!(&with.body[BOM.len()..], &without.body[..]);
}

#[actix_web::test]
async fn dates_filter_by_whole_days_in_japan() {
    let app = spawn_app().await;
    let (_, client) = app.console_user("admin").await;
    let (_, codes) = campaign_with_claims(&app, "dates", &["late", "early", "last"]).await;
    let db = app.db.client().await;
    // Just before and just after midnight in Japan, and the last second of the day.
    for (code, at) in [
        (&codes[0], "2026-11-01T00:00:00+09:00"),
        (&codes[1], "2026-10-31T23:59:59+09:00"),
        (&codes[2], "2026-11-30T23:59:59+09:00"),
    ] {
        db.execute(
            "UPDATE coupons SET claimed_at = $2::text::timestamptz WHERE code = $1",
            &[code, &at],
        )
        .await
        .unwrap();
    }
    let codes_in = |body: Vec<u8>| {
        let (header, rows) = parse(&body);
        rows.iter()
            .map(|r| cell(&header, r, "code").to_string())
            .collect::<Vec<_>>()
    };
    let d = download(
        &app,
        &client,
        "/merchant/export/coupons.csv?from=2026-11-01&to=2026-11-30&bom=1",
    )
    .await;
    assert_eq!(d.status, 200);
    assert_eq!(
        d.disposition,
        "attachment; filename=\"ecoupon-coupons-2026-11-01-2026-11-30.csv\""
    );
    let (header, rows) = parse(&d.body);
    assert_eq!(
        cell(&header, &rows[0], "claimed_at"),
        "2026-11-01T00:00:00+09:00"
    );
    assert_eq!(codes_in(d.body), [codes[0].clone(), codes[2].clone()]);
    let d = download(&app, &client, "/merchant/export/coupons.csv?to=2026-10-31").await;
    assert_eq!(codes_in(d.body), [codes[1].clone()]);
    let d = download(
        &app,
        &client,
        "/merchant/export/coupons.csv?from=2026-11-02&to=",
    )
    .await;
    assert_eq!(
        d.disposition,
        "attachment; filename=\"ecoupon-coupons-from-2026-11-02.csv\""
    );
    assert_eq!(codes_in(d.body), [codes[2].clone()]);
    let d = download(
        &app,
        &client,
        "/merchant/export/coupons.csv?from=2026-12-01",
    )
    .await;
    assert_eq!(
        (d.status, codes_in(d.body).len()),
        (200, 0),
        "an empty range is a header only"
    );

    let audit = db
        .query_one(
            "SELECT detail FROM audit_log WHERE tenant_id = $1 AND action = 'export.download' ORDER BY id LIMIT 1",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    let detail: serde_json::Value = audit.get(0);
    assert_eq!(
        detail,
        json!({"dataset": "coupons", "from": "2026-11-01", "to": "2026-11-30", "bom": true})
    );
}

#[actix_web::test]
async fn bad_dates_are_refused_with_a_message_next_to_the_field() {
    let app = spawn_app().await;
    let (_, client) = app.console_user("owner").await;
    let res = client
        .get(app.url("/merchant/export/redemptions.csv?from=2026-13-01&to=2026-11-30&bom=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("data-code=\"invalid_date\""), "{html}");
    assert!(html.contains("id=\"redemptions-from-error\""), "{html}");
    assert!(html.contains("YYYY-MM-DD"));
    assert!(
        html.contains("value=\"2026-13-01\""),
        "what was typed is kept"
    );
    assert!(!html.contains("id=\"redemptions-to-error\""));

    let res = client
        .get(app.url("/merchant/export/users.csv?from=2026-11-30&to=2026-11-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("id=\"users-to-error\""));

    for bad in ["from=yesterday", "to=2026-02-30", "from=2026-1-1", "to=%00"] {
        let res = client
            .get(app.url(&format!("/merchant/export/coupons.csv?{bad}")))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "invalid_date", "{bad}");
    }
}

#[actix_web::test]
async fn staff_cannot_export_and_managers_cannot_export_accounts() {
    let app = spawn_app().await;
    let (_, staff) = app.console_user("staff").await;
    let (status, _) = page(&staff, &app.url("/merchant/export")).await;
    assert_eq!(status, 403);
    for d in ["campaigns", "coupons", "redemptions", "users", "audit"] {
        let d = download(&app, &staff, &format!("/merchant/export/{d}.csv")).await;
        assert_eq!(d.status, 403);
    }
    let (_, manager) = app.console_user("manager").await;
    for (d, want) in [
        ("campaigns", 200),
        ("coupons", 200),
        ("redemptions", 200),
        ("users", 403),
        ("audit", 403),
    ] {
        assert_eq!(
            download(&app, &manager, &format!("/merchant/export/{d}.csv"))
                .await
                .status,
            want,
            "{d}"
        );
    }
    // Not signed in: to the sign-in page, nothing downloaded.
    let res = html_client(None)
        .get(app.url("/merchant/export/coupons.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

#[actix_web::test]
async fn another_tenants_rows_never_appear() {
    let app = spawn_app().await;
    // A second tenant on the same database (spawn_app_on makes one per app).
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let (_, other_codes) = campaign_with_claims(&other, "Other shop", &["o1", "o2"]).await;
    let (status, _) = other
        .redeem(&other_codes[0], json!({"staff": "someone else"}))
        .await;
    assert_eq!(status, 201);
    let other_user = other.add_user("admin").await;
    let other_client = other.console_as(&other_user).await;
    download(&other, &other_client, "/merchant/export/coupons.csv").await;

    let (_, mine) = campaign_with_claims(&app, "Mine", &["m1"]).await;
    let (_, client) = app.console_user("owner").await;
    for d in ["campaigns", "coupons", "redemptions", "users", "audit"] {
        let body = download(&app, &client, &format!("/merchant/export/{d}.csv"))
            .await
            .body;
        let text = String::from_utf8(body).unwrap();
        for foreign in [
            "Other shop",
            &other_codes[0],
            &other_codes[1],
            &other_user,
            &other.tenant_id.to_string(),
            "someone else",
        ] {
            assert!(!text.contains(foreign), "{d} shows {foreign}: {text}");
        }
    }
    let text = String::from_utf8(
        download(&app, &client, "/merchant/export/coupons.csv")
            .await
            .body,
    )
    .unwrap();
    assert!(text.contains(&mine[0]));
}

#[actix_web::test]
async fn the_root_page_offers_coupons_and_the_console() {
    let app = spawn_app().await;
    for (lang, console, coupons) in [
        ("ja", "加盟店の管理画面", "マイクーポン"),
        ("en", "Merchant console", "My coupons"),
    ] {
        let (status, html) = page(&html_client(Some(lang)), &app.url("/")).await;
        assert_eq!(status, 200, "{lang}");
        assert!(html.contains(&format!("<html lang=\"{lang}\">")));
        assert!(html.contains("href=\"/my\" id=\"my-coupons\""), "{html}");
        assert!(
            html.contains("href=\"/merchant\" id=\"merchant-console\""),
            "{html}"
        );
        assert!(html.contains(console) && html.contains(coupons), "{html}");
    }
}
