//! Webhooks: the endpoints API and its errors, the outbox written with the change, signed
//! deliveries to a real HTTP receiver that fails the first ones, and nothing lost across a
//! server killed with SIGKILL and started again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::helpers::{
    error_code, eventually, fresh_database, key_with_scopes, scratch_dir, spawn_app, spawn_app_on,
    test_settings, OpenApiCheck, TestApp, TestDatabase,
};

const ALL_EVENTS: [&str; 5] = [
    "coupon.claimed",
    "coupon.redeemed",
    "redemption.undone",
    "campaign.sold_out",
    "campaign.ended",
];

/// One request the receiver got, with what it made of the signature.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    status: u16,
    signature_ok: bool,
    body: serde_json::Value,
}

/// A real HTTP server: verifies each request's signature (Standard Webhooks, 5-minute
/// tolerance, as the README shows), answers 500 to the first `fail_first` requests and
/// 204 to the rest, and records everything.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    secret: Arc<Mutex<String>>,
    _server: actix_web::dev::ServerHandle,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
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

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Accepted deliveries by event type: the `data` of each, once per webhook-id.
    fn accepted(&self) -> HashMap<String, Vec<serde_json::Value>> {
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
fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
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

fn loopback_allowed(db: &TestDatabase) -> ecoupon::config::Settings {
    let mut s = test_settings(db);
    s.webhooks.allow_http = true;
    s.webhooks.allow_loopback = true;
    s.webhooks.retry_base = Duration::from_millis(200);
    s.webhooks.poll = Duration::from_millis(100);
    s.webhooks.timeout = Duration::from_secs(2);
    s
}

/// The node that serves the API in the kill test sends nothing itself.
fn api_only(db: &TestDatabase) -> ecoupon::config::Settings {
    let mut s = loopback_allowed(db);
    s.webhooks.enabled = false;
    s.engine.lease_ttl = Duration::from_secs(2);
    s
}

async fn register(app: &TestApp, url: &str, events: &[&str]) -> serde_json::Value {
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
struct Node {
    child: std::process::Child,
    base: String,
}

impl Node {
    async fn start(db: &TestDatabase, client: &reqwest::Client) -> Node {
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

    fn kill(&mut self) {
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

async fn claim_at(app: &TestApp, base: &str, campaign: &str, consumer: &str) -> Option<String> {
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

#[actix_web::test]
async fn signed_events_arrive_after_failures_and_a_kill_9_loses_none() {
    let db = fresh_database().await;
    let api = spawn_app_on(db.clone(), api_only).await;
    let receiver = Receiver::start(3);
    let created = register(&api, &receiver.url, &ALL_EVENTS).await;
    *receiver.secret.lock().unwrap() = created["secret"].as_str().unwrap().to_string();
    let endpoint = created["id"].as_str().unwrap().to_string();

    let mut node = Node::start(&db, &api.client).await;
    let campaign = api
        .create_campaign_id(json!({"name": "hooks", "total_limit": 400, "status": "active"}))
        .await;

    // Claims pour into the node; it is killed while they are in flight.
    let (a, base, c) = (api.client.clone(), node.base.clone(), campaign.clone());
    let key = api.api_key.clone();
    // Counted as the answers arrive: the kill must come after the client holds acks, not
    // merely after rows exist (on a loaded machine answers trail the commits).
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = answered.clone();
    let load = actix_web::rt::spawn(async move {
        futures_util::stream::iter(0..300usize)
            .map(|i| {
                let (a, base, c, key) = (a.clone(), base.clone(), c.clone(), key.clone());
                let counter = counter.clone();
                async move {
                    let res = a
                        .post(format!("{base}/api/v1/campaigns/{c}/claims"))
                        .bearer_auth(&key)
                        .json(&json!({ "consumer": format!("k-{i}") }))
                        .send()
                        .await
                        .ok()?;
                    if res.status() != 201 {
                        return None;
                    }
                    let body: serde_json::Value = res.json().await.ok()?;
                    let id = body["coupon"]["id"].as_str().map(str::to_string);
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    id
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
    });
    eventually(
        Duration::from_secs(60),
        "the node has claimed and delivered some",
        async || {
            let acked = answered.load(std::sync::atomic::Ordering::SeqCst);
            (acked >= 100 && receiver.accepted().contains_key("coupon.claimed")).then_some(())
        },
    )
    .await;
    node.kill();
    let mut acked: Vec<String> = load.await.unwrap().into_iter().flatten().collect();
    assert!(
        acked.len() >= 100,
        "claims were acknowledged before the kill"
    );
    let pending: i64 = api
        .db_value(
            "SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL",
            &[],
        )
        .await;
    assert!(pending > 0, "the kill left deliveries to be made");

    // Started again: what the dead node committed is delivered, and the rest of the sale.
    let node = Node::start(&db, &api.client).await;
    let coupon = claim_at(&api, &node.base, &campaign, "redeemer")
        .await
        .unwrap();
    acked.push(coupon.clone());
    let code: String = api
        .db_value(
            "SELECT code FROM coupons WHERE id = $1::text::uuid",
            &[&coupon],
        )
        .await;
    let (status, redeemed) = api.redeem(&code, json!({"store": "Shibuya"})).await;
    assert_eq!(status, 201, "{redeemed}");
    let redemption = redeemed["redemption"]["id"].as_str().unwrap().to_string();
    let res = api
        .delete(&format!("/api/v1/redemptions/{redemption}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    // Sell out the rest (the dead node's unused stock comes back once reaped), then end
    // the campaign.
    let mut late = 0;
    eventually(
        Duration::from_secs(60),
        "the campaign sells out",
        async || {
            let issued: i64 = api
                .db_value("SELECT count(*) FROM coupons WHERE won", &[])
                .await;
            for _ in issued..400 {
                late += 1;
                if let Some(id) =
                    claim_at(&api, &node.base, &campaign, &format!("late-{late}")).await
                {
                    acked.push(id);
                }
            }
            (issued == 400).then_some(())
        },
    )
    .await;
    let res = api
        .patch(&format!("/api/v1/campaigns/{campaign}"))
        .json(&json!({"action": "end"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let every_coupon: HashSet<String> = acked.iter().cloned().collect();
    let accepted = eventually(
        Duration::from_secs(90),
        "every event is delivered",
        async || {
            let accepted = receiver.accepted();
            let claimed: HashSet<String> = accepted
                .get("coupon.claimed")?
                .iter()
                .map(|d| d["coupon_id"].as_str().unwrap().to_string())
                .collect();
            let done = every_coupon.is_subset(&claimed)
                && accepted.contains_key("campaign.sold_out")
                && accepted.contains_key("campaign.ended")
                && accepted.contains_key("redemption.undone");
            done.then_some(accepted)
        },
    )
    .await;
    let seen = receiver.seen();
    assert!(
        seen.iter().all(|r| r.signature_ok),
        "every request is signed with the endpoint's secret"
    );
    // The first three were refused and sent again under the same webhook-id.
    for refused in seen.iter().take(3) {
        assert_eq!(refused.status, 500);
        assert!(
            seen.iter().any(|r| r.id == refused.id && r.status == 204),
            "refused delivery {} was retried until accepted",
            refused.id
        );
    }
    let claimed_events = &accepted["coupon.claimed"];
    assert_eq!(claimed_events.len(), 400, "one event per issued coupon");
    // The merchant's own reference comes back as given, not as stored (`api:<ref>`).
    assert!(
        claimed_events.iter().all(|e| e["consumer"]
            .as_str()
            .is_some_and(|c| !c.starts_with("api:"))),
        "{:?}",
        claimed_events.first()
    );
    assert_eq!(accepted["campaign.sold_out"].len(), 1, "sold out once");
    assert_eq!(accepted["campaign.sold_out"][0]["total_limit"], 400);
    assert_eq!(accepted["coupon.redeemed"][0]["code"], code.as_str());
    assert_eq!(accepted["coupon.redeemed"][0]["store"], "Shibuya");
    assert_eq!(
        accepted["redemption.undone"][0]["redemption_id"],
        redemption.as_str()
    );
    assert_eq!(
        accepted["campaign.ended"][0]["campaign_id"],
        campaign.as_str()
    );

    // The endpoint's log shows each delivery and the retries.
    let res = api
        .get(&format!("/api/v1/webhooks/{endpoint}/deliveries?limit=200"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log: serde_json::Value = res.json().await.unwrap();
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 200);
    assert!(log["next_cursor"].is_string());
    let retried: i64 = api
        .db_value(
            "SELECT count(*) FROM webhook_deliveries WHERE attempts >= 2 AND delivered_at IS NOT NULL",
            &[],
        )
        .await;
    assert!(retried >= 1, "the refused deliveries were retried");
    let attempts: i64 = api
        .db_value(
            "SELECT count(*) FROM webhook_attempts WHERE status = 500",
            &[],
        )
        .await;
    assert_eq!(attempts, 3, "each refusal is in the log");
    let next = log["next_cursor"].as_str().unwrap();
    let res = api
        .get(&format!(
            "/api/v1/webhooks/{endpoint}/deliveries?limit=200&cursor={next}"
        ))
        .send()
        .await
        .unwrap();
    let page: serde_json::Value = res.json().await.unwrap();
    let first: HashSet<&str> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| !first.contains(d["id"].as_str().unwrap())));
    // The sender keeps the outbox-lag gauge current (0 once everything is delivered).
    let metrics_url = format!("{}/metrics", node.base);
    eventually(
        Duration::from_secs(10),
        "the lag gauge reads 0",
        async || {
            let text = api
                .client
                .get(&metrics_url)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.lines()
                .any(|l| l == "ecoupon_outbox_lag_seconds{kind=\"webhook\"} 0")
                .then_some(())
        },
    )
    .await;
    drop(node);
}

#[actix_web::test]
async fn only_subscribed_events_are_queued_in_the_change_itself() {
    let app = spawn_app_on(fresh_database().await, |db| {
        let mut s = loopback_allowed(db);
        s.webhooks.enabled = false;
        s
    })
    .await;
    let campaign = app
        .create_campaign_id(json!({"name": "quiet", "total_limit": 10, "status": "active"}))
        .await;
    // No endpoint: a claim writes no outbox row.
    assert_eq!(app.claim(&campaign, "a").await.0, 201);
    let queued = async || -> i64 {
        app.db_value("SELECT count(*) FROM webhook_deliveries", &[])
            .await
    };
    assert_eq!(queued().await, 0);
    // Subscribed to redemptions only: claims still write none; a redemption writes one.
    register(&app, "http://127.0.0.1:9/hooks", &["coupon.redeemed"]).await;
    let (_, claimed) = app.claim(&campaign, "b").await;
    assert_eq!(queued().await, 0);
    let code = claimed["coupon"]["code"].as_str().unwrap();
    assert_eq!(app.redeem(code, json!({})).await.0, 201);
    assert_eq!(queued().await, 1);
    // Committed with the claim batch: every won coupon of a subscribed tenant has its row.
    register(&app, "http://127.0.0.1:9/other", &["coupon.claimed"]).await;
    for i in 0..5 {
        assert_eq!(app.claim(&campaign, &format!("c-{i}")).await.0, 201);
    }
    let rows: i64 = app
        .db_value(
            "SELECT count(*) FROM webhook_deliveries WHERE event_type = 'coupon.claimed'",
            &[],
        )
        .await;
    assert_eq!(rows, 5);
}

#[actix_web::test]
async fn the_endpoints_api_and_its_errors() {
    let app = spawn_app().await;
    let post = |body: serde_json::Value| {
        let req = app.post("/api/v1/webhooks").json(&body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (
                status,
                res.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    // Only public https destinations by default.
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.0.0.8/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
        "https://user:pw@hooks.example.com/x",
        "not a url",
    ] {
        let (status, body) = post(json!({"url": url, "events": ["coupon.claimed"]})).await;
        assert_eq!(
            (status, error_code(&body)),
            (422, "invalid_webhook_url"),
            "{url}: {body}"
        );
    }
    let (status, body) =
        post(json!({"url": "https://8.8.8.8/x", "events": ["coupon.exploded"]})).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_webhook_events"));
    let (status, body) = post(json!({"url": "https://8.8.8.8/x", "events": []})).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_webhook_events"));
    let (status, body) = post(json!({"url": "https://8.8.8.8/x", "events": ["coupon.claimed"], "description": "x".repeat(201)})).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_description"));
    let (status, body) = post(json!({"url": "https://8.8.8.8/x"})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_json"), "{body}");

    // Created: the secret is shown this once.
    let (status, created) = post(
        json!({"url": "https://8.8.8.8/hooks", "events": ["coupon.claimed", "campaign.ended"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        created["events"],
        json!(["coupon.claimed", "campaign.ended"])
    );
    let id = created["id"].as_str().unwrap();
    let res = app.get("/api/v1/webhooks").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let list: serde_json::Value = res.json().await.unwrap();
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(list["webhooks"][0].get("secret").is_none());
    let res = app
        .get(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let shown: serde_json::Value = res.json().await.unwrap();
    assert_eq!(shown["url"], "https://8.8.8.8/hooks");
    assert!(shown.get("secret").is_none());
    let res = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log: serde_json::Value = res.json().await.unwrap();
    assert_eq!(log, json!({"deliveries": [], "next_cursor": null}));
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("cursor=zzz", "invalid_cursor"),
    ] {
        let res = app
            .get(&format!("/api/v1/webhooks/{id}/deliveries?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), code);
    }

    // Another tenant's key, or a key without campaigns:write, gets nowhere.
    let other = spawn_app_on(app.db.clone(), test_settings).await;
    let res = other
        .get(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = other
        .delete(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    for req in [
        app.client.get(app.url("/api/v1/webhooks")),
        app.client
            .post(app.url("/api/v1/webhooks"))
            .json(&json!({"url": "https://8.8.8.8/", "events": ["coupon.claimed"]})),
        app.client.get(app.url(&format!("/api/v1/webhooks/{id}"))),
        app.client
            .delete(app.url(&format!("/api/v1/webhooks/{id}"))),
        app.client
            .get(app.url(&format!("/api/v1/webhooks/{id}/deliveries"))),
    ] {
        let res = req.bearer_auth(&reader).send().await.unwrap();
        assert_eq!(res.status(), 403);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "insufficient_scope");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("campaigns:write"));
    }
    let res = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // At most 20 endpoints.
    for _ in 1..20 {
        assert_eq!(
            post(json!({"url": "https://8.8.8.8/more", "events": ["coupon.claimed"]}))
                .await
                .0,
            201
        );
    }
    let (status, body) =
        post(json!({"url": "https://8.8.8.8/more", "events": ["coupon.claimed"]})).await;
    assert_eq!((status, error_code(&body)), (409, "too_many_webhooks"));

    // Deleted, it is gone, with its log.
    let res = app
        .delete(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for path in [
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/deliveries"),
    ] {
        let res = app.get(&path).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "not_found");
    }
    let res = app
        .delete(&format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app.patch("/api/v1/webhooks").send().await.unwrap();
    assert_eq!(res.status(), 405);
}

#[actix_web::test]
async fn a_name_that_resolves_to_loopback_is_refused_at_delivery() {
    let db = fresh_database().await;
    // Registered where loopback was allowed; delivered by a node where it is not.
    let registrar = spawn_app_on(db.clone(), |db| {
        let mut s = loopback_allowed(db);
        s.webhooks.enabled = false;
        s
    })
    .await;
    let receiver = Receiver::start(0);
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let created = register(
        &registrar,
        &format!("http://localhost:{port}/hooks"),
        &["coupon.claimed"],
    )
    .await;
    let _sender = spawn_app_on(db.clone(), |db| {
        let mut s = test_settings(db);
        s.webhooks.allow_http = true;
        s.webhooks.retry_base = Duration::from_secs(60);
        s.webhooks.poll = Duration::from_millis(100);
        s
    })
    .await;
    let campaign = registrar
        .create_campaign_id(json!({"name": "ssrf", "total_limit": 5, "status": "active"}))
        .await;
    assert_eq!(registrar.claim(&campaign, "x").await.0, 201);
    let endpoint = created["id"].as_str().unwrap();
    let error = eventually(
        Duration::from_secs(30),
        "the attempt is logged",
        async || {
            let res = registrar
                .get(&format!("/api/v1/webhooks/{endpoint}/deliveries"))
                .send()
                .await
                .ok()?;
            let log: serde_json::Value = res.json().await.ok()?;
            let d = log["deliveries"].get(0)?.clone();
            (d["attempts"] == 1).then_some(d)
        },
    )
    .await;
    assert_eq!(error["status"], "pending");
    assert!(
        error["last_error"].as_str().unwrap().contains("loopback"),
        "{error}"
    );
    assert!(error["last_status"].is_null());
    assert!(receiver.seen().is_empty(), "nothing reached the address");
}

#[actix_web::test]
async fn webhook_and_code_answers_match_the_openapi_document() {
    let app = spawn_app().await;
    let mut oa = OpenApiCheck::default();
    let hooks = "/api/v1/webhooks";
    let one = "/api/v1/webhooks/{id}";
    let log = "/api/v1/webhooks/{id}/deliveries";
    let (s, created) = oa
        .send(
            "post",
            hooks,
            app.post(hooks)
                .json(&json!({"url": "https://8.8.8.8/h", "events": ["coupon.claimed"]})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let at = |p: &str| p.replace("{id}", &id);
    for (body, status) in [
        (
            json!({"url": "https://10.0.0.1/h", "events": ["coupon.claimed"]}),
            422,
        ),
        (json!({"url": "https://8.8.8.8/h", "events": ["nope"]}), 422),
    ] {
        assert_eq!(
            oa.send("post", hooks, app.post(hooks).json(&body)).await.0,
            status
        );
    }
    assert_eq!(oa.send("get", hooks, app.get(hooks)).await.0, 200);
    assert_eq!(oa.send("get", one, app.get(&at(one))).await.0, 200);
    assert_eq!(oa.send("get", log, app.get(&at(log))).await.0, 200);
    let bad = format!("{}?limit=0", at(log));
    assert_eq!(oa.send("get", log, app.get(&bad)).await.0, 422);
    let reader = key_with_scopes(&app, &["campaigns:read"]).await;
    let weak = app.client.get(app.url(hooks)).bearer_auth(&reader);
    assert_eq!(oa.send("get", hooks, weak).await.0, 403);

    // Codes: a batch, errors, a job, an import and its per-line report.
    let campaign = app
        .create_campaign_id(json!({"name": "oa", "total_limit": 10_020, "status": "active"}))
        .await;
    let codes = "/api/v1/campaigns/{id}/codes";
    let imports = "/api/v1/campaigns/{id}/codes/import";
    let on = |p: &str| p.replace("{id}", &campaign);
    let (s, batch) = oa
        .send(
            "post",
            codes,
            app.post(&on(codes)).json(&json!({"count": 3})),
        )
        .await;
    assert_eq!(s, 201, "{batch}");
    let (s, _) = oa
        .send(
            "post",
            codes,
            app.post(&on(codes)).json(&json!({"count": 0})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, job) = oa
        .send(
            "post",
            codes,
            app.post(&on(codes)).json(&json!({"count": 10_001})),
        )
        .await;
    assert_eq!(s, 202, "{job}");
    let job_path = "/api/v1/code-jobs/{id}";
    let job_url = job["job"]["status_url"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(60), "the job ends", async || {
        let res = app.get(&job_url).send().await.ok()?;
        let body: serde_json::Value = res.json().await.ok()?;
        (body["job"]["status"] != "pending").then_some(())
    })
    .await;
    assert_eq!(oa.send("get", job_path, app.get(&job_url)).await.0, 200);
    let (s, _) = oa
        .send(
            "post",
            imports,
            app.post(&on(imports))
                .body("code\nIMPORT0001\nIMPORT0002\n"),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = oa
        .send("post", imports, app.post(&on(imports)).body("bad!\nAB\n"))
        .await;
    assert_eq!(s, 422);
    let (s, _) = oa
        .send("post", imports, app.post(&on(imports)).body("IMPORT0001\n"))
        .await;
    assert_eq!(s, 409);
    assert_eq!(oa.send("delete", one, app.delete(&at(one))).await.0, 204);
    assert_eq!(oa.send("get", one, app.get(&at(one))).await.0, 404);
    assert!(oa.check(&app).await >= 15);
}
