//! The results: one row per phase, printed as a markdown table and written as JSON, plus
//! issue 11's targets as ratios measured in this run.

use serde_json::{json, Value};

use crate::checks::Check;
use crate::procstat::Usage;
use crate::wrk::{Latency, WrkResult};

/// One measured phase.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Machine-readable, e.g. `claims_hot_200`.
    pub key: String,
    /// What was asked, for people.
    pub name: String,
    pub connections: Option<usize>,
    /// Answers per second.
    pub rate: Option<f64>,
    pub latency: Option<Latency>,
    pub usage: Option<Usage>,
    pub check: Option<Check>,
    pub error: Option<String>,
    /// Whether the ratio to `GET /livez` means anything (HTTP rows).
    pub http: bool,
    /// Anything else worth keeping (status counts, journeys/s …).
    pub extra: Value,
}

impl Row {
    pub fn new(key: &str, name: &str, connections: Option<usize>) -> Row {
        Row {
            key: key.into(),
            name: name.into(),
            connections,
            http: true,
            extra: json!({}),
            ..Row::default()
        }
    }

    pub fn with_wrk(mut self, result: &WrkResult, usage: Usage) -> Row {
        self.rate = Some(result.rate());
        self.latency = Some(result.latency_us);
        // Cores and commits per second of load, like the answers per second.
        self.usage = Some(usage.over_load(result.window_s));
        self.extra = json!({
            "answers": result.answers(),
            "parked_408": result.parked_408,
            "status": result.status,
            "non_2xx": result.errors.status,
            "socket_errors": result.socket_errors(),
            "seconds": if result.window_s > 0.0 { result.window_s } else { result.duration_us as f64 / 1e6 },
        });
        self
    }

    pub fn failed(&self) -> bool {
        self.error.is_some() || self.check.as_ref().is_some_and(|c| !c.ok)
    }
}

/// 12345.6 → "12,346".
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn cores(v: f64) -> String {
    format!("{v:.2}")
}

pub fn rate_of<'a>(rows: &'a [Row], key: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.key == key && r.error.is_none())
}

/// The HTTP ceiling: the better of the two `GET /livez` phases (one first, one later), so
/// a ceiling measured while the shared machine was busier does not flatter the ratios.
pub fn ceiling(rows: &[Row]) -> Option<f64> {
    rows.iter()
        .filter(|r| r.key.starts_with("livez") && r.error.is_none())
        .filter_map(|r| r.rate)
        .reduce(f64::max)
}

/// The markdown table.
pub fn table(rows: &[Row]) -> String {
    let livez = ceiling(rows);
    let mut out = String::from(
        "| request | conns | answers/s | p50 | p90 | p99 | p99.9 | vs `/livez` | ecoupon cores | PostgreSQL cores | generator cores (share) | other cores | PG commits/s | PG backends wait for | invariants |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let dash = || "–".to_string();
        let lat = |f: fn(&Latency) -> u64| r.latency.as_ref().map_or_else(dash, |l| ms(f(l)));
        let ratio = match (r.rate, livez, r.http) {
            (Some(rate), Some(l), true) if l > 0.0 => format!("{:.2}", rate / l),
            _ => dash(),
        };
        let (eco, pg, generator, other, commits, waits) = r.usage.as_ref().map_or_else(
            || (dash(), dash(), dash(), dash(), dash(), dash()),
            |u| {
                (
                    cores(u.ecoupon),
                    u.postgres.map_or_else(|| "n/a".into(), cores),
                    format!(
                        "{} ({:.0} %)",
                        cores(u.generator),
                        u.generator_share() * 100.0
                    ),
                    cores(u.other()),
                    u.commits_per_s.map_or_else(dash, thousands),
                    u.top_waits(),
                )
            },
        );
        let check = match (&r.error, &r.check) {
            (Some(e), _) => format!("**FAILED: {}**", e.replace('|', "/").replace('\n', " ")),
            (None, Some(c)) if c.ok => "ok".into(),
            (None, Some(c)) => format!("**FAILED: {}**", c.detail),
            (None, None) => dash(),
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.connections.map_or_else(dash, |c| c.to_string()),
            r.rate.map_or_else(dash, thousands),
            lat(|l| l.p50),
            lat(|l| l.p90),
            lat(|l| l.p99),
            lat(|l| l.p999),
            ratio,
            eco,
            pg,
            generator,
            other,
            commits,
            waits,
            check,
        );
    }
    out
}

