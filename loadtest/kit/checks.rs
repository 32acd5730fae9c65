//! The invariants, checked in SQL after every claim phase on that phase's campaigns
//! (each phase makes its own, named after it):
//! - no campaign issued more coupons than its limit;
//! - the coupons in the database are exactly the 201 answers the generator counted (none
//!   acknowledged and lost, none written and not acknowledged);
//! - no consumer holds more claims on a campaign than its per-consumer limit.

use serde_json::json;
use tokio_postgres::Client;

#[derive(Debug, Clone)]
pub struct Check {
    pub ok: bool,
    /// What was compared, e.g. "201s 1234 = coupons 1234; 0 over limit; 0 consumers over".
    pub detail: String,
}

impl Check {
    pub fn to_json(&self) -> serde_json::Value {
        json!({ "ok": self.ok, "detail": self.detail })
    }

    pub fn failed(detail: String) -> Check {
        Check { ok: false, detail }
    }
}

const OVER_LIMIT: &str = "SELECT count(*) FROM campaigns k WHERE k.name = $1 AND \
    (SELECT count(*) FROM coupons c WHERE c.campaign_id = k.id AND c.won) > k.total_limit";
const COUPONS: &str = "SELECT count(*) FROM coupons c JOIN campaigns k ON k.id = c.campaign_id \
    WHERE k.name = $1 AND c.won";
const CONSUMERS_OVER: &str = "SELECT count(*) FROM (SELECT c.campaign_id, c.consumer \
    FROM coupons c JOIN campaigns k ON k.id = c.campaign_id WHERE k.name = $1 \
    GROUP BY c.campaign_id, c.consumer HAVING count(*) > max(k.per_consumer_limit)) over";
const REDEMPTIONS: &str = "SELECT count(*) FROM redemptions r JOIN campaigns k \
    ON k.id = r.campaign_id WHERE k.name = $1 AND r.undone_at IS NULL";

async fn count(db: &Client, sql: &str, name: &str) -> anyhow::Result<i64> {
    Ok(db.query_one(sql, &[&name]).await?.get(0))
}

/// The claim invariants for the campaigns named `name`, given the 201s counted. `slack`:
/// claims the generator abandoned in flight (a phase cut short), which may be coupons
/// without a counted 201; 0 for a phase that waited for every answer.
pub async fn claims(db: &Client, name: &str, acknowledged: u64, slack: u64) -> Check {
    let counted = async {
        Ok::<_, anyhow::Error>((
            count(db, OVER_LIMIT, name).await?,
            count(db, COUPONS, name).await?,
            count(db, CONSUMERS_OVER, name).await?,
        ))
    }
    .await;
    match counted {
        Ok((over_limit, coupons, consumers_over)) => {
            let (a, c) = (acknowledged as i64, coupons);
            let slack_note = if slack > 0 {
                format!(" (up to {slack} more allowed: claims abandoned in flight)")
            } else {
                String::new()
            };
            Check {
                ok: over_limit == 0 && c >= a && c <= a + slack as i64 && consumers_over == 0,
                detail: format!(
                    "201s {acknowledged} vs coupons {coupons}{slack_note}; campaigns over limit \
                     {over_limit}; consumers over limit {consumers_over}"
                ),
            }
        }
        Err(e) => Check::failed(format!("checking {name:?}: {e:#}")),
    }
}

/// The till's redemptions: one row per 201 the generator counted.
pub async fn redemptions(db: &Client, name: &str, acknowledged: u64) -> Check {
    match count(db, REDEMPTIONS, name).await {
        Ok(rows) => Check {
            ok: rows == acknowledged as i64,
            detail: format!("redemption 201s {acknowledged} vs rows {rows}"),
        },
        Err(e) => Check::failed(format!("checking redemptions of {name:?}: {e:#}")),
    }
}

/// Several checks as one.
pub fn all(checks: Vec<Check>) -> Check {
    Check {
        ok: checks.iter().all(|c| c.ok),
        detail: checks
            .into_iter()
            .map(|c| c.detail)
            .collect::<Vec<_>>()
            .join("; "),
    }
}
