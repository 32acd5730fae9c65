//! `GET /api/v1/campaigns`: keyset pages with no duplicate and no gap while campaigns are
//! created, the status filter, tenant isolation, scopes, and bad parameters.

use std::collections::HashSet;
use std::ops::AsyncFnMut;

use serde_json::{json, Value};

use crate::helpers::{
    error_code, key_with_scopes, spawn_app, spawn_app_on, test_settings, TestApp,
};

async fn list(app: &TestApp, query: &str) -> (u16, Value) {
    let res = app
        .get(&format!("/api/v1/campaigns{query}"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Every page from the first, following `next_cursor`: the ids in order, and how many
/// pages it took. `between` runs after each page.
async fn walk(app: &TestApp, query: &str, mut between: impl AsyncFnMut()) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let (status, page) = list(app, &q).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for c in page["campaigns"].as_array().unwrap() {
            ids.push(c["id"].as_str().unwrap().to_owned());
        }
        between().await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, pages),
        }
        assert!(pages < 50, "the walk ends");
    }
}

#[actix_web::test]
async fn pages_list_every_campaign_once_while_more_are_created() {
    let app = spawn_app().await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            app.create_campaign_id(json!({"name": format!("c{i}"), "total_limit": 5}))
                .await,
        );
    }
    // Newest first.
    let (ids, pages) = walk(&app, "?limit=3", async || {}).await;
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!((ids, pages), (newest_first, 3));

    // Campaigns created between pages are newer than the cursor: they never shift the
    // pages being read (no duplicate, no gap), and the next walk sees them first.
    let mut created = Vec::new();
    let (ids, _) = walk(&app, "?limit=2", async || {
        created.push(
            app.create_campaign_id(json!({"name": "meanwhile", "total_limit": 5}))
                .await,
        );
    })
    .await;
    assert_eq!(ids.len(), 7);
    assert_eq!(ids.iter().collect::<HashSet<_>>(), made.iter().collect());
    let (ids, _) = walk(&app, "?limit=200", async || {}).await;
    assert_eq!(ids.len(), 7 + created.len());
    assert_eq!(
        &ids[..created.len()],
        &created.iter().rev().cloned().collect::<Vec<_>>()[..]
    );

    // Campaigns created in the same microsecond are ordered by id, and still each listed
    // once.
    let db = app.db.client().await;
    db.execute(
        "UPDATE campaigns SET created_at = '2030-01-01T00:00:00Z' WHERE tenant_id = $1",
        &[&app.tenant_id],
    )
    .await
    .unwrap();
    let (ids, pages) = walk(&app, "?limit=4", async || {}).await;
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "ties: by id, descending");
    assert_eq!(ids.len(), 7 + created.len());
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    assert_eq!(pages, ids.len().div_ceil(4));

    // A full last page has a cursor; the page after it is empty and ends the list.
    let (_, page) = list(&app, &format!("?limit={}", ids.len())).await;
    let next = page["next_cursor"].as_str().unwrap();
    let (status, page) = list(&app, &format!("?cursor={next}")).await;
    assert_eq!(
        (status, page["campaigns"].as_array().unwrap().len()),
        (200, 0)
    );
    assert!(page["next_cursor"].is_null());
}

