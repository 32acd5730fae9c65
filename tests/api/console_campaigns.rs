//! The console's campaign editor: create (with an image) and edit through the multipart
//! form, every bad field answered next to its input with nothing saved, status actions,
//! role boundaries, another tenant's campaign, QR posters, and the live preview.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;
use uuid::Uuid;

use crate::axe::assert_accessible;
use crate::browser::artifacts;
use crate::console_helpers::{console_page, PASSWORD};
use crate::helpers::{
    browser, chromedriver, csrf_of, eventually, location, spawn_app, spawn_app_on, test_settings,
    TestApp,
};

const BOUNDARY: &str = "----ecoupon-test-boundary-7MA4YWxkTrZu0gW";

/// A real 1×1 PNG.
fn png_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 1, 1);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[0x80]).unwrap();
    writer.finish().unwrap();
    out
}

/// A multipart/form-data body as a browser sends it; `image` is (bytes, content type).
fn multipart(fields: &[(&str, &str)], image: Option<(&[u8], &str)>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let (bytes, content_type) = image.unwrap_or((b"", "application/octet-stream"));
    let filename = if bytes.is_empty() { "" } else { "photo.png" };
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Opens `form_page`, then posts the editor's multipart form to `action` with its CSRF
/// token.
async fn post_editor(
    app: &TestApp,
    client: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
    image: Option<(&[u8], &str)>,
) -> reqwest::Response {
    let (status, html) = console_page(app, client, form_page).await;
    assert_eq!(status, 200, "{form_page} opens");
    let csrf = csrf_of(&html);
    let mut all = fields.to_vec();
    all.push(("csrf", &csrf));
    client
        .post(app.url(action))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(&all, image))
        .send()
        .await
        .unwrap()
}

/// A form filled in the way a merchant would, with `changes` applied on top.
fn good_form<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("name", "春のセール"),
        ("description", "駅前店の春のセール\n2 行目"),
        ("terms", "お一人様 1 回限り"),
        ("discount_kind", "amount_off_yen"),
        ("discount_value", "500"),
        ("total_limit", "50"),
        ("per_consumer_limit", "2"),
        ("claim_starts_at", ""),
        ("claim_ends_at", "2099-01-01T09:00"),
        ("use_starts_at", ""),
        ("use_ends_at", ""),
        ("valid_for_days", "7"),
        ("uses_per_coupon", "2"),
        ("win_probability", ""),
        ("signin", "none"),
        ("code_length", "8"),
        ("code_prefix", "SPR"),
        ("code_charset", "digits"),
        ("status", "active"),
    ];
    for (name, value) in changes {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => fields.push((name, value)),
        }
    }
    fields
}

