//! The OpenAPI document: valid OpenAPI 3.1, and real answers of every endpoint match it
//! (statuses, bodies, error codes). The docs page and its assets are served locally.

use serde_json::json;

use crate::helpers::{key_with_scopes, spawn_app, OpenApiCheck};

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

#[actix_web::test]
async fn answers_of_the_engine_endpoints_match_the_document() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let c = "/api/v1/campaigns";
    let one = "/api/v1/campaigns/{id}";

    // Campaigns: create (good and bad), show, change (good, refused, bad).
    let (s, campaign) = oa
        .send(
            "post",
            c,
            app.post(c).json(&json!({
                "name": "Spring", "total_limit": 3, "status": "active", "uses_per_coupon": 2,
                "discount": {"kind": "percent_off", "percent": 10},
            })),
        )
        .await;
    assert_eq!(s, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_string();
    let at = |p: &str| p.replace("{id}", &id);
    let (s, _) = oa
        .send(
            "post",
            c,
            app.post(c).json(&json!({"name": "", "total_limit": 3})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = oa
        .send(
            "post",
            c,
            app.post(c)
                .body("{")
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(oa.send("get", one, app.get(&at(one))).await.0, 200);
    let missing = one.replace("{id}", &uuid::Uuid::new_v4().to_string());
    assert_eq!(oa.send("get", one, app.get(&missing)).await.0, 404);
    let (s, _) = oa
        .send(
            "patch",
            one,
            app.patch(&at(one)).json(&json!({"total_limit": 5})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = oa
        .send(
            "patch",
            one,
            app.patch(&at(one)).json(&json!({"action": "activate"})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(
        oa.send("patch", one, app.patch(&at(one)).json(&json!({})))
            .await
            .0,
        422
    );

    // Images.
    let image = "/api/v1/campaigns/{id}/image";
    let (s, _) = oa
        .send("put", image, app.put(&at(image)).body(PNG.to_vec()))
        .await;
    assert_eq!(s, 200);
    let (s, _) = oa
        .send(
            "put",
            image,
            app.put(&at(image)).body(b"not an image".to_vec()),
        )
        .await;
    assert_eq!(s, 422);
    let logo = "/api/v1/tenant/logo";
    assert_eq!(
        oa.send("put", logo, app.put(logo).body(PNG.to_vec()))
            .await
            .0,
        200
    );

    // Tenant.
    let t = "/api/v1/tenant";
    assert_eq!(oa.send("get", t, app.get(t)).await.0, 200);
    let (s, _) = oa
        .send(
            "patch",
            t,
            app.patch(t).json(&json!({"brand_color": "#123456"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = oa
        .send(
            "patch",
            t,
            app.patch(t).json(&json!({"brand_color": "blue"})),
        )
        .await;
    assert_eq!(s, 422);

    // Claims, with and without an idempotency key, and the refusals.
    let claims = "/api/v1/campaigns/{id}/claims";
    let (s, claimed) = oa
        .send(
            "post",
            claims,
            app.post(&at(claims)).json(&json!({"consumer": "till-1"})),
        )
        .await;
    assert_eq!(s, 201, "{claimed}");
    let code = claimed["coupon"]["code"].as_str().unwrap().to_string();
    let (s, _) = oa
        .send(
            "post",
            claims,
            app.post(&at(claims)).json(&json!({"consumer": "till-1"})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = oa
        .send(
            "post",
            claims,
            app.post(&at(claims)).json(&json!({"consumer": " "})),
        )
        .await;
    assert_eq!(s, 422);
    let keyed = || app.post(&at(claims)).header("Idempotency-Key", "k-1");
    assert_eq!(
        oa.send("post", claims, keyed().json(&json!({"consumer": "till-2"})))
            .await
            .0,
        201
    );
    assert_eq!(
        oa.send("post", claims, keyed().json(&json!({"consumer": "till-3"})))
            .await
            .0,
        422
    );

    // Lookups.
    let by_code = "/api/v1/coupons/{code}";
    let coupon = by_code.replace("{code}", &code);
    assert_eq!(oa.send("get", by_code, app.get(&coupon)).await.0, 200);
    let unknown = by_code.replace("{code}", "ZZZZZZZZ");
    assert_eq!(oa.send("get", by_code, app.get(&unknown)).await.0, 404);
    let mine = "/api/v1/campaigns/{id}/coupons";
    let (s, _) = oa
        .send(
            "get",
            mine,
            app.get(&format!("{}?consumer=till-1", at(mine))),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(oa.send("get", mine, app.get(&at(mine))).await.0, 422);

    // Redemptions and their undo.
    let redeem = "/api/v1/coupons/{code}/redemptions";
    let path = redeem.replace("{code}", &code);
    let (s, redeemed) = oa
        .send(
            "post",
            redeem,
            app.post(&path).json(&json!({"store": "Shibuya"})),
        )
        .await;
    assert_eq!(s, 201, "{redeemed}");
    let (s, _) = oa
        .send(
            "post",
            redeem,
            app.post(&path).json(&json!({"check_code": "x"})),
        )
        .await;
    assert_eq!(s, 409);
    let nowhere = redeem.replace("{code}", "ZZZZZZZZ");
    assert_eq!(oa.send("post", redeem, app.post(&nowhere)).await.0, 404);
    let undo = "/api/v1/redemptions/{id}";
    let done = undo.replace("{id}", redeemed["redemption"]["id"].as_str().unwrap());
    assert_eq!(oa.send("delete", undo, app.delete(&done)).await.0, 200);
    assert_eq!(oa.send("delete", undo, app.delete(&done)).await.0, 409);

    // Who is asking: no key, a malformed header, an unknown key, a key without the scope.
    let anon = app.client.get(app.url(&at(one)));
    assert_eq!(oa.send("get", one, anon).await.0, 401);
    let odd = app
        .client
        .get(app.url(&at(one)))
        .header("Authorization", "Basic x");
    assert_eq!(oa.send("get", one, odd).await.0, 401);
    let made_up = app
        .client
        .get(app.url(&at(one)))
        .bearer_auth("eck_madeupxx_x");
    assert_eq!(oa.send("get", one, made_up).await.0, 401);
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    let weak = app
        .client
        .post(app.url(&at(claims)))
        .bearer_auth(&reader)
        .json(&json!({"consumer": "x"}));
    assert_eq!(oa.send("post", claims, weak).await.0, 403);

    assert!(oa.check(&app).await >= 30);
}

#[actix_web::test]
async fn a_mismatch_with_the_document_fails_the_check() {
    // The checker itself must be able to fail: an undocumented status, a body that does
    // not match, an undocumented member and an undocumented error code are each caught.
    let app = spawn_app().await;
    let one = "/api/v1/campaigns/{id}";
    for (path, status, body, want) in [
        (one, 299, json!({}), "not documented"),
        (
            "/api/v1/tenant",
            200,
            json!({"tenant": 1, "key": {}}),
            "body['tenant']",
        ),
        (
            one,
            404,
            json!({"error": {"code": "not_found", "message": "x", "extra": 1}}),
            "body.error.extra is not in the document's schema",
        ),
        (
            one,
            404,
            json!({"error": {"code": "no_such_code", "message": "x"}}),
            "'no_such_code' is not documented",
        ),
    ] {
        let mut oa = OpenApiCheck::default();
        oa.record("get", path, status, &body);
        let problems = oa.problems(&app).await;
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{status} {body}: {problems:?}"
        );
    }
}

#[actix_web::test]
async fn the_docs_page_and_its_assets_are_served_locally() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script: {html}");
    assert!(!html.contains("https://"), "no CDN: {html}");
    for asset in ["api-docs.js", "api-docs.css"] {
        let stem = asset.split('.').next().unwrap();
        let src = html
            .split('"')
            .find(|s| {
                s.starts_with(&format!("/assets/{stem}")) && s.ends_with(&asset[asset.len() - 3..])
            })
            .unwrap_or_else(|| panic!("{asset} not linked: {html}"));
        let res = app.client.get(app.url(src)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{src}");
    }
    let doc: serde_json::Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let scheme = &doc["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["scheme"], "bearer");
    for scope in [
        "campaigns:read",
        "campaigns:write",
        "claims:write",
        "redemptions:write",
        "export:read",
        "keys:admin",
    ] {
        assert!(
            scheme["description"].as_str().unwrap().contains(scope),
            "{scope}"
        );
    }
}
