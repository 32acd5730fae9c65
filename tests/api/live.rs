//! The live dashboard socket (`/merchant/live`): what it sends, to whom, and what it
//! refuses, over a real WebSocket client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::console_helpers::{sign_in, PASSWORD};
use crate::helpers::{
    claim_with, csrf_of, fresh_database, location, page, post_form, spawn_app, spawn_app_on,
    test_settings, TestApp,
};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A console sign-in: the jar's `Cookie` header and a client that shares the jar.
pub(crate) async fn signed_in(app: &TestApp, email: &str) -> (String, reqwest::Client) {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(
            [(reqwest::header::ACCEPT, "text/html".parse().unwrap())]
                .into_iter()
                .collect(),
        )
        .build()
        .unwrap();
    let res = sign_in(app, &client, email, PASSWORD).await;
    assert_eq!(res.status(), 303, "sign-in of {email} succeeds");
    let url = app.address.parse().unwrap();
    let cookie = jar.cookies(&url).expect("a session cookie");
    (cookie.to_str().unwrap().to_string(), client)
}

pub(crate) async fn cookie_of(app: &TestApp, role: &str) -> String {
    let email = app.add_user(role).await;
    signed_in(app, &email).await.0
}

pub(crate) async fn try_open(
    app: &TestApp,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, WsError> {
    let url = app.address.replace("http://", "ws://") + "/merchant/live";
    let mut req = url.into_client_request().unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

pub(crate) async fn open(app: &TestApp, cookie: &str) -> Socket {
    try_open(app, Some(cookie), Some(&app.address))
        .await
        .expect("the socket opens")
}

fn refused_status(result: Result<Socket, WsError>) -> u16 {
    match result {
        Err(WsError::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, the socket opened"),
    }
}

/// The next JSON frame (pings are answered by the client library).
pub(crate) async fn next_json(ws: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).expect("JSON frame")),
            Ok(Message::Close(c)) => panic!("closed: {c:?}"),
            Ok(_) => continue,
            Err(e) => panic!("socket error: {e}"),
        }
    }
}

/// Frames until one satisfies `want` (returned with all seen before it), within `within`.
pub(crate) async fn until(
    ws: &mut Socket,
    within: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> (Value, Vec<Value>) {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_json(ws, left).await {
            Some(v) if want(&v) => return (v, seen),
            Some(v) => seen.push(v),
            None => panic!("no {what} within {within:?}; saw {seen:?}"),
        }
    }
}

