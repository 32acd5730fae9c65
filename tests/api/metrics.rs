use crate::helpers::spawn_app;

#[actix_web::test]
async fn metrics_use_route_patterns_and_real_histograms() {
    let app = spawn_app().await;
    app.get("/api/v1/tenant").send().await.unwrap();
    app.client
        .get(app.url("/really/unknown/path/123"))
        .send()
        .await
        .unwrap();
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains("route=\"/api/v1/tenant\"")
            && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(
        !text.contains("/really/unknown"),
        "raw paths must never become labels"
    );
    assert!(text.contains("route=\"unmatched\""));
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "histogram, not summary"
    );
    assert!(
        text.contains("le=\"0.001\"") && text.contains("le=\"10\""),
        "1 ms to 10 s buckets"
    );
    assert!(text.contains("ecoupon_build_info{"));
}

#[actix_web::test]
async fn promtool_accepts_the_exposition() {
    let Some(promtool) = crate::helpers::tool("promtool") else {
        return;
    };
    let app = spawn_app().await;
    app.get("/api/v1/tenant").send().await.unwrap();
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
