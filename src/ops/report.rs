//! `ecoupon report monthly --month 2026-11`: one month's availability against the SLO,
//! error budget, claim latency, incidents, claims and redemptions, as markdown or JSON.
//!
//! Counts come from the database; availability, latency and incidents from Prometheus' HTTP
//! API at `report.prometheus_url`, asked the same questions as the recording rules in
//! `dashboards/prometheus/slo.rules.yml` (the selectors below are checked against that
//! file). When Prometheus is not configured or does not answer, the report is still
//! printed, with availability "unknown" and the reason, so the database's numbers are
//! never lost to a monitoring outage.
//!
//! Months are Japan time (JST), like every time merchants see.

use std::path::PathBuf;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::config::Settings;
use crate::startup::open_database;
use crate::store::{MonthRow, Store};

mod prometheus;
pub use prometheus::Prometheus;

/// The availability objective (row 20 of the disclosure sheet): 99.0 % of requests.
pub const AVAILABILITY_OBJECTIVE: f64 = 0.99;
/// The claim-latency objective: 99 % of claims answered within [`LATENCY_THRESHOLD`].
pub const LATENCY_OBJECTIVE: f64 = 0.99;
/// Seconds; a bucket boundary of `http_request_duration_seconds`.
pub const LATENCY_THRESHOLD: &str = "0.1";
/// Requests the availability SLI counts: every route but the probes and the scrape.
pub const AVAILABILITY_SELECTOR: &str = r#"job="ecoupon",route!~"/metrics|/livez|/readyz""#;
/// Requests the latency SLI counts: claims, through the API and the consumer page.
pub const CLAIM_SELECTOR: &str =
    r#"job="ecoupon",method="POST",route=~"/api/v1/campaigns/\\{id\\}/claims|/c/\\{slug\\}/claim""#;

