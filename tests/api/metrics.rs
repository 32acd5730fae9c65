use reqwest::Method;

use crate::helpers::{require_tool, spawn_app, TestApp};

/// The `/metrics` exposition.
pub(crate) async fn scrape(app: &TestApp) -> String {
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The value of the one series of `metric` that has exactly these labels (in any order).
fn series(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, rest) = line.split_once('{')?;
        let (set, value) = rest.rsplit_once("} ")?;
        let mut got: Vec<&str> = set.split(',').collect();
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        got.sort_unstable();
        want.sort_unstable();
        (name == metric && got == want).then(|| value.parse().unwrap())
    })
}

/// Every test in this binary shares one process-wide recorder, so this test counts requests
/// only it makes: ones with a non-standard method, which are labelled `method="OTHER"`.
#[actix_web::test]
async fn metrics_use_route_patterns_and_real_histograms() {
    let app = spawn_app().await;
    let probe = Method::from_bytes(b"ECOUPONPROBE").unwrap();
    let campaign = uuid::Uuid::new_v4();
    let unknown = format!("/really/unknown/{}", uuid::Uuid::new_v4());
    for path in [format!("/api/v1/campaigns/{campaign}"), unknown.clone()] {
        for _ in 0..3 {
            app.client
                .request(probe.clone(), app.url(&path))
                .send()
                .await
                .unwrap();
        }
    }
    let text = scrape(&app).await;

    // A routed URL is counted under its pattern; the raw path never becomes a label.
    let routed = [("method", "OTHER"), ("route", "/api/v1/campaigns/{id}")];
    assert_eq!(
        series(
            &text,
            "http_requests_total",
            &[routed[0], routed[1], ("status", "405")]
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        !text.contains(&campaign.to_string()) && !text.contains(&unknown),
        "raw paths must never become labels"
    );
    let unmatched = [("method", "OTHER"), ("route", "unmatched")];
    assert_eq!(
        series(
            &text,
            "http_requests_total",
            &[unmatched[0], unmatched[1], ("status", "404")]
        ),
        Some(3.0),
        "{text}"
    );

    // A histogram (buckets from 1 ms to 10 s), not a summary.
    let bucket = |le| {
        series(
            &text,
            "http_request_duration_seconds_bucket",
            &[routed[0], routed[1], ("le", le)],
        )
    };
    let (fast, slow) = (bucket("0.001"), bucket("10"));
    assert!(fast.is_some_and(|n| n <= 3.0), "{text}");
    assert_eq!(slow, Some(3.0), "{text}");
    assert_eq!(
        series(&text, "http_request_duration_seconds_count", &routed),
        Some(3.0),
        "{text}"
    );
    assert!(text.contains("ecoupon_build_info{"));
}

#[actix_web::test]
async fn promtool_accepts_the_exposition() {
    let promtool = require_tool("promtool");
    let app = spawn_app().await;
    app.get("/api/v1/tenant").send().await.unwrap();
    let text = scrape(&app).await;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool complains:\n{report}\n---\n{text}"
    );
}

/// Every series name a rule or a dashboard reads is exported by a running ecoupon after a
/// small sale (names are parsed out of the files, so new panels and rules are covered).
/// Recording rules, Prometheus' own series and the names of features not built yet
/// (`ecoupon::metrics::NOT_YET_SET`) are left out.
#[actix_web::test]
async fn every_metric_in_the_dashboards_and_rules_is_exported() {
    use crate::monitoring::{all_expressions, metric_names, PROMETHEUS_BUILTINS};
    let mut wanted = std::collections::BTreeMap::new();
    for (file, expr) in all_expressions() {
        for name in metric_names(&expr) {
            if !name.contains(':')
                && !PROMETHEUS_BUILTINS.contains(&name.as_str())
                && !ecoupon::metrics::NOT_YET_SET.contains(&name.as_str())
            {
                wanted.entry(name).or_insert(file.clone());
            }
        }
    }
    assert!(wanted.len() > 30, "too few names found: {wanted:?}");

    let app = spawn_app().await;
    small_sale(&app).await;
    // The sampler fills some gauges a moment after start-up: look again for a while.
    let started = std::time::Instant::now();
    loop {
        let text = scrape(&app).await;
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|(name, _)| !exported.contains(name.as_str()))
            .map(|(name, file)| format!("{name} (used in {})", file.display()))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "not in /metrics:\n{}\n---\n{text}",
            missing.join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A campaign of three sold out to four consumers, one coupon used, one bad API key: its id.
pub async fn small_sale(app: &TestApp) -> String {
    let id = app
        .create_campaign_id(serde_json::json!({
            "name": "Small sale", "total_limit": 3, "status": "active"
        }))
        .await;
    let mut codes = Vec::new();
    for consumer in ["a", "b", "c", "d"] {
        let (status, body) = app.claim(&id, consumer).await;
        if status == 201 {
            codes.push(body["coupon"]["code"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(codes.len(), 3);
    let (status, _) = app.redeem(&codes[0], serde_json::json!({})).await;
    assert_eq!(status, 201);
    let res = app
        .client
        .get(app.url("/api/v1/tenant"))
        .bearer_auth("eck_not_a_real_key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    id
}

/// With `metrics_listen`, `/metrics` is served there and only there.
#[actix_web::test]
async fn metrics_listen_serves_metrics_apart_from_the_app() {
    let db = crate::helpers::fresh_database().await;
    let mut settings = crate::helpers::test_settings(&db);
    settings.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = ecoupon::startup::Application::build(settings)
        .await
        .expect("application builds");
    let (port, metrics_port) = (app.port(), app.metrics_port().expect("a metrics port"));
    assert_ne!(port, metrics_port);
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let get = |port: u16, path: &str| client.get(format!("http://127.0.0.1:{port}{path}")).send();

    let main = get(port, "/metrics").await.unwrap();
    assert_eq!(main.status(), 404);
    assert_eq!(get(port, "/livez").await.unwrap().status(), 200);
    let apart = get(metrics_port, "/metrics").await.unwrap();
    assert_eq!(apart.status(), 200);
    let text = apart.text().await.unwrap();
    assert!(text.contains("ecoupon_build_info{"), "{text}");
    assert!(text.contains("ecoupon_db_pool_max_connections "), "{text}");
    // Nothing else is served there.
    assert_eq!(get(metrics_port, "/livez").await.unwrap().status(), 404);

    // Stopping the application stops both listeners.
    handle.stop(true).await;
    crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the metrics listener closes",
        async || get(metrics_port, "/metrics").await.is_err().then_some(()),
    )
    .await;
}
