//! The binary itself: flags, start-up failures, the tenant command, the embedded default and
//! graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{
    fresh_database, missing_dependency, scratch_dir, spawn_app_on, test_settings,
};

fn ecoupon() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecoupon"));
    cmd.env_remove("DATABASE_URL")
        .env("ECOUPON_LOG__FORMAT", "json")
        .env("ECOUPON_LOG__LEVEL", "warn");
    cmd
}

fn one_line_failure(out: std::process::Output) -> String {
    assert!(!out.status.success(), "should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    stderr
}

#[test]
fn unknown_flags_and_bad_config_fail_with_a_named_problem() {
    let stderr = one_line_failure(ecoupon().args(["serve", "--bogus"]).output().unwrap());
    assert!(stderr.contains("--bogus"), "{stderr}");

    let stderr = one_line_failure(
        ecoupon()
            .env("ECOUPON_LISTEN", "nowhere")
            .arg("serve")
            .output()
            .unwrap(),
    );
    assert!(
        stderr.starts_with("error: configuration error: listen"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let stderr = one_line_failure(
        ecoupon()
            .args(["--config", "/nonexistent/ecoupon.toml", "serve"])
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("/nonexistent/ecoupon.toml"), "{stderr}");

    let stderr = one_line_failure(
        ecoupon()
            .args([
                "tenant",
                "create",
                "--name",
                "X",
                "--owner-email",
                "not-an-email",
            ])
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("--owner-email"), "{stderr}");
}

#[test]
fn unreachable_database_and_busy_port_fail_fast() {
    let data = scratch_dir("cli");
    let stderr = one_line_failure(
        ecoupon()
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("cannot reach the database"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{stderr}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let stderr = one_line_failure(
        ecoupon()
            .args(["serve", "--listen", &addr])
            .output()
            .unwrap(),
    );
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
}

#[actix_web::test]
async fn tenant_create_prints_credentials_that_work() {
    let db = fresh_database().await;
    let out = ecoupon()
        .env("DATABASE_URL", &db.url)
        .args([
            "tenant",
            "create",
            "--name",
            "Café Sakura",
            "--owner-email",
            "Owner@Sakura.example",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let tenant_id = field(&stdout, "tenant_id").to_string();
    assert_eq!(field(&stdout, "owner_password").len(), 20);
    let api_key = field(&stdout, "api_key").to_string();

    let out = ecoupon()
        .env("DATABASE_URL", &db.url)
        .args([
            "tenant",
            "create",
            "--name",
            "Second",
            "--owner-email",
            "a@b.example",
            "--json",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["api_key"].as_str().unwrap().starts_with("eck_"));

    let app = spawn_app_on(db, test_settings).await;
    let res = app
        .client
        .get(app.url("/api/v1/tenant"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["tenant"]["id"], tenant_id);
    assert_eq!(body["tenant"]["name"], "Café Sakura");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(base: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server exited early: {status}");
        }
        if let Ok(res) = reqwest::blocking_get(&format!("{base}/readyz")) {
            if res == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "server not ready in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The quick start: no DATABASE_URL, so a private cluster is created in the data dir; the
/// demo key printed at start-up works; SIGTERM stops the server and the cluster.
#[test]
fn serve_with_no_database_url_runs_a_private_cluster_and_stops_it() {
    if let Err(e) = ecoupon::private_cluster::find_binaries() {
        missing_dependency(&format!("PostgreSQL server binaries (initdb, pg_ctl): {e}"));
    }
    let data = scratch_dir("embedded");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = ecoupon()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("api_key: ") || !printed.ends_with('\n') {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "server closed stdout: {printed}"
        );
        printed.push_str(&line);
    }
    wait_ready(&base, &mut child);
    let key = field(&printed, "api_key");
    let status = reqwest::blocking_get_auth(&format!("{base}/api/v1/tenant"), key);
    assert_eq!(status, 200);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful exit, got {status}");
    assert!(
        !data.join("postgres/data/postmaster.pid").exists(),
        "the private cluster was stopped"
    );
    let _ = std::fs::remove_dir_all(&data);
}

/// Tiny blocking HTTP helpers for tests that are not async.
mod reqwest {
    pub fn blocking_get(url: &str) -> Result<u16, ::reqwest::Error> {
        run(async { Ok(::reqwest::get(url).await?.status().as_u16()) })
    }
    pub fn blocking_get_auth(url: &str, key: &str) -> u16 {
        run(async {
            Ok::<_, ::reqwest::Error>(
                ::reqwest::Client::new()
                    .get(url)
                    .bearer_auth(key)
                    .send()
                    .await?
                    .status()
                    .as_u16(),
            )
        })
        .unwrap()
    }
    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }
}