/// Issue 11's targets, each as a ratio measured in this run.
pub fn targets(rows: &[Row], memory: &Value) -> Vec<(String, String, String, Option<bool>)> {
    let rate = |key: &str| rate_of(rows, key).and_then(|r| r.rate);
    let livez = ceiling(rows);
    let hot = rate("claims_hot_200");
    let mut out = Vec::new();
    let mut ratio = |what: &str, a: Option<f64>, b: Option<f64>, target: f64| {
        let measured = a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
        out.push((
            what.to_string(),
            measured.map_or("–".into(), |m| format!("{m:.2}")),
            format!("≥ {target}"),
            measured.map(|m| m >= target),
        ));
    };
    ratio("durable claims / `GET /livez` (200 conns)", hot, livez, 0.5);
    ratio(
        "durable claims / row-lock baseline",
        hot,
        rate("row_lock"),
        15.0,
    );
    ratio(
        "sold-out answers / `GET /livez`",
        rate("sold_out"),
        livez,
        0.8,
    );
    ratio(
        "`GET /api/v1/tenant` / `GET /livez`",
        rate("read_tenant"),
        livez,
        0.5,
    );
    ratio(
        "`GET /api/v1/campaigns/{id}` / `GET /livez`",
        rate("read_campaign"),
        livez,
        0.5,
    );
    ratio(
        "1,000 campaigns / one hot campaign (200 conns)",
        rate("claims_1000_campaigns"),
        hot,
        0.8,
    );
    // Issue 10: "the claim path keeps its speed with keys"; 0.8 is our own bar.
    ratio(
        "claims with an `Idempotency-Key` / without (200 conns)",
        rate("claims_keyed_200"),
        hot,
        0.8,
    );
    let logged = rate_of(rows, "sold_out").and_then(|r| {
        let answers = r.extra["answers"].as_f64()?;
        Some(r.usage.as_ref()?.log_lines as f64 / answers.max(1.0))
    });
    out.push((
        "server log lines per sold-out answer (default level)".into(),
        logged.map_or("–".into(), |l| format!("{l:.3}")),
        "≈ 0 (< 0.001)".into(),
        logged.map(|l| l < 0.001),
    ));
    let p99 = rate_of(rows, "claims_hot_200")
        .and_then(|r| r.latency)
        .map(|l| l.p99 as f64 / 1000.0);
    out.push((
        "claim p99 at 200 conns".into(),
        p99.map_or("–".into(), |p| format!("{p:.1} ms")),
        "≤ 25 ms".into(),
        p99.map(|p| p <= 25.0),
    ));
    let per_100k = memory["growth_per_campaign_bytes"]
        .as_f64()
        .map(|b| b * 100_000.0 / 1e6);
    out.push((
        "memory for 100,000 idle campaigns (growth per campaign × 100,000)".into(),
        per_100k.map_or("–".into(), |m| format!("{m:.0} MB")),
        "≤ 300 MB".into(),
        per_100k.map(|m| m <= 300.0),
    ));
    out
}

pub fn targets_table(targets: &[(String, String, String, Option<bool>)]) -> String {
    let mut out =
        String::from("| target (issue 11) | measured | wanted | met |\n|---|---|---|---|\n");
    for (what, measured, wanted, met) in targets {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        out += &format!("| {what} | {measured} | {wanted} | {met} |\n");
    }
    out
}

pub fn rows_json(rows: &[Row]) -> Value {
    let livez = ceiling(rows);
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "key": r.key,
                    "request": r.name,
                    "connections": r.connections,
                    "answers_per_s": r.rate,
                    "latency_ms": r.latency.map(|l| json!({
                        "p50": l.p50 as f64 / 1e3, "p90": l.p90 as f64 / 1e3,
                        "p99": l.p99 as f64 / 1e3, "p99_9": l.p999 as f64 / 1e3,
                        "max": l.max as f64 / 1e3, "mean": l.mean / 1e3,
                    })),
                    "vs_livez": match (r.rate, livez, r.http) {
                        (Some(rate), Some(l), true) if l > 0.0 => Some(rate / l),
                        _ => None,
                    },
                    "cpu": r.usage.as_ref().map(Usage::to_json),
                    "invariants": r.check.as_ref().map(Check::to_json),
                    "error": r.error,
                    "detail": r.extra,
                })
            })
            .collect(),
    )
}

/// Claims per second per core of ecoupon and of PostgreSQL, and claims per commit, from
/// the 200-connection hot-campaign phase: the figures a capacity plan starts from.
pub fn capacity(rows: &[Row]) -> Value {
    let Some(row) = rate_of(rows, "claims_hot_200") else {
        return Value::Null;
    };
    let (Some(rate), Some(u)) = (row.rate, row.usage.as_ref()) else {
        return Value::Null;
    };
    let per = |cores: f64| (cores > 0.0).then(|| rate / cores);
    json!({
        "claims_per_s": rate,
        "claims_per_ecoupon_core_s": per(u.ecoupon),
        "claims_per_postgres_core_s": u.postgres.and_then(per),
        "claims_per_commit": u.commits_per_s.filter(|c| *c > 0.0).map(|c| rate / c),
        "cpu_us_per_claim_ecoupon": (rate > 0.0).then(|| u.ecoupon / rate * 1e6),
        "cpu_us_per_claim_postgres": u.postgres.filter(|_| rate > 0.0).map(|p| p / rate * 1e6),
    })
}

pub fn describe_capacity(c: &Value) -> String {
    let n = |k: &str| c[k].as_f64().map_or("?".into(), thousands);
    let f = |k: &str| c[k].as_f64().map_or("?".into(), |v| format!("{v:.1}"));
    format!(
        "Capacity (200-connection claim phase): {} claims/s per ecoupon core ({} µs of CPU a \
         claim), {} per PostgreSQL core ({} µs), {} claims per PostgreSQL commit.",
        n("claims_per_ecoupon_core_s"),
        f("cpu_us_per_claim_ecoupon"),
        n("claims_per_postgres_core_s"),
        f("cpu_us_per_claim_postgres"),
        f("claims_per_commit"),
    )
}
