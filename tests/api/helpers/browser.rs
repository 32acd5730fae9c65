//! Headless Chromium through chromedriver (Debian `chromium` and `chromium-driver`).

use std::path::PathBuf;
use std::time::Duration;

use super::{eventually, require_tool, scratch_dir};

/// A running chromedriver (Debian `chromium-driver`), killed on drop.
pub struct ChromeDriver {
    child: std::process::Child,
    chromium: PathBuf,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // Chromium runs in chromedriver's own process group (see `chromedriver`): killing
        // the group also ends a browser whose session was never closed, which would
        // otherwise outlive the test run (orphaned, 20 processes a browser).
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a free port. Without chromedriver or chromium the test fails.
pub async fn chromedriver() -> ChromeDriver {
    use std::os::unix::process::CommandExt;
    let driver = require_tool("chromedriver");
    let chromium = require_tool("chromium");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(driver)
        .arg(format!("--port={port}"))
        // Its own group, with the browsers it starts: Drop ends them all at once.
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let driver = ChromeDriver {
        child,
        chromium,
        url,
    };
    let status = format!("{}/status", driver.url);
    eventually(
        Duration::from_secs(20),
        "chromedriver answers",
        async || reqwest::get(&status).await.ok(),
    )
    .await;
    driver
}

/// A fresh headless Chromium: its own profile, so its own cookies (its own device), with a
/// phone-sized window.
pub async fn browser(driver: &ChromeDriver) -> fantoccini::Client {
    // Two TLS backends end up linked (ring via the app's HTTP client, aws-lc via
    // fantoccini's); WebDriver here is plain HTTP, but rustls wants one chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let profile = scratch_dir("chromium");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": driver.chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=412,915", "--hide-scrollbars",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    fantoccini::ClientBuilder::rustls()
        .expect("TLS backend")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}
