//! What the webhook tests share: a real receiving HTTP server that checks signatures, the
//! verification a merchant's receiver does, and a server process that can be killed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::helpers::{eventually, scratch_dir, test_settings, TestApp, TestDatabase};

pub(crate) const ALL_EVENTS: [&str; 5] = [
    "coupon.claimed",
    "coupon.redeemed",
    "redemption.undone",
    "campaign.sold_out",
    "campaign.ended",
];

/// One request the receiver got, with what it made of the signature.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    pub(crate) status: u16,
    pub(crate) signature_ok: bool,
    pub(crate) body: serde_json::Value,
}

/// A real HTTP server: verifies each request's signature (Standard Webhooks, 5-minute
/// tolerance, as the README shows), answers 500 to the first `fail_first` requests and
/// 204 to the rest, and records everything.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) seen: Arc<Mutex<Vec<Received>>>,
    pub(crate) secret: Arc<Mutex<String>>,
    _server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub(crate) fn start(fail_first: usize) -> Receiver {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let secret: Arc<Mutex<String>> = Arc::default();
        let (s, k) = (seen.clone(), secret.clone());
        let server = actix_web::HttpServer::new(move || {
            let (seen, secret) = (s.clone(), k.clone());
            actix_web::App::new().default_service(actix_web::web::to(
                move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                    let (seen, secret) = (seen.clone(), secret.clone());
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        let id = header("webhook-id");
                        let signature_ok = verify(
                            &secret.lock().unwrap(),
                            &id,
                            &header("webhook-timestamp"),
                            &body,
                            &header("webhook-signature"),
                        );
                        let mut seen = seen.lock().unwrap();
                        let status = if seen.len() < fail_first { 500 } else { 204 };
                        seen.push(Received {
                            id,
                            status,
                            signature_ok,
                            body: serde_json::from_slice(&body).unwrap_or_default(),
                        });
                        actix_web::HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(status).unwrap(),
                        )
                        .finish()
                    }
                },
            ))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            seen,
            secret,
            _server: handle,
        }
    }

    pub(crate) fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Accepted deliveries by event type: the `data` of each, once per webhook-id.
    pub(crate) fn accepted(&self) -> HashMap<String, Vec<serde_json::Value>> {
        let mut ids = HashSet::new();
        let mut by_type: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
        for r in self.seen() {
            if r.status == 204 && ids.insert(r.id.clone()) {
                let kind = r.body["type"].as_str().unwrap_or_default().to_string();
                by_type
                    .entry(kind)
                    .or_default()
                    .push(r.body["data"].clone());
            }
        }
        by_type
    }
}

/// What a merchant's receiver does (README, "Verifying webhooks").
pub(crate) fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signatures: &str,
) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return false;
    }
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| B64.decode(k).ok())
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = B64.encode(mac.finalize().into_bytes());
    signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

pub(crate) fn loopback_allowed(db: &TestDatabase) -> ecoupon::config::Settings {
    let mut s = test_settings(db);
    s.webhooks.allow_http = true;
    s.webhooks.allow_loopback = true;
    s.webhooks.retry_base = Duration::from_millis(200);
    s.webhooks.poll = Duration::from_millis(100);
    s.webhooks.timeout = Duration::from_secs(2);
    s
}

/// The node that serves the API in the kill test sends nothing itself.
pub(crate) fn api_only(db: &TestDatabase) -> ecoupon::config::Settings {
    let mut s = loopback_allowed(db);
    s.webhooks.enabled = false;
    s.engine.lease_ttl = Duration::from_secs(2);
    s
}

pub(crate) async fn register(app: &TestApp, url: &str, events: &[&str]) -> serde_json::Value {
    let res = app
        .post("/api/v1/webhooks")
        .json(&json!({"url": url, "events": events, "description": "till"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

/// A server process of its own, so it can be killed with SIGKILL.
pub(crate) struct Node {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
}

impl Node {
    pub(crate) async fn start(db: &TestDatabase, client: &reqwest::Client) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ecoupon"))
            .args([
                "serve",
                "--no-demo",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(scratch_dir("webhook-node"))
            .env("DATABASE_URL", &db.url)
            .env("ECOUPON_ENGINE__LEASE_TTL", "2s")
            .env("ECOUPON_LOG__LEVEL", "error")
            .env("ECOUPON_WEBHOOKS__ALLOW_HTTP", "true")
            .env("ECOUPON_WEBHOOKS__ALLOW_LOOPBACK", "true")
            .env("ECOUPON_WEBHOOKS__RETRY_BASE", "200ms")
            .env("ECOUPON_WEBHOOKS__POLL", "100ms")
            .env("ECOUPON_WEBHOOKS__TIMEOUT", "1s")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let ready = format!("{base}/readyz");
        eventually(Duration::from_secs(30), "the node is ready", async || {
            let res = client.get(&ready).send().await;
            res.ok().filter(|r| r.status() == 200)
        })
        .await;
        Node { child, base }
    }

    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn claim_at(
    app: &TestApp,
    base: &str,
    campaign: &str,
    consumer: &str,
) -> Option<String> {
    let res = app
        .client
        .post(format!("{base}/api/v1/campaigns/{campaign}/claims"))
        .bearer_auth(&app.api_key)
        .json(&json!({ "consumer": consumer }))
        .send()
        .await
        .ok()?;
    if res.status() != 201 {
        return None;
    }
    let body: serde_json::Value = res.json().await.ok()?;
    body["coupon"]["id"].as_str().map(str::to_string)
}
