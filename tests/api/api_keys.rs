//! API keys over the API: a `keys:admin` key creates (shown once), lists and revokes its
//! merchant's keys; answers checked against the OpenAPI document.

use serde_json::json;

use crate::helpers::{error_code, eventually, key_with_scopes, spawn_app, OpenApiCheck};

#[actix_web::test]
async fn an_admin_key_creates_lists_and_revokes_keys() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let keys = "/api/v1/keys";

    // The tenant's first key has every scope, keys:admin included.
    let (_, me) = oa
        .send("get", "/api/v1/tenant", app.get("/api/v1/tenant"))
        .await;
    assert_eq!(
        me["key"]["scopes"],
        json!([
            "campaigns:read",
            "campaigns:write",
            "claims:write",
            "redemptions:write",
            "export:read",
            "keys:admin"
        ])
    );

    let (s, created) = oa
        .send(
            "post",
            keys,
            app.post(keys)
                .json(&json!({"name": "till 3", "scopes": ["claims:write", "campaigns:read"]})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["api_key"].as_str().unwrap().to_string();
    let prefix = created["key"]["prefix"].as_str().unwrap().to_string();
    assert!(secret.starts_with(&prefix));
    assert_eq!(
        created["key"]["scopes"],
        json!(["claims:write", "campaigns:read"])
    );
    assert_eq!(created["key"]["name"], "till 3");
    assert_eq!(created["key"]["revoked_at"], json!(null));

    // The new key works, with its scopes and no others.
    let new_key = |req: reqwest::RequestBuilder| req.bearer_auth(&secret);
    let tenant = app.client.get(app.url("/api/v1/tenant"));
    let (s, _) = oa.send("get", "/api/v1/tenant", new_key(tenant)).await;
    assert_eq!(s, 200);
    let (s, body) = oa
        .send("get", keys, new_key(app.client.get(app.url(keys))))
        .await;
    assert_eq!((s, error_code(&body)), (403, "insufficient_scope"));

    // Listed without its secret, with its last use.
    let (s, listed) = oa.send("get", keys, app.get(keys)).await;
    assert_eq!(s, 200);
    assert!(!listed.to_string().contains(&secret[prefix.len()..]));
    let mine = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["prefix"] == prefix.as_str())
        .expect("the new key is listed")
        .clone();
    assert!(mine["last_used_at"].is_string(), "{mine}");
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);

    // Bad requests.
    for (body, code) in [
        (json!({"scopes": ["everything"]}), "invalid_scope"),
        (json!({"scopes": []}), "invalid_scope"),
        (
            json!({"scopes": ["claims:write"], "name": "x".repeat(101)}),
            "invalid_name",
        ),
    ] {
        let (s, answer) = oa.send("post", keys, app.post(keys).json(&body)).await;
        assert_eq!((s, error_code(&answer)), (422, code), "{body}");
        assert!(answer["error"]["fields"].is_object(), "{answer}");
    }

    // Revoked: it stops working (within the key cache's second), and says so once.
    let one = "/api/v1/keys/{id}";
    let path = one.replace("{id}", mine["id"].as_str().unwrap());
    let (s, revoked) = oa.send("delete", one, app.delete(&path)).await;
    assert_eq!(s, 200, "{revoked}");
    assert!(revoked["key"]["revoked_at"].is_string());
    let (s, again) = oa.send("delete", one, app.delete(&path)).await;
    assert_eq!((s, error_code(&again)), (409, "already_revoked"));
    let nobody = one.replace("{id}", &uuid::Uuid::new_v4().to_string());
    assert_eq!(oa.send("delete", one, app.delete(&nobody)).await.0, 404);
    eventually(
        std::time::Duration::from_secs(5),
        "the revoked key is refused",
        async || {
            let res = app
                .client
                .get(app.url("/api/v1/tenant"))
                .bearer_auth(&secret)
                .send()
                .await
                .unwrap();
            (res.status() == 401).then_some(())
        },
    )
    .await;

    oa.check(&app).await;
}

#[actix_web::test]
async fn another_merchants_key_cannot_be_revoked_and_keys_need_keys_admin() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let theirs: serde_json::Value = other
        .get("/api/v1/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let their_id = theirs["keys"][0]["id"].as_str().unwrap();
    let res = app
        .delete(&format!("/api/v1/keys/{their_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let still: serde_json::Value = other
        .get("/api/v1/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["keys"][0]["revoked_at"], json!(null));

    let writer = key_with_scopes(&app, &["campaigns:write"]).await;
    let res = app
        .client
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&writer)
        .json(&json!({"scopes": ["keys:admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("keys:admin"));
}
