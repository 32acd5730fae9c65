//! SQL injection: every statement is parameterised (`src/store/`), so text that would
//! break out of a quoted literal is stored and compared as plain text.

use serde_json::json;

use crate::helpers::{error_code, spawn_app};

const NAME: &str = "x'); DROP TABLE coupons; --";
const CONSUMER: &str = "alice' OR '1'='1'; DELETE FROM coupons; --";

#[actix_web::test]
async fn quotes_and_sql_in_input_are_stored_verbatim_and_run_nothing() {
    let app = spawn_app().await;
    let campaign = app
        .create_campaign(json!({"name": NAME, "total_limit": 5, "status": "active"}))
        .await;
    assert_eq!(campaign["name"], NAME);
    let id = campaign["id"].as_str().unwrap();

    let (status, body) = app.claim(id, CONSUMER).await;
    assert_eq!(status, 201, "{body}");
    let code = body["coupon"]["code"].as_str().unwrap().to_owned();
    // The same consumer again is the same consumer (no `OR '1'='1'` matching everyone),
    // and a different one is not caught by it.
    let (status, body) = app.claim(id, CONSUMER).await;
    assert_eq!((status, error_code(&body)), (409, "consumer_limit_reached"));
    let (status, body) = app.claim(id, "bob").await;
    assert_eq!(status, 201, "{body}");

    let db = app.db.client().await;
    let stored: String = db
        .query_one(
            "SELECT consumer FROM coupons WHERE code = $1",
            &[&code.as_str()],
        )
        .await
        .unwrap()
        .get(0);
    // Stored in the merchant's namespace, otherwise verbatim.
    assert_eq!(stored, format!("api:{CONSUMER}"));
    let coupons: i64 = db
        .query_one("SELECT count(*) FROM coupons", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(coupons, 2, "the coupons table is intact");
    let name: String = db
        .query_one(
            "SELECT name FROM campaigns WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, NAME);

    // Codes and ids in the path: refused or not found, never a database error.
    for path in [
        "/api/v1/coupons/'%20OR%201=1%20--",
        "/api/v1/coupons/A'B",
        "/api/v1/campaigns/1'%20OR%20'1'='1",
    ] {
        let res = app.get(path).send().await.unwrap();
        let status = res.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    let (status, body) = app.redeem("'; DELETE FROM coupons; --", json!({})).await;
    assert!((400..500).contains(&status), "{status} {body}");
    let coupons: i64 = db
        .query_one("SELECT count(*) FROM coupons", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(coupons, 2);
}
