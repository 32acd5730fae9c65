//! `GET /api/v1/redemptions`: keyset pages with no duplicates or gaps (ties on the time
//! too), each filter, bad filters, scopes, tenant boundaries, and answers matching the
//! OpenAPI document.

use serde_json::{json, Value};

use crate::helpers::{
    error_code, key_with_scopes, spawn_app, spawn_app_on, test_settings, OpenApiCheck, TestApp,
};

const LIST: &str = "/api/v1/redemptions";

/// Claims a coupon for `consumer` and uses it (at `store`, if given); the redemption's id.
async fn used(app: &TestApp, campaign: &str, consumer: &str, store: Option<&str>) -> String {
    let (s, claimed) = app.claim(campaign, consumer).await;
    assert_eq!(s, 201, "{claimed}");
    let code = claimed["coupon"]["code"].as_str().unwrap();
    let body = match store {
        Some(store) => json!({"store": store, "staff": "Aki"}),
        None => json!({}),
    };
    let (s, r) = app.redeem(code, body).await;
    assert_eq!(s, 201, "{r}");
    r["redemption"]["id"].as_str().unwrap().to_string()
}

async fn get(app: &TestApp, query: &str) -> (u16, Value) {
    let res = app.get(&format!("{LIST}{query}")).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Every page of `query` (which must not be empty: it starts with `?`), `limit` at a time.
async fn all_pages(app: &TestApp, query: &str, limit: usize) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor
            .as_deref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (s, page) = get(app, &format!("{query}&limit={limit}{after}")).await;
        assert_eq!(s, 200, "{page}");
        pages += 1;
        let items = page["redemptions"].as_array().unwrap();
        assert!(items.len() <= limit);
        ids.extend(items.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    (ids, pages)
}

/// Every redemption of the tenant, newest first, as the database orders them.
async fn expected(app: &TestApp, filter: &str) -> Vec<String> {
    let client = app.db.client().await;
    client
        .query(
            &format!(
                "SELECT id::text FROM redemptions WHERE tenant_id = $1 {filter}
                 ORDER BY redeemed_at DESC, id DESC"
            ),
            &[&app.tenant_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[actix_web::test]
async fn pages_have_no_duplicates_or_gaps_even_on_equal_times() {
    let app = spawn_app().await;
    let campaign = app
        .create_campaign_id(json!({"name": "p", "total_limit": 50, "status": "active"}))
        .await;
    for i in 0..7 {
        used(&app, &campaign, &format!("c{i}"), None).await;
    }
    let (ids, pages) = all_pages(&app, "?", 3).await;
    assert_eq!(pages, 3);
    assert_eq!(ids, expected(&app, "").await, "newest first, each once");

    // A use made while a client pages comes before its cursor: no duplicate, no gap.
    let (_, first) = get(&app, "?limit=3").await;
    used(&app, &campaign, "late", None).await;
    let (_, rest) = get(
        &app,
        &format!(
            "?limit=50&cursor={}",
            first["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    let seen: Vec<&str> = first["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["redemptions"].as_array().unwrap())
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(rest["next_cursor"], Value::Null);

    // Equal times: the id breaks the tie, so no page boundary loses or repeats a row.
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE redemptions SET redeemed_at = '2026-11-01T00:00:00Z'",
            &[],
        )
        .await
        .unwrap();
    let want = expected(&app, "").await;
    assert_eq!(want.len(), 8);
    for limit in [1, 2, 3, 8] {
        let (ids, _) = all_pages(&app, "?", limit).await;
        assert_eq!(ids, want, "limit {limit}");
    }
    // A full last page has a cursor; the page after it is empty and ends.
    let (_, page) = get(&app, "?limit=8").await;
    let next = page["next_cursor"].as_str().unwrap();
    let (_, page) = get(&app, &format!("?limit=8&cursor={next}")).await;
    assert_eq!(page, json!({"redemptions": [], "next_cursor": null}));
    // Default 50, at most 200.
    let (s, _) = get(&app, "?limit=200").await;
    assert_eq!(s, 200);
}

#[actix_web::test]
async fn filters_by_campaign_store_and_time_and_names_bad_ones() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let a = app
        .create_campaign_id(json!({"name": "a", "total_limit": 50, "status": "active"}))
        .await;
    let b = app
        .create_campaign_id(json!({"name": "b", "total_limit": 50, "status": "active"}))
        .await;
    let res = app
        .post("/api/v1/stores")
        .json(&json!({"name": "渋谷店", "code": "SHIBUYA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let store: Value = res.json().await.unwrap();
    let store_id = store["id"].as_str().unwrap();
    let at_shibuya = used(&app, &a, "a1", Some("shibuya")).await;
    used(&app, &a, "a2", Some("Somewhere else")).await;
    let b_shibuya = used(&app, &b, "b1", Some("渋谷店")).await;
    used(&app, &b, "b2", None).await;

    // Campaign.
    let (ids, _) = all_pages(&app, &format!("?campaign={a}"), 1).await;
    assert_eq!(
        ids,
        expected(&app, &format!("AND campaign_id = '{a}'")).await
    );
    assert_eq!(ids.len(), 2);
    // Store, with its name and code and the text as given.
    let (s, page) = oa
        .send("get", LIST, app.get(&format!("{LIST}?store={store_id}")))
        .await;
    assert_eq!(s, 200, "{page}");
    let items = page["redemptions"].as_array().unwrap();
    let got: Vec<&str> = items.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(got, [b_shibuya.as_str(), at_shibuya.as_str()]);
    let first = &items[1];
    assert_eq!(
        (
            &first["store"],
            &first["store_id"],
            &first["store_name"],
            &first["store_code"],
            &first["staff"],
            &first["campaign_id"],
        ),
        (
            &json!("shibuya"),
            &json!(store_id),
            &json!("渋谷店"),
            &json!("SHIBUYA"),
            &json!("Aki"),
            &json!(a),
        )
    );
    let code: String = app
        .db_value(
            "SELECT c.code FROM coupons c JOIN redemptions r ON r.coupon_id = c.id
             WHERE r.id = $1::text::uuid",
            &[&at_shibuya],
        )
        .await;
    assert_eq!(first["coupon_code"], json!(code));
    assert_eq!(first["undone_at"], Value::Null);
    // Both together.
    let (_, page) = get(&app, &format!("?store={store_id}&campaign={b}")).await;
    assert_eq!(page["redemptions"].as_array().unwrap().len(), 1);
    assert_eq!(page["redemptions"][0]["id"], json!(b_shibuya));

    // An undone use is listed with when it was undone.
    let res = app
        .delete(&format!("/api/v1/redemptions/{b_shibuya}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, page) = oa
        .send(
            "get",
            LIST,
            app.get(&format!("{LIST}?campaign={b}&store={store_id}")),
        )
        .await;
    assert!(page["redemptions"][0]["undone_at"].is_string(), "{page}");

    // Time: from inclusive, to exclusive.
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE redemptions SET redeemed_at = CASE id
                WHEN $1::text::uuid THEN timestamptz '2026-10-01T00:00:00Z'
                WHEN $2::text::uuid THEN timestamptz '2026-10-02T00:00:00Z'
                ELSE timestamptz '2026-10-03T00:00:00Z' END",
            &[&at_shibuya, &b_shibuya],
        )
        .await
        .unwrap();
    let window = |q: &str| {
        let app = &app;
        let q = q.to_string();
        async move {
            let (s, page) = get(app, &q).await;
            assert_eq!(s, 200, "{q}: {page}");
            page["redemptions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        window("?from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z").await,
        [at_shibuya.as_str()]
    );
    assert_eq!(
        window("?from=2026-10-02T09:00:00%2B09:00").await.len(),
        3,
        "an offset is honoured"
    );
    assert_eq!(window("?to=2026-10-03T00:00:00Z").await.len(), 2);
    assert_eq!(window("?from=2026-10-04T00:00:00Z").await.len(), 0);

    // Bad filters: 422 `invalid_filter` naming each, `invalid_limit`, `invalid_cursor`.
    let (s, body) = oa
        .send(
            "get",
            LIST,
            app.get(&format!(
                "{LIST}?campaign=nope&store=1&from=yesterday&to=2026-13-01"
            )),
        )
        .await;
    assert_eq!((s, error_code(&body)), (422, "invalid_filter"), "{body}");
    let fields = body["error"]["fields"].as_object().unwrap();
    let mut named: Vec<&str> = fields.keys().map(String::as_str).collect();
    named.sort();
    assert_eq!(named, ["campaign", "from", "store", "to"]);
    let (s, body) = oa
        .send(
            "get",
            LIST,
            app.get(&format!(
                "{LIST}?from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z"
            )),
        )
        .await;
    assert_eq!((s, error_code(&body)), (422, "invalid_filter"));
    assert!(body["error"]["fields"]["to"].is_string(), "{body}");
    // A `+` left unescaped is a space: refused, not misread.
    let (s, body) = get(&app, "?from=2026-10-02T09:00:00+09:00").await;
    assert_eq!((s, error_code(&body)), (422, "invalid_filter"));
    for bad in ["0", "201", "-1", "ten"] {
        let (s, body) = oa
            .send("get", LIST, app.get(&format!("{LIST}?limit={bad}")))
            .await;
        assert_eq!((s, error_code(&body)), (422, "invalid_limit"), "{bad}");
        assert!(body["error"]["fields"]["limit"].is_string());
    }
    let (s, body) = oa
        .send(
            "get",
            LIST,
            app.get(&format!("{LIST}?cursor=bm90LWEtY3Vyc29y")),
        )
        .await;
    assert_eq!((s, error_code(&body)), (422, "invalid_cursor"));
    assert!(body["error"]["fields"]["cursor"].is_string());
    oa.check(&app).await;
}

#[actix_web::test]
async fn the_list_needs_campaigns_read_and_shows_only_the_merchants_own() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let campaign = app
        .create_campaign_id(json!({"name": "mine", "total_limit": 5, "status": "active"}))
        .await;
    let mine = used(&app, &campaign, "me", None).await;

    let redeemer = key_with_scopes(&app, &["redemptions:write", "claims:write"]).await;
    let (s, body) = oa
        .send(
            "get",
            LIST,
            app.client.get(app.url(LIST)).bearer_auth(&redeemer),
        )
        .await;
    assert_eq!((s, error_code(&body)), (403, "insufficient_scope"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("campaigns:read"));
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    let (s, body) = oa
        .send(
            "get",
            LIST,
            app.client.get(app.url(LIST)).bearer_auth(&reader),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(body["redemptions"][0]["id"], json!(mine));

    // Another merchant on the same database sees none of it, even naming the campaign.
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let theirs = other
        .create_campaign_id(json!({"name": "theirs", "total_limit": 5, "status": "active"}))
        .await;
    let their_use = used(&other, &theirs, "them", None).await;
    let (s, body) = get(&other, "?limit=200").await;
    assert_eq!(s, 200);
    assert_eq!(body["redemptions"].as_array().unwrap().len(), 1);
    assert_eq!(body["redemptions"][0]["id"], json!(their_use));
    let (s, body) = get(&other, &format!("?campaign={campaign}")).await;
    assert_eq!(
        (s, body),
        (200, json!({"redemptions": [], "next_cursor": null}))
    );
    let (_, mine_again) = get(&app, "?limit=200").await;
    assert_eq!(mine_again["redemptions"].as_array().unwrap().len(), 1);
    oa.check(&app).await;
}
