//! Claim-engine benchmark: `cargo bench --bench claims`.
//!
//! Drives the real engine (actors, leases, batched inserts, real PostgreSQL) on one hot
//! campaign and measures, in one run so the ratios are fair on a noisy machine:
//! - durable claims per second (each answered after COMMIT) and the batch sizes that gave;
//! - sold-out rejections per second;
//! - the baselines: a per-claim row-lock transaction, and the Redis+Lua "seckill" script.
//!
//! Uses DATABASE_URL, else 127.0.0.1:5432, else a private cluster; REDIS_URL, else
//! 127.0.0.1:6379 (skipped if unreachable). BENCH_SECONDS sets each phase's length.

#[path = "baselines.rs"]
mod baselines;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecoupon::config::EngineSettings;
use ecoupon::domain::campaign::{CampaignDraft, NewCampaign, RulesParams};
use ecoupon::domain::consumer::ConsumerRef;
use ecoupon::domain::tenant::{Email, NewTenant, TenantName};
use ecoupon::engine::Engine;
use ecoupon::store::{run_migrations, Store};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// Claims in flight at once: a flash sale's crowd.
const CROWD: usize = 2_000;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let phase = Duration::from_secs(seconds);
    actix_web::rt::System::new().block_on(run(phase))
}

async fn admin_config() -> anyhow::Result<(
    tokio_postgres::Config,
    Option<ecoupon::private_cluster::EmbeddedPostgres>,
)> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok((url.parse()?, None));
    }
    let local: tokio_postgres::Config =
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres".parse()?;
    if local.connect(NoTls).await.is_ok() {
        return Ok((local, None));
    }
    let root = std::env::temp_dir().join("ecoupon-bench-pg");
    let cluster = ecoupon::private_cluster::EmbeddedPostgres::start(&root).await?;
    Ok((cluster.connect_config("postgres"), Some(cluster)))
}