#[actix_web::test]
async fn the_status_filter_and_the_listed_shape() {
    let app = spawn_app().await;
    let mut by_status = std::collections::BTreeMap::<&str, Vec<String>>::new();
    for (status, action) in [
        ("draft", None),
        ("active", None),
        ("active", None),
        ("paused", Some("pause")),
        ("ended", Some("end")),
    ] {
        let initial = if status == "draft" { "draft" } else { "active" };
        let id = app
            .create_campaign_id(json!({"name": status, "total_limit": 5, "status": initial}))
            .await;
        if let Some(action) = action {
            let res = app
                .patch(&format!("/api/v1/campaigns/{id}"))
                .json(&json!({"action": action}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
        by_status.entry(status).or_default().push(id);
    }
    for (status, want) in &by_status {
        let (ids, _) = walk(&app, &format!("?status={status}&limit=1"), async || {}).await;
        let want: Vec<String> = want.iter().rev().cloned().collect();
        assert_eq!(&ids, &want, "{status}");
    }
    // A listed campaign is shown as GET /api/v1/campaigns/{id} shows it, without the
    // counts.
    let (_, page) = list(&app, "?status=active&limit=1").await;
    let listed = &page["campaigns"][0];
    let id = listed["id"].as_str().unwrap();
    let shown: Value = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut without_stats = shown.clone();
    without_stats.as_object_mut().unwrap().remove("stats");
    assert_eq!(listed, &without_stats);
    assert!(shown["stats"].is_object());
}

#[actix_web::test]
async fn bad_parameters_are_named() {
    let app = spawn_app().await;
    for (query, code, field) in [
        ("?limit=0", "invalid_limit", "limit"),
        ("?limit=201", "invalid_limit", "limit"),
        ("?limit=ten", "invalid_limit", "limit"),
        ("?cursor=bm90LWEtY3Vyc29y", "invalid_cursor", "cursor"),
        ("?cursor=%25%25", "invalid_cursor", "cursor"),
        ("?status=running", "invalid_status", "status"),
        ("?status=ACTIVE", "invalid_status", "status"),
    ] {
        let (status, body) = list(&app, query).await;
        assert_eq!((status, error_code(&body)), (422, code), "{query}: {body}");
        assert!(
            body["error"]["fields"][field].is_string(),
            "{query}: {body}"
        );
    }
    let (status, body) = list(&app, "?limit=1&limit=2").await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "invalid_query"),
        "{body}"
    );
}

#[actix_web::test]
async fn another_tenants_campaigns_are_never_listed_nor_changed() {
    let app = spawn_app().await;
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let mine = app
        .create_campaign_id(json!({"name": "mine", "total_limit": 5, "status": "active"}))
        .await;
    let mut theirs = Vec::new();
    for i in 0..3 {
        theirs.push(
            other
                .create_campaign_id(
                    json!({"name": format!("theirs {i}"), "total_limit": 5, "status": "active"}),
                )
                .await,
        );
    }
    for query in ["?limit=1", "?limit=200", "?status=active"] {
        let (ids, _) = walk(&app, query, async || {}).await;
        assert_eq!(ids, std::slice::from_ref(&mine), "{query}");
    }
    // Their cursor in my list starts after their campaign, but still lists only mine.
    let (_, page) = list(&other, "?limit=1").await;
    let their_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (ids, _) = walk(
        &app,
        &format!("?cursor={their_cursor}&limit=5"),
        async || {},
    )
    .await;
    assert!(ids.iter().all(|id| *id == mine), "{ids:?}");

    for body in [
        json!({"name": "taken"}),
        json!({"action": "end"}),
        json!({"total_limit": 1}),
    ] {
        let res = app
            .patch(&format!("/api/v1/campaigns/{}", theirs[0]))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{body}");
    }
    let theirs_now: Value = other
        .get(&format!("/api/v1/campaigns/{}", theirs[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (theirs_now["name"].as_str(), theirs_now["status"].as_str()),
        (Some("theirs 0"), Some("active"))
    );
    assert_eq!(theirs_now["total_limit"], 5);
}

#[actix_web::test]
async fn listing_needs_campaigns_read_and_changing_campaigns_write() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "x", "total_limit": 5}))
        .await;
    let claimer = key_with_scopes(&app, &["claims:write"]).await;
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    let res = app
        .client
        .get(app.url("/api/v1/campaigns"))
        .bearer_auth(&claimer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "insufficient_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("campaigns:read"));
    let res = app
        .client
        .get(app.url("/api/v1/campaigns"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/campaigns/{id}")))
        .bearer_auth(&reader)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "insufficient_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("campaigns:write"));
    let name: String = app
        .db_value(
            "SELECT name FROM campaigns WHERE id = $1::text::uuid",
            &[&id],
        )
        .await;
    assert_eq!(name, "x");
}
