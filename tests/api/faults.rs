//! Faults mid-sale, each ending with the invariant check (`invariants.rs`): Postgres
//! restarted under load, answers lost between the database and the node, a limit lowered
//! while claims, lease releases and the reaper run. Short versions of the chaos mode in
//! `loadtest/` (see README, "Chaos").

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecoupon::private_cluster::EmbeddedPostgres;
use serde_json::json;

use crate::helpers::{
    error_code, eventually, fresh_database, scratch_dir, spawn_app_on, test_settings, to_conninfo,
    TestApp, TestDatabase,
};
use crate::invariants::{check_invariants, check_settled, Acked};

/// One claim's answer as a client saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub consumer: String,
    pub status: u16,
    pub code: String,
    pub body: serde_json::Value,
    pub at: Instant,
    pub took: Duration,
}

/// Clients claiming with fresh consumers, as fast as answers come, until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<actix_web::rt::task::JoinHandle<Vec<Answer>>>,
}

impl Load {
    pub fn start(app: &TestApp, campaign: &str, clients: usize, prefix: &str) -> Load {
        Load::start_at(app, &app.address, campaign, clients, prefix)
    }

    /// Against the node at `base` (another process), with `app`'s client and key.
    pub fn start_at(
        app: &TestApp,
        base: &str,
        campaign: &str,
        clients: usize,
        prefix: &str,
    ) -> Load {
        Load::start_on(&app.client, &app.api_key, base, campaign, clients, prefix)
    }

    /// With a client of its own (e.g. one with a shorter timeout).
    pub fn start_on(
        client: &reqwest::Client,
        key: &str,
        base: &str,
        campaign: &str,
        clients: usize,
        prefix: &str,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let workers = (0..clients)
            .map(|_| {
                let (stop, next) = (stop.clone(), next.clone());
                let client = client.clone();
                let url = format!("{base}/api/v1/campaigns/{campaign}/claims");
                let (key, prefix) = (key.to_string(), prefix.to_string());
                actix_web::rt::spawn(async move {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let consumer = format!("{prefix}-{}", next.fetch_add(1, Ordering::Relaxed));
                        answers.push(claim_once(&client, &url, &key, &consumer).await);
                    }
                    answers
                })
            })
            .collect();
        Load { stop, workers }
    }

    pub async fn stop(mut self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for w in std::mem::take(&mut self.workers) {
            all.extend(w.await.unwrap());
        }
        all
    }
}

/// A fault that panics mid-load (the chaos mode goes on to the next) stops its clients.
impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub async fn claim_once(client: &reqwest::Client, url: &str, key: &str, consumer: &str) -> Answer {
    let started = Instant::now();
    let res = client
        .post(url)
        .bearer_auth(key)
        .json(&json!({ "consumer": consumer }))
        .send()
        .await;
    let (status, body) = match res {
        Ok(res) => {
            let status = res.status().as_u16();
            (status, res.json().await.unwrap_or_default())
        }
        Err(e) => (0, json!({ "transport": e.to_string() })),
    };
    Answer {
        consumer: consumer.to_string(),
        status,
        code: error_code(&body).to_string(),
        body,
        at: Instant::now(),
        took: started.elapsed(),
    }
}

/// The 201s among `answers`, as promises to check.
pub fn acked(answers: &[Answer]) -> Vec<Acked> {
    answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| Acked::from_body(&a.consumer, &a.body))
        .collect()
}

/// Every answer is one a client can act on: a coupon, a clean refusal, or a clean 503
/// (`busy`: nothing written; `outcome_unknown`: retry with the same key). Never a 500,
/// never a hang.
pub fn assert_clean(answers: &[Answer], max_wait: Duration) {
    for a in answers {
        let clean = matches!(
            (a.status, a.code.as_str()),
            (201, _) | (409, "sold_out") | (503, "busy") | (503, "outcome_unknown")
        );
        assert!(clean, "an unclean answer: {a:?}");
        assert!(a.took <= max_wait, "a claim hung for {:?}: {a:?}", a.took);
    }
}

