//! The stores page: add, rename, delete, the messages next to each bad field, uses split by
//! store and campaign, and tenant boundaries.

use serde_json::json;

use crate::check_codes::{claimed, code_at};
use crate::console_helpers::{console_page, console_post};
use crate::console_redeem::{add_store, outcome, redeem};
use crate::helpers::{location, spawn_app, spawn_app_on, test_settings, TestApp};

async fn store_count(app: &TestApp) -> i64 {
    app.db_value("SELECT count(*) FROM stores", &[]).await
}

async fn store_id(app: &TestApp, code: &str) -> String {
    app.db_value("SELECT id::text FROM stores WHERE code = $1", &[&code])
        .await
}

#[actix_web::test]
async fn add_rename_and_delete_stores() {
    let app = spawn_app().await;
    let (email, manager) = app.console_user("manager").await;
    let (status, html) = console_page(&app, &manager, "/merchant/stores").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"no-stores\"") && html.contains("id=\"store-form\""));

    // Lower case and full-width codes become upper case.
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", " 渋谷店 "), ("code", "shibuya-1")],
    )
    .await;
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (303, "/merchant/stores?done=created")
    );
    let (_, html) = console_page(&app, &manager, "/merchant/stores?done=created").await;
    assert!(
        html.contains("店舗を追加しました")
            && html.contains("value=\"SHIBUYA-1\"")
            && html.contains("value=\"渋谷店\""),
        "{html}"
    );
    let id = store_id(&app, "SHIBUYA-1").await;
    assert!(html.contains(&format!("data-store-id=\"{id}\"")));
    let audit: (String, String, String) = {
        let row = app
            .db
            .client()
            .await
            .query_one(
                "SELECT action, target, actor FROM audit_log WHERE action LIKE 'store.%'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(
        audit,
        ("store.create".into(), "SHIBUYA-1".into(), email.clone())
    );

    // Every bad field gets its own message; nothing is saved.
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", "  "), ("code", "渋谷 1")],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"store-name-error\"")
            && html.contains("店舗名を 1〜100 文字で入力してください"),
        "{html}"
    );
    assert!(
        html.contains("id=\"store-code-error\"")
            && html.contains("英字・数字・ハイフンで 1〜16 文字"),
        "{html}"
    );
    assert!(html.contains("value=\"渋谷 1\""), "what was typed stays");
    let long = "店".repeat(101);
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", &long), ("code", "ABCDEFGHIJKLMNOPQ")],
    )
    .await;
    assert_eq!(res.status(), 422);
    // A code is unique per tenant, whatever its case.
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", "渋谷二号店"), ("code", "Shibuya-1")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("この店舗コードはすでに使われています"));
    assert_eq!(store_count(&app).await, 1);

    // Rename: name and code.
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", "新宿店"), ("code", "SHINJUKU")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        &format!("/merchant/stores/{id}"),
        &[("name", "渋谷駅前店"), ("code", "shibuya")],
    )
    .await;
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (303, "/merchant/stores?done=updated")
    );
    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT name, code FROM stores WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("渋谷駅前店".into(), "SHIBUYA".into())
    );
    // Renaming onto another store's code: the message is in that store's row.
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        &format!("/merchant/stores/{id}"),
        &[("name", "渋谷駅前店"), ("code", "shinjuku")],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("id=\"store-{id}-code-error\"")),
        "{html}"
    );
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        &format!("/merchant/stores/{id}"),
        &[("name", ""), ("code", "SHIBUYA")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains(&format!("id=\"store-{id}-name-error\"")));
    let code: String = app
        .db
        .client()
        .await
        .query_one("SELECT code FROM stores WHERE id = $1::text::uuid", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(code, "SHIBUYA", "nothing half saved");

    // A redemption there keeps its text when the store goes.
    let c = app
        .create_campaign(json!({"name": "x", "total_limit": 5, "status": "active"}))
        .await;
    let (_, body) = app.claim(c["id"].as_str().unwrap(), "someone").await;
    let (status, _) = app
        .redeem(
            body["coupon"]["code"].as_str().unwrap(),
            json!({"store": "shibuya"}),
        )
        .await;
    assert_eq!(status, 201);
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        &format!("/merchant/stores/{id}/delete"),
        &[],
    )
    .await;
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (303, "/merchant/stores?done=deleted")
    );
    assert_eq!(store_count(&app).await, 1);
    let row = app
        .db
        .client()
        .await
        .query_one("SELECT store, store_id FROM redemptions", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("shibuya"));
    assert_eq!(row.get::<_, Option<uuid::Uuid>>(1), None);
    let actions: Vec<String> = app
        .db
        .client()
        .await
        .query(
            "SELECT action FROM audit_log WHERE action LIKE 'store.%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        actions,
        [
            "store.create",
            "store.create",
            "store.update",
            "store.delete"
        ]
    );
}

