//! Live dashboards under a flash sale: `cargo bench --bench live_dashboards`.
//!
//! Starts the real server in this process (its private PostgreSQL cluster in a temp
//! directory, or `DATABASE_URL` when set), creates a tenant, a manager (one Argon2 hash)
//! and two active campaigns with a large limit, and signs the manager in to the console
//! ONCE over HTTP: every socket reuses that session cookie (the server allows many
//! sockets per session). Then, in one run:
//!
//! 1. A sale with no sockets open: CROWD keep-alive HTTP clients post claims for
//!    SALE_SECONDS, a fresh consumer per claim (as in `http_claims.rs`) → claims/s.
//! 2. DASHBOARDS sockets to `GET /merchant/live` (with the right `Origin`) are opened and
//!    each waits for its snapshot. This process's VmRSS before and after, divided by
//!    DASHBOARDS, is the memory per idle socket. The server runs in-process, so this delta
//!    also holds the client side of each socket (a tungstenite stream with 4 KiB buffers,
//!    a task, two fds): it is an UPPER bound on the server's cost.
//! 3. The same sale on the second campaign with every socket open and reading frames.
//!    Lag: the generator appends the `Instant` of every 201 to one shared list, in the
//!    order the 201s arrive, so entry n-1 is when the client had seen n coupons issued.
//!    When a socket gets a `stats` frame for that campaign with `issued = n`, its lag is
//!    now − entry n-1: the time from the newest 201 the frame reflects to the frame's
//!    arrival. A frame can arrive before the n-th 201 does (the event is published
//!    before the HTTP answer reaches the client); those count as lag 0 and are reported.
//!    Stats are coalesced by the server to one per 100 ms per socket, so ~50 ms of the
//!    lag is by design.
//!
//! The load generator (one thread) and the socket readers (another thread, so frame
//! parsing does not slow the claims loop) share the machine's cores with the server, so
//! claims/s are lower bounds and lags upper bounds. The CPU rows are this process only
//! (server, generator, readers); PostgreSQL is another process on the same cores. Only
//! loopback is ever contacted.
//! DASHBOARDS (default 1000) and SALE_SECONDS (default 5) tune it.

#[path = "console_sign_in.rs"]
mod console_sign_in;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecoupon::config::Settings;
use ecoupon::domain::tenant::{hash_password, Email, NewTenant, TenantName};
use ecoupon::private_cluster::EmbeddedPostgres;
use ecoupon::startup::Application;
use futures_util::StreamExt;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// Claim requests in flight at once.
const CROWD: usize = 256;
/// Sockets being opened at once.
const OPENING: usize = 64;
const PASSWORD: &str = "the quiet river bends at dawn";
const MANAGER: &str = "manager@bench.example";

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let dashboards: usize = env_or("DASHBOARDS", 1000);
    let seconds: u64 = env_or("SALE_SECONDS", 5);
    actix_web::rt::System::new().block_on(run(dashboards, Duration::from_secs(seconds)))
}

