//! Bulk codes (`POST /api/v1/campaigns/{id}/codes`, code jobs) and CSV code import: unique
//! per tenant, counted against the campaign's limit even while claims run, all or nothing.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{error_code, eventually, key_with_scopes, spawn_app, stock_counts, TestApp};

async fn post_codes(
    app: &TestApp,
    campaign: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let res = app
        .post(&format!("/api/v1/campaigns/{campaign}/codes"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

async fn import(
    app: &TestApp,
    campaign: &str,
    csv: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value) {
    let res = app
        .post(&format!("/api/v1/campaigns/{campaign}/codes/import"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

async fn issued(app: &TestApp, campaign: &str) -> i64 {
    stock_counts(&app.db, campaign).await.0
}

#[actix_web::test]
async fn bulk_codes_are_unique_redeemable_and_count_against_the_limit() {
    let app = spawn_app().await;
    let campaign = app
        .create_campaign_id(json!({"name": "print", "total_limit": 100, "status": "active"}))
        .await;
    let (status, body) = post_codes(
        &app,
        &campaign,
        json!({"count": 30, "pattern": "####-####-XMAS", "charset": "0123456789", "prefix": "PR"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let codes: Vec<&str> = body["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 30);
    assert_eq!(body["count"], 30);
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 30, "unique");
    for code in &codes {
        assert!(
            code.starts_with("PR") && code.ends_with("XMAS") && code.len() == 14,
            "{code}"
        );
        assert!(code[2..10].chars().all(|c| c.is_ascii_digit()), "{code}");
    }
    // Issued coupons: redeemable, and looked up like claimed ones.
    let (status, redeemed) = app.redeem(codes[0], json!({})).await;
    assert_eq!(status, 201, "{redeemed}");
    let res = app
        .get(&format!("/api/v1/coupons/{}", codes[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Counted: the campaign's stats (the engine's counters) and the stock.
    assert_eq!(stock_counts(&app.db, &campaign).await, (30, 30, 100));
    eventually(
        Duration::from_secs(10),
        "the engine counts them",
        async || {
            let res = app
                .get(&format!("/api/v1/campaigns/{campaign}"))
                .send()
                .await
                .ok()?;
            let c: serde_json::Value = res.json().await.ok()?;
            (c["stats"]["issued"] == 30 && c["stats"]["remaining"] == 70).then_some(())
        },
    )
    .await;
    let (status, body) = post_codes(&app, &campaign, json!({"count": 71})).await;
    assert_eq!(
        (status, error_code(&body)),
        (409, "not_enough_stock"),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("70"));
    // As CSV for the printer.
    let res = app
        .post(&format!("/api/v1/campaigns/{campaign}/codes"))
        .header("accept", "text/csv")
        .json(&json!({"count": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "code,expires_at");
    assert_eq!(lines.len(), 6);
    assert_eq!(issued(&app, &campaign).await, 35);
}

#[actix_web::test]
async fn the_limit_holds_while_claims_and_bulk_codes_race() {
    let app = spawn_app().await;
    let campaign = app
        .create_campaign_id(json!({"name": "race", "total_limit": 300, "status": "active"}))
        .await;
    let claims = futures_util::stream::iter(0..400usize)
        .map(|i| {
            let app = &app;
            let campaign = campaign.clone();
            async move { app.claim(&campaign, &format!("c-{i}")).await.0 }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let bulk = futures_util::stream::iter(0..10usize)
        .map(|_| {
            let app = &app;
            let campaign = campaign.clone();
            async move { post_codes(app, &campaign, json!({"count": 25})).await }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>();
    let (claims, bulk) = futures_util::future::join(claims, bulk).await;
    let claimed = claims.iter().filter(|s| **s == 201).count() as i64;
    let mut bulk_codes = 0;
    for (status, body) in &bulk {
        match status {
            201 => bulk_codes += body["codes"].as_array().unwrap().len() as i64,
            409 => assert_eq!(error_code(body), "not_enough_stock", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(claims.iter().all(|s| *s == 201 || *s == 409));
    let (won, allocated, limit) = stock_counts(&app.db, &campaign).await;
    assert_eq!(
        won,
        claimed + bulk_codes,
        "every acknowledged coupon, and nothing else"
    );
    assert!(won <= limit && allocated <= limit, "never over the limit");
    // Whatever is left is still claimable, up to exactly the limit.
    let mut n = 0;
    eventually(Duration::from_secs(30), "the rest is claimed", async || {
        n += 1;
        let (status, _) = app.claim(&campaign, &format!("late-{n}")).await;
        (status == 409 && issued(&app, &campaign).await == 300).then_some(())
    })
    .await;
    let codes: i64 = app
        .db_value(
            "SELECT count(DISTINCT code) FROM coupons WHERE campaign_id = $1::text::uuid AND won",
            &[&campaign],
        )
        .await;
    assert_eq!(codes, 300);
}

#[actix_web::test]
async fn more_than_10000_codes_are_a_job_with_a_csv() {
    let app = spawn_app().await;
    let campaign = app
        .create_campaign_id(json!({"name": "big", "total_limit": 12_500, "status": "draft"}))
        .await;
    let res = app
        .post(&format!("/api/v1/campaigns/{campaign}/codes"))
        .json(&json!({"count": 12_000, "prefix": "BIG"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let body: serde_json::Value = res.json().await.unwrap();
    let job = body["job"].clone();
    assert_eq!(job["count"], 12_000);
    assert_eq!(job["status_url"], location.as_str());
    let done = eventually(Duration::from_secs(120), "the job is done", async || {
        let res = app.get(&location).send().await.ok()?;
        let body: serde_json::Value = res.json().await.ok()?;
        (body["job"]["status"] != "pending").then_some(body["job"].clone())
    })
    .await;
    assert_eq!(done["status"], "done", "{done}");
    let res = app
        .get(job["csv_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let codes: HashSet<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(codes.len(), 12_000);
    assert!(codes.iter().all(|c| c.starts_with("BIG") && c.len() == 13));
    assert_eq!(
        stock_counts(&app.db, &campaign).await,
        (12_000, 12_000, 12_500)
    );

    // A job that cannot be done fails, and says why.
    let (status, body) = post_codes(&app, &campaign, json!({"count": 10_001})).await;
    assert_eq!(status, 202);
    let url = body["job"]["status_url"].as_str().unwrap().to_string();
    let failed = eventually(Duration::from_secs(60), "the job fails", async || {
        let res = app.get(&url).send().await.ok()?;
        let body: serde_json::Value = res.json().await.ok()?;
        (body["job"]["status"] == "failed").then_some(body["job"].clone())
    })
    .await;
    assert_eq!(failed["error"]["code"], "not_enough_stock");
    let res = app
        .get(failed["csv_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "job_failed");
    assert_eq!(issued(&app, &campaign).await, 12_000, "nothing half made");
}

#[actix_web::test]
async fn bulk_code_errors() {
    let app = spawn_app().await;
    let campaign = app
        .create_campaign_id(json!({"name": "errors", "total_limit": 50, "status": "active"}))
        .await;
    for (body, code) in [
        (json!({"count": 0}), "invalid_count"),
        (json!({"count": 100_001}), "invalid_count"),
        (json!({"count": 1, "pattern": "##"}), "invalid_pattern"),
        (json!({"count": 1, "pattern": "######?"}), "invalid_pattern"),
        (json!({"count": 1, "charset": "ABC"}), "invalid_charset"),
        (
            json!({"count": 1, "prefix": "toolongprefix"}),
            "invalid_code_prefix",
        ),
        (
            json!({"count": 40, "pattern": "######", "charset": "0123456789"}),
            "code_space_too_small",
        ),
    ] {
        let (status, got) = post_codes(&app, &campaign, body.clone()).await;
        assert_eq!((status, error_code(&got)), (422, code), "{body}: {got}");
    }
    let (status, got) = post_codes(&app, &campaign, json!({"counts": 1})).await;
    assert_eq!((status, error_code(&got)), (400, "invalid_json"));
    let unknown = uuid::Uuid::new_v4();
    let (status, got) = post_codes(&app, &unknown.to_string(), json!({"count": 1})).await;
    assert_eq!((status, error_code(&got)), (404, "not_found"));
    let res = app
        .get(&format!("/api/v1/code-jobs/{unknown}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .get(&format!("/api/v1/code-jobs/{unknown}/codes.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    for req in [
        app.client
            .post(app.url(&format!("/api/v1/campaigns/{campaign}/codes")))
            .json(&json!({"count": 1})),
        app.client
            .post(app.url(&format!("/api/v1/campaigns/{campaign}/codes/import")))
            .body("ABCDEF12\n"),
    ] {
        let res = req.bearer_auth(&reader).send().await.unwrap();
        assert_eq!(res.status(), 403);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "insufficient_scope");
    }
    let res = app
        .patch(&format!("/api/v1/campaigns/{campaign}"))
        .json(&json!({"action": "end"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, got) = post_codes(&app, &campaign, json!({"count": 1})).await;
    assert_eq!((status, error_code(&got)), (409, "ended"));
    let (status, got) = import(&app, &campaign, "ABCDEF12\n").await;
    assert_eq!((status, error_code(&got)), (409, "ended"));
    assert_eq!(issued(&app, &campaign).await, 0);
}

#[actix_web::test]
async fn imports_are_all_or_nothing_with_a_report_per_line() {
    let app = spawn_app().await;
    let campaign = app
        .create_campaign_id(json!({"name": "import", "total_limit": 10, "status": "active"}))
        .await;
    let (status, body) = import(
        &app,
        &campaign,
        "code\nPOS-0001-AA\npos0002aa\n\nPOS0003AA,extra column\n",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["count"], 3);
    assert!(body.get("codes").is_none());
    assert_eq!(issued(&app, &campaign).await, 3);
    let (status, redeemed) = app.redeem("POS0002AA", json!({})).await;
    assert_eq!(status, 201, "{redeemed}");

    // Bad lines: every one reported, nothing imported.
    let (status, body) = import(
        &app,
        &campaign,
        "GOOD0004\nbad code!\nGOOD0004\nAB\nGOOD0005\n",
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "invalid_import"),
        "{body}"
    );
    assert_eq!(
        body["error"]["lines"],
        json!([
            {"line": 2, "value": "bad code!", "error": "invalid_code"},
            {"line": 3, "value": "GOOD0004", "error": "duplicate_in_file"},
            {"line": 4, "value": "AB", "error": "code_too_short"},
        ])
    );
    assert_eq!(body["error"]["line_count"], 3);
    assert_eq!(issued(&app, &campaign).await, 3);

    // A code the tenant already has (its own claimed or imported ones): the line is named.
    let (_, claimed) = app.claim(&campaign, "someone").await;
    let claimed_code = claimed["coupon"]["code"].as_str().unwrap().to_string();
    let csv = format!("NEW00001\nPOS0001AA\n{claimed_code}\nNEW00002\n");
    let (status, body) = import(&app, &campaign, csv).await;
    assert_eq!((status, error_code(&body)), (409, "codes_in_use"), "{body}");
    let lines: Vec<i64> = body["error"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3]);
    assert_eq!(body["error"]["lines"][0]["error"], "code_in_use");
    let new_rows: i64 = app
        .db_value("SELECT count(*) FROM coupons WHERE code LIKE 'NEW%'", &[])
        .await;
    assert_eq!(new_rows, 0, "nothing half imported");
    assert_eq!(issued(&app, &campaign).await, 4);

    // More than the limit leaves, or nothing at all.
    let csv: String = (0..7).map(|i| format!("MANY{i:04}\n")).collect();
    let (status, body) = import(&app, &campaign, csv).await;
    assert_eq!(
        (status, error_code(&body)),
        (409, "not_enough_stock"),
        "{body}"
    );
    let (status, body) = import(&app, &campaign, "code\n\n").await;
    assert_eq!((status, error_code(&body)), (422, "empty_import"));
    let (status, body) = import(&app, &campaign, vec![0xff, 0xfe, b'A']).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_import"));
    assert_eq!(issued(&app, &campaign).await, 4);
}
