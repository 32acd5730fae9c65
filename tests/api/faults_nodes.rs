//! Faults of a whole node, as real processes of the binary on one database: one killed
//! with SIGKILL mid-sale, one frozen with SIGSTOP past its lease expiry. Each ends with the
//! invariant check (`invariants.rs`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use crate::faults::{acked, assert_clean, claim_once, Answer, Load};
use crate::helpers::{
    error_code, eventually, fresh_database, scratch_dir, spawn_app_on, test_settings, TestApp,
    TestDatabase,
};
use crate::invariants::{check_invariants, check_settled, Acked};

const LEASE_TTL: Duration = Duration::from_secs(2);

fn short_leases(db: &TestDatabase) -> ecoupon::config::Settings {
    let mut s = test_settings(db);
    s.engine.lease_ttl = LEASE_TTL;
    s.database.pool_size = 16;
    s
}

/// Another node: the binary as a child process on the same database, killed on drop.
pub struct Node {
    child: Child,
    pub base: String,
}

impl Node {
    async fn start(app: &TestApp) -> Node {
        Node::start_with(app, &[("ECOUPON_ENGINE__LEASE_TTL", "2s")]).await
    }

    /// With settings of its own, as `ECOUPON_*` environment variables.
    pub async fn start_with(app: &TestApp, env: &[(&str, &str)]) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_ecoupon"))
            .args([
                "serve",
                "--no-demo",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(scratch_dir("node"))
            .env("DATABASE_URL", &app.db.url)
            .env("ECOUPON_LOG__LEVEL", "error")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(30), "the node is ready", async || {
            let res = app.client.get(format!("{base}/readyz")).send().await;
            res.ok().filter(|r| r.status() == 200)
        })
        .await;
        Node { child, base }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    async fn claim(&self, app: &TestApp, campaign: &str, consumer: &str) -> Answer {
        let url = format!("{}/api/v1/campaigns/{campaign}/claims", self.base);
        claim_once(&app.client, &url, &app.api_key, consumer).await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn won(app: &TestApp, campaign: &str) -> i64 {
    app.db_value(
        "SELECT count(*) FROM coupons WHERE campaign_id = $1::text::uuid AND won",
        &[&campaign],
    )
    .await
}

/// Claims on `app` until sold out (or told to come back: 503 `busy`, which a loaded machine
/// may answer while the dead node's stock waits for the reaper; the caller claims again);
/// returns the promises.
async fn sell_out_on(app: &TestApp, campaign: &str, prefix: &str) -> Vec<Acked> {
    let mut got = Vec::new();
    for i in 0.. {
        let (status, body) = app.claim(campaign, &format!("{prefix}-{i}")).await;
        match (status, error_code(&body)) {
            (201, _) => got.push(Acked::from_body(&format!("{prefix}-{i}"), &body)),
            (409, "sold_out") | (503, "busy") => return got,
            other => panic!("selling out: {other:?} {body}"),
        }
    }
    unreachable!()
}

#[actix_web::test]
async fn the_survivor_of_a_kill_9_carries_on_and_the_stranded_stock_returns() {
    eprintln!("{}", kill_9(1).await);
}

/// One of two nodes killed mid-sale, with `scale` times the stock and the sale (1 in the
/// suite, more in the chaos mode). Panics on a broken promise, else returns what it saw.
pub async fn kill_9(scale: u32) -> String {
    let limit = 600 * i64::from(scale);
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), short_leases).await;
    let id = a
        .create_campaign_id(json!({"name": "kill", "total_limit": limit, "status": "active"}))
        .await;
    let mut b = Node::start(&a).await;

    // Both nodes sell; B dies mid-sale holding leased stock, claims in flight.
    let load_a = Load::start(&a, &id, 4, "a");
    let load_b = Load::start_at(&a, &b.base, &id, 8, "b");
    eventually(Duration::from_secs(30), "B has issued 100", async || {
        let n: i64 = a
            .db_value(
                "SELECT count(*) FROM coupons WHERE campaign_id = $1::text::uuid AND consumer LIKE 'api:b-%'",
                &[&id],
            )
            .await;
        (n >= 100 * i64::from(scale)).then_some(())
    })
    .await;
    b.signal(Signal::SIGKILL);
    b.child.wait().unwrap();
    let killed_at = Instant::now();
    let b_answers = load_b.stop().await;
    let b_held: i64 = a
        .db_value(
            "SELECT coalesce(sum(l.size - (SELECT count(*) FROM coupons c WHERE c.lease_id = l.id)), 0)::bigint
             FROM campaign_leases l WHERE l.campaign_id = $1::text::uuid AND l.released_at IS NULL
               AND EXISTS (SELECT 1 FROM coupons c WHERE c.lease_id = l.id AND c.consumer LIKE 'api:b-%')",
            &[&id],
        )
        .await;
    // The survivor goes on answering while B's leases wait to expire.
    tokio::time::sleep(Duration::from_millis(500) * scale).await;
    let answers_a = load_a.stop().await;
    assert_clean(&answers_a, Duration::from_secs(15));
    assert!(
        answers_a
            .iter()
            .any(|x| x.status == 201 && x.at > killed_at),
        "the survivor issued after the kill"
    );
    let mut promised = acked(&answers_a);
    promised.extend(acked(&b_answers));
    check_invariants(&db, &id, &promised).await;

    // Once B's leases expire, A's reaper gives their unused stock back: A sells out exactly.
    let recovered = eventually(
        Duration::from_secs(20) * scale,
        "every unit is sold through the survivor",
        async || {
            promised.extend(sell_out_on(&a, &id, &format!("late-{}", promised.len())).await);
            (won(&a, &id).await == limit).then_some(killed_at.elapsed())
        },
    )
    .await;
    check_settled(&a, &id, &promised, Duration::from_secs(10)).await;
    format!(
        "kill -9: B held about {b_held} unused units; the survivor sold out {recovered:?} after the kill \
         (lease ttl {LEASE_TTL:?})"
    )
}

#[actix_web::test]
async fn a_node_frozen_past_its_lease_expiry_never_issues_from_the_reaped_lease() {
    eprintln!("{}", freeze(1).await);
}

/// A node frozen with SIGSTOP past its lease expiry, then resumed, with `scale` times the
/// stock and the claims around the freeze (1 in the suite, more in the chaos mode). Panics
/// on a broken promise, else returns what it saw.
pub async fn freeze(scale: u32) -> String {
    let limit = 300 * i64::from(scale);
    let claims = 20 * scale;
    let db = fresh_database().await;
    let a = spawn_app_on(db.clone(), short_leases).await;
    let id = a
        .create_campaign_id(json!({"name": "freeze", "total_limit": limit, "status": "active"}))
        .await;
    let b = Node::start(&a).await;
    let mut promised = Vec::new();
    for i in 0..claims {
        let x = b.claim(&a, &id, &format!("b-{i}")).await;
        assert_eq!(x.status, 201, "{x:?}");
        promised.push(Acked::from_body(&x.consumer, &x.body));
    }

    // B freezes holding a lease; claims sent to it meanwhile wait inside it.
    b.signal(Signal::SIGSTOP);
    let frozen: Vec<_> = (0..10 * scale)
        .map(|i| {
            let (client, key) = (a.client.clone(), a.api_key.clone());
            let url = format!("{}/api/v1/campaigns/{id}/claims", b.base);
            actix_web::rt::spawn(async move {
                claim_once(&client, &url, &key, &format!("frozen-{i}")).await
            })
        })
        .collect();
    let reaped = eventually(
        Duration::from_secs(20),
        "A reaps the frozen node's lease",
        async || {
            let n: i64 = a
                .db_value(
                    "SELECT count(*) FROM campaign_leases l
                     WHERE l.campaign_id = $1::text::uuid AND l.released_at IS NOT NULL
                       AND EXISTS (SELECT 1 FROM coupons c WHERE c.lease_id = l.id AND c.consumer LIKE 'api:b-%')",
                    &[&id],
                )
                .await;
            (n > 0).then_some(n)
        },
    )
    .await;
    assert!(reaped > 0);
    // A sells some of what came back while B sleeps.
    for i in 0..claims {
        let (status, body) = a.claim(&id, &format!("a-{i}")).await;
        assert_eq!(status, 201, "{body}");
        promised.push(Acked::from_body(&format!("a-{i}"), &body));
    }

    b.signal(Signal::SIGCONT);
    let mut answers = Vec::new();
    for f in frozen {
        answers.push(f.await.unwrap());
    }
    for i in 0..claims {
        answers.push(b.claim(&a, &id, &format!("after-{i}")).await);
    }
    assert_clean(&answers, Duration::from_secs(60));
    promised.extend(acked(&answers));

    // No coupon carries a lease after the lease was released.
    let late: i64 = a
        .db_value(
            "SELECT count(*) FROM coupons c JOIN campaign_leases l ON l.id = c.lease_id
             WHERE c.campaign_id = $1::text::uuid AND l.released_at IS NOT NULL
               AND c.claimed_at > l.released_at",
            &[&id],
        )
        .await;
    assert_eq!(late, 0, "issued from a reaped lease");
    check_invariants(&db, &id, &promised).await;
    // Both nodes sell what is left, exactly.
    eventually(
        Duration::from_secs(20) * scale,
        "both nodes sell out",
        async || {
            let n = promised.len();
            promised.extend(sell_out_on(&a, &id, &format!("end-a{n}")).await);
            for i in 0.. {
                let x = b.claim(&a, &id, &format!("end-b{n}-{i}")).await;
                match (x.status, x.code.as_str()) {
                    (201, _) => promised.push(Acked::from_body(&x.consumer, &x.body)),
                    (409, "sold_out") | (503, "busy") => break,
                    _ => panic!("{x:?}"),
                }
            }
            (won(&a, &id).await == limit).then_some(())
        },
    )
    .await;
    let held = check_settled(&a, &id, &promised, Duration::from_secs(10)).await;
    assert_eq!(held.issued, limit);
    format!(
        "SIGSTOP past the lease ttl ({LEASE_TTL:?}): {reaped} leases reaped while frozen; \
         {} answers after SIGCONT, none from a reaped lease; {} coupons, sold out exactly",
        answers.len(),
        held.issued
    )
}
