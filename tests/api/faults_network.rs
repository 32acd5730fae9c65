//! A network partition between a node and PostgreSQL, through a TCP proxy the test
//! controls: while cut, no byte moves either way (and new connections hang), as with a
//! dropped route; healed, the queued bytes flow again. Ends with the invariant check.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::Host;

use crate::faults::{acked, assert_clean, Load};
use crate::helpers::{
    eventually, fresh_database, spawn_app_on, test_settings, to_conninfo, TestDatabase,
};
use crate::invariants::check_settled;

/// Forwards TCP connections to the database; `cut` stops every byte until healed.
struct Partition {
    cut: Arc<AtomicBool>,
    port: u16,
}

impl Partition {
    async fn start(db: &TestDatabase) -> Partition {
        let config: tokio_postgres::Config = db.url.parse().unwrap();
        let upstream = match (config.get_hosts().first(), config.get_ports().first()) {
            (Some(Host::Tcp(h)), Some(p)) => Upstream::Tcp(format!("{h}:{p}")),
            (Some(Host::Unix(dir)), Some(p)) => Upstream::Unix(dir.join(format!(".s.PGSQL.{p}"))),
            other => panic!("cannot proxy to {other:?}"),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let c = cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (cut, upstream) = (c.clone(), upstream.clone());
                tokio::spawn(async move {
                    while cut.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let (cr, cw) = client.into_split();
                    match upstream {
                        Upstream::Tcp(addr) => {
                            let (sr, sw) = tokio::net::TcpStream::connect(addr)
                                .await
                                .unwrap()
                                .into_split();
                            tokio::join!(pump(cr, sw, cut.clone()), pump(sr, cw, cut));
                        }
                        Upstream::Unix(path) => {
                            let (sr, sw) = tokio::net::UnixStream::connect(path)
                                .await
                                .unwrap()
                                .into_split();
                            tokio::join!(pump(cr, sw, cut.clone()), pump(sr, cw, cut));
                        }
                    }
                });
            }
        });
        Partition { cut, port }
    }

    /// The database URL through the proxy.
    fn url(&self, db: &TestDatabase) -> String {
        let mut config: tokio_postgres::Config = db.url.parse().unwrap();
        let name = config.get_dbname().unwrap().to_string();
        let user = config.get_user().unwrap_or("postgres").to_string();
        config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(&user)
            .dbname(&name);
        if let Some(pw) = db
            .url
            .parse::<tokio_postgres::Config>()
            .unwrap()
            .get_password()
        {
            config.password(pw);
        }
        to_conninfo(&config)
    }

    fn set(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }
}

#[derive(Clone)]
enum Upstream {
    Tcp(String),
    Unix(std::path::PathBuf),
}

/// Copies bytes one way; while cut, reads nothing (the bytes wait in the kernel, as in a
/// partition that heals).
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    cut: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while cut.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A read that was already waiting when the cut began: hold its bytes until healed.
        while cut.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[actix_web::test]
async fn a_partition_from_postgres_healed_after_10_s_answers_cleanly_and_recovers() {
    eprintln!("{}", partition(1).await);
}

/// The partition fault with `scale` times the stock (1 in the suite, more in the chaos
/// mode); the cut always lasts 10 s. Panics on a broken promise, else returns what it saw.
pub async fn partition(scale: u32) -> String {
    let limit = 600 * i64::from(scale);
    let db = fresh_database().await;
    let partition = Partition::start(&db).await;
    let url = partition.url(&db);
    let app = spawn_app_on(db.clone(), move |db| {
        let mut s = test_settings(db);
        s.database_url = Some(url);
        s.database.connect_timeout = Duration::from_secs(1);
        s.database.acquire_timeout = Duration::from_secs(1);
        s.engine.batch_timeout = Duration::from_secs(2);
        s.engine.lease_ttl = Duration::from_secs(3);
        s
    })
    .await;
    let id = app
        .create_campaign_id(json!({"name": "partition", "total_limit": limit, "status": "active"}))
        .await;

    let load = Load::start(&app, &id, 8, "c");
    eventually(Duration::from_secs(30), "100 coupons issued", async || {
        let n: i64 = app
            .db_value(
                "SELECT count(*) FROM coupons WHERE campaign_id = $1::text::uuid",
                &[&id],
            )
            .await;
        (n >= 100 * i64::from(scale)).then_some(())
    })
    .await;
    partition.set(true);
    let cut_at = Instant::now();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz shows the partition");
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(cut_at.elapsed())).await;
    partition.set(false);
    let healed_at = Instant::now();
    eventually(
        Duration::from_secs(15),
        "/readyz is ready again",
        async || {
            let res = app.client.get(app.url("/readyz")).send().await.ok()?;
            (res.status() == 200).then_some(())
        },
    )
    .await;
    let ready_after = healed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answers = load.stop().await;
    // Claims during the cut wait at most for the batch or pool timeout, never for the cut.
    assert_clean(&answers, Duration::from_secs(8));
    let during: Vec<_> = answers
        .iter()
        .filter(|a| a.at > cut_at + Duration::from_secs(3) && a.at < healed_at)
        .collect();
    assert!(
        !during.is_empty() && during.iter().all(|a| a.status == 503),
        "cut off, the node answers 503"
    );
    let first_201_after = answers
        .iter()
        .filter(|a| a.status == 201 && a.at > healed_at)
        .map(|a| a.at.duration_since(healed_at))
        .min()
        .expect("claims were issued after the partition healed");
    let unknown = answers
        .iter()
        .filter(|a| a.code == "outcome_unknown")
        .count();
    let busy = answers.iter().filter(|a| a.code == "busy").count();

    // Whatever was cut mid-flight is counted back: the rest sells out exactly.
    let mut promised = acked(&answers);
    let sold = eventually(
        Duration::from_secs(20) * scale,
        "the rest sells out",
        async || {
            let n = promised.len();
            for i in 0.. {
                let (status, body) = app.claim(&id, &format!("after-{n}-{i}")).await;
                match (status, crate::helpers::error_code(&body)) {
                    (201, _) => promised.push(crate::invariants::Acked::from_body(
                        &format!("after-{n}-{i}"),
                        &body,
                    )),
                    (409, "sold_out") => break,
                    other => panic!("{other:?} {body}"),
                }
            }
            let won: i64 = app
                .db_value(
                    "SELECT count(*) FROM coupons WHERE campaign_id = $1::text::uuid AND won",
                    &[&id],
                )
                .await;
            (won == limit).then_some(healed_at.elapsed())
        },
    )
    .await;
    let held = check_settled(&app, &id, &promised, Duration::from_secs(10)).await;
    assert_eq!(held.issued, limit);
    format!(
        "partition 10 s: {} answers ({busy} busy, {unknown} outcome_unknown); /readyz back {ready_after:?} \
         and first 201 {first_201_after:?} after healing; sold out {sold:?} after healing",
        answers.len()
    )
}
