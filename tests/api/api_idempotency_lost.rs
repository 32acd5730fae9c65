//! A keyed claim whose database answer was lost (503 `outcome_unknown`), retried with the
//! same key: if the claim was written, the retry gets it (201, replayed), never
//! `consumer_limit_reached`; if it was not, the retry waits (409 `idempotency_key_in_use`)
//! until the write can no longer land, then runs the claim. Both with real faults: the
//! COMMIT's reply held back by a TCP proxy past the engine's batch timeout, and a batch
//! blocked on a lock whose backend is then killed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::config::Host;

use crate::helpers::{
    error_code, eventually, fresh_database, spawn_app_on, test_settings, to_conninfo, OpenApiCheck,
    TestApp, TestDatabase,
};

/// A proxy to the database that, once armed, holds back the replies of the next claim
/// batch (its Bind of the batch's prepared statement) for `hold`: the statement runs and
/// commits, and its answer comes after the engine gave up waiting.
struct LateAnswers {
    armed: Arc<AtomicBool>,
    port: u16,
}

/// Longer than the engine's batch timeout (500 ms here).
const HOLD: Duration = Duration::from_millis(1500);

const BATCH_SQL: &[u8] = b"INSERT INTO coupons (id, tenant_id, campaign_id, consumer";

impl LateAnswers {
    async fn start(db: &TestDatabase, hold: Duration) -> LateAnswers {
        let config: tokio_postgres::Config = db.url.parse().unwrap();
        let upstream = match (config.get_hosts().first(), config.get_ports().first()) {
            (Some(Host::Tcp(h)), Some(p)) => Ok(format!("{h}:{p}")),
            (Some(Host::Unix(dir)), Some(p)) => Err(dir.join(format!(".s.PGSQL.{p}"))),
            other => panic!("cannot proxy to {other:?}"),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        // Names of the batch's prepared statements (unique in the process).
        let batch_names: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
        let arm = armed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (mut sr, mut sw) = connect(&upstream).await;
                let (mut cr, mut cw) = client.into_split();
                let held_until: Arc<Mutex<Option<Instant>>> = Arc::default();
                let (arm, names, held) = (arm.clone(), batch_names.clone(), held_until.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = cr.read(&mut buf).await {
                        let chunk = &buf[..n];
                        learn_batch_names(chunk, &names);
                        if arm.load(Ordering::SeqCst) && binds_batch(chunk, &names) {
                            arm.store(false, Ordering::SeqCst);
                            *held.lock().unwrap() = Some(Instant::now() + hold);
                        }
                        if sw.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = sr.read(&mut buf).await {
                        let until = *held_until.lock().unwrap();
                        if let Some(until) = until {
                            tokio::time::sleep_until(until.into()).await;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        LateAnswers { armed, port }
    }

    fn url(&self, db: &TestDatabase) -> String {
        let parsed: tokio_postgres::Config = db.url.parse().unwrap();
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(parsed.get_user().unwrap_or("postgres"))
            .dbname(parsed.get_dbname().unwrap());
        if let Some(pw) = parsed.get_password() {
            config.password(pw);
        }
        to_conninfo(&config)
    }
}

type Reader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;
type Writer = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

async fn connect(upstream: &Result<String, std::path::PathBuf>) -> (Reader, Writer) {
    match upstream {
        Ok(addr) => {
            let (r, w) = tokio::net::TcpStream::connect(addr)
                .await
                .unwrap()
                .into_split();
            (Box::new(r), Box::new(w))
        }
        Err(path) => {
            let (r, w) = tokio::net::UnixStream::connect(path)
                .await
                .unwrap()
                .into_split();
            (Box::new(r), Box::new(w))
        }
    }
}

/// A Parse message ('P', length, name, query) of the batch statement: remember its name.
fn learn_batch_names(chunk: &[u8], names: &Mutex<HashSet<Vec<u8>>>) {
    for i in 0..chunk.len() {
        if chunk[i] != b'P' || i + 5 >= chunk.len() {
            continue;
        }
        let rest = &chunk[i + 5..];
        let Some(end) = rest.iter().position(|b| *b == 0) else {
            continue;
        };
        let query = &rest[end + 1..];
        let query = &query[..query.iter().position(|b| *b == 0).unwrap_or(query.len())];
        if query.windows(BATCH_SQL.len()).any(|w| w == BATCH_SQL) {
            names.lock().unwrap().insert(rest[..end].to_vec());
        }
    }
}

/// A Bind message ('B', length, unnamed portal, statement name) of a batch statement.
fn binds_batch(chunk: &[u8], names: &Mutex<HashSet<Vec<u8>>>) -> bool {
    let names = names.lock().unwrap();
    (0..chunk.len()).any(|i| {
        chunk[i] == b'B'
            && chunk.get(i + 5) == Some(&0)
            && names.iter().any(|n| {
                let rest = &chunk[i + 6..];
                rest.starts_with(n) && rest.get(n.len()) == Some(&0)
            })
    })
}

/// A keyed claim, its answer checked against the OpenAPI document later.
async fn keyed_claim(
    oa: &mut OpenApiCheck,
    app: &TestApp,
    campaign: &str,
    key: &str,
    consumer: &str,
) -> (u16, bool, serde_json::Value) {
    let res = app
        .post(&format!("/api/v1/campaigns/{campaign}/claims"))
        .header("Idempotency-Key", key)
        .json(&json!({ "consumer": consumer }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let replayed = res.headers().get("Idempotent-Replayed").is_some();
    let body = res.json().await.unwrap();
    oa.record("post", "/api/v1/campaigns/{id}/claims", status, &body);
    (status, replayed, body)
}

async fn coupons_of(db: &TestDatabase, consumer: &str) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT id::text FROM coupons WHERE consumer = 'api:' || $1 AND won",
            &[&consumer],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[actix_web::test]
async fn a_claim_that_committed_but_lost_its_answer_is_the_retrys_answer() {
    let db = fresh_database().await;
    let proxy = LateAnswers::start(&db, HOLD).await;
    let app = spawn_app_on(db.clone(), |db| {
        let mut s = test_settings(db);
        s.database_url = Some(proxy.url(db));
        s.engine.batch_timeout = Duration::from_millis(500);
        s
    })
    .await;
    let mut oa = OpenApiCheck::default();
    let id = app
        .create_campaign_id(json!({"name": "lost answer", "total_limit": 50, "status": "active"}))
        .await;
    // A first claim prepares the batch statement (the proxy learns its name).
    let (status, body) = app.claim(&id, "warm-up").await;
    assert_eq!(status, 201, "{body}");

    proxy.armed.store(true, Ordering::SeqCst);
    let (status, _, body) = keyed_claim(&mut oa, &app, &id, "till-7-0001", "yuki").await;
    assert_eq!(
        (status, error_code(&body)),
        (503, "outcome_unknown"),
        "{body}"
    );
    assert!(!proxy.armed.load(Ordering::SeqCst), "the batch was held");
    // Past the hold, so no later statement meets the connection still holding it.
    tokio::time::sleep(HOLD).await;
    // It was written (the database committed; only the reply was late).
    let held = eventually(
        Duration::from_secs(10),
        "the claim is in the database",
        async || {
            let held = coupons_of(&db, "yuki").await;
            (!held.is_empty()).then_some(held)
        },
    )
    .await;
    assert_eq!(held.len(), 1);

    // The retry with the key gets that coupon, not consumer_limit_reached.
    let (status, replayed, body) = keyed_claim(&mut oa, &app, &id, "till-7-0001", "yuki").await;
    assert_eq!((status, replayed), (201, true), "{body}");
    assert_eq!(body["coupon"]["id"], json!(held[0]));
    let code: String = app
        .db_value(
            "SELECT code FROM coupons WHERE id = $1::text::uuid",
            &[&held[0]],
        )
        .await;
    assert_eq!(body["coupon"]["code"], json!(code));
    // And from then on that answer is the key's, replayed as is.
    let (status, replayed, again) = keyed_claim(&mut oa, &app, &id, "till-7-0001", "yuki").await;
    assert_eq!((status, replayed, &again), (201, true, &body));
    // Without the key it would have been a second claim, refused.
    let (status, body) = app.claim(&id, "yuki").await;
    assert_eq!((status, error_code(&body)), (409, "consumer_limit_reached"));
    assert_eq!(coupons_of(&db, "yuki").await.len(), 1);
    // The key is for this request only.
    let (status, _, body) = keyed_claim(&mut oa, &app, &id, "till-7-0001", "someone-else").await;
    assert_eq!((status, error_code(&body)), (422, "idempotency_key_reused"));
    oa.check(&app).await;
}

#[actix_web::test]
async fn a_lost_claim_that_never_landed_runs_again_once_it_cannot_land() {
    let db = fresh_database().await;
    let statement_timeout = Duration::from_secs(3);
    let app = spawn_app_on(db.clone(), |db| {
        let mut s = test_settings(db);
        s.engine.batch_timeout = Duration::from_millis(500);
        s.database.statement_timeout = statement_timeout;
        s
    })
    .await;
    let mut oa = OpenApiCheck::default();
    let id = app
        .create_campaign_id(json!({"name": "not landed", "total_limit": 50, "status": "active"}))
        .await;
    let (status, body) = app.claim(&id, "warm-up").await;
    assert_eq!(status, 201, "{body}");

    // The batch reaches the database and waits on a lock; its answer does not come in time.
    let mut admin = db.client().await;
    let blocker = admin.transaction().await.unwrap();
    blocker
        .batch_execute("LOCK TABLE coupons IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let (status, _, body) = keyed_claim(&mut oa, &app, &id, "till-8-0001", "ren").await;
    assert_eq!(
        (status, error_code(&body)),
        (503, "outcome_unknown"),
        "{body}"
    );
    let lost_at = Instant::now();
    // Still undecided: the retry is told to come back, and nothing runs twice.
    let (status, _, body) = keyed_claim(&mut oa, &app, &id, "till-8-0001", "ren").await;
    assert_eq!(
        (status, error_code(&body)),
        (409, "idempotency_key_in_use"),
        "{body}"
    );
    // The write dies (its backend is killed, or on a slow machine the statement timeout
    // has cancelled it already), so it never lands.
    blocker
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    blocker.rollback().await.unwrap();
    assert!(coupons_of(&db, "ren").await.is_empty());

    // Once the write could no longer land, the retry runs the claim: one coupon. (A 503
    // `busy` is a retry too: the killed backend's pooled connection can fail the one
    // request that draws it before the pool sees it closed.)
    let (status, replayed, body) = eventually(
        Duration::from_secs(20),
        "the retry runs the claim",
        async || {
            let answer = keyed_claim(&mut oa, &app, &id, "till-8-0001", "ren").await;
            let retry = answer.0 == 409 || (answer.0 == 503 && error_code(&answer.2) == "busy");
            (!retry).then_some(answer)
        },
    )
    .await;
    assert_eq!((status, replayed), (201, false), "{body}");
    assert!(
        lost_at.elapsed() >= statement_timeout,
        "not before the statement timeout: {:?}",
        lost_at.elapsed()
    );
    assert_eq!(
        coupons_of(&db, "ren").await,
        [body["coupon"]["id"].as_str().unwrap()]
    );
    let (status, replayed, again) = keyed_claim(&mut oa, &app, &id, "till-8-0001", "ren").await;
    assert_eq!((status, replayed, &again), (201, true, &body));
    oa.check(&app).await;
}
