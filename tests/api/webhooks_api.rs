//! Webhooks: the endpoints API and its errors, delivery refused to loopback names, and the
//! answers against the OpenAPI document.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    error_code, eventually, fresh_database, key_with_scopes, spawn_app, spawn_app_on,
    test_settings, OpenApiCheck,
};
use crate::webhook_support::*;

#[actix_web::test]
async fn the_endpoints_api_and_its_errors() {
    let app = spawn_app().await;
    let post = |body: serde_json::Value| {
        let req = app.post("/api/v1/webhooks").json(&body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (
                status,
                res.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    // Only public https destinations by default.
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.0.0.8/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
        "https://user:pw@hooks.example.com/x",
        "not a url",
    ] {
        let (status, body) = post(json!({"url": url, "events": ["coupon.claimed"]})).await;
        assert_eq!(
            (status, error_code(&body)),
            (422, "invalid_webhook_url"),
            "{url}: {body}"
        );
    }
    let (status, body) =
        post(json!({"url": "https://8.8.8.8/x", "events": ["coupon.exploded"]})).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_webhook_events"));
    let (status, body) = post(json!({"url": "https://8.8.8.8/x", "events": []})).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_webhook_events"));
    let (status, body) = post(json!({"url": "https://8.8.8.8/x", "events": ["coupon.claimed"], "description": "x".repeat(201)})).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_description"));
    let (status, body) = post(json!({"url": "https://8.8.8.8/x"})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_json"), "{body}");

    // Created: the secret is shown this once.
    let (status, created) = post(
        json!({"url": "https://8.8.8.8/hooks", "events": ["coupon.claimed", "campaign.ended"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        created["events"],
        json!(["coupon.claimed", "campaign.ended"])
    );
    let id = created["id"].as_str().unwrap();
    let res = app.get("/api/v1/webhooks").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let list: serde_json::Value = res.json().await.unwrap();
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(list["webhooks"][0].get("secret").is_none());
    let res = app
        .get(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let shown: serde_json::Value = res.json().await.unwrap();
    assert_eq!(shown["url"], "https://8.8.8.8/hooks");
    assert!(shown.get("secret").is_none());
    let res = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log: serde_json::Value = res.json().await.unwrap();
    assert_eq!(log, json!({"deliveries": [], "next_cursor": null}));
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("cursor=zzz", "invalid_cursor"),
    ] {
        let res = app
            .get(&format!("/api/v1/webhooks/{id}/deliveries?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), code);
    }

    // Another tenant's key, or a key without campaigns:write, gets nowhere.
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let res = other
        .get(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = other
        .delete(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    for req in [
        app.client.get(app.url("/api/v1/webhooks")),
        app.client
            .post(app.url("/api/v1/webhooks"))
            .json(&json!({"url": "https://8.8.8.8/", "events": ["coupon.claimed"]})),
        app.client.get(app.url(&format!("/api/v1/webhooks/{id}"))),
        app.client
            .delete(app.url(&format!("/api/v1/webhooks/{id}"))),
        app.client
            .get(app.url(&format!("/api/v1/webhooks/{id}/deliveries"))),
    ] {
        let res = req.bearer_auth(&reader).send().await.unwrap();
        assert_eq!(res.status(), 403);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "insufficient_scope");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("campaigns:write"));
    }
    let res = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // At most 20 endpoints.
    for _ in 1..20 {
        assert_eq!(
            post(json!({"url": "https://8.8.8.8/more", "events": ["coupon.claimed"]}))
                .await
                .0,
            201
        );
    }
    let (status, body) =
        post(json!({"url": "https://8.8.8.8/more", "events": ["coupon.claimed"]})).await;
    assert_eq!((status, error_code(&body)), (409, "too_many_webhooks"));

    // Deleted, it is gone, with its log.
    let res = app
        .delete(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for path in [
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/deliveries"),
    ] {
        let res = app.get(&path).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "not_found");
    }
    let res = app
        .delete(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app.patch("/api/v1/webhooks").send().await.unwrap();
    assert_eq!(res.status(), 405);
}

#[actix_web::test]
async fn a_name_that_resolves_to_loopback_is_refused_at_delivery() {
    let db = fresh_database().await;
    // Registered where loopback was allowed; delivered by a node where it is not.
    let registrar = spawn_app_on(db.clone(), |db| {
        let mut s = loopback_allowed(db);
        s.webhooks.enabled = false;
        s
    })
    .await;
    let receiver = Receiver::start(0);
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let created = register(
        &registrar,
        &format!("http://localhost:{port}/hooks"),
        &["coupon.claimed"],
    )
    .await;
    let _sender = spawn_app_on(db.clone(), |db| {
        let mut s = test_settings(db);
        s.webhooks.allow_http = true;
        s.webhooks.retry_base = Duration::from_secs(60);
        s.webhooks.poll = Duration::from_millis(100);
        s
    })
    .await;
    let campaign = registrar
        .create_campaign_id(json!({"name": "ssrf", "total_limit": 5, "status": "active"}))
        .await;
    assert_eq!(registrar.claim(&campaign, "x").await.0, 201);
    let endpoint = created["id"].as_str().unwrap();
    let error = eventually(
        Duration::from_secs(30),
        "the attempt is logged",
        async || {
            let res = registrar
                .get(&format!("/api/v1/webhooks/{endpoint}/deliveries"))
                .send()
                .await
                .ok()?;
            let log: serde_json::Value = res.json().await.ok()?;
            let d = log["deliveries"].get(0)?.clone();
            (d["attempts"] == 1).then_some(d)
        },
    )
    .await;
    assert_eq!(error["status"], "pending");
    assert!(
        error["last_error"].as_str().unwrap().contains("loopback"),
        "{error}"
    );
    assert!(error["last_status"].is_null());
    assert!(receiver.seen().is_empty(), "nothing reached the address");
}

#[actix_web::test]
async fn webhook_and_code_answers_match_the_openapi_document() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let hooks = "/api/v1/webhooks";
    let one = "/api/v1/webhooks/{id}";
    let log = "/api/v1/webhooks/{id}/deliveries";
    let (s, created) = oa
        .send(
            "post",
            hooks,
            app.post(hooks)
                .json(&json!({"url": "https://8.8.8.8/h", "events": ["coupon.claimed"]})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let at = |p: &str| p.replace("{id}", &id);
    for (body, status) in [
        (
            json!({"url": "https://10.0.0.1/h", "events": ["coupon.claimed"]}),
            422,
        ),
        (json!({"url": "https://8.8.8.8/h", "events": ["nope"]}), 422),
    ] {
        assert_eq!(
            oa.send("post", hooks, app.post(hooks).json(&body)).await.0,
            status
        );
    }
    assert_eq!(oa.send("get", hooks, app.get(hooks)).await.0, 200);
    assert_eq!(oa.send("get", one, app.get(&at(one))).await.0, 200);
    assert_eq!(oa.send("get", log, app.get(&at(log))).await.0, 200);
    let bad = format!("{}?limit=0", at(log));
    assert_eq!(oa.send("get", log, app.get(&bad)).await.0, 422);
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    let weak = app.client.get(app.url(hooks)).bearer_auth(&reader);
    assert_eq!(oa.send("get", hooks, weak).await.0, 403);

    // Codes: a batch, errors, a job, an import and its per-line report.
    let campaign = app
        .create_campaign_id(json!({"name": "oa", "total_limit": 10_020, "status": "active"}))
        .await;
    let codes = "/api/v1/campaigns/{id}/codes";
    let imports = "/api/v1/campaigns/{id}/codes/import";
    let on = |p: &str| p.replace("{id}", &campaign);
    let (s, batch) = oa
        .send(
            "post",
            codes,
            app.post(&on(codes)).json(&json!({"count": 3})),
        )
        .await;
    assert_eq!(s, 201, "{batch}");
    let (s, _) = oa
        .send(
            "post",
            codes,
            app.post(&on(codes)).json(&json!({"count": 0})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, job) = oa
        .send(
            "post",
            codes,
            app.post(&on(codes)).json(&json!({"count": 10_001})),
        )
        .await;
    assert_eq!(s, 202, "{job}");
    let job_path = "/api/v1/code-jobs/{id}";
    let job_url = job["job"]["status_url"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(60), "the job ends", async || {
        let res = app.get(&job_url).send().await.ok()?;
        let body: serde_json::Value = res.json().await.ok()?;
        (body["job"]["status"] != "pending").then_some(())
    })
    .await;
    assert_eq!(oa.send("get", job_path, app.get(&job_url)).await.0, 200);
    let (s, _) = oa
        .send(
            "post",
            imports,
            app.post(&on(imports))
                .body("code\nIMPORT0001\nIMPORT0002\n"),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = oa
        .send("post", imports, app.post(&on(imports)).body("bad!\nAB\n"))
        .await;
    assert_eq!(s, 422);
    let (s, _) = oa
        .send("post", imports, app.post(&on(imports)).body("IMPORT0001\n"))
        .await;
    assert_eq!(s, 409);
    assert_eq!(oa.send("delete", one, app.delete(&at(one))).await.0, 204);
    assert_eq!(oa.send("get", one, app.get(&at(one))).await.0, 404);
    assert!(oa.check(&app).await >= 15);
}