/// Claims with fresh consumers from `clients` clients until each is told `sold_out`;
/// returns the 201s.
async fn sell_out(app: &TestApp, campaign: &str, prefix: &str, clients: usize) -> Vec<Answer> {
    let url = app.url(&format!("/api/v1/campaigns/{campaign}/claims"));
    let next = AtomicUsize::new(0);
    let client = |_| {
        let (url, next) = (&url, &next);
        async move {
            let mut got = Vec::new();
            loop {
                let consumer = format!("{prefix}-{}", next.fetch_add(1, Ordering::Relaxed));
                let a = claim_once(&app.client, url, &app.api_key, &consumer).await;
                match (a.status, a.code.as_str()) {
                    (201, _) => got.push(a),
                    (409, "sold_out") => return got,
                    _ => panic!("selling out: {a:?}"),
                }
            }
        }
    };
    let all = futures_util::future::join_all((0..clients).map(client)).await;
    all.into_iter().flatten().collect()
}

/// A private PostgreSQL this test owns, so it can stop and start it. Stopped and removed
/// when dropped, however the test ends.
struct OwnCluster {
    pg: EmbeddedPostgres,
    dir: PathBuf,
}

impl OwnCluster {
    async fn start() -> OwnCluster {
        if let Err(e) = ecoupon::private_cluster::find_binaries() {
            crate::helpers::missing_dependency(&format!("PostgreSQL server binaries: {e}"));
        }
        let dir = scratch_dir("own-pg");
        let pg = EmbeddedPostgres::start(&dir.join("pg"))
            .await
            .expect("private cluster starts");
        OwnCluster { pg, dir }
    }

    fn database(&self) -> TestDatabase {
        TestDatabase::external(to_conninfo(&self.pg.connect_config("ecoupon")))
    }

    async fn stop(&self) {
        self.pg.stop().await.expect("postgres stops");
    }

    async fn restart(&self) {
        EmbeddedPostgres::start(self.pg.root())
            .await
            .expect("postgres starts again");
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let (pg, dir) = (self.pg.clone(), self.dir.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(pg.stop());
            let _ = std::fs::remove_dir_all(dir);
        })
        .join();
    }
}

fn quick_to_notice(db: &TestDatabase) -> ecoupon::config::Settings {
    let mut s = test_settings(db);
    s.engine.lease_ttl = Duration::from_secs(2);
    s.database.connect_timeout = Duration::from_secs(1);
    s.database.acquire_timeout = Duration::from_secs(1);
    s.database.pool_size = 16;
    s
}

#[actix_web::test]
async fn a_postgres_restart_mid_sale_fails_claims_cleanly_and_strands_no_stock() {
    eprintln!("{}", postgres_restart(1).await);
}

