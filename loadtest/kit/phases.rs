//! One function per measured phase. Each makes its own campaigns (named after the phase,
//! so the invariants look at exactly its coupons), measures CPU around the load, and
//! returns a [`Row`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use crate::api::{self, Api};
use crate::baselines;
use crate::checks;
use crate::procstat::Meter;
use crate::report::Row;
use crate::scenarios;
use crate::wrk::{Load, Scripts, WrkResult};

/// What every phase needs.
pub struct Kit {
    pub api: Api,
    pub pg: Arc<tokio_postgres::Client>,
    pub pg_config: tokio_postgres::Config,
    pub server_pid: u32,
    /// The server's log file (stdout and stderr).
    pub log: PathBuf,
    pub scripts: Scripts,
    pub scratch: PathBuf,
    /// Length of each load phase.
    pub seconds: f64,
}

impl Kit {
    fn load(&self, connections: usize) -> Load<'_> {
        Load {
            base: &self.api.base,
            connections,
            seconds: self.seconds,
        }
    }

    async fn meter(&self) -> Meter {
        Meter::start(self.server_pid, &self.pg, &self.log).await
    }

    fn auth_header(&self) -> String {
        format!("Authorization: Bearer {}", self.api.key)
    }

    /// wrk claims over the `ids` campaigns in `file` (see claim.lua), unmetered. A "once"
    /// phase ends when every campaign has been answered; its limit allows for at least
    /// 250 first claims a second, and what fell short of it is the second value.
    async fn claims(
        &self,
        connections: usize,
        file: &std::path::Path,
        ids: usize,
        once: bool,
        tag: &str,
        keyed: bool,
    ) -> anyhow::Result<(WrkResult, Option<String>)> {
        let mut load = self.load(connections);
        if once {
            load.seconds = 30.0 + ids as f64 / 250.0;
        }
        let result = load
            .claims(&self.scripts, &self.api.key, file, once, tag, keyed)
            .await?;
        let answered: u64 = result.status.values().sum();
        let short = (once && answered < ids as u64).then(|| {
            format!(
                "{} of {ids} campaigns got no answer within the phase's limit of {:.0} s \
                 (answers by status: {:?})",
                ids as u64 - answered,
                load.seconds,
                result.status
            )
        });
        Ok((result, short))
    }

    /// Claims spread over `ids` with a fresh consumer each, metered; `name` is the
    /// campaigns' name for the invariants, `extra_201` any 201s the setup already got;
    /// `keyed` sends an `Idempotency-Key` with each.
    pub async fn claim_phase(
        &self,
        mut row: Row,
        name: &str,
        ids: &[String],
        once: bool,
        extra_201: u64,
        keyed: bool,
    ) -> anyhow::Result<Row> {
        let file = api::ids_file(&self.scratch, &row.key, ids)?;
        let connections = row.connections.unwrap_or(200);
        let meter = self.meter().await;
        let (result, short) = self
            .claims(connections, &file, ids.len(), once, &row.key, keyed)
            .await?;
        let usage = meter.finish(&self.pg).await;
        row = row.with_wrk(&result, usage);
        // A "once" phase cut short left up to one claim per connection unanswered, which
        // the server may still have committed.
        let slack = if short.is_some() {
            connections as u64
        } else {
            0
        };
        if slack > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        let acknowledged = result.count(201) + extra_201;
        row.check = Some(checks::claims(&self.pg, name, acknowledged, slack).await);
        row.error = short.or_else(|| sockets_ok(&result).err().map(|e| e.to_string()));
        Ok(row)
    }
}

/// Socket errors mean the generator, not the server, decided what was measured.
fn sockets_ok(result: &WrkResult) -> anyhow::Result<()> {
    if result.socket_errors() > 0 {
        bail!(
            "wrk socket errors: connect {}, read {}, write {}, timeout {}",
            result.errors.connect,
            result.errors.read,
            result.errors.write,
            result.errors.timeout
        );
    }
    Ok(())
}

/// A GET phase (static request), metered; every answer must be 2xx.
async fn get_phase(kit: &Kit, mut row: Row, path: &str, auth: bool) -> anyhow::Result<Row> {
    let headers = if auth {
        vec![kit.auth_header()]
    } else {
        vec![]
    };
    let meter = kit.meter().await;
    let result = kit
        .load(row.connections.unwrap_or(200))
        .get(&kit.scripts, path, &headers)
        .await?;
    let usage = meter.finish(&kit.pg).await;
    row = row.with_wrk(&result, usage);
    row.error = sockets_ok(&result).err().map(|e| e.to_string());
    if result.errors.status > 0 {
        row.error = Some(format!(
            "{} of {} answers were not 2xx",
            result.errors.status, result.requests
        ));
    }
    Ok(row)
}

