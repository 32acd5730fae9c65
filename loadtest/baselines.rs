//! Baselines for the claim engine; no `ecoupon` imports, so engine changes can't move them.

// Included with `mod baselines;` into a bench binary that may not read every
// field or helper; the public surface is the contract, not dead code.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{ensure, Context};
use redis::AsyncCommands;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

/// Suggested task counts for a 2-core box: more only adds queueing.
pub const PG_CONCURRENCY: usize = 32;
pub const REDIS_CONCURRENCY: usize = 64;

/// High enough that no run sells out, so every claim does the full work.
const NEVER_SELLS_OUT: i64 = 1 << 40;
/// Past this a wedged claim (e.g. a stray lock holder) fails the run, not hangs it.
const GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct BaselineResult {
    pub name: &'static str,
    pub acknowledged: u64,
    pub elapsed: Duration,
    pub over_limit: bool,
    pub durable: bool,
}

impl BaselineResult {
    pub fn per_sec(&self) -> f64 {
        self.acknowledged as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bl_campaigns (
    id          uuid PRIMARY KEY,
    issued      bigint NOT NULL DEFAULT 0,
    total_limit bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS bl_coupons (
    id          uuid PRIMARY KEY,
    campaign_id uuid NOT NULL REFERENCES bl_campaigns (id) ON DELETE CASCADE,
    consumer    text NOT NULL,
    code        text NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, consumer)
);";

const NEW_CAMPAIGN: &str = "INSERT INTO bl_campaigns (id, total_limit) VALUES ($1, $2)";
const SELECT_FOR_UPDATE: &str =
    "SELECT issued, total_limit FROM bl_campaigns WHERE id = $1 FOR UPDATE";
const BUMP: &str = "UPDATE bl_campaigns SET issued = issued + 1 WHERE id = $1";
const BUMP_IF_STOCK: &str = "UPDATE bl_campaigns SET issued = issued + 1 \
    WHERE id = $1 AND issued < total_limit RETURNING issued";
const INSERT_COUPON: &str =
    "INSERT INTO bl_coupons (id, campaign_id, consumer, code) VALUES ($1, $2, $3, $4)";
// Reported rather than assumed: with either off, a committed claim can be lost.
const COMMIT_IS_DURABLE: &str = "SELECT current_setting('fsync') = 'on' \
    AND current_setting('synchronous_commit') <> 'off'";
const COUNT_CLAIMS: &str = "SELECT (SELECT count(*) FROM bl_coupons WHERE campaign_id = $1), \
    (SELECT issued FROM bl_campaigns WHERE id = $1)";
// Dropping (not just deleting) spares the next baseline this run's dead
// tuples; the lock keeps a concurrent run's tables from vanishing under it.
const CLEANUP: &str = "BEGIN;
LOCK TABLE bl_campaigns, bl_coupons IN ACCESS EXCLUSIVE MODE;
DELETE FROM bl_campaigns WHERE id = '{campaign}';
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM bl_campaigns) THEN DROP TABLE bl_coupons, bl_campaigns; END IF;
END $$;
COMMIT;";

#[derive(Clone, Copy)]
enum Variant {
    SelectForUpdate,
    AtomicUpdate,
}

/// Classic row-lock design: `SELECT ... FOR UPDATE`, then UPDATE + INSERT.
pub async fn row_lock(
    pg: &tokio_postgres::Config,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<BaselineResult> {
    run_pg(Variant::SelectForUpdate, pg, concurrency, duration).await
}

/// Row-lock design with a conditional `UPDATE ... RETURNING` instead of the
/// separate SELECT: one round trip less while the row lock is held.
pub async fn row_lock_atomic_update(
    pg: &tokio_postgres::Config,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<BaselineResult> {
    run_pg(Variant::AtomicUpdate, pg, concurrency, duration).await
}

async fn connect(pg: &tokio_postgres::Config) -> anyhow::Result<Client> {
    let (client, conn) = pg.connect(NoTls).await.context("connecting to postgres")?;
    // Ends by itself once the client is dropped.
    tokio::spawn(conn);
    Ok(client)
}

async fn run_pg(
    variant: Variant,
    pg: &tokio_postgres::Config,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<BaselineResult> {
    let (name, check_sql) = match variant {
        Variant::SelectForUpdate => ("row_lock", SELECT_FOR_UPDATE),
        Variant::AtomicUpdate => ("row_lock_atomic_update", BUMP_IF_STOCK),
    };
    let admin = connect(pg).await?;
    admin.batch_execute(SCHEMA).await?;
    let campaign = Uuid::new_v4();
    admin
        .execute(NEW_CAMPAIGN, &[&campaign, &NEVER_SELLS_OUT])
        .await?;
    let durable: bool = admin.query_one(COMMIT_IS_DURABLE, &[]).await?.get(0);

    let outcome: anyhow::Result<(u64, Duration)> = async {
        // Connections and statements are ready before the clock starts, so
        // the figure is steady-state claim throughput, not connection setup.
        let mut workers = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let client = connect(pg).await?;
            let stmts = [
                client.prepare(check_sql).await?,
                client.prepare(BUMP).await?,
                client.prepare(INSERT_COUPON).await?,
            ];
            workers.push((client, stmts));
        }
        let start = Instant::now();
        let deadline = start + duration;
        let mut tasks = JoinSet::new();
        for (task, (client, stmts)) in workers.into_iter().enumerate() {
            tasks.spawn(pg_worker(variant, client, stmts, campaign, task, deadline));
        }
        let acknowledged = join_within(tasks, deadline + GRACE).await?;
        Ok((acknowledged, start.elapsed()))
    }
    .await;
    // Checked and cleaned even if the run failed, so a failure leaves no rows.
    let counted = admin.query_one(COUNT_CLAIMS, &[&campaign]).await;
    let cleanup = CLEANUP.replace("{campaign}", &campaign.to_string());
    admin.batch_execute(&cleanup).await.context("cleanup")?;
    let (acknowledged, elapsed) = outcome?;
    let (rows, issued): (i64, i64) = counted.map(|row| (row.get(0), row.get(1)))?;
    // Every acknowledged claim must be a row, and the counter must agree.
    ensure!(
        rows as u64 == acknowledged && rows == issued,
        "{name}: {acknowledged} committed, {rows} coupon rows, issued = {issued}"
    );
    Ok(BaselineResult {
        name,
        acknowledged,
        elapsed,
        over_limit: rows > NEVER_SELLS_OUT,
        durable,
    })
}

async fn pg_worker(
    variant: Variant,
    mut client: Client,
    [check, bump, insert]: [Statement; 3],
    campaign: Uuid,
    task: usize,
    deadline: Instant,
) -> anyhow::Result<u64> {
    let mut committed = 0u64;
    while Instant::now() < deadline {
        // Unique per claim so the per-consumer unique index never rejects one.
        let consumer = format!("t{task}-{committed}");
        let code = format!("BL{task:04}{committed:010}");
        let tx = client.transaction().await?;
        let granted = match variant {
            Variant::SelectForUpdate => {
                let row = tx.query_one(&check, &[&campaign]).await?;
                let (issued, limit): (i64, i64) = (row.get(0), row.get(1));
                if issued < limit {
                    tx.execute(&bump, &[&campaign]).await?;
                }
                issued < limit
            }
            Variant::AtomicUpdate => tx.query_opt(&check, &[&campaign]).await?.is_some(),
        };
        if granted {
            tx.execute(&insert, &[&Uuid::new_v4(), &campaign, &consumer, &code])
                .await?;
        }
        tx.commit().await?;
        // Counted only after COMMIT returns: that is the acknowledgement.
        committed += u64::from(granted);
    }
    Ok(committed)
}

/// Checks stock, then the per-consumer set, then takes one unit: all inside
/// Redis' single-threaded script execution, which is what makes it atomic.
const SECKILL_LUA: &str = r"
if tonumber(redis.call('GET', KEYS[1]) or '0') <= 0 then return -1 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return -2 end
redis.call('DECR', KEYS[1])
return 1
";

/// Redis+Lua "seckill": acknowledged when Redis answers, before any fsync.
pub async fn redis_lua(
    redis_url: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<BaselineResult> {
    let client = redis::Client::open(redis_url).context("parsing redis url")?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let prefix = format!("ecoupon:bl:{}", Uuid::new_v4());
    let keys = [format!("{prefix}:stock"), format!("{prefix}:claimed")];
    let script = redis::Script::new(SECKILL_LUA);
    let () = con.set(&keys[0], NEVER_SELLS_OUT).await?;
    // Only `appendfsync always` fsyncs before replying; a server hiding
    // CONFIG is taken as not durable.
    let cfg: HashMap<String, String> = redis::cmd("CONFIG")
        .arg(&["GET", "appendonly", "appendfsync"])
        .query_async(&mut con)
        .await
        .unwrap_or_default();
    let durable = cfg.get("appendonly").is_some_and(|v| v == "yes")
        && cfg.get("appendfsync").is_some_and(|v| v == "always");

    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    for task in 0..concurrency {
        // Clones share one multiplexed socket, which pipelines the tasks.
        let (mut con, script, keys) = (con.clone(), script.clone(), keys.clone());
        tasks.spawn(async move {
            let mut acked = 0u64;
            while Instant::now() < deadline {
                let consumer = format!("t{task}-{acked}");
                let verdict: i64 = script
                    .key(&keys[0])
                    .key(&keys[1])
                    .arg(&consumer)
                    .invoke_async(&mut con)
                    .await?;
                ensure!(verdict == 1, "claim refused ({verdict}) below the limit");
                acked += 1;
            }
            Ok(acked)
        });
    }
    let outcome = join_within(tasks, deadline + GRACE).await;
    let elapsed = start.elapsed();

    let (stock, members, _deleted): (i64, u64, u64) = redis::pipe()
        .get(&keys[0])
        .scard(&keys[1])
        .del(&keys)
        .query_async(&mut con)
        .await?;
    let acknowledged = outcome?;
    ensure!(
        members == acknowledged && NEVER_SELLS_OUT - stock == acknowledged as i64,
        "redis_lua: {acknowledged} acked, {members} claimers, stock {stock}"
    );
    Ok(BaselineResult {
        name: "redis_lua",
        acknowledged,
        elapsed,
        over_limit: stock < 0,
        durable,
    })
}

type Workers = JoinSet<anyhow::Result<u64>>;

/// Sums the workers' counts; past `hard_deadline` the remaining workers are
/// aborted (dropping the JoinSet) so a wedged run cannot outlive the bench.
async fn join_within(mut tasks: Workers, hard_deadline: Instant) -> anyhow::Result<u64> {
    timeout_at(hard_deadline, async {
        let mut total = 0;
        while let Some(done) = tasks.join_next().await {
            total += done.context("baseline worker panicked")??;
        }
        Ok(total)
    })
    .await
    .context("baseline workers did not stop after their duration")?
}
