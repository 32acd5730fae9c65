//! `PATCH /api/v1/campaigns/{id}` for every field the console's editor edits: each
//! patched and read back, `null` resets, the rules (limit below issued, windows, status
//! actions) with their codes, nothing half written, the audit log, and JSON body errors
//! that name the member at fault (on every JSON endpoint).

use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, TestApp};

async fn patch(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    let res = app
        .patch(&format!("/api/v1/campaigns/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn show(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/campaigns/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[actix_web::test]
async fn every_editable_field_is_patched_and_read_back() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "Spring", "total_limit": 10, "status": "active"}))
        .await;
    let original = show(&app, &id).await;
    for (field, value) in [
        ("name", json!("Summer")),
        ("description", json!("  two lines\nkept as written ")),
        ("terms", json!("One per visit.")),
        ("discount", json!({"kind": "amount_off_yen", "amount": 500})),
        ("total_limit", json!(20)),
        ("per_consumer_limit", json!(2)),
        ("claim_starts_at", json!("2020-01-01T00:00:00Z")),
        ("claim_ends_at", json!("2099-01-01T00:00:00Z")),
        ("use_starts_at", json!("2020-02-01T00:00:00Z")),
        ("use_ends_at", json!("2099-02-01T00:00:00Z")),
        ("valid_for_seconds", json!(86_400)),
        ("uses_per_coupon", json!(3)),
        ("win_probability", json!(0.5)),
        ("signin", json!("required")),
        ("code_length", json!(12)),
        ("code_prefix", json!("SUM")),
        ("code_charset", json!("digits")),
    ] {
        let before = show(&app, &id).await;
        let (status, answer) = patch(&app, &id, json!({ field: value })).await;
        assert_eq!(status, 200, "{field}: {answer}");
        let after = show(&app, &id).await;
        let want = match field {
            "code_charset" => json!("0123456789"),
            _ => value.clone(),
        };
        assert_eq!(after[field], want, "{field}");
        assert_eq!(answer[field], want, "{field}: the answer shows it too");
        // Nothing else moved.
        for (k, v) in before.as_object().unwrap() {
            let moves_stats = field == "total_limit" && k == "stats";
            if k != field && k != "updated_at" && !moves_stats {
                assert_eq!(&after[k], v, "{field} changed {k}");
            }
        }
    }
    // The changes are in force: the engine took the new row (two per consumer now, with
    // the new code format).
    assert_eq!(
        patch(
            &app,
            &id,
            json!({"signin": "none", "win_probability": null})
        )
        .await
        .0,
        200
    );
    for _ in 0..2 {
        let (status, claimed) = app.claim(&id, "till-1").await;
        assert_eq!(status, 201, "{claimed}");
        let code = claimed["coupon"]["code"].as_str().unwrap();
        assert!(code.starts_with("SUM"), "{code}");
        assert!(code[3..].chars().all(|c| c.is_ascii_digit()), "{code}");
    }
    let (status, body) = app.claim(&id, "till-1").await;
    assert_eq!((status, error_code(&body)), (409, "consumer_limit_reached"));

    // `null` gives each nullable member a new campaign's default.
    let (status, reset) = patch(
        &app,
        &id,
        json!({
            "description": null, "terms": null, "discount": null, "per_consumer_limit": null,
            "claim_ends_at": null, "use_starts_at": null, "use_ends_at": null,
            "valid_for_seconds": null, "uses_per_coupon": null, "signin": null,
            "code_length": null, "code_prefix": null, "code_charset": null,
        }),
    )
    .await;
    assert_eq!(status, 200, "{reset}");
    for field in [
        "description",
        "terms",
        "discount",
        "per_consumer_limit",
        "claim_ends_at",
        "use_starts_at",
        "use_ends_at",
        "valid_for_seconds",
        "uses_per_coupon",
        "win_probability",
        "signin",
        "code_length",
        "code_prefix",
        "code_charset",
    ] {
        assert_eq!(reset[field], original[field], "{field}");
    }
    assert_eq!(reset["name"], "Summer");
    assert_eq!(reset["claim_starts_at"], "2020-01-01T00:00:00Z");
    // A null start opens claims now (as a new campaign's does).
    let (status, reopened) = patch(&app, &id, json!({"claim_starts_at": null})).await;
    assert_eq!(status, 200);
    let start: chrono::DateTime<chrono::Utc> = reopened["claim_starts_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (chrono::Utc::now() - start).num_seconds().abs() < 60,
        "{start}"
    );
}