async fn run(phase: Duration) -> anyhow::Result<()> {
    let handle = ecoupon::metrics::install();
    let (admin, _cluster) = admin_config().await?;
    let (client, conn) = admin.connect(NoTls).await?;
    actix_web::rt::spawn(conn);
    let db = format!("ecoupon_bench_{}", Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let mut config = admin.clone();
    config.dbname(&db);

    let result = bench(config.clone(), phase, &handle).await;
    let _ = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
    result
}

async fn bench(
    config: tokio_postgres::Config,
    phase: Duration,
    handle: &metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<()> {
    let mut settings = ecoupon::config::Settings::default();
    settings.database.pool_size = 16;
    let store = Store::connect(config.clone(), &settings.database).await?;
    run_migrations(&store).await?;
    let tenant = NewTenant::generate(
        TenantName::parse("Bench")?,
        Email::parse("bench@example.com")?,
    );
    store.insert_tenant(&tenant).await?;
    let tenant = tenant.id;
    let engine = Engine::start(store.clone(), EngineSettings::default()).await;

    println!(
        "ecoupon claim benchmark: {} s per phase, {CROWD} claims in flight\n",
        phase.as_secs()
    );

    // Durable claims on one hot campaign that never sells out during the phase.
    let hot = campaign(&store, tenant, 10_000_000).await?;
    let (claims, elapsed) = drive(&engine, tenant, hot, phase).await;
    let durable_rate = claims as f64 / elapsed.as_secs_f64();
    let committed = count(&store, hot).await?;
    assert_eq!(
        committed, claims as i64,
        "every acknowledged claim is in the database"
    );
    let (batches, rows) = batch_stats(&handle.render());
    println!(
        "engine: durable claims      {durable_rate:>10.0} /s   ({claims} in {:.1} s)",
        elapsed.as_secs_f64()
    );
    println!(
        "engine: mean batch size     {:>10.1} rows ({batches} batches)",
        rows / batches.max(1.0)
    );

    // Sold-out rejections: the crowd that arrives after the last coupon.
    let small = campaign(&store, tenant, 100).await?;
    let _ = drive(&engine, tenant, small, Duration::from_millis(500)).await;
    let (rejections, elapsed) = drive_sold_out(&engine, tenant, small, phase).await;
    let sold_out_rate = rejections as f64 / elapsed.as_secs_f64();
    println!("engine: sold-out rejections {sold_out_rate:>10.0} /s");
    assert_eq!(count(&store, small).await?, 100, "never over the limit");

    let pg = baselines::row_lock(&config, baselines::PG_CONCURRENCY, phase).await?;
    println!(
        "baseline: row lock          {:>10.0} /s  (durable)",
        pg.per_sec()
    );
    let pg2 = baselines::row_lock_atomic_update(&config, baselines::PG_CONCURRENCY, phase).await?;
    println!(
        "baseline: row lock, 1 stmt  {:>10.0} /s  (durable)",
        pg2.per_sec()
    );
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = baselines::redis_lua(&redis_url, baselines::REDIS_CONCURRENCY, phase).await;
    match &redis {
        Ok(r) => println!(
            "baseline: Redis+Lua         {:>10.0} /s  (acknowledged before durable)",
            r.per_sec()
        ),
        Err(e) => println!("baseline: Redis+Lua skipped: {e}"),
    }

    println!("\nratios (same run):");
    println!(
        "  engine / row lock         {:>8.1}x",
        durable_rate / pg.per_sec().max(pg2.per_sec())
    );
    if let Ok(r) = &redis {
        println!(
            "  engine / Redis+Lua        {:>8.2}x  (engine durable, Redis not)",
            durable_rate / r.per_sec()
        );
    }
    println!("  peak RSS                  {:>8} MiB", peak_rss_mib());
    engine.shutdown().await;
    Ok(())
}

async fn campaign(store: &Store, tenant: Uuid, limit: i64) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    let slug = id.simple().to_string();
    let draft = CampaignDraft {
        name: "bench".into(),
        description: None,
        terms: None,
        discount: None,
        rules: RulesParams {
            total_limit: limit,
            per_consumer_limit: 1,
            claim_starts_at: Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
            claim_ends_at: None,
            use_starts_at: None,
            use_ends_at: None,
            valid_for_seconds: None,
            uses_per_coupon: 1,
            win_probability: None,
        },
        status: Some("active".into()),
        signin: None,
        code_length: None,
        code_prefix: None,
        code_charset: None,
    };
    let new = NewCampaign::parse(draft, chrono::Utc::now()).map_err(|e| anyhow::anyhow!(e))?;
    store.insert_campaign(id, tenant, &slug[..12], &new).await?;
    Ok(id)
}

/// CROWD tasks claim with fresh consumers until the phase ends; returns coupons issued.
async fn drive(engine: &Engine, tenant: Uuid, campaign: Uuid, phase: Duration) -> (u64, Duration) {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CROWD)
        .map(|t| {
            let (engine, issued) = (engine.clone(), issued.clone());
            actix_web::rt::spawn(async move {
                let mut n = 0u64;
                while started.elapsed() < phase {
                    let consumer = ConsumerRef::parse(&format!("{t}-{n}")).expect("valid consumer");
                    n += 1;
                    if engine.claim(tenant, campaign, consumer).await.is_ok() {
                        issued.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    (issued.load(Ordering::Relaxed), started.elapsed())
}

async fn drive_sold_out(
    engine: &Engine,
    tenant: Uuid,
    campaign: Uuid,
    phase: Duration,
) -> (u64, Duration) {
    let rejected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CROWD)
        .map(|t| {
            let (engine, rejected) = (engine.clone(), rejected.clone());
            let consumer = ConsumerRef::parse(&format!("late-{t}")).expect("valid consumer");
            actix_web::rt::spawn(async move {
                while started.elapsed() < phase {
                    if engine
                        .claim(tenant, campaign, consumer.clone())
                        .await
                        .is_err()
                    {
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    (rejected.load(Ordering::Relaxed), started.elapsed())
}

async fn count(store: &Store, campaign: Uuid) -> anyhow::Result<i64> {
    Ok(store.campaign_stats(campaign, i64::MAX).await?.issued)
}

/// (batches, rows) from the `ecoupon_batch_size` histogram.
fn batch_stats(text: &str) -> (f64, f64) {
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("ecoupon_batch_size_count"),
        value("ecoupon_batch_size_sum"),
    )
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