/// The close frame's (code, reason), reading past anything before it.
pub(crate) async fn close_of(ws: &mut Socket) -> (CloseCode, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return (f.code, f.reason.to_string()),
            Ok(Some(Ok(Message::Close(None)))) => panic!("closed without a reason"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

pub(crate) async fn active_campaign(app: &TestApp, name: &str, limit: i64) -> String {
    app.create_campaign_id(json!({"name": name, "total_limit": limit, "status": "active"}))
        .await
}

#[actix_web::test]
async fn a_dashboard_gets_a_snapshot_then_each_claim_within_a_second() {
    let app = spawn_app().await;
    let id = active_campaign(&app, "live", 10).await;
    let cookie = cookie_of(&app, "manager").await;
    let mut ws = open(&app, &cookie).await;

    let snap = next_json(&mut ws, Duration::from_secs(5))
        .await
        .expect("a snapshot");
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let campaigns = snap["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1);
    let c = &campaigns[0];
    assert_eq!(c["id"], id.as_str());
    assert_eq!(c["name"], "live");
    assert_eq!(c["status"], "active");
    assert_eq!(
        (c["issued"].as_i64(), c["remaining"].as_i64()),
        (Some(0), Some(10))
    );
    assert_eq!(c["redeemed"], 0);

    for n in 1..=3i64 {
        let started = Instant::now();
        assert_eq!(app.claim(&id, &format!("c{n}")).await.0, 201);
        let (stats, _) = until(&mut ws, Duration::from_secs(1), "stats", |v| {
            v["type"] == "stats" && v["issued"] == n
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(stats["campaign_id"], id.as_str());
        assert_eq!(stats["remaining"], 10 - n);
        assert_eq!(stats["redeemed"], 0);
    }

    // The client may ask for a fresh snapshot.
    ws.send(Message::text(r#"{"type":"snapshot"}"#))
        .await
        .unwrap();
    let (snap, _) = until(&mut ws, Duration::from_secs(2), "snapshot", |v| {
        v["type"] == "snapshot"
    })
    .await;
    assert_eq!(snap["campaigns"][0]["issued"], 3);
}

#[actix_web::test]
async fn redemptions_and_status_changes_reach_the_dashboard() {
    let app = spawn_app().await;
    let id = active_campaign(&app, "feed", 5).await;
    let (status, body) = app.claim(&id, "someone").await;
    assert_eq!(status, 201, "{body}");
    let code = body["coupon"]["code"].as_str().unwrap().to_string();
    let mut ws = open(&app, &cookie_of(&app, "owner").await).await;
    until(&mut ws, Duration::from_secs(5), "snapshot", |v| {
        v["type"] == "snapshot"
    })
    .await;

    let (status, body) = app
        .redeem(&code, json!({"store": "Shibuya", "staff": "Tanaka"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (feed, seen) = until(&mut ws, Duration::from_secs(1), "redemption", |v| {
        v["type"] == "redemption"
    })
    .await;
    assert_eq!(feed["campaign_id"], id.as_str());
    assert_eq!(feed["store"], "Shibuya");
    assert_eq!(feed["staff"], "Tanaka");
    assert!(feed["at"].as_str().is_some(), "{feed}");
    let counted = |v: &Value| v["type"] == "stats" && v["redeemed"] == 1 && v["issued"] == 1;
    if !seen.iter().any(counted) {
        until(&mut ws, Duration::from_secs(1), "stats", counted).await;
    }

    let res = app
        .patch(&format!("/api/v1/campaigns/{id}"))
        .json(&json!({"action": "pause"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (change, _) = until(&mut ws, Duration::from_secs(1), "campaign", |v| {
        v["type"] == "campaign"
    })
    .await;
    assert_eq!(
        change,
        json!({"type": "campaign", "campaign_id": id, "status": "paused"})
    );
}

#[actix_web::test]
async fn a_socket_never_sees_another_tenants_events() {
    let db = fresh_database().await;
    // Two apps on one database: each makes its own tenant. Both tenants' sockets and
    // claims go to node `a`.
    let a = spawn_app_on(db.clone(), test_settings).await;
    let b = spawn_app_on(db.clone(), test_settings).await;
    let mine = active_campaign(&a, "mine", 100).await;
    let theirs = active_campaign(&b, "theirs", 100).await;
    let mut ws_a = open(&a, &cookie_of(&a, "owner").await).await;
    let email_b = b.add_user("owner").await;
    let (cookie_b, _) = signed_in(&a, &email_b).await;
    let mut ws_b = open(&a, &cookie_b).await;

    let (snap_a, _) = until(&mut ws_a, Duration::from_secs(5), "snapshot", |v| {
        v["type"] == "snapshot"
    })
    .await;
    let ids: Vec<&str> = snap_a["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);

    for i in 0..5 {
        assert_eq!(
            claim_with(&a, &b.api_key, &theirs, &format!("t{i}"))
                .await
                .0,
            201
        );
    }
    // Tenant B's socket hears its claims…
    until(&mut ws_b, Duration::from_secs(2), "B's stats", |v| {
        v["type"] == "stats" && v["campaign_id"] == theirs.as_str() && v["issued"] == 5
    })
    .await;
    // …and A's socket, once A's own claim arrives, has seen nothing of B's.
    assert_eq!(a.claim(&mine, "m").await.0, 201);
    let (_, before) = until(&mut ws_a, Duration::from_secs(2), "A's stats", |v| {
        v["type"] == "stats" && v["campaign_id"] == mine.as_str()
    })
    .await;
    let leaked: Vec<&Value> = before
        .iter()
        .filter(|v| v.to_string().contains(&theirs))
        .collect();
    assert!(leaked.is_empty(), "tenant A saw {leaked:?}");
}

#[actix_web::test]
async fn the_upgrade_needs_a_session_the_own_origin_and_a_dashboard_role() {
    let app = spawn_app().await;
    let cookie = cookie_of(&app, "owner").await;
    assert_eq!(
        refused_status(try_open(&app, None, Some(&app.address)).await),
        401
    );
    assert_eq!(
        refused_status(try_open(&app, Some("ecoupon_console=forged"), Some(&app.address)).await),
        401
    );
    assert_eq!(
        refused_status(try_open(&app, Some(&cookie), Some("https://evil.example")).await),
        403
    );
    assert_eq!(
        refused_status(try_open(&app, Some(&cookie), None).await),
        403
    );
    let staff = cookie_of(&app, "staff").await;
    assert_eq!(
        refused_status(try_open(&app, Some(&staff), Some(&app.address)).await),
        403
    );
    // A plain GET (no upgrade) is refused too, never a page.
    let res = reqwest::Client::new()
        .get(app.url("/merchant/live"))
        .header("cookie", &cookie)
        .header("origin", &app.address)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    open(&app, &cookie).await;
}

#[actix_web::test]
async fn bad_client_frames_close_the_socket_with_a_reason_and_the_server_stays_up() {
    let app = spawn_app().await;
    let cookie = cookie_of(&app, "admin").await;

    let mut ws = open(&app, &cookie).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, CloseCode::Unsupported);
    assert!(reason.contains("binary"), "{reason}");

    let mut ws = open(&app, &cookie).await;
    ws.send(Message::text("x".repeat(5000))).await.unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("too big"), "{reason}");

    let mut ws = open(&app, &cookie).await;
    ws.send(Message::text(r#"{"type":"launch_missiles"}"#))
        .await
        .unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, CloseCode::Unsupported);
    assert!(reason.contains("unknown message type"), "{reason}");

    let mut ws = open(&app, &cookie).await;
    for _ in 0..100 {
        if ws
            .send(Message::text(r#"{"type":"snapshot"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("too many"), "{reason}");

    assert_eq!(app.get("/livez").send().await.unwrap().status(), 200);
    let mut ws = open(&app, &cookie).await;
    let snap = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(snap["type"], "snapshot");
}

#[actix_web::test]
async fn signing_out_ends_the_socket_within_a_second() {
    let app = spawn_app().await;
    let email = app.add_user("owner").await;
    let (cookie, client) = signed_in(&app, &email).await;
    let mut ws = open(&app, &cookie).await;
    next_json(&mut ws, Duration::from_secs(5)).await.unwrap();

    let (status, html) = page(&client, &app.url("/merchant")).await;
    assert_eq!(status, 200);
    let res = post_form(&client, &app.url("/merchant/logout"), &csrf_of(&html)).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/merchant/login"));
    let started = Instant::now();
    let (code, reason) = close_of(&mut ws).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((code, reason.as_str()), (CloseCode::Policy, "signed out"));
}

#[actix_web::test]
async fn a_socket_on_node_a_sees_a_claim_made_on_node_b_within_a_second() {
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), test_settings).await;
    let b = spawn_app_on(db.clone(), test_settings).await;
    let id = active_campaign(&a, "two nodes", 50).await;
    let mut ws = open(&a, &cookie_of(&a, "owner").await).await;
    until(&mut ws, Duration::from_secs(5), "snapshot", |v| {
        v["type"] == "snapshot"
    })
    .await;

    for n in 1..=2i64 {
        let started = Instant::now();
        // Node B, tenant A's key: the same tenant through the other node.
        assert_eq!(
            claim_with(&b, &a.api_key, &id, &format!("b{n}")).await.0,
            201
        );
        let (stats, _) = until(&mut ws, Duration::from_secs(1), "a remote claim", |v| {
            v["type"] == "stats" && v["issued"] == n
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(stats["campaign_id"], id.as_str());
        assert_eq!(stats["remaining"], 50 - n);
    }
}

#[actix_web::test]
async fn a_disabled_user_loses_the_socket_within_a_second() {
    let app = spawn_app().await;
    let email = app.add_user("manager").await;
    let (cookie, _) = signed_in(&app, &email).await;
    let mut ws = open(&app, &cookie).await;
    next_json(&mut ws, Duration::from_secs(5)).await.unwrap();

    app.db
        .client()
        .await
        .execute(
            "UPDATE merchant_users SET disabled = true WHERE email = $1",
            &[&email],
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (code, reason) = close_of(&mut ws).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((code, reason.as_str()), (CloseCode::Policy, "signed out"));
}

#[actix_web::test]
async fn a_client_that_never_answers_pings_is_closed() {
    let app = spawn_app().await;
    let cookie = cookie_of(&app, "owner").await;
    let mut ws = open(&app, &cookie).await;
    // Not reading means not answering the server's pings either.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("ping"), "{reason}");
}
