//! A real server restart under an open dashboard, in headless Chromium: the reconnect
//! banner shows while the server is gone, goes once it is back (a new process on the same
//! address and database), and the counts then include what happened meanwhile.

use std::time::Duration;

use serde_json::json;

use crate::console_live_pages::in_browser::{js, open_live, sign_in, text, wait_text};
use crate::helpers::{
    browser, chromedriver, claim_with, fresh_database, spawn_app_on, test_settings,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn the_banner_shows_while_the_server_restarts_and_goes_when_it_is_back() {
    let driver = chromedriver().await;
    let db = fresh_database().await;
    let port = free_port();
    let on_port = move |db: &crate::helpers::TestDatabase| {
        let mut s = test_settings(db);
        s.listen = ([127, 0, 0, 1], port).into();
        s
    };
    let first = spawn_app_on(db.clone(), on_port).await;
    let key = first.api_key.clone();
    let id = first
        .create_campaign_id(json!({"name": "再起動", "total_limit": 9, "status": "active"}))
        .await;
    assert_eq!(claim_with(&first, &key, &id, "before").await.0, 201);
    let manager = first.add_user("manager").await;
    let desk = browser(&driver).await;
    sign_in(&desk, &first, &manager).await;
    open_live(&desk, &first, "/merchant?lang=en").await;
    let issued = format!("tr[data-campaign-id=\"{id}\"] [data-field=issued]");
    assert_eq!(text(&desk, &issued).await, "1");
    js(&desk, "window.__notReloaded = true; return 1;").await;

    // SIGTERM's path: sockets are told to go, requests drain, the process ends.
    let stopping = std::time::Instant::now();
    first.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "an open dashboard must not hold up a graceful stop ({:?})",
        stopping.elapsed()
    );
    wait_text(
        &desk,
        "#live-banner",
        "Connection lost. Reconnecting…",
        Duration::from_secs(5),
    )
    .await;

    // A new process on the same address and database; a claim lands while the page is
    // still reconnecting (its backoff may not have fired yet).
    let second = spawn_app_on(db.clone(), on_port).await;
    assert_eq!(claim_with(&second, &key, &id, "after").await.0, 201);
    wait_text(&desk, "#live-banner", "", Duration::from_secs(20)).await;
    wait_text(&desk, &issued, "2", Duration::from_secs(2)).await;
    assert_eq!(
        js(&desk, "return window.__notReloaded === true;").await,
        json!(true),
        "reconnected without a reload"
    );
    desk.close().await.unwrap();
}