#[actix_web::test]
async fn the_editors_rules_apply_and_a_refused_patch_writes_nothing() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({
            "name": "Rules", "total_limit": 5, "status": "active",
            "claim_starts_at": "2020-01-01T00:00:00Z",
        }))
        .await;
    for consumer in ["a", "b", "c"] {
        assert_eq!(app.claim(&id, consumer).await.0, 201);
    }
    let before = show(&app, &id).await;
    for (body, status, code, field) in [
        (
            json!({"total_limit": 2}),
            409,
            "limit_below_issued",
            "total_limit",
        ),
        (
            json!({"total_limit": 0}),
            422,
            "invalid_total_limit",
            "total_limit",
        ),
        (
            json!({"total_limit": null}),
            422,
            "invalid_total_limit",
            "total_limit",
        ),
        (json!({"name": null}), 422, "invalid_name", "name"),
        (json!({"name": "  "}), 422, "invalid_name", "name"),
        (
            json!({"terms": "x".repeat(10_001)}),
            422,
            "invalid_terms",
            "terms",
        ),
        (
            json!({"discount": {"kind": "percent_off", "percent": 101}}),
            422,
            "invalid_discount_percent",
            "discount",
        ),
        (
            json!({"claim_ends_at": "2019-01-01T00:00:00Z"}),
            422,
            "invalid_claim_window",
            "claim_ends_at",
        ),
        (
            json!({"use_starts_at": "2030-01-01T00:00:00Z", "use_ends_at": "2029-01-01T00:00:00Z"}),
            422,
            "invalid_use_window",
            "use_ends_at",
        ),
        (
            json!({"valid_for_seconds": 59}),
            422,
            "invalid_valid_for",
            "valid_for_seconds",
        ),
        (
            json!({"per_consumer_limit": 1001}),
            422,
            "invalid_per_consumer_limit",
            "per_consumer_limit",
        ),
        (
            json!({"uses_per_coupon": 0}),
            422,
            "invalid_uses_per_coupon",
            "uses_per_coupon",
        ),
        (
            json!({"win_probability": 1.5}),
            422,
            "invalid_win_probability",
            "win_probability",
        ),
        (json!({"signin": "maybe"}), 422, "invalid_signin", "signin"),
        (
            json!({"code_length": 5}),
            422,
            "invalid_code_length",
            "code_length",
        ),
        (
            json!({"code_prefix": "ab-"}),
            422,
            "invalid_code_prefix",
            "code_prefix",
        ),
        (
            json!({"code_charset": "AAB"}),
            422,
            "invalid_code_charset",
            "code_charset",
        ),
        (json!({"image": "x.png"}), 422, "invalid_image", "image"),
        (json!({"action": "stop"}), 422, "invalid_action", "action"),
        (
            json!({"action": "activate"}),
            409,
            "invalid_transition",
            "action",
        ),
        // With a good change beside it, a refused one still writes nothing.
        (
            json!({"name": "Renamed", "total_limit": 2}),
            409,
            "limit_below_issued",
            "total_limit",
        ),
        (
            json!({"action": "pause", "code_length": 99}),
            422,
            "invalid_code_length",
            "code_length",
        ),
    ] {
        let (got, answer) = patch(&app, &id, body.clone()).await;
        assert_eq!(
            (got, error_code(&answer)),
            (status, code),
            "{body}: {answer}"
        );
        let fields = &answer["error"]["fields"];
        assert!(fields[field].is_string(), "{body}: {answer}");
    }
    assert_eq!(show(&app, &id).await, before, "nothing was written");
    let (status, body) = patch(&app, &id, json!({})).await;
    assert_eq!((status, error_code(&body)), (422, "empty_patch"));

    // Down to the issued count is allowed, and the campaign is then sold out.
    let (status, body) = patch(&app, &id, json!({"total_limit": 3})).await;
    assert_eq!(
        (status, body["stats"]["remaining"].as_i64()),
        (200, Some(0))
    );
    let (status, body) = app.claim(&id, "d").await;
    assert_eq!((status, error_code(&body)), (409, "sold_out"));
    // An action and fields in one patch.
    let (status, body) = patch(&app, &id, json!({"action": "end", "name": "Over"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["name"].as_str()),
        (Some("ended"), Some("Over"))
    );
    // An ended campaign's fields can still be corrected, as in the console.
    let (status, body) = patch(&app, &id, json!({"terms": "Closed."})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ended")));
}

#[actix_web::test]
async fn api_edits_are_audited_like_the_consoles_and_null_removes_the_image() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "Audit", "total_limit": 5}))
        .await;
    // A 1×1 PNG.
    let png: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let res = app
        .put(&format!("/api/v1/campaigns/{id}/image"))
        .body(png.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let image: Option<uuid::Uuid> = app
        .db_value(
            "SELECT image_id FROM campaigns WHERE id = $1::text::uuid",
            &[&id],
        )
        .await;
    let image = image.expect("an image");
    let (status, _) = patch(
        &app,
        &id,
        json!({"name": "Audited", "total_limit": 6, "image": null, "action": "activate"}),
    )
    .await;
    assert_eq!(status, 200);
    let gone: Option<uuid::Uuid> = app
        .db_value(
            "SELECT image_id FROM campaigns WHERE id = $1::text::uuid",
            &[&id],
        )
        .await;
    assert_eq!(gone, None);
    let res = app
        .client
        .get(app.url(&format!("/i/{image}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the removed image is deleted");

    let rows = app
        .db
        .client()
        .await
        .query(
            "SELECT action, actor, target, detail FROM audit_log WHERE tenant_id = $1 ORDER BY id",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    let entries: Vec<(String, String, String, Value)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let update = entries
        .iter()
        .find(|e| e.0 == "campaign.update")
        .expect("campaign.update audited");
    assert!(update.1.starts_with("api-key "), "{update:?}");
    assert_eq!(update.2, id);
    let mut changed: Vec<&str> = update.3["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    changed.sort();
    assert_eq!(changed, ["image", "name", "total_limit"]);
    let status = entries
        .iter()
        .find(|e| e.0 == "campaign.status")
        .expect("campaign.status audited");
    assert_eq!(
        (&status.3["action"], &status.3["status"]),
        (&json!("activate"), &json!("active"))
    );
}

#[actix_web::test]
async fn json_body_errors_name_the_member_at_fault() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "Body", "total_limit": 5, "status": "active"}))
        .await;
    let campaign = format!("/api/v1/campaigns/{id}");
    let claims = format!("/api/v1/campaigns/{id}/claims");
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "patch",
            &campaign,
            json!({"total_limit": "ten"}),
            "total_limit",
        ),
        ("patch", &campaign, json!({"status": "active"}), "status"),
        ("patch", &campaign, json!({"name": ["x"]}), "name"),
        (
            "patch",
            &campaign,
            json!({"claim_ends_at": "tomorrow"}),
            "claim_ends_at",
        ),
        (
            "patch",
            &campaign,
            json!({"discount": {"kind": "percent_off"}}),
            "discount",
        ),
        (
            "post",
            "/api/v1/campaigns",
            json!({"total_limit": 5}),
            "name",
        ),
        (
            "post",
            "/api/v1/campaigns",
            json!({"name": "x", "total_limit": "5"}),
            "total_limit",
        ),
        (
            "post",
            "/api/v1/campaigns",
            json!({"name": "x", "total_limit": 5, "colour": 1}),
            "colour",
        ),
        (
            "post",
            "/api/v1/campaigns",
            json!({"name": "x", "total_limit": 5, "per_consumer_limit": 1.5}),
            "per_consumer_limit",
        ),
        ("post", &claims, json!({"consumer": 5}), "consumer"),
        ("post", &claims, json!({}), "consumer"),
        (
            "post",
            "/api/v1/keys",
            json!({"scopes": "campaigns:read"}),
            "scopes",
        ),
        (
            "post",
            "/api/v1/keys",
            json!({"scopes": ["campaigns:read", 7]}),
            "scopes[1]",
        ),
        (
            "patch",
            "/api/v1/tenant",
            json!({"brand_colour": "#000000"}),
            "brand_colour",
        ),
        ("post", "/api/v1/webhooks", json!({"url": 1}), "url"),
    ];
    for (method, path, body, field) in cases {
        let req = match method {
            "patch" => app.patch(path),
            _ => app.post(path),
        };
        let res = req.json(&body).send().await.unwrap();
        let status = res.status().as_u16();
        let answer: Value = res.json().await.unwrap();
        assert_eq!(
            (status, error_code(&answer)),
            (400, "invalid_json"),
            "{path} {body}: {answer}"
        );
        let fields = answer["error"]["fields"].as_object();
        assert!(
            fields.is_some_and(|f| f.keys().any(|k| k.starts_with(field))),
            "{path} {body}: {answer}"
        );
    }
    // Redemptions read their optional body by hand: the same errors.
    let (_, claimed) = app.claim(&id, "someone").await;
    let code = claimed["coupon"]["code"].as_str().unwrap();
    let (status, answer) = app.redeem(code, json!({"store": 5})).await;
    assert_eq!((status, error_code(&answer)), (400, "invalid_json"));
    assert!(answer["error"]["fields"]["store"].is_string(), "{answer}");
    // Not JSON at all, or not an object: no member to name, the same code.
    for raw in ["{", "[1]"] {
        let res = app
            .patch(&campaign)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{raw}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(error_code(&answer), "invalid_json");
    }
}
