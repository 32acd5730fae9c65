use reqwest::Method;

use crate::helpers::{require_tool, spawn_app, TestApp};

/// The `/metrics` exposition.
async fn scrape(app: &TestApp) -> String {
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
