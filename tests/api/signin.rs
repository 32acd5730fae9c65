//! Consumer sign-in against a real OpenID Connect provider (see `signin_support`): the three
//! providers end to end, tampered and replayed callbacks, a merchant's provider limit, and a
//! signed-in consumer's claim.

use reqwest::{redirect::Policy, Client};

use crate::helpers::{csrf_of, html_client, location, page, post_form};
use crate::signin_support::*;

#[actix_web::test]
async fn google_line_and_apple_sign_in_end_to_end() {
    let h = harness().await;
    let app = &h.app;

    // The sign-in page lists every enabled provider, keeping return_to.
    let (status, html) = page(
        &html_client(None),
        &app.url("/auth/signin?return_to=/c/spring-sale"),
    )
    .await;
    assert_eq!(status, 200);
    let html = unescape(&html);
    for p in ["line", "google", "apple"] {
        assert!(
            html.contains(&format!("/auth/{p}/start?return_to=%2Fc%2Fspring-sale")),
            "{html}"
        );
    }

    // Google-like: RS256, client_secret_basic, query callback.
    let b = html_client(None);
    let cb = through_provider(&b, app, "google", "alice").await;
    assert!(matches!(cb, Callback::Get(_)));
    assert_eq!(cb.param("iss").as_deref(), Some(h.issuer.as_str()));
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:google:alice"
    );

    // LINE-like: HS256 ID token signed with the channel secret.
    let b = html_client(None);
    let cb = through_provider(&b, app, "line", "U4af4980629").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:line:U4af4980629"
    );

    // Apple-like: form_post, a cross-site POST that carries no cookie at all; the token
    // request authenticates with the ES256 JWT we mint (the provider verifies it).
    let b = html_client(None);
    let cb = through_provider(&b, app, "apple", "001234.abcd").await;
    assert!(matches!(cb, Callback::Post(..)), "{cb:?}");
    let cookieless = Client::builder().redirect(Policy::none()).build().unwrap();
    let answer = cb.send(&cookieless).await;
    assert_eq!(complete(&b, app, answer).await, "oidc:apple:001234.abcd");

    // Signing in again is the same consumer; only (provider, subject) is kept.
    let b = html_client(None);
    let cb = through_provider(&b, app, "google", "alice").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:google:alice"
    );
    let db = app.db.client().await;
    let rows = db
        .query(
            "SELECT provider, subject FROM consumers ORDER BY provider",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            ("apple", "001234.abcd"),
            ("google", "alice"),
            ("line", "U4af4980629")
        ]
        .map(|(p, s)| (p.to_string(), s.to_string()))
    );
    let columns: Vec<String> = db
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'consumers' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        columns,
        ["id", "provider", "subject", "created_at", "last_seen_at"]
    );
}

#[actix_web::test]
async fn tampered_id_tokens_are_refused() {
    let h = harness().await;
    let app = &h.app;
    for (provider, code, why) in [
        ("bad-aud", "signin_token_invalid", "(audience)"),
        ("bad-iss", "signin_token_invalid", "(issuer)"),
        ("bad-sig", "signin_token_invalid", "(signature)"),
        ("bad-nonce", "signin_nonce_mismatch", "(nonce)"),
    ] {
        let b = html_client(None);
        let cb = through_provider(&b, app, provider, "mallory").await;
        let body = assert_refused(cb.send(&b).await, 400, code).await;
        assert!(body.contains(why), "{provider}: {body}");
        let me = whoami(&b, app).await;
        assert_eq!(me["signed_in"], false, "{provider}: {me}");
    }
    let consumers: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM consumers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(consumers, 0);
}