#[actix_web::test]
async fn uses_are_split_by_store_and_campaign() {
    let app = spawn_app().await;
    let (_, manager) = app.console_user("manager").await;
    for (name, code) in [("渋谷店", "SHIBUYA"), ("新宿店", "SHINJUKU")] {
        console_post(
            &app,
            &manager,
            "/merchant/stores",
            "/merchant/stores",
            &[("name", name), ("code", code)],
        )
        .await;
    }
    let shibuya = store_id(&app, "SHIBUYA").await;
    let mut campaigns = Vec::new();
    for name in ["春のフェア", "夏のフェア"] {
        let c = app
            .create_campaign(json!({"name": name, "total_limit": 10, "status": "active"}))
            .await;
        campaigns.push(c["id"].as_str().unwrap().to_string());
    }
    // Spring: two at Shibuya, one nowhere; summer: one at Shibuya. One undone use does not count.
    for (campaign, store) in [
        (0, Some("SHIBUYA")),
        (0, Some("渋谷店")),
        (0, None),
        (1, Some("shibuya")),
        (1, Some("SHIBUYA")),
    ] {
        let (_, body) = app
            .claim(&campaigns[campaign], &format!("c{}", uuid::Uuid::new_v4()))
            .await;
        let code = body["coupon"]["code"].as_str().unwrap();
        let (status, body) = app.redeem(code, json!({"store": store})).await;
        assert_eq!(status, 201, "{body}");
        if campaign == 1 && store == Some("SHIBUYA") {
            let id = body["redemption"]["id"].as_str().unwrap();
            let res = app
                .delete(&format!("/api/v1/redemptions/{id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    }
    let (_, html) = console_page(&app, &manager, "/merchant/stores").await;
    let cell = |store: &str, campaign: &str| {
        let row = format!("data-store-id=\"{store}\" data-campaign-id=\"{campaign}\"");
        let at = html
            .find(&row)
            .unwrap_or_else(|| panic!("a row for {row} in {html}"));
        html[at..]
            .split("data-field=\"redemptions\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(cell(&shibuya, &campaigns[0]), "2");
    assert_eq!(cell(&shibuya, &campaigns[1]), "1");
    assert_eq!(cell("", &campaigns[0]), "1");
    assert!(html.contains("（店舗の指定なし）"));
    // The per-store total in the list.
    let at = html
        .find(&format!("tr data-store-id=\"{shibuya}\""))
        .unwrap();
    let uses = html[at..]
        .split("data-field=\"uses\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert_eq!(uses, "3");
}

#[actix_web::test]
async fn stores_of_another_tenant_are_not_found_and_staff_are_kept_out() {
    let app = spawn_app().await;
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let (_, theirs) = other.console_user("owner").await;
    console_post(
        &other,
        &theirs,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", "他社の店"), ("code", "OTHER")],
    )
    .await;
    let id = store_id(&app, "OTHER").await;
    let (_, manager) = app.console_user("manager").await;
    let (_, html) = console_page(&app, &manager, "/merchant/stores").await;
    assert!(!html.contains("他社の店"));
    for action in [
        format!("/merchant/stores/{id}"),
        format!("/merchant/stores/{id}/delete"),
    ] {
        let res = console_post(
            &app,
            &manager,
            "/merchant/stores",
            &action,
            &[("name", "乗っ取り"), ("code", "MINE")],
        )
        .await;
        assert_eq!(res.status(), 404, "{action}");
    }
    let name: String = app
        .db
        .client()
        .await
        .query_one("SELECT name FROM stores WHERE id = $1::text::uuid", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "他社の店");
    // The same code is free for another tenant.
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", "うちの店"), ("code", "other")],
    )
    .await;
    assert_eq!(res.status(), 303);

    let (_, staff) = app.console_user("staff").await;
    let (status, _) = console_page(&app, &staff, "/merchant/stores").await;
    assert_eq!(status, 403);
    // A staff member cannot post either (the CSRF token comes from a page they can open).
    let res = console_post(
        &app,
        &staff,
        "/merchant/redeem",
        "/merchant/stores",
        &[("name", "スタッフの店"), ("code", "STAFF")],
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = console_post(
        &app,
        &manager,
        "/merchant/stores",
        "/merchant/stores",
        &[("name", "x"), ("code", "X")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let forged = manager
        .post(app.url("/merchant/stores"))
        .form(&[("name", "y"), ("code", "Y"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}

// The staff screen's side of stores.

#[actix_web::test]
async fn the_store_choice_is_remembered_and_states_are_told() {
    let app = spawn_app().await;
    add_store(&app, "渋谷店", "SHIBUYA").await;
    let shinjuku = add_store(&app, "新宿店", "SHINJUKU").await;
    let (_, staff) = app.console_user("staff").await;
    let (_, html) = console_page(&app, &staff, "/merchant/redeem").await;
    assert!(!html.contains(" selected>"), "two stores: no guess");

    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (code, secret) = claimed(
        &app,
        json!({"name": "x", "total_limit": 5, "status": "active", "use_starts_at": later}),
    )
    .await;
    let check = code_at(&secret, 0).await;
    let (_, html) = redeem(
        &app,
        &staff,
        &[
            ("code", &code),
            ("check_code", &check),
            ("store_id", &shinjuku),
        ],
    )
    .await;
    assert_eq!(outcome(&html), "not_yet_valid");
    assert!(html.contains("利用開始"), "{html}");
    let (_, html) = console_page(&app, &staff, "/merchant/redeem").await;
    assert!(
        html.contains(&format!("<option value=\"{shinjuku}\" selected>")),
        "the last store is remembered"
    );

    app.db
        .client()
        .await
        .execute("UPDATE coupons SET valid_from = now() - interval '2 days', expires_at = now() - interval '1 minute'", &[])
        .await
        .unwrap();
    let (_, html) = redeem(
        &app,
        &staff,
        &[
            ("code", &code),
            ("check_code", &check),
            ("store_id", &shinjuku),
        ],
    )
    .await;
    assert_eq!(outcome(&html), "expired");
    assert!(html.contains("有効期限"), "{html}");
}

#[actix_web::test]
async fn every_role_may_redeem_and_only_managers_up_manage_stores() {
    let app = spawn_app().await;
    for role in ["owner", "admin", "manager", "staff"] {
        let (_, client) = app.console_user(role).await;
        let (status, _) = console_page(&app, &client, "/merchant/redeem").await;
        assert_eq!(status, 200, "{role}");
        let (status, _) = console_page(&app, &client, "/merchant/stores").await;
        assert_eq!(status, if role == "staff" { 403 } else { 200 }, "{role}");
    }
    // Not signed in: to the sign-in page.
    let browser = crate::helpers::html_client(Some("ja"));
    let res = browser
        .get(app.url("/merchant/redeem"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // The screen in English too.
    let email = app.add_user("staff").await;
    let english = app.console_lang(&email, "en").await;
    let (_, html) = console_page(&app, &english, "/merchant/redeem").await;
    assert!(
        html.contains("Check code (6 digits)") && html.contains("lang=\"en\""),
        "{html}"
    );
}
