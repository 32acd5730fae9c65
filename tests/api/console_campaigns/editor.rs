//! Creating and editing through the form, and its messages.

use serde_json::json;
use uuid::Uuid;

use super::{
    api_campaign, count, created_id, good_form, multipart, png_bytes, post_editor, text_by_id,
    BOUNDARY,
};
use crate::console_helpers::console_page;
use crate::helpers::{location, spawn_app};

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
    // The list is the console's home (a refused form's language switch comes here).
    let res = manager
        .get(app.url("/merchant/campaigns?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (303, "/merchant?lang=en")
    );

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
