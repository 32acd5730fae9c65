//! A real Prometheus (Debian's `prometheus`), started on loopback with the rule files of
//! `dashboards/prometheus`, scrapes a running ecoupon: it records the SLIs, evaluates every
//! rule without error, fires an alert, and the monthly report reads availability and
//! incidents from it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ecoupon::ops::report::{month_of, monthly, Prometheus};

use crate::helpers::{eventually, require_tool, scratch_dir, spawn_app};
use crate::metrics::small_sale;
use crate::monitoring::rule_files;

#[actix_web::test]
async fn prometheus_scrapes_ecoupon_records_the_slis_and_feeds_the_monthly_report() {
    let app = spawn_app().await;
    let campaign = small_sale(&app).await;
    let prometheus = PrometheusServer::start(app.address.trim_start_matches("http://")).await;

    // Rates need requests between two scrapes (one a second): keep some coming.
    for (sli, what) in [
        ("availability", "the availability SLI is recorded"),
        ("claim-latency", "the claim-latency SLI is recorded"),
    ] {
        let query = format!("slo:sli_error:ratio_rate5m{{slo=\"{sli}\"}}");
        let value = eventually(Duration::from_secs(60), what, async || {
            app.get("/api/v1/tenant").send().await.ok()?;
            app.claim(&campaign, "late-comer").await;
            prometheus
                .query(&query)
                .await
                .first()
                .copied()
                .filter(|v| v.is_finite())
        })
        .await;
        assert!((0.0..=1.0).contains(&value), "{query} = {value}");
    }
    assert_eq!(prometheus.query(r#"up{job="ecoupon"}"#).await, [1.0]);
    assert_eq!(
        prometheus.query(r#"ecoupon_ready{job="ecoupon"}"#).await,
        [1.0]
    );
    assert_eq!(
        prometheus
            .query(r#"slo:objective:ratio{slo="availability"}"#)
            .await,
        [0.99]
    );

    // Every recording and alerting rule evaluates without error against real data (vector
    // matching, label sets), which promtool's checks cannot see.
    let rules = eventually(
        Duration::from_secs(30),
        "every rule has been evaluated",
        async || {
            let data = prometheus.api("rules", &[]).await;
            let rules: Vec<serde_json::Value> = data["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            let evaluated = !rules.is_empty() && rules.iter().all(|r| r["health"] != "unknown");
            evaluated.then_some(rules)
        },
    )
    .await;
    let broken: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{}: {}", r["name"], r["lastError"]))
        .collect();
    assert!(broken.is_empty(), "rules failing:\n{}", broken.join("\n"));
    assert!(rules.len() >= 60, "only {} rules loaded", rules.len());

    // A paging alert fires (this process reports its audit chain broken; other apps
    // starting meanwhile may report it intact, hence again and again): an incident.
    eventually(
        Duration::from_secs(60),
        "EcouponAuditChainBroken fires",
        async || {
            ecoupon::metrics::audit_chain_checked(false);
            let firing = prometheus
                .query(r#"ALERTS{alertname="EcouponAuditChainBroken",alertstate="firing"}"#)
                .await;
            (!firing.is_empty()).then_some(())
        },
    )
    .await;
    ecoupon::metrics::audit_chain_checked(true);

    // The monthly report: availability and incidents from this Prometheus, counts from the
    // database.
    let store = ecoupon::store::Store::connect(
        app.db.url.parse().unwrap(),
        &ecoupon::config::Settings::default().database,
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let source = Prometheus::new(&prometheus.url);
    let report = monthly(
        &store,
        Some(&source),
        month_of(now),
        Some(app.tenant_id),
        now,
    )
    .await
    .unwrap();
    let slo = &report.slo;
    assert_eq!(slo.unknown_reason, None, "{report:?}");
    let availability = slo.availability.expect("availability from Prometheus");
    assert!((0.0..=1.0).contains(&availability), "{report:?}");
    assert!(slo.requests.is_some_and(|n| n > 0.0), "{report:?}");
    assert!(slo.error_budget_requests.is_some() && slo.met.is_some());
    assert!(slo.claims_within_threshold.is_some(), "{report:?}");
    assert!(!report.complete);
    let incident = report
        .incidents
        .iter()
        .find(|i| i.alert == "EcouponAuditChainBroken")
        .unwrap_or_else(|| panic!("no incident: {report:?}"));
    assert!(incident.started_at < incident.ended_at && incident.ended_at <= report.to);
    assert_eq!(
        (
            report.claim_attempts,
            report.coupons_issued,
            report.redemptions
        ),
        (3, 3, 1)
    );
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].name, "Small sale");
    let text = report.markdown();
    assert!(text.contains("- Availability: "), "{text}");
    assert!(!text.contains("unknown ("), "{text}");
    assert!(text.contains("| Small sale | 3 | 3 | 1 |"), "{text}");
    assert!(text.contains("| EcouponAuditChainBroken | "), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["coupons_issued"], 3);
    assert!(json["slo"]["availability"].is_f64());
    store.close();
}

/// A Prometheus server on loopback with the rule files loaded, scraping `target`
/// (`host:port`) as job "ecoupon" every second. Killed on drop.
pub struct PrometheusServer {
    child: Child,
    pub url: String,
    pub client: reqwest::Client,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrometheusServer {
    pub async fn start(target: &str) -> PrometheusServer {
        let prometheus = require_tool("prometheus");
        let dir = scratch_dir("prometheus");
        let rules: Vec<String> = rule_files()
            .iter()
            .map(|f| format!("  - {}\n", f.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}\
             scrape_configs:\n  - job_name: ecoupon\n    static_configs:\n      - targets: ['{target}']\n",
            rules.concat()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let server = PrometheusServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        let ready = format!("{}/-/ready", server.url);
        eventually(Duration::from_secs(30), "Prometheus is ready", async || {
            let res = server.client.get(&ready).send().await.ok()?;
            res.status().is_success().then_some(())
        })
        .await;
        server
    }

    /// `GET /api/v1/<path>` with `params`: the `data` of a successful answer.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let res = self
            .client
            .get(format!("{}/api/v1/{path}", self.url))
            .query(params)
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
        body["data"].clone()
    }

    /// The value of each series an instant query returns (NaN included).
    pub async fn query(&self, query: &str) -> Vec<f64> {
        let data = self.api("query", &[("query", query)]).await;
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["value"][1].as_str().unwrap().parse::<f64>().unwrap())
            .collect()
    }
}