async fn api_campaign(app: &TestApp, id: &str) -> serde_json::Value {
    let res = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db
        .client()
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

/// The id in a redirect to `/merchant/campaigns/{id}?saved=…`.
fn created_id(res: &reqwest::Response) -> String {
    let to = location(res);
    let rest = to.strip_prefix("/merchant/campaigns/").expect(to);
    rest.split('?').next().unwrap().to_owned()
}

/// The text of the element with `id` (up to its next tag).
fn text_by_id(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in the page"));
    let after = &html[start..];
    let open_end = after.find('>').unwrap() + 1;
    after[open_end..].split('<').next().unwrap().to_owned()
}

#[actix_web::test]
async fn a_campaign_made_in_the_form_with_an_image_can_be_claimed() {
    let app = spawn_app().await;
    let (_, manager) = app.console_user("manager").await;
    let (status, html) = console_page(&app, &manager, "/merchant/campaigns/new").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"enctype="multipart/form-data""#) && html.contains(r#"id="campaign-form""#)
    );
    for id in [
        "name",
        "description",
        "terms",
        "discount_kind",
        "discount_value",
        "total_limit",
        "per_consumer_limit",
        "claim_starts_at",
        "claim_ends_at",
        "use_starts_at",
        "use_ends_at",
        "valid_for_days",
        "uses_per_coupon",
        "win_probability",
        "signin",
        "code_length",
        "code_prefix",
        "code_charset",
        "status",
        "image",
        "save-campaign",
        "preview",
        "preview-ja",
        "preview-en",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "#{id} on the form");
    }
    assert!(html.contains(r#"type="datetime-local""#));

    let png = png_bytes();
    let res = post_editor(
        &app,
        &manager,
        "/merchant/campaigns/new",
        "/merchant/campaigns",
        &good_form(&[]),
        Some((&png, "image/png")),
    )
    .await;
    assert_eq!(res.status(), 303);
    let to = location(&res).to_owned();
    assert!(to.ends_with("?saved=created"), "{to}");
    let id = created_id(&res);

    // Every rule arrived as the API would have stored it; times were Japan time.
    let c = api_campaign(&app, &id).await;
    assert_eq!(c["name"], "春のセール");
    assert_eq!(c["description"], "駅前店の春のセール\n2 行目");
    assert_eq!(
        c["discount"],
        json!({"kind": "amount_off_yen", "amount": 500})
    );
    assert_eq!(
        (c["total_limit"].as_i64(), c["per_consumer_limit"].as_i64()),
        (Some(50), Some(2))
    );
    assert_eq!(c["claim_ends_at"], "2099-01-01T00:00:00Z");
    assert_eq!(c["valid_for_seconds"], 7 * 86_400);
    assert_eq!(c["uses_per_coupon"], 2);
    assert_eq!(c["win_probability"], json!(null));
    assert_eq!(
        (c["code_prefix"].as_str(), c["code_length"].as_i64()),
        (Some("SPR"), Some(8))
    );
    assert_eq!(c["code_charset"], "0123456789");
    assert_eq!(c["status"], "active");

    // The image went in with it, served back as it was sent.
    let image: Uuid = app
        .db
        .client()
        .await
        .query_one(
            "SELECT image_id FROM campaigns WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let res = reqwest::get(app.url(&format!("/i/{image}"))).await.unwrap();
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().as_ref(), png.as_slice());

    // The campaign page: counts, claim URL, QR links and the actions an active campaign has.
    let (status, page) = console_page(&app, &manager, &to).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("href=\"{}\"", c["claim_url"].as_str().unwrap())));
    for present in [
        "claim-url",
        "qr-png",
        "qr-svg",
        "edit-campaign",
        "action-pause",
        "action-end",
        "campaign-notice",
    ] {
        assert!(page.contains(&format!("id=\"{present}\"")), "#{present}");
    }
    for absent in ["action-activate", "action-resume"] {
        assert!(!page.contains(&format!("id=\"{absent}\"")), "no #{absent}");
    }
    assert_eq!(text_by_id(&page, "stat-issued"), "0");
    assert_eq!(text_by_id(&page, "stat-remaining"), "50");

    // Claimable through the API, with the code format chosen in the form.
    let (status, body) = app.claim(&id, "consumer-1").await;
    assert_eq!(status, 201, "{body}");
    let code = body["coupon"]["code"].as_str().unwrap().replace('-', "");
    assert!(code.starts_with("SPR") && code.len() == 11, "{code}");
    assert!(code[3..].bytes().all(|b| b.is_ascii_digit()), "{code}");
    let (_, page) = console_page(&app, &manager, &format!("/merchant/campaigns/{id}")).await;
    assert_eq!(text_by_id(&page, "stat-issued"), "1");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'campaign.create'"
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn every_bad_field_gets_its_message_and_nothing_is_saved() {
    let app = spawn_app().await;
    let (_, owner) = app.console_user("owner").await;
    let bad = good_form(&[
        ("name", "  "),
        ("total_limit", "abc"),
        ("per_consumer_limit", "0"),
        ("claim_starts_at", "2030-04-02T09:00"),
        ("claim_ends_at", "2030-04-01T09:00"),
        ("use_starts_at", "someday"),
        ("valid_for_days", "0"),
        ("uses_per_coupon", "1001"),
        ("win_probability", "150"),
        ("discount_kind", "percent_off"),
        ("discount_value", "101"),
        ("code_length", "5"),
        ("code_prefix", "ab-"),
        ("code_charset", "AAB"),
        ("signin", "maybe"),
        ("status", "paused"),
    ]);
    let res = post_editor(
        &app,
        &owner,
        "/merchant/campaigns/new",
        "/merchant/campaigns",
        &bad,
        Some((b"GIF89a not really", "image/gif")),
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    for field in [
        "name",
        "total_limit",
        "per_consumer_limit",
        "claim_ends_at",
        "use_starts_at",
        "valid_for_days",
        "uses_per_coupon",
        "win_probability",
        "discount_value",
        "code_length",
        "code_prefix",
        "code_charset",
        "signin",
        "status",
        "image",
    ] {
        let message = text_by_id(&html, &format!("{field}-error"));
        assert!(!message.trim().is_empty(), "a message for {field}");
        assert!(
            html.contains(&format!("aria-describedby=\"{field}-error\""))
                || html.contains(&format!(" {field}-error\"")),
            "{field} points at its message"
        );
    }
    assert_eq!(
        text_by_id(&html, "name-error"),
        "キャンペーン名を 1〜200 文字で入力してください。"
    );
    assert_eq!(
        text_by_id(&html, "total_limit-error"),
        "数字で入力してください。"
    );
    assert_eq!(
        text_by_id(&html, "image-error"),
        "PNG・JPEG・WebP の画像を選んでください。"
    );
    // What was typed is shown again, and the summary links to each input.
    assert!(html.contains(r#"value="2030-04-02T09:00""#) && html.contains(r#"value="abc""#));
    assert!(html.contains(r##"href="#code_prefix""##));

    // A bad image alone keeps the whole campaign out; a good image with a bad field too.
    let res = post_editor(
        &app,
        &owner,
        "/merchant/campaigns/new",
        "/merchant/campaigns",
        &good_form(&[]),
        Some((&[0u8; 64], "image/png")),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("id=\"image-error\""));
    let png = png_bytes();
    let res = post_editor(
        &app,
        &owner,
        "/merchant/campaigns/new",
        "/merchant/campaigns",
        &good_form(&[("name", "")]),
        Some((&png, "image/png")),
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"name-error\"") && html.contains("id=\"image-again\""));
    // Too large: read to the end, answered next to the field.
    let huge = [png.clone(), vec![0u8; 2 * 1024 * 1024]].concat();
    let res = post_editor(
        &app,
        &owner,
        "/merchant/campaigns/new",
        "/merchant/campaigns",
        &good_form(&[]),
        Some((&huge, "image/png")),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        text_by_id(&res.text().await.unwrap(), "image-error"),
        "画像が大きすぎます。2 MB 以下にしてください。"
    );

    assert_eq!(count(&app, "SELECT count(*) FROM campaigns").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM images").await, 0);

    // English speakers read English; a missing CSRF token saves nothing either.
    let en = app.console_lang(&app.add_user("admin").await, "en").await;
    let res = post_editor(
        &app,
        &en,
        "/merchant/campaigns/new",
        "/merchant/campaigns",
        &good_form(&[("total_limit", "0")]),
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        text_by_id(&res.text().await.unwrap(), "total_limit-error"),
        "Total coupons must be from 1 to 10,000,000."
    );
    let res = en
        .post(app.url("/merchant/campaigns"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(&good_form(&[("csrf", "forged")]), None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(count(&app, "SELECT count(*) FROM campaigns").await, 0);
}

#[actix_web::test]
async fn editing_changes_every_field_but_never_below_issued() {
    let app = spawn_app().await;
    let (_, admin) = app.console_user("admin").await;
    let c = app
        .create_campaign(
            json!({"name": "Before", "total_limit": 10, "status": "active",
            "claim_starts_at": "2020-01-01T00:00:07Z", "win_probability": 0.999999,
            "valid_for_seconds": 3601}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    for who in ["a", "b", "c"] {
        assert_eq!(app.claim(id, who).await.0, 201);
    }
    let edit = format!("/merchant/campaigns/{id}/edit");
    let (status, html) = console_page(&app, &admin, &edit).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"value="Before""#) && html.contains(r#"value="2020-01-01T09:00""#));
    assert!(
        !html.contains("id=\"status\""),
        "the status moves only by its actions"
    );
    let shown = |name: &str| -> String {
        let at = html.find(&format!("name=\"{name}\" type=")).unwrap();
        html[at..]
            .split("value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let (starts, days, chance) = (
        shown("claim_starts_at"),
        shown("valid_for_days"),
        shown("win_probability"),
    );

    // Below the 3 coupons issued: refused next to the limit, nothing changed.
    let action = format!("/merchant/campaigns/{id}");
    let lowered = good_form(&[
        ("name", "After"),
        ("total_limit", "2"),
        ("claim_starts_at", &starts),
        ("valid_for_days", &days),
        ("win_probability", &chance),
    ]);
    let res = post_editor(&app, &admin, &edit, &action, &lowered, None).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(text_by_id(&html, "total_limit-error").contains('3'));
    assert_eq!(api_campaign(&app, id).await["name"], "Before");

    let png = png_bytes();
    let changed = good_form(&[
        ("name", "After"),
        ("total_limit", "3"),
        ("claim_starts_at", &starts),
        ("valid_for_days", &days),
        ("win_probability", &chance),
        ("discount_kind", "free_item"),
        ("discount_value", "コーヒー"),
        ("signin", "required"),
        ("use_starts_at", "2030-01-01T00:00"),
        ("use_ends_at", "2030-12-31T23:59"),
    ]);
    let res = post_editor(
        &app,
        &admin,
        &edit,
        &action,
        &changed,
        Some((&png, "image/png")),
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).ends_with("?saved=updated"));
    let after = api_campaign(&app, id).await;
    assert_eq!(after["name"], "After");
    assert_eq!(
        after["discount"],
        json!({"kind": "free_item", "item": "コーヒー"})
    );
    assert_eq!(
        (
            after["total_limit"].as_i64(),
            after["stats"]["remaining"].as_i64()
        ),
        (Some(3), Some(0))
    );
    assert_eq!(
        (after["signin"].as_str(), after["code_prefix"].as_str()),
        (Some("required"), Some("SPR"))
    );
    assert_eq!(after["use_starts_at"], "2029-12-31T15:00:00Z");
    assert_eq!(after["use_ends_at"], "2030-12-31T14:59:00Z");
    // Values shown unchanged kept their exact stored form; the status did not move.
    assert_eq!(after["claim_starts_at"], "2020-01-01T00:00:07Z");
    assert_eq!(after["valid_for_seconds"], 3601);
    assert_eq!(after["win_probability"], 0.999999);
    assert_eq!(after["status"], "active");
    // Sold out at the new limit.
    assert_eq!(app.claim(id, "d").await.0, 409);
    let (_, stock, _) = crate::helpers::stock_counts(&app.db, id).await;
    assert!(stock <= 3, "allocated {stock} fits under the new limit");

    // The image can be replaced and removed; the replaced one is gone.
    let with_image = count(&app, "SELECT count(*) FROM images").await;
    assert_eq!(with_image, 1);
    let remove = [changed.clone(), vec![("remove_image", "1")]].concat();
    let res = post_editor(&app, &admin, &edit, &action, &remove, None).await;
    assert_eq!(res.status(), 303);
    assert_eq!(count(&app, "SELECT count(*) FROM images").await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM campaigns WHERE image_id IS NOT NULL"
        )
        .await,
        0
    );

    let audit = app
        .db
        .client()
        .await
        .query_one(
            "SELECT detail FROM audit_log WHERE action = 'campaign.update' ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get::<_, serde_json::Value>(0);
    let fields = audit["changed"].as_array().unwrap();
    for f in ["name", "total_limit", "discount_kind", "signin", "image"] {
        assert!(fields.contains(&json!(f)), "{f} in {audit}");
    }
    assert!(!fields.contains(&json!("claim_starts_at")), "{audit}");
}

#[actix_web::test]
async fn status_actions_move_the_campaign_and_refuse_what_makes_no_sense() {
    let app = spawn_app().await;
    let (_, manager) = app.console_user("manager").await;
    let id = app
        .create_campaign_id(json!({"name": "Draft one", "total_limit": 5}))
        .await;
    let page = format!("/merchant/campaigns/{id}");
    let (_, html) = console_page(&app, &manager, &page).await;
    assert!(html.contains("id=\"action-activate\"") && html.contains("id=\"action-end\""));
    assert!(!html.contains("id=\"action-pause\""));
    let act = async |action: &str| {
        let (_, html) = console_page(&app, &manager, &page).await;
        manager
            .post(app.url(&format!("{page}/status")))
            .form(&[("action", action), ("csrf", &csrf_of(&html))])
            .send()
            .await
            .unwrap()
    };
    assert_eq!(
        app.claim(&id, "early").await.0,
        409,
        "a draft is not claimable"
    );
    for (action, status) in [
        ("activate", "active"),
        ("pause", "paused"),
        ("resume", "active"),
    ] {
        let res = act(action).await;
        assert_eq!(res.status(), 303, "{action}");
        assert!(location(&res).ends_with(&format!("?saved={action}")));
        assert_eq!(api_campaign(&app, &id).await["status"], status);
    }
    assert_eq!(
        app.claim(&id, "now").await.0,
        201,
        "active again: claimable"
    );

    // Resuming an active campaign makes no sense: said on the page, nothing moves.
    let res = act("resume").await;
    assert_eq!(res.status(), 409);
    let html = res.text().await.unwrap();
    assert_eq!(
        text_by_id(&html, "status-error"),
        "「配布中」のキャンペーンは「再開」できません。"
    );
    let res = act("explode").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("id=\"status-error\""));
    assert_eq!(api_campaign(&app, &id).await["status"], "active");

    assert_eq!(act("end").await.status(), 303);
    let (_, html) = console_page(&app, &manager, &page).await;
    assert!(
        !html.contains("id=\"action-"),
        "an ended campaign has no actions"
    );
    assert_eq!(act("activate").await.status(), 409);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'campaign.status'"
        )
        .await,
        4
    );
}

#[actix_web::test]
async fn staff_cannot_reach_the_editor_and_other_tenants_campaigns_are_not_found() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), test_settings).await;
    let id = a
        .create_campaign_id(json!({"name": "A's", "total_limit": 5}))
        .await;
    let (_, staff) = a.console_user("staff").await;
    for path in [
        "/merchant/campaigns/new".to_owned(),
        format!("/merchant/campaigns/{id}/edit"),
        format!("/merchant/campaigns/{id}"),
        format!("/merchant/campaigns/{id}/qr.png"),
    ] {
        let res = staff.get(a.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 403, "staff on {path}");
    }
    for path in [
        "/merchant/campaigns".to_owned(),
        format!("/merchant/campaigns/{id}"),
    ] {
        let res = staff
            .post(a.url(&path))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart(&good_form(&[]), None))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "staff posting {path}");
    }
    let res = staff
        .post(a.url(&format!("/merchant/campaigns/{id}/status")))
        .form(&[("action", "end"), ("csrf", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "staff ending a campaign");

    // B's owner, signed in at B, asks for A's campaign by id: there is no such thing.
    let (_, other) = b.console_user("owner").await;
    let (_, html) = console_page(&b, &other, "/merchant/campaigns/new").await;
    let csrf = csrf_of(&html);
    for path in [
        format!("/merchant/campaigns/{id}"),
        format!("/merchant/campaigns/{id}/edit"),
        format!("/merchant/campaigns/{id}/qr.svg"),
        "/merchant/campaigns/not-a-uuid".to_owned(),
    ] {
        let res = other.get(b.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let res = other
        .post(b.url(&format!("/merchant/campaigns/{id}")))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(
            &good_form(&[("name", "stolen"), ("csrf", &csrf)]),
            None,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = other
        .post(b.url(&format!("/merchant/campaigns/{id}/status")))
        .form(&[("action", "end"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let c = api_campaign(&a, &id).await;
    assert_eq!(
        (c["name"].as_str(), c["status"].as_str()),
        (Some("A's"), Some("draft"))
    );
}

#[actix_web::test]
async fn qr_codes_encode_the_claim_url_per_campaign_and_per_store() {
    use qrcode::render::svg;
    use qrcode::{EcLevel, QrCode};
    let app = spawn_app().await;
    let (_, manager) = app.console_user("manager").await;
    let c = app
        .create_campaign(json!({"name": "Poster", "total_limit": 5, "status": "active"}))
        .await;
    let (id, claim_url) = (c["id"].as_str().unwrap(), c["claim_url"].as_str().unwrap());
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO stores (id, tenant_id, name, code) VALUES ($1, $2, '駅前店', 'EKI-1')",
            &[&Uuid::new_v4(), &app.tenant_id],
        )
        .await
        .unwrap();
    let expected = |url: &str| {
        QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
            .unwrap()
            .render::<svg::Color>()
            .min_dimensions(256, 256)
            .quiet_zone(true)
            .build()
    };
    let get = async |path: String| manager.get(app.url(&path)).send().await.unwrap();

    let res = get(format!("/merchant/campaigns/{id}/qr.svg")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert_eq!(res.text().await.unwrap(), expected(claim_url));
    let res = get(format!("/merchant/campaigns/{id}/qr.svg?store=EKI-1")).await;
    assert_eq!(
        res.text().await.unwrap(),
        expected(&format!("{claim_url}?store=EKI-1"))
    );
    let res = get(format!("/merchant/campaigns/{id}/qr.png?store=EKI-1")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(res.bytes().await.unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
    // The public poster and the console's agree.
    let public = reqwest::get(app.url(&format!("/c/{}/qr.svg", c["slug"].as_str().unwrap())))
        .await
        .unwrap();
    assert_eq!(public.text().await.unwrap(), expected(claim_url));
    for unknown in ["NOPE", "eki-1", "%3Cb%3E"] {
        let res = get(format!("/merchant/campaigns/{id}/qr.png?store={unknown}")).await;
        assert_eq!(res.status(), 404, "{unknown}");
    }
    let (_, html) = console_page(&app, &manager, &format!("/merchant/campaigns/{id}")).await;
    // (Handlebars writes `=` as `&#x3D;` in attributes; the browser reads it back.)
    assert!(html.contains(&format!("/merchant/campaigns/{id}/qr.png?store&#x3D;EKI-1")));
}

/// The preview follows typing in both languages, without a round trip.
#[actix_web::test]
async fn the_preview_follows_what_is_typed_in_both_languages() {
    let app = spawn_app().await;
    let email = app.add_user("manager").await;
    let driver = chromedriver().await;
    let browser = browser(&driver).await;
    browser
        .goto(&app.url("/merchant/login?lang=ja"))
        .await
        .unwrap();
    browser
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(&email)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "signed in", async || {
        let url = browser.current_url().await.ok()?;
        (url.path() == "/merchant").then_some(())
    })
    .await;
    browser
        .goto(&app.url("/merchant/campaigns/new"))
        .await
        .unwrap();
    browser
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("夏祭り")
        .await
        .unwrap();
    browser
        .find(Locator::Css(
            "#discount_kind option[value='amount_off_yen']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Id("discount_value"))
        .await
        .unwrap()
        .send_keys("300")
        .await
        .unwrap();
    browser
        .find(Locator::Id("total_limit"))
        .await
        .unwrap()
        .send_keys("40")
        .await
        .unwrap();
    let text = async |css: &str| {
        browser
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let want = [
        ("#preview-ja .preview-name", "夏祭り"),
        ("#preview-en .preview-name", "夏祭り"),
        ("#preview-ja .preview-discount", "300円引き"),
        ("#preview-en .preview-discount", "¥300 off"),
        ("#preview-ja .preview-remaining", "残り 40 枚"),
    ];
    for (css, expected) in want {
        eventually(Duration::from_secs(5), css, async || {
            (text(css).await == expected).then_some(())
        })
        .await;
    }
    // Each page in both languages: a screenshot to look at, and axe finds nothing.
    let shot = async |name: &str| {
        let png = browser.screenshot().await.expect("screenshot");
        std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
        assert_accessible(&browser, name).await;
    };
    shot("console-campaign-new-ja").await;
    browser
        .find(Locator::Id("save-campaign"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let id = eventually(Duration::from_secs(10), "the campaign page", async || {
        let url = browser.current_url().await.ok()?;
        let id = url.path().strip_prefix("/merchant/campaigns/")?.to_owned();
        (id != "new").then_some(id)
    })
    .await;
    assert_eq!(text("#stat-remaining").await, "40");
    shot("console-campaign-page-ja").await;
    browser
        .goto(&app.url(&format!("/merchant/campaigns/{id}?lang=en")))
        .await
        .unwrap();
    shot("console-campaign-page-en").await;
    browser
        .goto(&app.url(&format!("/merchant/campaigns/{id}/edit")))
        .await
        .unwrap();
    shot("console-campaign-edit-en").await;
    // A refused form, its messages and the preview of what was typed.
    browser
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    browser
        .find(Locator::Id("total_limit"))
        .await
        .unwrap()
        .send_keys("x")
        .await
        .unwrap();
    browser
        .find(Locator::Id("save-campaign"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("name-error"))
        .await
        .unwrap();
    shot("console-campaign-errors-en").await;
    browser.close().await.unwrap();
}
