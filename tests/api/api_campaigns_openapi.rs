//! The campaign list and the full `PATCH` against the OpenAPI document (as
//! api_openapi.rs does for the other endpoints): real answers, each documented status and
//! every error code they add, checked against the served document's schemas.

use serde_json::json;

use crate::helpers::{key_with_scopes, spawn_app, OpenApiCheck};

#[actix_web::test]
async fn answers_of_the_campaign_list_and_patch_match_the_document() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let list = "/api/v1/campaigns";
    let one = "/api/v1/campaigns/{id}";
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = json!({
            "name": format!("c{i}"), "total_limit": 2, "status": "active",
            "discount": {"kind": "free_item", "item": "Coffee"}, "claim_ends_at": "2099-01-01T00:00:00Z",
            "valid_for_seconds": 3600,
        });
        ids.push(app.create_campaign_id(body).await);
    }
    let at = |id: &str| one.replace("{id}", id);

    // The list: pages, the filter, and each bad parameter.
    let (s, page) = oa
        .send("get", list, app.get(&format!("{list}?limit=2")))
        .await;
    assert_eq!(s, 200, "{page}");
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let (s, page) = oa
        .send(
            "get",
            list,
            app.get(&format!("{list}?limit=2&cursor={next}")),
        )
        .await;
    assert_eq!((s, page["next_cursor"].is_null()), (200, true), "{page}");
    let (s, _) = oa
        .send("get", list, app.get(&format!("{list}?status=draft")))
        .await;
    assert_eq!(s, 200);
    for query in ["limit=0", "cursor=x", "status=over", "limit=1&limit=2"] {
        let (s, body) = oa
            .send("get", list, app.get(&format!("{list}?{query}")))
            .await;
        assert_eq!(s, 422, "{query}: {body}");
    }

    // PATCH: every field at once, then the refusals and body errors it adds.
    let (s, body) = oa
        .send(
            "patch",
            one,
            app.patch(&at(&ids[0])).json(&json!({
                "action": "pause", "name": "All", "description": "d", "terms": "t",
                "discount": {"kind": "percent_off", "percent": 15}, "total_limit": 9,
                "per_consumer_limit": 2, "claim_starts_at": "2020-01-01T00:00:00Z",
                "claim_ends_at": null, "use_starts_at": "2020-01-01T00:00:00Z",
                "use_ends_at": "2099-01-01T00:00:00Z", "valid_for_seconds": null,
                "uses_per_coupon": 2, "win_probability": 0.5, "signin": "required",
                "code_length": 8, "code_prefix": "AB", "code_charset": "unambiguous",
                "image": null,
            })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(app.claim(&ids[1], "x").await.0, 201);
    assert_eq!(app.claim(&ids[1], "y").await.0, 201);
    for (body, want) in [
        (json!({"total_limit": 1}), 409),
        (json!({"action": "resume"}), 409),
        (json!({"name": ""}), 422),
        (json!({"code_charset": "AAB"}), 422),
        (json!({"image": "x"}), 422),
        (json!({"action": "stop"}), 422),
        (json!({}), 422),
        (json!({"total_limit": "2"}), 400),
        (json!({"nme": "x"}), 400),
    ] {
        let (s, answer) = oa
            .send("patch", one, app.patch(&at(&ids[1])).json(&body))
            .await;
        assert_eq!(s, want, "{body}: {answer}");
    }
    let missing = at(&uuid::Uuid::new_v4().to_string());
    let (s, _) = oa
        .send(
            "patch",
            one,
            app.patch(&missing).json(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, 404);

    // Scopes.
    let claimer = key_with_scopes(&app, &["claims:write"]).await;
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    let weak = app.client.get(app.url(list)).bearer_auth(&claimer);
    assert_eq!(oa.send("get", list, weak).await.0, 403);
    let weak = app
        .client
        .patch(app.url(&at(&ids[2])))
        .bearer_auth(&reader)
        .json(&json!({"name": "x"}));
    assert_eq!(oa.send("patch", one, weak).await.0, 403);
    assert_eq!(
        oa.send("get", list, app.client.get(app.url(list))).await.0,
        401
    );

    // Body errors on the other JSON endpoints carry `fields` too, within the document.
    let claims = "/api/v1/campaigns/{id}/claims";
    let (s, _) = oa
        .send(
            "post",
            claims,
            app.post(&claims.replace("{id}", &ids[2]))
                .json(&json!({"consumer": 1})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = oa
        .send(
            "post",
            list,
            app.post(list)
                .json(&json!({"name": "x", "total_limit": "1"})),
        )
        .await;
    assert_eq!(s, 400);

    assert!(oa.check(&app).await >= 23);
}
