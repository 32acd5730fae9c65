//! The consumer flow in headless Chromium (Debian `chromium` + `chromium-driver`), driven
//! over WebDriver by fantoccini: claim, see the coupon, watch the check code change, use it,
//! see 使用済み; a second window of the same person sees it used; the next device sees sold
//! out. Screenshots of each page, in Japanese and English, go to `test-artifacts/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{fresh_database, spawn_app_on, test_settings, tool};

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromedriver() -> Option<Driver> {
    let driver = tool("chromedriver")?;
    tool("chromium")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(Driver { child, url })
}

/// A fresh browser context: its own profile, so its own cookies (its own device).
async fn browser(driver: &Driver) -> Client {
    // Two TLS backends end up linked (ring via the app's HTTP client, aws-lc via
    // fantoccini's); WebDriver here is plain HTTP, but rustls wants one chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let profile = crate::helpers::scratch_dir("chromium");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=412,915", "--hide-scrollbars",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    ClientBuilder::rustls()
        .expect("TLS backend")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// Waits until the element's visible text contains `needle` (animations may hide it briefly).
async fn wait_text(client: &Client, css: &str, needle: &str) {
    let started = Instant::now();
    loop {
        let text = text_of(client, css).await;
        if text.contains(needle) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{css} never showed {needle:?}, last {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .text()
        .await
        .unwrap()
}

#[actix_web::test]
async fn claim_watch_the_code_use_and_see_it_used() {
    let Some(driver) = chromedriver().await else {
        return;
    };
    let db = fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        // The test clock: codes rotate every 2 s instead of 30.
        s.pages.code_step = Duration::from_secs(2);
        s
    })
    .await;
    let c = app
        .create_campaign(json!({
            "name": "春のコーヒーフェア", "total_limit": 1, "status": "active",
            "description": "期間中、全店でドリンクが300円引きになります。",
            "terms": "お一人様1回限り。他の割引との併用はできません。",
            "discount": {"kind": "amount_off_yen", "amount": 300}, "valid_for_seconds": 604800
        }))
        .await;
    let claim_url = c["claim_url"].as_str().unwrap().to_string();

    let phone = browser(&driver).await;
    phone.goto(&format!("{claim_url}?lang=en")).await.unwrap();
    shot(&phone, "claim_en").await;
    phone.goto(&format!("{claim_url}?lang=ja")).await.unwrap();
    assert_eq!(
        phone
            .find(Locator::Css("#claim-state"))
            .await
            .unwrap()
            .attr("data-state")
            .await
            .unwrap()
            .as_deref(),
        Some("open")
    );
    shot(&phone, "claim_ja").await;

    // 1. Claim anonymously.  2. See the coupon.
    phone
        .find(Locator::Css("#claim-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let first = text_of(&phone, "#check-code").await;
    let coupon_url = phone.current_url().await.unwrap().to_string();
    assert!(coupon_url.contains("/my/coupons/"), "{coupon_url}");
    assert_eq!(first.len(), 6, "a six-digit code: {first}");
    let clock = text_of(&phone, "#clock").await;
    assert!(
        clock.contains(':') && !clock.contains('-'),
        "the live clock runs: {clock}"
    );
    shot(&phone, "coupon_ja").await;

    // 3. The code changes when its step passes (2 s here).
    let started = Instant::now();
    loop {
        let now = text_of(&phone, "#check-code").await;
        if now != first {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the check code never rotated"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    phone.goto(&format!("{coupon_url}?lang=en")).await.unwrap();
    text_of(&phone, "#check-code").await;
    shot(&phone, "coupon_en").await;
    phone.goto(&format!("{coupon_url}?lang=ja")).await.unwrap();

    // 4. Press use and confirm.  5. See USED.
    phone
        .find(Locator::Css("#use-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    phone
        .wait()
        .for_element(Locator::Css("#confirm-use-button"))
        .await
        .unwrap();
    shot(&phone, "confirm_ja").await;
    phone
        .find(Locator::Css("#confirm-use-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&phone, "#used-stamp", "使用済み").await;
    // Let the stamp land before the picture.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shot(&phone, "used_ja").await;

    // A second window of the same person (same session cookie) sees it used.
    let cookie = phone.get_named_cookie("ecoupon_session").await.unwrap();
    let second = browser(&driver).await;
    second.goto(&app.url("/livez")).await.unwrap();
    second.add_cookie(cookie).await.unwrap();
    second.goto(&format!("{coupon_url}?lang=en")).await.unwrap();
    wait_text(&second, "#used-stamp", "USED").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    shot(&second, "used_en").await;

    // The next device, after the last coupon, sees sold out.
    let late = browser(&driver).await;
    late.goto(&format!("{claim_url}?lang=ja")).await.unwrap();
    let state = late
        .find(Locator::Css("#claim-state"))
        .await
        .unwrap()
        .attr("data-state")
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("sold_out"));
    shot(&late, "sold_out_ja").await;

    for client in [phone, second, late] {
        client.close().await.unwrap();
    }
}
