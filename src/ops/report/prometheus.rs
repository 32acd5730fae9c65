//! Prometheus' HTTP API, as the monthly report asks it: instant values, and the
//! stretches of time a paging alert fired.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::Incident;

/// Alerts whose firing is an incident: paging ones. Each point of the range query covers
/// the step before it (`max_over_time`), so an alert shorter than a step is still seen.
fn incident_query(step_seconds: i64) -> String {
    format!(
        r#"max by (alertname) (max_over_time(ALERTS{{alertstate="firing",severity="page"}}[{step_seconds}s]))"#
    )
}

/// Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`).
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<ApiData>,
}

#[derive(serde::Deserialize)]
struct ApiData {
    result: Vec<ApiSeries>,
}

#[derive(serde::Deserialize)]
struct ApiSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

impl Prometheus {
    pub fn new(base: &str) -> Prometheus {
        Prometheus {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn ask(&self, path: &str, params: &[(&str, String)]) -> Result<ApiData, String> {
        let url = format!("{}{path}", self.base);
        let res = self
            .client
            .get(&url)
            .query(params)
            .send()
            .await
            .map_err(|e| format!("Prometheus at {} did not answer: {e}", self.base))?;
        let status = res.status();
        let answer: ApiAnswer = res.json().await.map_err(|e| {
            format!(
                "Prometheus at {} answered {status} with no API answer: {e}",
                self.base
            )
        })?;
        match (answer.status.as_str(), answer.data) {
            ("success", Some(data)) => Ok(data),
            _ => Err(format!(
                "Prometheus at {} refused the query: {}",
                self.base,
                answer.error.unwrap_or_else(|| status.to_string())
            )),
        }
    }

    /// The value of a query that yields at most one series (a `sum`), at `at`.
    pub async fn instant(&self, query: &str, at: DateTime<Utc>) -> Result<Option<f64>, String> {
        let data = self
            .ask(
                "/api/v1/query",
                &[("query", query.to_string()), ("time", unix(at))],
            )
            .await?;
        Ok(data
            .result
            .first()
            .and_then(|s| s.value.as_ref())
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .filter(|v| v.is_finite()))
    }

    /// Stretches of `[from, to)` in which a paging alert fired, one per alert and stretch.
    pub async fn incidents(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Incident>, String> {
        // Prometheus answers at most 11,000 points a series: a month at 5-minute steps.
        let span = (to - from).num_seconds().max(1);
        let step = (span / 10_000).max(15);
        // Points counted back from `to`, so the last one covers the latest moments.
        let start = to - chrono::TimeDelta::seconds((span / step) * step);
        let data = self
            .ask(
                "/api/v1/query_range",
                &[
                    ("query", incident_query(step)),
                    ("start", unix(start)),
                    ("end", unix(to)),
                    ("step", step.to_string()),
                ],
            )
            .await?;
        let mut incidents = Vec::new();
        for series in data.result {
            let alert = series.metric.get("alertname").cloned().unwrap_or_default();
            let times: Vec<f64> = series.values.iter().map(|(t, _)| *t).collect();
            incidents.extend(stretches(&times, step as f64).into_iter().map(|(a, b)| {
                let at = |t: f64| Utc.timestamp_opt(t as i64, 0).single().unwrap_or(from);
                let (started_at, ended_at) = (at(a).max(from), at(b).min(to));
                Incident {
                    alert: alert.clone(),
                    started_at,
                    ended_at,
                    minutes: (ended_at - started_at).num_seconds() as f64 / 60.0,
                }
            }));
        }
        incidents.sort_by_key(|i| i.started_at);
        Ok(incidents)
    }
}

/// Unix time with milliseconds, as Prometheus' API takes it (whole seconds would cut off
/// the last moments before `at`).
fn unix(at: DateTime<Utc>) -> String {
    format!("{:.3}", at.timestamp_millis() as f64 / 1000.0)
}

/// Runs of points no more than one step (and a half) apart, each point standing for the
/// step before it: (first - step, last). Accurate to a step.
fn stretches(times: &[f64], step: f64) -> Vec<(f64, f64)> {
    let mut runs: Vec<(f64, f64)> = Vec::new();
    for &t in times {
        match runs.last_mut() {
            Some((_, last)) if t - *last <= step * 1.5 => *last = t,
            _ => runs.push((t - step, t)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_samples_become_stretches() {
        let times = [0.0, 60.0, 120.0, 600.0, 660.0];
        assert_eq!(
            stretches(&times, 60.0),
            vec![(-60.0, 120.0), (540.0, 660.0)]
        );
        assert!(stretches(&[], 60.0).is_empty());
    }
}
