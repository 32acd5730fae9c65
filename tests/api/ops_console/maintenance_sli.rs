//! During a maintenance window the friendly 503s are not an outage: `serve` (the real
//! binary, its log on stderr captured) counts them in `http_maintenance_responses_total`, not in
//! `http_requests_total` (the availability SLI's numerator and denominator), and logs no
//! ERROR line for them.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{eventually, scratch_dir, spawn_app};
use crate::ops_backup::ecoupon;

/// Kills the server at the end of the test, even a failed one.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[actix_web::test]
async fn maintenance_answers_are_not_errors_of_the_availability_sli() {
    // Only for its database (migrated, with a tenant); the server under test is `serve`.
    let app = spawn_app().await;
    let data = scratch_dir("data");
    let log = data.join("serve.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Server(
        ecoupon(Some(&app.db.url), &data)
            .env("ECOUPON_LOG__LEVEL", "info")
            .args([
                "serve",
                "--no-demo",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    eventually(
        Duration::from_secs(60),
        "serve answers /livez",
        async || client.get(format!("{base}/livez")).send().await.ok(),
    )
    .await;

    app.db
        .client()
        .await
        .execute(
            "INSERT INTO notices (id, kind, title, starts_at, ends_at, announce_from, emergency, status, created_by)
             VALUES (gen_random_uuid(), 'maintenance', 'Storage move', now() - interval '1 minute',
                     now() + interval '10 minutes', now() - interval '1 day', false, 'scheduled', 'test')",
            &[],
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "the API answers 503", async || {
        let res = client
            .get(format!("{base}/api/v1/tenant"))
            .send()
            .await
            .ok()?;
        (res.status() == 503).then_some(())
    })
    .await;
    for path in ["/api/v1/tenant", "/my", "/c/some-campaign"] {
        let res = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 503, "{path}");
        assert!(res.headers().contains_key("retry-after"));
    }

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted_503: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{") && l.contains("status=\"503\""))
        .collect();
    assert!(counted_503.is_empty(), "{counted_503:?}");
    let maintenance: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("http_maintenance_responses_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(maintenance >= 4.0, "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_maintenance_responses_total{")
                && l.contains("route=\"/api/v1/tenant\"")),
        "by route pattern: {metrics}"
    );
    // Requests outside the window's reach are counted as usual.
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_requests_total{") && l.contains("route=\"/livez\"")),
        "{metrics}"
    );
    drop(server);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("\"level\":\"INFO\""),
        "the log was captured: {text}"
    );
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
