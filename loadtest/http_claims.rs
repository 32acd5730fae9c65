//! HTTP-level claim load test: `cargo bench --bench http_claims`.
//!
//! Starts the real server (its private PostgreSQL cluster in a temp directory, so it runs
//! anywhere PostgreSQL is installed), then a crowd of keep-alive HTTP clients posts claims
//! to one hot campaign and, after it sells out, to a sold-out one. Reports throughput and
//! client-side latency percentiles. The load generator shares the machine's cores with the
//! server, so these are lower bounds for a server on its own machine.
//! BENCH_SECONDS sets each phase's length; only loopback is ever contacted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ecoupon::config::Settings;
use ecoupon::domain::tenant::{Email, NewTenant, TenantName};
use ecoupon::startup::Application;
use serde_json::json;

/// Requests in flight at once.
const CROWD: usize = 256;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    actix_web::rt::System::new().block_on(run(Duration::from_secs(seconds)))
}

struct Phase {
    ok: u64,
    rejected: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Phase {
    fn report(&mut self, name: &str) {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{name:<22} {:>8.0} /s  ({} ok, {} refused, {} errors)  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            (self.ok + self.rejected) as f64 / secs,
            self.ok,
            self.rejected,
            self.errors,
            pct(0.5),
            pct(0.99),
            pct(1.0),
        );
    }
}

async fn run(phase: Duration) -> anyhow::Result<()> {
    let data = std::env::temp_dir().join(format!("ecoupon-http-bench-{}", uuid::Uuid::new_v4()));
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data.clone(),
        demo: false,
        ..Settings::default()
    };
    settings.log.level = "error".into();
    ecoupon::telemetry::init(&settings.log);
    let app = Application::build(settings).await?;
    let tenant = NewTenant::generate(
        TenantName::parse("Bench")?,
        Email::parse("bench@example.com")?,
    );
    app.store().insert_tenant(&tenant).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let server = actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CROWD)
        .build()?;
    let key = Arc::new(tenant.api_key.plaintext);

    println!(
        "ecoupon HTTP claim load test: {} s per phase, {CROWD} requests in flight\n",
        phase.as_secs()
    );
    let hot = campaign(&client, &base, &key, 10_000_000).await?;
    let mut claims = drive(&client, &base, &key, &hot, phase, false).await;
    claims.report("durable claims");

    let small = campaign(&client, &base, &key, 100).await?;
    let _ = drive(
        &client,
        &base,
        &key,
        &small,
        Duration::from_millis(500),
        false,
    )
    .await;
    let mut sold_out = drive(&client, &base, &key, &small, phase, true).await;
    sold_out.report("sold-out answers");

    handle.stop(true).await;
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

async fn campaign(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    limit: i64,
) -> anyhow::Result<String> {
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/campaigns"))
        .bearer_auth(key)
        .json(&json!({"name": "load", "total_limit": limit, "status": "active"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(created["id"].as_str().unwrap_or_default().to_string())
}

/// CROWD tasks claim until the phase ends. `same_consumers`: each task reuses one consumer
/// (the crowd that keeps pressing after the sale), else every claim is a new consumer.
async fn drive(
    client: &reqwest::Client,
    base: &str,
    key: &Arc<String>,
    campaign: &str,
    phase: Duration,
    same_consumers: bool,
) -> Phase {
    let url = Arc::new(format!("{base}/api/v1/campaigns/{campaign}/claims"));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CROWD)
        .map(|t| {
            let (client, key, url) = (client.clone(), key.clone(), url.clone());
            actix_web::rt::spawn(async move {
                let mut out = Phase {
                    ok: 0,
                    rejected: 0,
                    errors: 0,
                    elapsed: Duration::ZERO,
                    latencies_us: Vec::new(),
                };
                let mut n = 0u64;
                while started.elapsed() < phase {
                    let consumer = if same_consumers {
                        format!("late-{t}")
                    } else {
                        format!("{t}-{n}")
                    };
                    n += 1;
                    let sent = Instant::now();
                    let res = client
                        .post(url.as_str())
                        .bearer_auth(key.as_str())
                        .json(&json!({ "consumer": consumer }))
                        .send()
                        .await;
                    out.latencies_us
                        .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    match res.map(|r| r.status().as_u16()) {
                        Ok(201) => out.ok += 1,
                        Ok(409) => out.rejected += 1,
                        _ => out.errors += 1,
                    }
                }
                out
            })
        })
        .collect();
    let mut total = Phase {
        ok: 0,
        rejected: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        if let Ok(p) = t.await {
            total.ok += p.ok;
            total.rejected += p.rejected;
            total.errors += p.errors;
            total.latencies_us.extend(p.latencies_us);
        }
    }
    total.elapsed = started.elapsed();
    total
}
