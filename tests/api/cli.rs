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
    // stdout is a pipe, not a terminal: the demo secrets go to a private file and only
    // its path is printed (the last line of the demo block names the staff screen).
    while !printed.contains("Staff redemption screen:") {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "server closed stdout: {printed}"
        );
        printed.push_str(&line);
    }
    wait_ready(&base, &mut child);
    let secrets = std::fs::read_to_string(data.join("demo-credentials.txt")).unwrap();
    let key = field(&secrets, "api_key");
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

/// `ecoupon user invite` prints a one-time link that opens the invitation page; every bad
/// flag is one message naming it, and nothing is stored.
#[actix_web::test]
async fn user_invite_prints_a_link_that_works() {
    let db = fresh_database().await;
    let app = spawn_app_on(db.clone(), test_settings).await;
    let tenant = app.tenant_id.to_string();
    let invite = |args: &[&str]| {
        ecoupon()
            .env("DATABASE_URL", &db.url)
            .args(["user", "invite"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = invite(&[
        "--tenant",
        &tenant,
        "--email",
        "New.Staff@Shop.example",
        "--role",
        "staff",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let link = field(&stdout, "invite_url");
    assert!(
        link.starts_with("http://127.0.0.1:8080/merchant/invite/"),
        "{link}"
    );
    let path = &link["http://127.0.0.1:8080".len()..];
    let token = path.rsplit('/').next().unwrap();
    assert_eq!(token.len(), 43);
    assert!(!field(&stdout, "expires_at").is_empty());

    // The link opens (on the server's real address).
    let res = crate::helpers::html_client(Some("ja"))
        .get(app.url(path))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let html = res.text().await.unwrap();
    assert!(html.contains("new.staff@shop.example"), "{html}");

    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT email, role, token_hash FROM merchant_invites WHERE tenant_id = $1",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "new.staff@shop.example");
    assert_eq!(row.get::<_, String>(1), "staff");
    assert_eq!(
        row.get::<_, Vec<u8>>(2),
        ecoupon::domain::token::sha256(token),
        "only the token's digest is stored"
    );
    let audited = client
        .query_one(
            "SELECT actor, target, detail->>'role' FROM audit_log WHERE action = 'user.invite'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            audited.get::<_, String>(0),
            audited.get::<_, String>(1),
            audited.get::<_, String>(2)
        ),
        (
            "cli".into(),
            "new.staff@shop.example".into(),
            "staff".into()
        )
    );

    let unknown = uuid::Uuid::new_v4().to_string();
    for (args, flag) in [
        (
            [
                "--tenant",
                "shop-1",
                "--email",
                "a@b.example",
                "--role",
                "staff",
            ],
            "--tenant",
        ),
        (
            [
                "--tenant",
                unknown.as_str(),
                "--email",
                "a@b.example",
                "--role",
                "staff",
            ],
            "--tenant",
        ),
        (
            [
                "--tenant",
                tenant.as_str(),
                "--email",
                "not-an-email",
                "--role",
                "staff",
            ],
            "--email",
        ),
        (
            [
                "--tenant",
                tenant.as_str(),
                "--email",
                "a@b.example",
                "--role",
                "boss",
            ],
            "--role",
        ),
        // Already signs in (the test tenant's owner).
        (
            [
                "--tenant",
                tenant.as_str(),
                "--email",
                "owner@test.example",
                "--role",
                "admin",
            ],
            "--email",
        ),
    ] {
        let stderr = one_line_failure(invite(&args));
        assert!(
            stderr.starts_with(&format!("error: {flag}")),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    let invites: i64 = client
        .query_one("SELECT count(*) FROM merchant_invites", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(invites, 1, "no refused invitation was stored");
}

/// The first `serve` against an empty database: a demo tenant with one active campaign,
/// and three lines to click: the console sign-in (with the owner's e-mail and password),
/// the demo coupon, the staff screen.
#[actix_web::test]
async fn first_serve_prints_three_lines_that_work() {
    let db = fresh_database().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let data = scratch_dir("first-serve");
    let mut child = ecoupon()
        .env("DATABASE_URL", &db.url)
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
    while !printed.contains("Staff redemption screen:") {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "server closed stdout: {printed}"
        );
        printed.push_str(&line);
    }
    let line = |prefix: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {printed}"))
            .trim()
            .to_string()
    };
    // Not a terminal: the secrets went to a file only this user can read, and its path
    // was printed instead.
    let file = data.join("demo-credentials.txt");
    assert!(printed.contains(&file.display().to_string()), "{printed}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let secrets = std::fs::read_to_string(&file).unwrap();
    let password = field(&secrets, "owner_password").to_string();
    let api_key = field(&secrets, "api_key").to_string();
    assert!(
        !printed.contains(&password) && !printed.contains(&api_key),
        "{printed}"
    );
    let console = line("Console sign-in:");
    assert!(
        console.starts_with(&format!("{base}/merchant/login ")),
        "{console}"
    );
    assert!(console.contains("owner@demo.example"), "{console}");
    assert!(
        secrets.contains(&format!("{base}/merchant/login")) && secrets.contains(&password),
        "{secrets}"
    );
    let claim = line("Demo coupon (customers):");
    assert!(claim.starts_with(&format!("{base}/c/")), "{claim}");
    assert_eq!(
        line("Staff redemption screen:"),
        format!("{base}/merchant/redeem")
    );
    let mut stdout_rest = stdout;
    // Keep the pipe drained so the server never blocks on a full stdout.
    std::thread::spawn(move || std::io::copy(&mut stdout_rest, &mut std::io::sink()));

    let browser = crate::helpers::html_client(Some("ja"));
    ready(&base, &mut child).await;
    let (status, html) = crate::helpers::page(&browser, &claim).await;
    assert_eq!(status, 200);
    assert!(html.contains("オープン記念 コーヒー1杯無料"), "{html}");
    assert!(html.contains("コーヒー1杯"));
    let (status, _) = crate::helpers::page(&browser, &format!("{base}/merchant/login")).await;
    assert_eq!(status, 200);
    // The printed password signs in (and is asked to be changed, being printed).
    let (_, form) = crate::helpers::page(&browser, &format!("{base}/merchant/login")).await;
    let csrf = crate::helpers::csrf_of(&form);
    let res = browser
        .post(format!("{base}/merchant/login"))
        .form(&[
            ("email", "owner@demo.example"),
            ("password", &password),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let status: String = db
        .client()
        .await
        .query_one("SELECT status FROM campaigns", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "active");

    // A second start against the same database makes nothing new and prints no secrets.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let port = free_port();
    let mut again = ecoupon()
        .env("DATABASE_URL", &db.url)
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
    let base = format!("http://127.0.0.1:{port}");
    ready(&base, &mut again).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(again.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = again.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("owner_password"), "{printed}");
    let campaigns: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM campaigns", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(campaigns, 1);
    let _ = std::fs::remove_dir_all(&data);
}

/// [`wait_ready`] for async tests (which cannot block on a runtime of their own).
async fn ready(base: &str, child: &mut std::process::Child) {
    let client = ::reqwest::Client::new();
    crate::helpers::eventually(Duration::from_secs(60), "the server is ready", async || {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server exited early: {status}");
        }
        let res = client.get(format!("{base}/readyz")).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await;
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
