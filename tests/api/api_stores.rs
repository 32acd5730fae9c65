//! `GET/POST /api/v1/stores`: the console's stores, through the API. The same rules, the
//! same table both ways, 409 on a taken code, idempotency keys, scopes, tenant boundaries,
//! and answers matching the OpenAPI document.

use serde_json::json;

use crate::console_helpers::{console_page, console_post};
use crate::helpers::{
    error_code, key_with_scopes, spawn_app, spawn_app_on, test_settings, OpenApiCheck,
};

const STORES: &str = "/api/v1/stores";

#[actix_web::test]
async fn stores_made_by_the_api_and_the_console_are_one_list() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let (s, body) = oa.send("get", STORES, app.get(STORES)).await;
    assert_eq!((s, body), (200, json!({"stores": []})));

    // The console's rules: trimmed name, code in upper case (full-width letters too).
    let (s, made) = oa
        .send(
            "post",
            STORES,
            app.post(STORES)
                .json(&json!({"name": " 渋谷店 ", "code": "ｓｈｉｂｕｙａ-1"})),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(
        (&made["name"], &made["code"], &made["redemptions"]),
        (&json!("渋谷店"), &json!("SHIBUYA-1"), &json!(0))
    );
    let id = made["id"].as_str().unwrap().to_string();
    let audit: String = app
        .db_value(
            "SELECT action || ' ' || target || ' ' || actor FROM audit_log
             WHERE action = 'store.create'",
            &[],
        )
        .await;
    assert!(
        audit.starts_with("store.create SHIBUYA-1 api-key "),
        "{audit}"
    );

    // The console lists it ...
    let (_, manager) = app.console_user("manager").await;
    let (status, html) = console_page(&app, &manager, "/merchant/stores").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("data-store-id=\"{id}\"")) && html.contains("value=\"SHIBUYA-1\""),
        "{html}"
    );
    // ... and what the console adds, the API lists, by code.
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", "銀座店"), ("code", "ginza")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (s, list) = oa.send("get", STORES, app.get(STORES)).await;
    assert_eq!(s, 200);
    let codes: Vec<&str> = list["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["GINZA", "SHIBUYA-1"]);

    // A code taken by the console's store is taken for the API too, in any case.
    let (s, body) = oa
        .send(
            "post",
            STORES,
            app.post(STORES)
                .json(&json!({"name": "Ginza 2", "code": "Ginza"})),
        )
        .await;
    assert_eq!((s, error_code(&body)), (409, "store_code_taken"), "{body}");
    assert!(body["error"]["fields"]["code"].is_string(), "{body}");

    // Every bad field is named.
    let (s, body) = oa
        .send(
            "post",
            STORES,
            app.post(STORES)
                .json(&json!({"name": " ", "code": "渋谷 1"})),
        )
        .await;
    assert_eq!(
        (s, error_code(&body)),
        (422, "invalid_store_name"),
        "{body}"
    );
    assert!(
        body["error"]["fields"]["name"].is_string() && body["error"]["fields"]["code"].is_string(),
        "{body}"
    );
    let (s, body) = oa
        .send(
            "post",
            STORES,
            app.post(STORES)
                .json(&json!({"name": "Ueno", "code": "toolongcode-1234567"})),
        )
        .await;
    assert_eq!(
        (s, error_code(&body)),
        (422, "invalid_store_code"),
        "{body}"
    );

    // A redemption's free text finds the API's store by code, and its count shows.
    let campaign = app
        .create_campaign_id(json!({"name": "s", "total_limit": 5, "status": "active"}))
        .await;
    let (_, claimed) = app.claim(&campaign, "amy").await;
    let code = claimed["coupon"]["code"].as_str().unwrap();
    let (s, used) = app.redeem(code, json!({"store": "shibuya-1"})).await;
    assert_eq!(s, 201, "{used}");
    assert_eq!(used["redemption"]["store_id"], json!(id));
    let list: serde_json::Value = app.get(STORES).send().await.unwrap().json().await.unwrap();
    let shibuya = list["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(id))
        .unwrap();
    assert_eq!(shibuya["redemptions"], 1);
    assert!(oa.check(&app).await >= 6);
}

#[actix_web::test]
async fn a_keyed_store_create_happens_once_and_replays() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let keyed = |key: &str, body: serde_json::Value| {
        app.post(STORES).header("Idempotency-Key", key).json(&body)
    };
    let body = json!({"name": "Ueno", "code": "UENO"});
    let (s, first) = oa.send("post", STORES, keyed("st-1", body.clone())).await;
    assert_eq!(s, 201, "{first}");
    let res = keyed("st-1", body.clone()).send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["Idempotent-Replayed"], "true");
    assert_eq!(res.json::<serde_json::Value>().await.unwrap(), first);
    let (s, other) = oa
        .send(
            "post",
            STORES,
            keyed("st-1", json!({"name": "Ueno", "code": "UENO-2"})),
        )
        .await;
    assert_eq!((s, error_code(&other)), (422, "idempotency_key_reused"));
    let (s, bad) = oa
        .send("post", STORES, keyed(&"k".repeat(256), body.clone()))
        .await;
    assert_eq!((s, error_code(&bad)), (422, "invalid_idempotency_key"));
    // Without a key the same body is a second request: the code is taken.
    let (s, taken) = oa.send("post", STORES, app.post(STORES).json(&body)).await;
    assert_eq!((s, error_code(&taken)), (409, "store_code_taken"));
    let n: i64 = app.db_value("SELECT count(*) FROM stores", &[]).await;
    assert_eq!(n, 1);
    oa.check(&app).await;
}

#[actix_web::test]
async fn stores_need_their_scopes_and_stay_within_the_tenant() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let claims_only = key_with_scopes(&app, &["claims:write"]).await;
    let read_only = key_with_scopes(&app, &["campaigns:read"]).await;
    let (s, body) = oa
        .send(
            "get",
            STORES,
            app.client.get(app.url(STORES)).bearer_auth(&claims_only),
        )
        .await;
    assert_eq!((s, error_code(&body)), (403, "insufficient_scope"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("campaigns:read"));
    let (s, body) = oa
        .send(
            "post",
            STORES,
            app.client
                .post(app.url(STORES))
                .bearer_auth(&read_only)
                .json(&json!({"name": "A", "code": "A"})),
        )
        .await;
    assert_eq!((s, error_code(&body)), (403, "insufficient_scope"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("campaigns:write"));
    let (s, _) = oa
        .send(
            "get",
            STORES,
            app.client.get(app.url(STORES)).bearer_auth(&read_only),
        )
        .await;
    assert_eq!(s, 200);

    // Another merchant on the same database: its own list, and the same code is free.
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let res = app
        .post(STORES)
        .json(&json!({"name": "Shibuya", "code": "SHIBUYA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = other
        .post(STORES)
        .json(&json!({"name": "渋谷", "code": "SHIBUYA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let theirs: serde_json::Value = other
        .get(STORES)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["stores"].as_array().unwrap().len(), 1);
    assert_eq!(theirs["stores"][0]["name"], "渋谷");
    oa.check(&app).await;
}
