//! A million-row CSV export over HTTP: `cargo bench --bench export_million`.
//!
//! Starts the real server in this process (its private PostgreSQL cluster in a temp
//! directory, so it runs anywhere PostgreSQL is installed), inserts 1,000,000 coupons with
//! one `INSERT … SELECT generate_series`, signs a manager in to the console and downloads
//! `coupons.csv`, counting bytes and lines without keeping them. It reports rows/s and
//! this process's memory (VmHWM, the peak RSS, and VmRSS, from /proc/self/status) before
//! and after: the server runs in-process, so a file that was built in memory would show
//! as a peak the size of the file. A second download reads slowly, to show that a slow
//! client makes the server wait instead of buffering.
//! EXPORT_ROWS changes the row count; only loopback is ever contacted.

#[path = "console_sign_in.rs"]
mod console_sign_in;

use std::time::{Duration, Instant};

use ecoupon::config::Settings;
use ecoupon::domain::tenant::{hash_password, Email, NewTenant, TenantName};
use ecoupon::private_cluster::EmbeddedPostgres;
use ecoupon::startup::Application;
use serde_json::json;
use uuid::Uuid;

const PASSWORD: &str = "the quiet river bends at dawn";
const MANAGER: &str = "manager@bench.example";

fn main() -> anyhow::Result<()> {
    let rows: i64 = std::env::var("EXPORT_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    actix_web::rt::System::new().block_on(run(rows))
}

/// (VmHWM, VmRSS) in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmHWM:") / 1024.0, kib("VmRSS:") / 1024.0)
}

fn report_memory(when: &str) {
    let (hwm, rss) = memory();
    println!("{when:<28} peak RSS (VmHWM) {hwm:>7.1} MiB   RSS (VmRSS) {rss:>7.1} MiB");
}

async fn run(rows: i64) -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("ecoupon-export-bench-{}", Uuid::new_v4()));
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data.clone(),
        demo: false,
        ..Settings::default()
    };
    settings.log.level = "error".into();
    ecoupon::telemetry::init(&settings.log);
    // Started here first so the bench has its own connection for the bulk insert; the
    // application finds it running and uses it.
    let cluster = EmbeddedPostgres::start(&data.join("postgres")).await?;
    let app = Application::build(settings).await?;
    let tenant = NewTenant::generate(
        TenantName::parse("Bench")?,
        Email::parse("bench@example.com")?,
    );
    app.store().insert_tenant(&tenant).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let server = actix_web::rt::spawn(app.run_until_stopped());

    let (db, connection) = cluster
        .connect_config("ecoupon")
        .connect(tokio_postgres::NoTls)
        .await?;
    actix_web::rt::spawn(connection);
    db.execute(
        "INSERT INTO merchant_users (id, tenant_id, email, role, password_hash) VALUES ($1, $2, $3, 'manager', $4)",
        &[&Uuid::new_v4(), &tenant.id, &MANAGER, &hash_password(PASSWORD)],
    )
    .await?;
    let api = reqwest::Client::new();
    let campaign: serde_json::Value = api
        .post(format!("{base}/api/v1/campaigns"))
        .bearer_auth(&tenant.api_key.plaintext)
        .json(
            &json!({"name": "ベンチマーク 100万枚", "total_limit": 10_000_000, "status": "active"}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let campaign = campaign["id"].as_str().unwrap_or_default().to_string();

    println!("ecoupon CSV export bench: {rows} coupons\n");
    let started = Instant::now();
    db.execute(
        "INSERT INTO coupons (id, tenant_id, campaign_id, consumer, seq, won, code, claimed_at,
                              valid_from, expires_at, uses_left, secret)
         SELECT gen_random_uuid(), $1, $2::text::uuid, 'device-' || g, 1, true,
                'C' || lpad(g::text, 9, '0'),
                now() - make_interval(secs => g), now() - make_interval(secs => g),
                now() + interval '7 days', 1, '\\x00'::bytea
         FROM generate_series(1, $3::bigint) g",
        &[&tenant.id, &campaign, &rows],
    )
    .await?;
    db.batch_execute("ANALYZE coupons").await?;
    println!("inserted in {:.1} s\n", started.elapsed().as_secs_f64());

    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    console_sign_in::sign_in(&browser, &base, MANAGER, PASSWORD).await?;

    report_memory("before the download:");
    let url = format!("{base}/merchant/export/coupons.csv?bom=1");
    let started = Instant::now();
    let mut res = browser.get(&url).send().await?.error_for_status()?;
    let first_byte = started.elapsed();
    let (mut bytes, mut lines, mut chunks) = (0u64, 0u64, 0u64);
    while let Some(chunk) = res.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        chunks += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let data_rows = lines.saturating_sub(1);
    println!(
        "downloaded {data_rows} rows ({:.1} MiB in {chunks} chunks) in {secs:.2} s: {:.0} rows/s, {:.1} MiB/s (first byte after {:.2} s)",
        bytes as f64 / 1048576.0,
        data_rows as f64 / secs,
        bytes as f64 / 1048576.0 / secs,
        first_byte.as_secs_f64(),
    );
    report_memory("after the download:");
    anyhow::ensure!(
        data_rows == rows as u64,
        "expected {rows} rows, got {data_rows}"
    );

    // A client that pauses after every read: the server keeps its pace instead of
    // reading ahead, so memory stays where it was.
    let mut res = browser.get(&url).send().await?.error_for_status()?;
    let started = Instant::now();
    let mut read = 0u64;
    let mut peak_rss = 0f64;
    while started.elapsed() < Duration::from_secs(3) {
        match res.chunk().await? {
            Some(chunk) => read += chunk.len() as u64,
            None => break,
        }
        peak_rss = peak_rss.max(memory().1);
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    drop(res);
    println!(
        "slow client: read {:.1} MiB in 3 s, then went away; RSS at most {peak_rss:.1} MiB meanwhile",
        read as f64 / 1048576.0
    );
    report_memory("at the end:");

    handle.stop(true).await;
    let _ = server.await;
    let _ = cluster.stop().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