#[actix_web::test]
async fn bad_and_replayed_callbacks_are_refused() {
    let h = harness().await;
    let app = &h.app;
    let b = html_client(None);

    // Unknown provider, and a return_to that leaves the site.
    assert_refused(
        b.get(app.url("/auth/nope/start")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    for bad in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let url = format!(
            "{}/auth/google/start?return_to={}",
            app.address,
            urlencode(bad)
        );
        assert_refused(b.get(url).send().await.unwrap(), 422, "invalid_return_to").await;
    }
    let cb_url = |q: &str| app.url(&format!("/auth/google/callback?{q}"));

    // A state we never issued, or none.
    assert_refused(
        b.get(cb_url("state=forged&code=x")).send().await.unwrap(),
        400,
        "signin_state_invalid",
    )
    .await;
    assert_refused(
        b.get(cb_url("code=x")).send().await.unwrap(),
        400,
        "signin_state_invalid",
    )
    .await;
    let res = b
        .post(app.url("/auth/apple/callback"))
        .form(&[("state", "forged"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_refused(res, 400, "signin_state_invalid").await;

    // The provider says no.
    let auth = start(&b, app, "google").await;
    let state = auth
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let denied = cb_url(&format!("error=access_denied&state={}", urlencode(&state)));
    assert_refused(b.get(&denied).send().await.unwrap(), 400, "signin_denied").await;
    // …and that state is spent.
    assert_refused(b.get(&denied).send().await.unwrap(), 400, "signin_replayed").await;

    // A real sign-in's state used at another provider's callback.
    let cb = through_provider(&b, app, "google", "carol").await;
    let Callback::Get(url) = &cb else { panic!() };
    let elsewhere = app.url(&format!("/auth/line/callback?{}", url.query().unwrap()));
    assert_refused(
        b.get(elsewhere).send().await.unwrap(),
        400,
        "signin_state_invalid",
    )
    .await;

    // A callback naming another issuer (RFC 9207 mix-up defence).
    assert_refused(
        cb.with("iss", "https://evil.example").send(&b).await,
        400,
        "signin_issuer_mismatch",
    )
    .await;

    // Replays: the same callback twice; then its (spent) code with a fresh state.
    let cb = through_provider(&b, app, "google", "carol").await;
    let first = cb.send(&b).await;
    assert_eq!(first.status(), 303);
    assert_refused(cb.send(&b).await, 400, "signin_replayed").await;
    let fresh = start(&b, app, "google").await;
    let fresh_state = fresh
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let old_code_new_state = cb.with("state", &fresh_state);
    assert_refused(
        old_code_new_state.send(&b).await,
        400,
        "signin_code_rejected",
    )
    .await;

    // The completion link only works in the browser that started, and only once.
    let next = location(&first).to_string();
    let other_browser = html_client(None);
    assert_refused(
        other_browser.get(app.url(&next)).send().await.unwrap(),
        400,
        "signin_browser_mismatch",
    )
    .await;
    assert_refused(
        b.get(app.url(&next)).send().await.unwrap(),
        400,
        "signin_link_invalid",
    )
    .await;
    assert_refused(
        b.get(app.url("/auth/complete?t=nope"))
            .send()
            .await
            .unwrap(),
        400,
        "signin_link_invalid",
    )
    .await;

    let me = whoami(&b, app).await;
    assert_eq!(me["signed_in"], false, "{me}");
}

#[actix_web::test]
async fn a_merchant_can_limit_the_providers_its_consumers_use() {
    let h = harness().await;
    let app = &h.app;
    let res = app
        .patch("/api/v1/tenant")
        .json(&serde_json::json!({"signin_providers": ["google"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let c = app
        .create_campaign(serde_json::json!({"name": "members", "total_limit": 5, "status": "active", "signin": "required"}))
        .await;
    let slug = c["slug"].as_str().unwrap();
    let (_, html) = page(
        &html_client(None),
        &app.url(&format!("/auth/signin?return_to=/c/{slug}")),
    )
    .await;
    assert!(
        html.contains("/auth/google/start") && !html.contains("/auth/line/start"),
        "{html}"
    );
    let res = html_client(None)
        .get(app.url(&format!("/auth/line/start?return_to=/c/{slug}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Signed in with LINE through a return_to that is no claim page of this merchant: the
    // claim page still asks for an accepted sign-in, and a claim posted anyway is sent to
    // sign in, with no coupon made.
    let b = html_client(None);
    let cb = through_provider(&b, app, "line", "U-bypass").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:line:U-bypass"
    );
    let (_, html) = page(&b, &app.url(&format!("/c/{slug}"))).await;
    assert!(!html.contains("id=\"claim-form\""), "{html}");
    assert!(html.contains("id=\"signin-button\""), "{html}");
    let me = whoami(&b, app).await;
    let csrf = {
        // The session's token, from a page that has a form: the wallet's sign-out.
        let (_, wallet) = page(&b, &app.url("/my")).await;
        csrf_of(&wallet)
    };
    let res = post_form(&b, &app.url(&format!("/c/{slug}/claim")), &csrf).await;
    assert_eq!(res.status(), 303, "{me}");
    assert_eq!(location(&res), format!("/auth/signin?return_to=/c/{slug}"));
    let coupons: i64 = app.db_value("SELECT count(*) FROM coupons", &[]).await;
    assert_eq!(coupons, 0);
    // With the accepted provider the claim goes through.
    // (The provider remembers this browser's login, so the subject is the earlier one.)
    let cb = through_provider(&b, app, "google", "dave").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:google:U-bypass"
    );
    let (_, html) = page(&b, &app.url(&format!("/c/{slug}"))).await;
    let res = post_form(&b, &app.url(&format!("/c/{slug}/claim")), &csrf_of(&html)).await;
    assert!(
        location(&res).starts_with("/my/coupons/"),
        "{}",
        location(&res)
    );
}

#[actix_web::test]
async fn a_signed_in_consumer_claims_a_sign_in_campaign_and_finds_it_in_the_wallet() {
    let h = harness().await;
    let app = &h.app;
    let c = app
        .create_campaign(serde_json::json!({"name": "members only", "total_limit": 5, "status": "active", "signin": "required"}))
        .await;
    let slug = c["slug"].as_str().unwrap();
    let b = html_client(None);
    let cb = through_provider(&b, app, "google", "carol").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:google:carol"
    );

    let (_, html) = page(&b, &app.url(&format!("/c/{slug}"))).await;
    assert!(
        html.contains("id=\"claim-form\""),
        "signed in, the claim form shows: {html}"
    );
    let res = post_form(&b, &app.url(&format!("/c/{slug}/claim")), &csrf_of(&html)).await;
    assert_eq!(res.status(), 303);
    let coupon = location(&res).to_string();
    assert!(coupon.starts_with("/my/coupons/"), "{coupon}");
    let db = app.db.client().await;
    let consumer: String = db
        .query_one("SELECT consumer FROM coupons", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(consumer, "oidc:google:carol");
    let (_, wallet) = page(&b, &app.url("/my")).await;
    assert!(wallet.contains(&coupon));

    // Sign-out (a form on the wallet): the session is gone, the coupon stays with the
    // signed-in consumer, and signing in again finds it.
    assert!(wallet.contains("id=\"signout-button\""), "{wallet}");
    let res = post_form(&b, &app.url("/auth/signout"), &csrf_of(&wallet)).await;
    assert_eq!(res.status(), 303);
    let me = whoami(&b, app).await;
    assert_eq!(me["signed_in"], false, "{me}");
    let (_, wallet) = page(&b, &app.url("/my")).await;
    assert!(!wallet.contains(&coupon));
    let cb = through_provider(&b, app, "google", "carol").await;
    complete(&b, app, cb.send(&b).await).await;
    let (_, wallet) = page(&b, &app.url("/my")).await;
    assert!(wallet.contains(&coupon));
}
