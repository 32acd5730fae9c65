//! What a merchant sets through the API for its pages: colours (readable ones only), a logo
//! and campaign images (checked by content), and accepted sign-in providers.

use reqwest::header;
use serde_json::json;

use crate::helpers::{error_code, page, spawn_app, spawn_app_on, test_settings};

/// A real 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";

#[actix_web::test]
async fn images_are_checked_by_content_and_shown_on_the_claim_page() {
    let app = spawn_app().await;
    let c = app
        .create_campaign(json!({"name": "pic", "total_limit": 5, "status": "active"}))
        .await;
    let id = c["id"].as_str().unwrap();
    let put = |path: String, body: Vec<u8>, content_type: &'static str| {
        app.put(&path)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    // A script dressed as a PNG is refused whatever the header says.
    let res = put(
        format!("/api/v1/campaigns/{id}/image"),
        b"<svg onload=alert(1)>".to_vec(),
        "image/png",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_image");
    let mut huge = PNG.to_vec();
    huge.resize(2 * 1024 * 1024 + 10, 0);
    let res = put(format!("/api/v1/campaigns/{id}/image"), huge, "image/png")
        .await
        .unwrap();
    assert!(
        res.status() == 422 || res.status() == 413,
        "{}",
        res.status()
    );

    let res = put(
        format!("/api/v1/campaigns/{id}/image"),
        PNG.to_vec(),
        "application/octet-stream",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let image_url = res.json::<serde_json::Value>().await.unwrap()["image_url"]
        .as_str()
        .unwrap()
        .to_string();
    let res = put("/api/v1/tenant/logo".into(), PNG.to_vec(), "image/png")
        .await
        .unwrap();
    let logo_url = res.json::<serde_json::Value>().await.unwrap()["logo_url"]
        .as_str()
        .unwrap()
        .to_string();

    let res = app.client.get(app.url(&image_url)).send().await.unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);

    let slug = c["slug"].as_str().unwrap();
    let (_, html) = page(&app.client, &app.url(&format!("/c/{slug}"))).await;
    assert!(
        html.contains(&image_url) && html.contains(&logo_url),
        "{html}"
    );

    // Another tenant's campaign cannot be given an image.
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let res = other
        .put(&format!("/api/v1/campaigns/{id}/image"))
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[actix_web::test]
async fn colours_must_stay_readable() {
    let app = spawn_app().await;
    let theme_url = app.url(&format!("/t/{}/theme.css", app.tenant_id));
    // A new tenant's default orange is readable at 4.5:1 (white text on it, it on the page).
    let (_, css) = page(&app.client, &theme_url).await;
    assert!(css.contains("--brand:#c2410c"), "{css}");
    let patch = |body: serde_json::Value| app.patch("/api/v1/tenant").json(&body).send();
    // Pale yellow; the old default orange (4.3:1, large text only); an orange that white
    // text on reaches 4.7:1 but that as a link on the page background is only 4.2:1.
    for unreadable in ["#ffff66", "#d9480f", "#d0430c"] {
        for field in ["brand_color", "accent_color"] {
            let res = patch(json!({ field: unreadable })).await.unwrap();
            assert_eq!(res.status(), 422, "{field} {unreadable}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(error_code(&body), "unreadable_color", "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("4.5:1"), "{message}");
        }
    }
    let res = patch(json!({"brand_color": "pink"})).await.unwrap();
    assert_eq!(res.status(), 422);
    let res = patch(json!({"brand_color": "#0B6E4F", "accent_color": "#222222"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tenant"]["brand_color"], "#0b6e4f");
    let (_, css) = page(&app.client, &theme_url).await;
    assert!(
        css.contains("--brand:#0b6e4f") && css.contains("--accent:#222222"),
        "{css}"
    );
    let res = patch(json!({"signin_providers": ["myspace"]}))
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "unknown_provider");
}