/// The restart fault, `scale` times the stock and the outage (1 in the suite, more in the
/// chaos mode); panics on a broken promise, else returns what it saw.
pub async fn postgres_restart(scale: u32) -> String {
    let cluster = OwnCluster::start().await;
    let app = spawn_app_on(cluster.database(), quick_to_notice).await;
    let limit = 800 * i64::from(scale);
    let id = app
        .create_campaign_id(json!({"name": "restart", "total_limit": limit, "status": "active"}))
        .await;

    let load = Load::start(&app, &id, 20, "during");
    eventually(Duration::from_secs(30), "200 coupons issued", async || {
        let n: i64 = app
            .db_value(
                "SELECT count(*) FROM coupons WHERE campaign_id = $1::text::uuid",
                &[&id],
            )
            .await;
        (n >= 200 * i64::from(scale)).then_some(())
    })
    .await;

    cluster.stop().await;
    let down_at = Instant::now();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz shows the outage");
    tokio::time::sleep(Duration::from_secs(2) * scale).await;
    cluster.restart().await;
    let up_at = Instant::now();
    eventually(
        Duration::from_secs(10),
        "/readyz is ready again",
        async || {
            let res = app.client.get(app.url("/readyz")).send().await.ok()?;
            (res.status() == 200).then_some(())
        },
    )
    .await;
    let ready_after = up_at.elapsed();

    // Let claims run on after the restart, then stop the clients.
    eventually(
        Duration::from_secs(10),
        "claims succeed again",
        async || {
            let n: i64 = app
                .db_value(
                    "SELECT count(*) FROM coupons WHERE claimed_at > now() - interval '1 second'",
                    &[],
                )
                .await;
            (n > 0).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answers = load.stop().await;
    // (At this point the old engine had stock stranded: reserved for batches that failed
    // while the database was away, never given back.)
    assert_clean(&answers, Duration::from_secs(15));
    let first_201_after = answers
        .iter()
        .filter(|a| a.status == 201 && a.at > up_at)
        .map(|a| a.at.duration_since(up_at))
        .min()
        .expect("claims were issued after the restart");
    assert!(
        first_201_after <= Duration::from_secs(5),
        "service back within 5 s of the database, took {first_201_after:?}"
    );
    let failed = answers.iter().filter(|a| a.status == 503).count();
    let unknown = answers
        .iter()
        .filter(|a| a.code == "outcome_unknown")
        .count();
    let mut promised = acked(&answers);
    check_invariants(&app.db, &id, &promised).await;

    // What stats call remaining must be claimable within seconds: sell out, then no
    // stock may be left in the campaign.
    let stats: serde_json::Value = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let remaining = stats["stats"]["remaining"].as_i64().unwrap();
    let sell_started = Instant::now();
    let mut issued = limit - remaining;
    for pass in 0.. {
        let got = sell_out(&app, &id, &format!("after-{pass}"), 8).await;
        promised.extend(acked(&got));
        issued = app
            .db_value(
                "SELECT count(*) FROM coupons WHERE campaign_id = $1::text::uuid AND won",
                &[&id],
            )
            .await;
        if issued == limit || sell_started.elapsed() > Duration::from_secs(10) * scale {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sold_in = sell_started.elapsed();
    let summary = format!(
        "postgres restart: {} answers, {failed} clean 503s ({unknown} outcome_unknown), \
         readyz back {ready_after:?} after the database, first 201 {first_201_after:?} after; \
         outage {:?}; {remaining} remaining per stats; {} stranded after selling out for {sold_in:?}",
        answers.len(),
        up_at.duration_since(down_at),
        limit - issued,
    );
    assert_eq!(
        issued, limit,
        "stock that stats called remaining was claimable"
    );
    let held = check_settled(&app, &id, &promised, Duration::from_secs(10)).await;
    assert_eq!(held.issued, limit);
    summary
}

#[actix_web::test]
async fn a_commit_whose_answer_never_came_is_outcome_unknown_and_its_stock_is_counted_back() {
    let db = fresh_database().await;
    let app = spawn_app_on(db.clone(), |db| {
        let mut s = test_settings(db);
        s.engine.batch_timeout = Duration::from_millis(500);
        s
    })
    .await;
    let id = app
        .create_campaign_id(json!({"name": "lost", "total_limit": 50, "status": "active"}))
        .await;
    let (status, body) = app.claim(&id, "before").await;
    assert_eq!(status, 201, "{body}");
    let mut promised = vec![Acked::from_body("before", &body)];

    // The next batch reaches the database and waits there; its answer comes too late.
    let mut admin = db.client().await;
    let blocker = admin.transaction().await.unwrap();
    blocker
        .batch_execute("LOCK TABLE coupons IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let (status, body) = app.claim(&id, "lost").await;
    assert_eq!(
        (status, error_code(&body)),
        (503, "outcome_unknown"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{body}"
    );
    // The database goes on; whether the batch landed is for the database to say.
    blocker.rollback().await.unwrap();

    // Its lease was given up and released by counting coupons, retried until the database
    // answered: nothing stays stranded, and the rest sells out exactly.
    let held = eventually(
        Duration::from_secs(10),
        "the abandoned lease is released",
        async || {
            let released: bool = app
                .db_value(
                    "SELECT l.released_at IS NOT NULL FROM coupons c
                     JOIN campaign_leases l ON l.id = c.lease_id WHERE c.consumer = 'api:before'",
                    &[],
                )
                .await;
            let held = check_invariants(&db, &id, &promised).await;
            released.then_some(held)
        },
    )
    .await;
    let landed: i64 = app
        .db_value(
            "SELECT count(*) FROM coupons WHERE consumer = 'api:lost'",
            &[],
        )
        .await;
    eprintln!("the claim whose answer was lost landed: {landed}");
    assert_eq!(held.issued, 1 + landed);
    let url = app.url(&format!("/api/v1/campaigns/{id}/claims"));
    for i in 0..60 {
        let a = claim_once(&app.client, &url, &app.api_key, &format!("after-{i}")).await;
        match a.status {
            201 => promised.push(Acked::from_body(&a.consumer, &a.body)),
            409 => assert_eq!(a.code, "sold_out", "{a:?}"),
            _ => panic!("{a:?}"),
        }
    }
    let held = check_settled(&app, &id, &promised, Duration::from_secs(10)).await;
    assert_eq!(held.issued, 50, "exactly the limit");
}

#[actix_web::test]
async fn an_actor_that_dies_mid_batch_answers_outcome_unknown() {
    let db = fresh_database().await;
    let app = spawn_app_on(db.clone(), test_settings).await;
    let id = app
        .create_campaign_id(json!({"name": "died", "total_limit": 10, "status": "active"}))
        .await;
    let (status, body) = app.claim(&id, "before").await;
    assert_eq!(status, 201, "{body}");
    let mut promised = vec![Acked::from_body("before", &body)];

    let mut admin = db.client().await;
    let blocker = admin.transaction().await.unwrap();
    blocker
        .batch_execute("LOCK TABLE coupons IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let claim = {
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("/api/v1/campaigns/{id}/claims")),
            app.api_key.clone(),
        );
        actix_web::rt::spawn(async move { claim_once(&client, &url, &key, "mid").await })
    };
    let monitor = db.client().await;
    eventually(
        Duration::from_secs(10),
        "the batch waits in the database",
        async || {
            let n: i64 = monitor
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO coupons%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (n > 0).then_some(())
        },
    )
    .await;
    app.engine.crash_actor(id.parse().unwrap());
    let answer = claim.await.unwrap();
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (503, "outcome_unknown"),
        "{answer:?}"
    );
    blocker.rollback().await.unwrap();

    // A successor takes over; the rest sells out exactly, whatever the lost batch did.
    let url = app.url(&format!("/api/v1/campaigns/{id}/claims"));
    eventually(Duration::from_secs(10), "sold out", async || {
        let a = claim_once(
            &app.client,
            &url,
            &app.api_key,
            &format!("after-{:?}", Instant::now()),
        )
        .await;
        if a.status == 201 {
            promised.push(Acked::from_body(&a.consumer, &a.body));
        }
        (a.code == "sold_out").then_some(())
    })
    .await;
    let held = check_settled(&app, &id, &promised, Duration::from_secs(10)).await;
    assert_eq!(held.issued, 10);
}

#[actix_web::test]
async fn lowering_the_limit_under_load_with_the_reaper_running_never_deadlocks() {
    let db = fresh_database().await;
    let app = spawn_app_on(db.clone(), test_settings).await;
    let start_limit = 100_000i64;
    let id = app
        .create_campaign_id(
            json!({"name": "lower", "total_limit": start_limit, "status": "active"}),
        )
        .await;
    let deadlocks = async || -> i64 {
        db.client()
            .await
            .query_one(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    };
    let deadlocks_before = deadlocks().await;

    // The reaper at its most eager: every live lease is "silent" at once.
    let settings = test_settings(&db);
    let reaper_store = ecoupon::store::Store::connect(
        settings.database_url.as_deref().unwrap().parse().unwrap(),
        &settings.database,
    )
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reaper = {
        let stop = stop.clone();
        actix_web::rt::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                reaper_store
                    .reap_leases(Duration::ZERO)
                    .await
                    .expect("the reaper never fails");
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rounds
        })
    };

    let load = Load::start(&app, &id, 16, "c");
    let mut limit = start_limit;
    let mut lowered = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        limit -= 1;
        let res = app
            .patch(&format!("/api/v1/campaigns/{id}"))
            .json(&json!({ "total_limit": limit }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        assert_eq!(status, 200, "lowering the limit: {body}");
        lowered += 1;
    }
    let answers = load.stop().await;
    stop.store(true, Ordering::Relaxed);
    let reaps = reaper.await.unwrap();
    assert_clean(&answers, Duration::from_secs(15));
    let issued = answers.iter().filter(|a| a.status == 201).count();
    assert!(issued > 20, "claims went on: {issued}");
    assert!(
        lowered > 5 && reaps > 5,
        "{lowered} lowerings, {reaps} reaps"
    );
    assert_eq!(deadlocks().await, deadlocks_before, "no deadlock");
    let busy = answers.iter().filter(|a| a.status == 503).count();
    assert!(
        busy * 10 <= answers.len(),
        "claims mostly succeed: {busy} of {} were 503",
        answers.len()
    );
    let held = check_settled(&app, &id, &acked(&answers), Duration::from_secs(10)).await;
    assert_eq!(held.total_limit, limit);
    eprintln!(
        "lowered the limit {lowered} times and reaped {reaps} times during {} claims ({issued} issued, {busy} busy)",
        answers.len()
    );
}