/// The HTTP ceiling: `GET /livez` through all of ecoupon's middleware.
pub async fn livez(kit: &Kit) -> anyhow::Result<Row> {
    let row = Row::new("livez", "`GET /livez` (the HTTP ceiling)", Some(200));
    get_phase(kit, row, "/livez", false).await
}

/// The ceiling again, later in the run (the ratios use the better of the two).
pub async fn livez_again(kit: &Kit) -> anyhow::Result<Row> {
    let row = Row::new(
        "livez_again",
        "`GET /livez` again (later in the run)",
        Some(200),
    );
    get_phase(kit, row, "/livez", false).await
}

/// The naive design: one transaction per claim holding the counter row's lock (16
/// clients through tokio-postgres, from `loadtest/baselines.rs`, on this run's database).
pub async fn row_lock(kit: &Kit) -> anyhow::Result<Row> {
    let mut row = Row::new(
        "row_lock",
        "baseline: row-lock claim in SQL (BEGIN; SELECT … FOR UPDATE; INSERT; UPDATE; COMMIT)",
        Some(16),
    );
    row.http = false;
    let meter = kit.meter().await;
    let duration = Duration::from_secs_f64(kit.seconds);
    let result = baselines::row_lock(&kit.pg_config, 16, duration).await?;
    let usage = meter.finish(&kit.pg).await;
    row.rate = Some(result.per_sec());
    row.usage = Some(usage);
    row.extra = json!({ "committed": result.acknowledged, "durable": result.durable });
    // baselines.rs itself checks committed = rows = counter, or fails.
    row.check = Some(checks::Check {
        ok: !result.over_limit,
        detail: format!("{} commits = rows = counter", result.acknowledged),
    });
    Ok(row)
}

/// Durable claims on one hot campaign, every request a new consumer.
pub async fn claims_hot(kit: &Kit, connections: usize) -> anyhow::Result<Row> {
    let key = format!("claims_hot_{connections}");
    let name = format!("kit {key}");
    let campaign = kit.api.campaign(&name, api::NEVER_SELLS_OUT).await?;
    let row = Row::new(
        &key,
        "`POST /api/v1/campaigns/{id}/claims`, one hot campaign (durable)",
        Some(connections),
    );
    kit.claim_phase(row, &name, &[campaign.id], false, 0, false)
        .await
}

/// The same with an `Idempotency-Key` on every claim (issue 10: keys must not cost the
/// claim path its speed). Each key is new, so each claim runs and its batch writes the key.
pub async fn claims_keyed(kit: &Kit) -> anyhow::Result<Row> {
    let key = "claims_keyed_200";
    let name = format!("kit {key}");
    let campaign = kit.api.campaign(&name, api::NEVER_SELLS_OUT).await?;
    let row = Row::new(
        key,
        "the same with an `Idempotency-Key` on every claim",
        Some(200),
    );
    kit.claim_phase(row, &name, &[campaign.id], false, 0, true)
        .await
}

/// The crowd after the last coupon: a campaign with limit 1, already claimed.
pub async fn sold_out(kit: &Kit) -> anyhow::Result<Row> {
    let name = "kit sold_out";
    let campaign = kit.api.campaign(name, 1).await?;
    let first = kit.api.claim(&campaign.id, "first").await?;
    if first != 201 {
        bail!("the only coupon could not be claimed: {first}");
    }
    let row = Row::new("sold_out", "the same, sold out (409 `sold_out`)", Some(200));
    let mut row = kit
        .claim_phase(row, name, &[campaign.id], false, 1, false)
        .await?;
    let answers = row.extra["answers"].as_u64().unwrap_or(0);
    let refused = row.extra["status"]["409"].as_u64().unwrap_or(0);
    if refused != answers && row.error.is_none() {
        row.error = Some(format!(
            "{} of {answers} answers were not 409: {}",
            answers - refused,
            row.extra["status"]
        ));
    }
    Ok(row)
}

/// Authenticated reads: the key's tenant, and a campaign with its stats.
pub async fn read_tenant(kit: &Kit) -> anyhow::Result<Row> {
    let row = Row::new(
        "read_tenant",
        "`GET /api/v1/tenant` (API key + tenant)",
        Some(200),
    );
    get_phase(kit, row, "/api/v1/tenant", true).await
}

