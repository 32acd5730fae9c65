//! The API's consumer references are the merchant's own: a claim naming a device or a
//! signed-in person (`device:…`, `oidc:…`) neither reaches that person's wallet nor uses up
//! their limit, and the reference is shown back as it was given.

use serde_json::json;

use crate::helpers::{csrf_of, html_client, location, page, post_form, spawn_app};

#[actix_web::test]
async fn an_api_claim_naming_a_device_does_not_reach_its_wallet_or_limit() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(json!({"name": "Spring", "total_limit": 10, "status": "active"}))
        .await;
    let (id, slug) = (c["id"].as_str().unwrap(), c["slug"].as_str().unwrap());

    // A real person's phone: its device identity, as the consumer pages know it.
    let phone = html_client(Some("ja"));
    let (status, html) = page(&phone, &app.url(&format!("/c/{slug}"))).await;
    assert_eq!(status, 200);
    let me: serde_json::Value = phone
        .get(app.url("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = me["consumer"].as_str().unwrap().to_string();
    assert!(device.starts_with("device:"), "{me}");

    // The merchant claims "as" that device, and as a signed-in person.
    for consumer in [device.as_str(), "oidc:google:1234567890"] {
        let (status, body) = app.claim(id, consumer).await;
        assert_eq!(status, 201, "{body}");
    }
    // Its own reference comes back as given, and finds the coupon.
    let res = app
        .get(&format!("/api/v1/campaigns/{id}/coupons"))
        .query(&[("consumer", device.as_str())])
        .send()
        .await
        .unwrap();
    let mine: serde_json::Value = res.json().await.unwrap();
    assert_eq!(mine["coupons"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["coupons"][0]["consumer"], device.as_str());
    let stored: i64 = app
        .db_value(
            "SELECT count(*) FROM coupons WHERE consumer = $1 OR consumer LIKE 'oidc:%'",
            &[&device],
        )
        .await;
    assert_eq!(stored, 0, "no coupon is stored under the person's identity");

    // The person's wallet is empty, and their own claim (limit 1) still succeeds.
    let (_, wallet) = page(&phone, &app.url("/my")).await;
    assert!(!wallet.contains("class=\"coupon-link\""), "{wallet}");
    let res = post_form(
        &phone,
        &app.url(&format!("/c/{slug}/claim")),
        &csrf_of(&html),
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/my/coupons/"));
    let (_, wallet) = page(&phone, &app.url("/my")).await;
    assert_eq!(
        wallet.matches("class=\"coupon-link\"").count(),
        1,
        "{wallet}"
    );
}