/// A field of /proc/self/status or /proc/self/limits, as a number.
fn proc_value(file: &str, key: &str) -> Option<f64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User + system CPU seconds of `/proc/{who}/stat` (`self`: the process, `thread-self`:
/// the calling thread), at the usual 100 clock ticks a second.
fn cpu_secs(who: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{who}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the
    // 12th and 13th from there.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// VmRSS in KiB.
fn rss_kib() -> f64 {
    proc_value("/proc/self/status", "VmRSS:").unwrap_or(0.0)
}

struct Sale {
    ok: u64,
    other: u64,
    elapsed: Duration,
    /// CPU seconds of the whole process and of the generator's thread.
    process_cpu: f64,
    generator_cpu: f64,
}

impl Sale {
    fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

async fn run(dashboards: usize, sale: Duration) -> anyhow::Result<()> {
    // Each socket is two fds in this process (client and server end).
    let needed = (2 * dashboards + 1024) as f64;
    let limit = proc_value("/proc/self/limits", "Max open files").unwrap_or(f64::MAX);
    anyhow::ensure!(
        limit >= needed,
        "open-file limit {limit} is below the {needed} this needs: raise `ulimit -n`"
    );

    let data = std::env::temp_dir().join(format!("ecoupon-live-bench-{}", Uuid::new_v4()));
    let database_url = std::env::var("DATABASE_URL").ok();
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data.clone(),
        database_url: database_url.clone(),
        demo: false,
        ..Settings::default()
    };
    settings.log.level = "error".into();
    ecoupon::telemetry::init(&settings.log);
    // Started here first (without DATABASE_URL) so the bench has its own connection to
    // insert the manager; the application finds it running and uses it.
    let (cluster, db_config) = match &database_url {
        Some(url) => (None, url.parse::<tokio_postgres::Config>()?),
        None => {
            let cluster = EmbeddedPostgres::start(&data.join("postgres")).await?;
            let config = cluster.connect_config("ecoupon");
            (Some(cluster), config)
        }
    };
    let app = Application::build(settings).await?;
    let tenant = NewTenant::generate(
        TenantName::parse("Bench")?,
        Email::parse("bench@example.com")?,
    );
    app.store().insert_tenant(&tenant).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let server = actix_web::rt::spawn(app.run_until_stopped());

    let (db, connection) = db_config.connect(tokio_postgres::NoTls).await?;
    actix_web::rt::spawn(connection);
    let manager = format!("{}-{MANAGER}", &Uuid::new_v4().simple().to_string()[..8]);
    db.execute(
        "INSERT INTO merchant_users (id, tenant_id, email, role, password_hash) VALUES ($1, $2, $3, 'manager', $4)",
        &[&Uuid::new_v4(), &tenant.id, &manager, &hash_password(PASSWORD)],
    )
    .await?;
    drop(db);

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CROWD)
        .build()?;
    let key = Arc::new(tenant.api_key.plaintext);
    let quiet = campaign(&client, &base, &key, "without sockets").await?;
    let watched = campaign(&client, &base, &key, "with sockets").await?;
    let cookie = sign_in(&base, &manager).await?;

    println!(
        "ecoupon live dashboards bench: {dashboards} sockets, {} s sales, {CROWD} claims in flight\n",
        sale.as_secs()
    );

    // 1. The sale with no sockets.
    let without = drive(&client, &base, &key, &quiet, sale, None).await;
    println!(
        "sale without sockets: {:.0} claims/s ({} created, {} other answers)",
        without.per_second(),
        without.ok,
        without.other
    );

    // 2. Open the dashboards on their own thread and runtime.
    let issued_at: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(1 << 20)));
    let stop = Arc::new(AtomicBool::new(false));
    let on_sale = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let rss_before = rss_kib();
    let readers = {
        let ws_url = base.replace("http://", "ws://") + "/merchant/live";
        let (origin, watched) = (base.clone(), watched.clone());
        let (issued_at, stop, on_sale, opened, failed) = (
            issued_at.clone(),
            stop.clone(),
            on_sale.clone(),
            opened.clone(),
            failed.clone(),
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the sockets");
            rt.block_on(dashboards_task(
                dashboards, ws_url, origin, cookie, watched, issued_at, stop, on_sale, opened,
                failed,
            ))
        })
    };
    let opening = Instant::now();
    while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < dashboards as u64 {
        anyhow::ensure!(
            opening.elapsed() < Duration::from_secs(120),
            "only {} of {dashboards} sockets got a snapshot in 120 s",
            opened.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open_secs = opening.elapsed().as_secs_f64();
    let n_open = opened.load(Ordering::Relaxed);
    anyhow::ensure!(
        n_open > 0,
        "no socket opened ({} failed)",
        failed.load(Ordering::Relaxed)
    );
    // Let allocations settle (first pings, timers) before reading RSS.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss_kib();
    let per_socket = (rss_after - rss_before) / n_open as f64;
    println!(
        "opened {n_open} sockets ({} failed) with snapshots in {open_secs:.1} s; RSS {:.1} → {:.1} MiB",
        failed.load(Ordering::Relaxed),
        rss_before / 1024.0,
        rss_after / 1024.0
    );

    // 3. The sale with the sockets open.
    on_sale.store(true, Ordering::Relaxed);
    let with = drive(&client, &base, &key, &watched, sale, Some(&issued_at)).await;
    // Let the last coalesced stats arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let result = tokio::task::spawn_blocking(move || readers.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the socket thread panicked"))?;
    println!(
        "sale with sockets:    {:.0} claims/s ({} created, {} other answers)",
        with.per_second(),
        with.ok,
        with.other
    );

    let mut lags = result.lags_us;
    lags.sort_unstable();
    let pct = |p: f64| {
        let i = ((lags.len() as f64 - 1.0) * p).round() as usize;
        lags.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    let ratio = with.per_second() / without.per_second();
    println!(
        "{} stats frames ({} arrived before the 201 they reflect: lag 0), {} sockets closed early\n",
        lags.len(),
        result.early,
        result.closed
    );
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| claims/s without sockets | {:.0} | |",
        without.per_second()
    );
    println!(
        "| claims/s with {n_open} sockets | {:.0} | |",
        with.per_second()
    );
    println!("| ratio with / without | {ratio:.2} | ≥ 0.9 |");
    println!("| lag p50 (201 → stats frame) | {:.1} ms | |", pct(0.5));
    let late = &lags[(result.early as usize).min(lags.len())..];
    let late_pct = |p: f64| {
        let i = ((late.len() as f64 - 1.0) * p).round() as usize;
        late.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!("| lag p99 | {:.1} ms | ≤ 250 ms |", pct(0.99));
    println!("| lag max | {:.1} ms | |", pct(1.0));
    println!(
        "| lag p50 / p99 over frames that came after their 201 only | {:.1} / {:.1} ms | |",
        late_pct(0.5),
        late_pct(0.99)
    );
    for (name, sale) in [("without", &without), ("with", &with)] {
        let secs = sale.elapsed.as_secs_f64();
        println!(
            "| CPU {name} sockets: process / generator thread | {:.2} / {:.2} cores | |",
            sale.process_cpu / secs,
            sale.generator_cpu / secs
        );
    }
    println!(
        "| CPU of the socket-reader thread during the sale | {:.2} cores | |",
        result.reader_cpu / with.elapsed.as_secs_f64()
    );
    println!(
        "| RSS per idle socket (server + client, upper bound) | {per_socket:.1} KiB | ≤ 64 KiB |"
    );

    handle.stop(true).await;
    let _ = server.await;
    if let Some(cluster) = cluster {
        let _ = cluster.stop().await;
    }
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

async fn campaign(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    name: &str,
) -> anyhow::Result<String> {
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/campaigns"))
        .bearer_auth(key)
        .json(&json!({"name": name, "total_limit": 10_000_000, "status": "active"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(created["id"].as_str().unwrap_or_default().to_string())
}

/// Signs the manager in over HTTP; returns the `Cookie` header to reuse.
async fn sign_in(base: &str, email: &str) -> anyhow::Result<String> {
    let jar = Arc::new(Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    console_sign_in::sign_in(&browser, base, email, PASSWORD).await?;
    let cookie = jar
        .cookies(&base.parse()?)
        .ok_or_else(|| anyhow::anyhow!("no session cookie after sign-in"))?;
    Ok(cookie.to_str()?.to_string())
}

/// CROWD tasks claim until the phase ends, a fresh consumer per claim. With `issued_at`,
/// each 201's arrival is appended to it.
async fn drive(
    client: &reqwest::Client,
    base: &str,
    key: &Arc<String>,
    campaign: &str,
    phase: Duration,
    issued_at: Option<&Arc<Mutex<Vec<Instant>>>>,
) -> Sale {
    let url = Arc::new(format!("{base}/api/v1/campaigns/{campaign}/claims"));
    let (process_cpu, generator_cpu) = (cpu_secs("self"), cpu_secs("thread-self"));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CROWD)
        .map(|t| {
            let (client, key, url) = (client.clone(), key.clone(), url.clone());
            let issued_at = issued_at.cloned();
            actix_web::rt::spawn(async move {
                let (mut ok, mut other, mut n) = (0u64, 0u64, 0u64);
                while started.elapsed() < phase {
                    let consumer = format!("{t}-{n}");
                    n += 1;
                    let res = client
                        .post(url.as_str())
                        .bearer_auth(key.as_str())
                        .json(&json!({ "consumer": consumer }))
                        .send()
                        .await;
                    if matches!(res.map(|r| r.status().as_u16()), Ok(201)) {
                        if let Some(list) = &issued_at {
                            let now = Instant::now();
                            list.lock().expect("the 201 list").push(now);
                        }
                        ok += 1;
                    } else {
                        other += 1;
                    }
                }
                (ok, other)
            })
        })
        .collect();
    let mut sale = Sale {
        ok: 0,
        other: 0,
        elapsed: Duration::ZERO,
        process_cpu: 0.0,
        generator_cpu: 0.0,
    };
    for t in tasks {
        if let Ok((ok, other)) = t.await {
            sale.ok += ok;
            sale.other += other;
        }
    }
    sale.elapsed = started.elapsed();
    sale.process_cpu = cpu_secs("self") - process_cpu;
    sale.generator_cpu = cpu_secs("thread-self") - generator_cpu;
    sale
}

#[derive(Default)]
struct Readings {
    lags_us: Vec<u32>,
    early: u64,
    closed: u64,
    /// CPU seconds of the socket thread from the sale's start to `stop`.
    reader_cpu: f64,
}

/// Opens `count` sockets (OPENING at a time), each reading frames until `stop`.
#[allow(clippy::too_many_arguments)]
async fn dashboards_task(
    count: usize,
    url: String,
    origin: String,
    cookie: String,
    watched: String,
    issued_at: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
    on_sale: Arc<AtomicBool>,
    opened: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) -> Readings {
    let gate = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let cpu = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !on_sale.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let start = cpu_secs("thread-self");
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            cpu_secs("thread-self") - start
        })
    };
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (url, origin, cookie, watched) =
                (url.clone(), origin.clone(), cookie.clone(), watched.clone());
            let (issued_at, stop, opened, failed, gate) = (
                issued_at.clone(),
                stop.clone(),
                opened.clone(),
                failed.clone(),
                gate.clone(),
            );
            tokio::spawn(async move {
                let mut out = Readings::default();
                let permit = gate.acquire_owned().await;
                let ws = open(&url, &origin, &cookie).await;
                let Ok(mut ws) = ws else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return out;
                };
                // The snapshot first.
                loop {
                    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"snapshot\"") => break,
                        Ok(Some(Ok(_))) => continue,
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            return out;
                        }
                    }
                }
                drop(permit);
                opened.fetch_add(1, Ordering::Relaxed);
                while !stop.load(Ordering::Relaxed) {
                    let frame =
                        match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                            Err(_) => continue,
                            Ok(Some(Ok(f))) => f,
                            Ok(_) => {
                                out.closed += 1;
                                break;
                            }
                        };
                    let Message::Text(text) = frame else { continue };
                    let now = Instant::now();
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                        continue;
                    };
                    if v["type"] != "stats" || v["campaign_id"] != watched.as_str() {
                        continue;
                    }
                    let Some(n) = v["issued"].as_u64().filter(|n| *n > 0) else {
                        continue;
                    };
                    let seen = issued_at
                        .lock()
                        .expect("the 201 list")
                        .get(n as usize - 1)
                        .copied();
                    match seen {
                        Some(at) => out.lags_us.push(
                            now.saturating_duration_since(at)
                                .as_micros()
                                .min(u32::MAX as u128) as u32,
                        ),
                        None => {
                            out.early += 1;
                            out.lags_us.push(0);
                        }
                    }
                }
                let _ = ws.close(None).await;
                out
            })
        })
        .collect();
    let mut all = Readings::default();
    for t in tasks {
        if let Ok(r) = t.await {
            all.lags_us.extend(r.lags_us);
            all.early += r.early;
            all.closed += r.closed;
        }
    }
    all.reader_cpu = cpu.await.unwrap_or(0.0);
    all
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(url: &str, origin: &str, cookie: &str) -> anyhow::Result<Socket> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    req.headers_mut().insert("origin", origin.parse()?);
    // A lean client: small buffers, so the RSS delta is mostly the server's.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    Ok(ws)
}