pub async fn read_campaign(kit: &Kit) -> anyhow::Result<Row> {
    let name = "kit read_campaign";
    let campaign = kit.api.campaign(name, api::NEVER_SELLS_OUT).await?;
    // A campaign that has sold some, so its stats are real.
    for i in 0..10 {
        kit.api.claim(&campaign.id, &format!("reader-{i}")).await?;
    }
    let row = Row::new(
        "read_campaign",
        "`GET /api/v1/campaigns/{id}` (campaign + stats)",
        Some(200),
    );
    get_phase(
        kit,
        row,
        &format!("/api/v1/campaigns/{}", campaign.id),
        true,
    )
    .await
}

/// 1,000 campaigns claimed at once: request i goes to campaign i mod 1,000. Each campaign
/// is claimed once first (its actor started, its first lease taken), so the phase measures
/// a sale in progress; that warm-up's rate is kept in the JSON.
pub async fn many_campaigns(kit: &Kit) -> anyhow::Result<Row> {
    let name = "kit claims_1000_campaigns";
    let ids = kit.api.campaigns(name, api::NEVER_SELLS_OUT, 1000).await?;
    let file = api::ids_file(&kit.scratch, "warm_1000", &ids)?;
    let (warm, short) = kit
        .claims(200, &file, ids.len(), true, "warm-1000", false)
        .await?;
    if let Some(short) = short {
        bail!("warming up: {short}");
    }
    let row = Row::new(
        "claims_1000_campaigns",
        "the same, spread over 1,000 campaigns",
        Some(200),
    );
    let mut row = kit
        .claim_phase(row, name, &ids, false, warm.count(201), false)
        .await?;
    row.extra["warm_up"] = json!({
        "first_claims": warm.answers(),
        "first_claims_per_s": warm.rate(),
        "status": warm.status,
    });
    Ok(row)
}

/// Finishes a scenario's row: rate, latency, CPU, and the scenario's own failures.
fn scenario_row(mut row: Row, tally: &mut scenarios::Tally, usage: crate::procstat::Usage) -> Row {
    row.rate = Some(tally.rate());
    row.latency = Some(tally.latency());
    row.usage = Some(usage);
    row.extra = tally.to_json();
    row.name = format!(
        "{} — {} journeys/s",
        row.name,
        crate::report::thousands(tally.journeys_per_s())
    );
    if tally.failures > 0 {
        row.error = Some(format!(
            "{} of {} journeys failed, first: {}",
            tally.failures,
            tally.journeys,
            tally.first_failure.as_deref().unwrap_or("?")
        ));
    }
    row
}

/// Phones in a flash sale (claim page, form, coupon, 30 % use), 200 at once.
pub async fn flash_sale(kit: &Kit) -> anyhow::Result<Row> {
    let name = "kit flash_sale";
    let campaign = kit.api.campaign(name, api::NEVER_SELLS_OUT).await?;
    let row = Row::new(
        "flash_sale",
        "flash sale as phones do it: claim page, form, coupon, 30 % use (all requests)",
        Some(200),
    );
    let meter = kit.meter().await;
    let mut tally = scenarios::flash_sale(&kit.api, &campaign.slug, 200, kit.seconds).await?;
    let usage = meter.finish(&kit.pg).await;
    let mut row = scenario_row(row, &mut tally, usage);
    row.check = Some(checks::all(vec![
        checks::claims(&kit.pg, name, tally.claimed, 0).await,
        checks::redemptions(&kit.pg, name, tally.used).await,
    ]));
    Ok(row)
}

/// Tills claiming for members and redeeming at once through the JSON API, 64 at once.
pub async fn till(kit: &Kit) -> anyhow::Result<Row> {
    let name = "kit till";
    let campaign = kit.api.campaign(name, api::NEVER_SELLS_OUT).await?;
    let row = Row::new(
        "till",
        "tills: claim for a member, redeem at once (JSON API, all requests)",
        Some(64),
    );
    let meter = kit.meter().await;
    let mut tally = scenarios::tills(&kit.api, &campaign.id, 64, kit.seconds)
        .await
        .context("till scenario")?;
    let usage = meter.finish(&kit.pg).await;
    let mut row = scenario_row(row, &mut tally, usage);
    row.check = Some(checks::all(vec![
        checks::claims(&kit.pg, name, tally.claimed, 0).await,
        checks::redemptions(&kit.pg, name, tally.used).await,
    ]));
    Ok(row)
}
