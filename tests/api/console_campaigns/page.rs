//! The campaign page: status actions, who may see and change what, and QR posters.

use serde_json::json;
use uuid::Uuid;

use super::{api_campaign, count, good_form, multipart, text_by_id, BOUNDARY};
use crate::console_helpers::console_page;
use crate::helpers::{csrf_of, location, spawn_app, spawn_app_on, test_settings};

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
    // The poster's URL opens the claim page.
    let res = reqwest::get(
        format!("{claim_url}?store=EKI-1")
            .replace(claim_url.split("/c/").next().unwrap(), &app.url("")),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    for unknown in ["NOPE", "eki-1", "%3Cb%3E"] {
        let res = get(format!("/merchant/campaigns/{id}/qr.png?store={unknown}")).await;
        assert_eq!(res.status(), 404, "{unknown}");
    }
    let (_, html) = console_page(&app, &manager, &format!("/merchant/campaigns/{id}")).await;
    // (Handlebars writes `=` as `&#x3D;` in attributes; the browser reads it back.)
    assert!(html.contains(&format!("/merchant/campaigns/{id}/qr.png?store&#x3D;EKI-1")));
}
