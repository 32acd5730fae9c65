//! The server's resident memory with many idle campaigns. One campaign is created through
//! the API; the rest are copies of its row made by one `INSERT … SELECT generate_series`
//! (the API's create is that one INSERT, so the rows are what the API would write). Then
//! each campaign is claimed once, so each has had an actor, the kit waits for the server
//! to settle and reads VmRSS from /proc/<pid>/status.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::phases::Kit;
use crate::procstat::memory_bytes;
use crate::report::Row;

const NAME: &str = "kit idle_campaigns";

/// Copies of `template` with new ids and slugs (10 characters of the slug alphabet, like
/// the API's), every other column as the template has it, whatever the schema adds.
async fn copy_campaign(
    db: &tokio_postgres::Client,
    template: &str,
    copies: i64,
) -> anyhow::Result<Vec<String>> {
    let columns: Vec<String> = db
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'campaigns' \
             AND column_name NOT IN ('id', 'slug') ORDER BY ordinal_position",
            &[],
        )
        .await?
        .iter()
        .map(|r| format!("\"{}\"", r.get::<_, String>(0)))
        .collect();
    let columns = columns.join(", ");
    let sql = format!(
        "INSERT INTO campaigns (id, slug, {columns}) \
         SELECT gen_random_uuid(), \
                'z' || translate(lpad(g::text, 9, '0'), '0123456789', '23456789ab'), {columns} \
         FROM campaigns, generate_series(1, $2::bigint) g WHERE id = $1::text::uuid \
         RETURNING id::text"
    );
    let rows = db.query(&sql, &[&template, &copies]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `count` idle campaigns: their memory, and the rate of first claims (each one wakes a
/// campaign that has never had an actor).
pub async fn idle_campaigns(
    kit: &Kit,
    count: usize,
    settle: Duration,
) -> anyhow::Result<(Row, Value)> {
    let mib = |b: Option<u64>| b.map(|b| b as f64 / (1024.0 * 1024.0));
    let rss = || memory_bytes(kit.server_pid, "VmRSS");
    let at_start = rss();
    let template = kit.api.campaign(NAME, 10).await?;
    let inserted = std::time::Instant::now();
    let mut ids = copy_campaign(&kit.pg, &template.id, count as i64 - 1)
        .await
        .context("copying the idle campaigns")?;
    ids.push(template.id);
    let insert_s = inserted.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss();
    let row = Row::new(
        "idle_campaigns",
        &format!(
            "first claim on each of {} idle campaigns (each starts an actor)",
            crate::report::thousands(count as f64)
        ),
        Some(200),
    );
    let row = kit.claim_phase(row, NAME, &ids, true, 0, false).await?;
    tokio::time::sleep(settle).await;
    let after = rss();
    // Per campaign claimed (201): all of them, unless the phase was cut short or the
    // server refused to start more actors (503 `busy` beyond `engine.max_actors`).
    let claimed = row.extra["status"]["201"].as_u64().unwrap_or(0);
    let growth = before
        .zip(after)
        .filter(|_| claimed > 0)
        .map(|(b, a)| (a as f64 - b as f64) / claimed as f64);
    let memory = json!({
        "campaigns": count,
        "campaigns_claimed": claimed,
        "answers_by_status": row.extra["status"],
        "insert_seconds": insert_s,
        "rss_at_start_of_phase_mib": mib(at_start),
        "rss_before_claims_mib": mib(before),
        "rss_after_claims_mib": mib(after),
        "rss_peak_mib": mib(memory_bytes(kit.server_pid, "VmHWM")),
        "growth_per_campaign_bytes": growth,
        "settle_seconds": settle.as_secs_f64(),
    });
    Ok((row, memory))
}

/// The memory lines under the table.
pub fn describe(memory: &Value) -> String {
    let f = |k: &str| {
        memory[k]
            .as_f64()
            .map_or("?".into(), |v| format!("{v:.1} MiB"))
    };
    format!(
        "Memory with {} idle campaigns ({} claimed once, then {} s to settle): VmRSS {} before \
         the claims, {} after ({} per claimed campaign); peak {}. The {} rows were inserted in \
         {:.1} s.",
        crate::report::thousands(memory["campaigns"].as_f64().unwrap_or(0.0)),
        crate::report::thousands(memory["campaigns_claimed"].as_f64().unwrap_or(0.0)),
        memory["settle_seconds"].as_f64().unwrap_or(0.0),
        f("rss_before_claims_mib"),
        f("rss_after_claims_mib"),
        memory["growth_per_campaign_bytes"]
            .as_f64()
            .map_or("?".into(), |b| format!("{:.1} KiB", b / 1024.0)),
        f("rss_peak_mib"),
        crate::report::thousands(memory["campaigns"].as_f64().unwrap_or(0.0)),
        memory["insert_seconds"].as_f64().unwrap_or(0.0),
    )
}