/// `ecoupon report …`
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// One month (Japan time): availability against the 99.0 % SLO, error budget, claim
    /// latency, incidents, claims and redemptions.
    Monthly {
        /// The month, e.g. 2026-11.
        #[arg(long, value_name = "YYYY-MM")]
        month: String,
        /// markdown (default) or json.
        #[arg(long, value_name = "FORMAT", default_value = "markdown")]
        format: String,
        /// Only this merchant's claims and redemptions, by campaign (availability is the
        /// whole service's either way).
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
        /// Data directory of the private database (when DATABASE_URL is not set).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

/// Runs a `report` command: checks every flag first, each problem naming its flag.
pub async fn run(command: ReportCommand, mut settings: Settings) -> anyhow::Result<()> {
    let ReportCommand::Monthly {
        month,
        format,
        tenant,
        data_dir,
    } = command;
    let month = Month::parse(&month).map_err(|e| anyhow::anyhow!("--month: {e}"))?;
    let format = match format.trim().to_lowercase().as_str() {
        "markdown" | "md" => Format::Markdown,
        "json" => Format::Json,
        other => anyhow::bail!("--format: expected markdown or json, found {other:?}"),
    };
    let tenant = tenant
        .map(|t| {
            t.trim().parse::<Uuid>().map_err(|_| {
                anyhow::anyhow!("--tenant: {t:?} is not a tenant id (the tenant_id printed by `ecoupon tenant create`)")
            })
        })
        .transpose()?;
    let now = Utc::now();
    if month.start() > now {
        anyhow::bail!("--month: {month} has not begun yet");
    }
    if let Some(dir) = data_dir {
        settings.data_dir = dir;
    }
    let (store, cluster) = open_database(&settings).await?;
    let result = async {
        if let Some(t) = tenant {
            if !store.tenant_exists(t).await? {
                anyhow::bail!("--tenant: there is no tenant {t}");
            }
        }
        let prometheus = settings
            .report
            .prometheus_url
            .as_deref()
            .map(Prometheus::new);
        monthly(&store, prometheus.as_ref(), month, tenant, now).await
    }
    .await;
    store.close();
    if let Some(cluster) = cluster {
        if cluster.started_here() {
            cluster.stop().await?;
        }
    }
    let report = result?;
    match format {
        Format::Markdown => print!("{}", report.markdown()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(())
}

/// A calendar month in Japan time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    pub fn parse(text: &str) -> Result<Month, String> {
        let bad = || format!("{text:?} is not a month; expected YYYY-MM, such as 2026-11");
        let (y, m) = text.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || year < 2000 {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    fn first_day(year: i32, month: u32) -> DateTime<Utc> {
        let day = NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a parsed month has a first day");
        crate::web::pages::jst()
            .from_local_datetime(&day)
            .single()
            .expect("JST has no gaps")
            .with_timezone(&Utc)
    }

    /// Midnight JST of the first day.
    pub fn start(&self) -> DateTime<Utc> {
        Month::first_day(self.year, self.month)
    }

    /// Midnight JST of the next month's first day.
    pub fn end(&self) -> DateTime<Utc> {
        match self.month {
            12 => Month::first_day(self.year + 1, 1),
            m => Month::first_day(self.year, m + 1),
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The report, as printed (JSON is this struct).
#[derive(Debug, Clone, Serialize)]
pub struct MonthlyReport {
    pub month: String,
    pub from: DateTime<Utc>,
    /// The month's end, or the time of the report while the month is still running.
    pub to: DateTime<Utc>,
    pub complete: bool,
    pub tenant: Option<Uuid>,
    pub slo: SloReport,
    pub incidents: Vec<Incident>,
    pub claim_attempts: i64,
    pub coupons_issued: i64,
    pub redemptions: i64,
    /// Per merchant, or per campaign of `tenant`.
    pub rows: Vec<MonthRow>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct SloReport {
    pub availability_objective: f64,
    /// Share of requests answered without a 5xx; None when unknown (see `unknown_reason`).
    pub availability: Option<f64>,
    pub met: Option<bool>,
    pub requests: Option<f64>,
    pub failed_requests: Option<f64>,
    /// Failed requests the objective allows this month: 1 % of requests.
    pub error_budget_requests: Option<f64>,
    /// Share of the budget left (negative when overspent).
    pub error_budget_remaining: Option<f64>,
    pub claim_latency_objective: f64,
    pub claim_latency_threshold_seconds: f64,
    /// Share of claims answered within the threshold.
    pub claims_within_threshold: Option<f64>,
    pub unknown_reason: Option<String>,
}

/// A stretch of time a paging alert fired.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Incident {
    pub alert: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub minutes: f64,
}

/// Builds the report for `month` as of `now`.
pub async fn monthly(
    store: &Store,
    prometheus: Option<&Prometheus>,
    month: Month,
    tenant: Option<Uuid>,
    now: DateTime<Utc>,
) -> anyhow::Result<MonthlyReport> {
    let from = month.start();
    let complete = month.end() <= now;
    let to = if complete { month.end() } else { now };
    let rows = store.month_activity(from, to, tenant).await?;
    let (slo, incidents) = match prometheus {
        None => (
            SloReport {
                unknown_reason: Some(
                    "report.prometheus_url is not set, so availability is unknown".into(),
                ),
                ..SloReport::empty()
            },
            Vec::new(),
        ),
        Some(p) => match slo_from(p, from, to).await {
            Ok(found) => found,
            Err(reason) => (
                SloReport {
                    unknown_reason: Some(reason),
                    ..SloReport::empty()
                },
                Vec::new(),
            ),
        },
    };
    Ok(MonthlyReport {
        month: month.to_string(),
        from,
        to,
        complete,
        tenant,
        slo,
        incidents,
        claim_attempts: rows.iter().map(|r| r.claim_attempts).sum(),
        coupons_issued: rows.iter().map(|r| r.coupons_issued).sum(),
        redemptions: rows.iter().map(|r| r.redemptions).sum(),
        rows,
    })
}

impl SloReport {
    fn empty() -> SloReport {
        SloReport {
            availability_objective: AVAILABILITY_OBJECTIVE,
            claim_latency_objective: LATENCY_OBJECTIVE,
            claim_latency_threshold_seconds: LATENCY_THRESHOLD.parse().unwrap_or(0.1),
            ..SloReport::default()
        }
    }
}

async fn slo_from(
    p: &Prometheus,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(SloReport, Vec<Incident>), String> {
    let range = format!("{}s", (to - from).num_seconds().max(1));
    let increase =
        |metric: &str, selector: &str| format!("sum(increase({metric}{{{selector}}}[{range}]))");
    let requests = p
        .instant(&increase("http_requests_total", AVAILABILITY_SELECTOR), to)
        .await?;
    let failed = p
        .instant(
            &increase(
                "http_requests_total",
                &format!(r#"{AVAILABILITY_SELECTOR},status=~"5..""#),
            ),
            to,
        )
        .await?;
    let claims = p
        .instant(
            &increase("http_request_duration_seconds_count", CLAIM_SELECTOR),
            to,
        )
        .await?;
    let fast = p
        .instant(
            &increase(
                "http_request_duration_seconds_bucket",
                &format!(r#"{CLAIM_SELECTOR},le="{LATENCY_THRESHOLD}""#),
            ),
            to,
        )
        .await?;
    let incidents = p.incidents(from, to).await?;
    let mut slo = SloReport::empty();
    match requests {
        Some(total) if total > 0.0 => {
            let failed = failed.unwrap_or(0.0);
            let availability = 1.0 - failed / total;
            let budget = (1.0 - AVAILABILITY_OBJECTIVE) * total;
            slo.availability = Some(availability);
            slo.met = Some(availability >= AVAILABILITY_OBJECTIVE);
            slo.requests = Some(total);
            slo.failed_requests = Some(failed);
            slo.error_budget_requests = Some(budget);
            slo.error_budget_remaining = Some(1.0 - failed / budget);
        }
        _ => {
            slo.unknown_reason = Some(format!(
                "Prometheus has no requests of job=\"ecoupon\" between {} and {}",
                from.to_rfc3339(),
                to.to_rfc3339()
            ))
        }
    }
    if let (Some(all), Some(fast)) = (claims, fast) {
        if all > 0.0 {
            slo.claims_within_threshold = Some((fast / all).min(1.0));
        }
    }
    Ok((slo, incidents))
}

fn percent(v: f64) -> String {
    format!("{:.3} %", v * 100.0)
}

impl MonthlyReport {
    pub fn markdown(&self) -> String {
        let jst = |t: DateTime<Utc>| {
            t.with_timezone(&crate::web::pages::jst())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        };
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("# ecoupon monthly report: {}", self.month));
        line(String::new());
        line(format!(
            "{} to {} JST{}{}",
            jst(self.from),
            jst(self.to),
            if self.complete {
                ""
            } else {
                " (month in progress)"
            },
            self.tenant
                .map(|t| format!(", merchant {t}"))
                .unwrap_or_default()
        ));
        line(String::new());
        line("## Availability (SLO)".into());
        line(String::new());
        let s = &self.slo;
        line(format!(
            "- Objective: {} of requests without a server error (5xx)",
            percent(s.availability_objective)
        ));
        match (s.availability, s.met) {
            (Some(a), Some(met)) => {
                line(format!(
                    "- Availability: {} ({})",
                    percent(a),
                    if met { "met" } else { "missed" }
                ));
                line(format!(
                    "- Requests: {:.0}, failed: {:.0}",
                    s.requests.unwrap_or(0.0),
                    s.failed_requests.unwrap_or(0.0)
                ));
                line(format!(
                    "- Error budget: {:.0} failed requests allowed, {} left",
                    s.error_budget_requests.unwrap_or(0.0),
                    percent(s.error_budget_remaining.unwrap_or(0.0))
                ));
            }
            _ => line(format!(
                "- Availability: unknown ({})",
                s.unknown_reason.as_deref().unwrap_or("no data")
            )),
        }
        line(format!(
            "- Claim latency: objective {} within {} s; {}",
            percent(s.claim_latency_objective),
            s.claim_latency_threshold_seconds,
            match s.claims_within_threshold {
                Some(v) => format!(
                    "{} within ({})",
                    percent(v),
                    if v >= s.claim_latency_objective {
                        "met"
                    } else {
                        "missed"
                    }
                ),
                None => "unknown".into(),
            }
        ));
        line(String::new());
        line("## Incidents".into());
        line(String::new());
        if s.availability.is_none() && s.unknown_reason.is_some() && self.incidents.is_empty() {
            line("Unknown (no answer from Prometheus).".into());
        } else if self.incidents.is_empty() {
            line("None: no paging alert fired.".into());
        } else {
            line("| alert | from (JST) | to (JST) | minutes |".into());
            line("|---|---|---|---|".into());
            for i in &self.incidents {
                line(format!(
                    "| {} | {} | {} | {:.0} |",
                    i.alert,
                    jst(i.started_at),
                    jst(i.ended_at),
                    i.minutes
                ));
            }
        }
        line(String::new());
        line("## Claims and redemptions".into());
        line(String::new());
        line(format!(
            "- Claim attempts: {}, coupons issued: {}, redemptions: {}",
            self.claim_attempts, self.coupons_issued, self.redemptions
        ));
        if !self.rows.is_empty() {
            line(String::new());
            let what = if self.tenant.is_some() {
                "campaign"
            } else {
                "merchant"
            };
            line(format!(
                "| {what} | claim attempts | coupons issued | redemptions |"
            ));
            line("|---|---:|---:|---:|".into());
            for r in &self.rows {
                line(format!(
                    "| {} | {} | {} | {} |",
                    r.name.replace('|', "\\|"),
                    r.claim_attempts,
                    r.coupons_issued,
                    r.redemptions
                ));
            }
        }
        out
    }
}

/// The month a time falls in, in Japan time (for callers reporting on "this month").
pub fn month_of(at: DateTime<Utc>) -> Month {
    let local = at.with_timezone(&crate::web::pages::jst());
    Month {
        year: local.year(),
        month: local.month(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_strictly_and_are_japan_time() {
        let m = Month::parse("2026-11").unwrap();
        assert_eq!(m.start().to_rfc3339(), "2026-10-31T15:00:00+00:00");
        assert_eq!(m.end().to_rfc3339(), "2026-11-30T15:00:00+00:00");
        let dec = Month::parse("2026-12").unwrap();
        assert_eq!(dec.end().to_rfc3339(), "2026-12-31T15:00:00+00:00");
        for bad in [
            "2026-13", "2026-00", "2026-1", "26-11", "2026/11", "november", "",
        ] {
            let err = Month::parse(bad).unwrap_err();
            assert!(err.contains("YYYY-MM"), "{bad}: {err}");
        }
    }

    #[test]
    fn selectors_are_those_of_the_recording_rules() {
        let rules = include_str!("../../dashboards/prometheus/slo.rules.yml");
        for selector in [AVAILABILITY_SELECTOR, CLAIM_SELECTOR] {
            assert!(rules.contains(selector), "{selector} not in slo.rules.yml");
        }
        assert!(rules.contains(&format!("le=\"{LATENCY_THRESHOLD}\"")));
        assert!(rules.contains(&format!("{AVAILABILITY_OBJECTIVE}")));
    }
}
