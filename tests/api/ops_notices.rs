//! Notices: maintenance and incident mail through the outbox to a real SMTP server
//! (Debian's python3-aiosmtpd, started here), including while it is down; the 7-day rule
//! and --emergency; the maintenance window's 503 with Retry-After, /readyz, /status and
//! banners.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{TimeDelta, Utc};

use crate::helpers::{
    eventually, fresh_database, missing_dependency, scratch_dir, spawn_app_on, test_settings,
    TestApp,
};
use crate::ops_backup::{ecoupon, fail, succeed};

const PYTHON: &str = "/usr/bin/python3";

/// An aiosmtpd server writing every message it accepts into a maildir.
struct Smtp {
    child: Child,
    maildir: PathBuf,
}

impl Smtp {
    fn start(port: u16) -> Smtp {
        let ok = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing_dependency(
                "python3-aiosmtpd (Debian's aiosmtpd for /usr/bin/python3) is not installed",
            );
        }
        // Python creates the maildir (with new/, cur/, tmp/) only if it does not exist.
        let maildir = scratch_dir("smtp").join("maildir");
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Smtp { child, maildir }
    }

    /// Every message received so far, decoded.
    fn messages(&self) -> Vec<Received> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                found.push(Received::parse(&std::fs::read_to_string(e.path()).unwrap()));
            }
        }
        found
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Received {
    to: String,
    subject: String,
    body: String,
}

impl Received {
    fn parse(raw: &str) -> Received {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(": ")?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let body = match header("Content-Transfer-Encoding").to_lowercase().as_str() {
            "base64" => {
                use base64::Engine;
                let joined: String = body.split_whitespace().collect();
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(joined)
                        .unwrap(),
                )
                .unwrap()
            }
            "quoted-printable" => decode_qp(body),
            _ => body.to_string(),
        };
        Received {
            to: header("X-RcptTo"),
            subject: header("Subject"),
            body,
        }
    }
}

fn decode_qp(text: &str) -> String {
    let text = text.replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn app_with_mail(port: u16) -> TestApp {
    spawn_app_on(fresh_database().await, move |db| {
        let mut s = test_settings(db);
        s.mail.smtp_host = Some("127.0.0.1".into());
        s.mail.smtp_port = port;
        s.mail.poll = Duration::from_millis(200);
        s.mail.from = "ecoupon ops <ops@coupons.example.jp>".into();
        s
    })
    .await
}

fn notice(app: &TestApp, data: &Path, args: &[&str]) -> String {
    succeed(ecoupon(Some(&app.db.url), data).arg("notice").args(args))
}

#[actix_web::test]
async fn maintenance_mail_reaches_owners_even_when_the_smtp_server_was_down() {
    let port = free_port();
    let app = app_with_mail(port).await;
    let data = scratch_dir("data");
    let start = (Utc::now() + TimeDelta::days(8)).to_rfc3339();
    let end = (Utc::now() + TimeDelta::days(8) + TimeDelta::hours(2)).to_rfc3339();
    // No SMTP server yet: the sender fails and keeps the mail.
    let out = notice(
        &app,
        &data,
        &[
            "maintenance",
            "--start",
            &start,
            "--end",
            &end,
            "--title",
            "Database upgrade",
            "--body",
            "PostgreSQL 17.",
        ],
    );
    assert!(
        out.contains("maintenance") && out.contains("scheduled"),
        "{out}"
    );
    eventually(
        Duration::from_secs(15),
        "a failed attempt is recorded",
        async || {
            let n: i32 = app
                .db_value(
                    "SELECT coalesce(max(attempts), 0) FROM mail_outbox WHERE kind = 'announce'",
                    &[],
                )
                .await;
            (n >= 1).then_some(())
        },
    )
    .await;
    let unsent: i64 = app
        .db_value(
            "SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND kind = 'announce'",
            &[],
        )
        .await;
    assert_eq!(unsent, 1);
    // The outbox-lag gauge shows mail waiting (other tests' nodes set it too, so only
    // that it appears is checked).
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ecoupon_outbox_lag_seconds{kind=\"mail\"}"),
        "{metrics}"
    );

    let started = std::time::Instant::now();
    let smtp = Smtp::start(port);
    let mail = eventually(
        Duration::from_secs(30),
        "the announcement arrives",
        async || smtp.messages().into_iter().next(),
    )
    .await;
    // Retried with backoff (5 s, then 10 s …), not dropped.
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(mail.to, "owner@test.example");
    assert!(
        mail.subject
            .starts_with("[ecoupon] Scheduled maintenance: Database upgrade"),
        "{mail:?}"
    );
    assert!(
        mail.body.contains("Database upgrade") && mail.body.contains("PostgreSQL 17."),
        "{mail:?}"
    );
    assert!(
        mail.body.contains("JST") && mail.body.contains("/status"),
        "{mail:?}"
    );
    assert!(!mail.body.contains("EMERGENCY"));
    // The reminder waits for its time: 24 hours before the window.
    let (sent, due_in_hours): (bool, f64) = {
        let row = app
            .db
            .client()
            .await
            .query_one(
                "SELECT sent_at IS NOT NULL, (extract(epoch FROM send_after - now()) / 3600)::float8
                 FROM mail_outbox WHERE kind = 'reminder'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get::<_, f64>(1))
    };
    assert!(!sent);
    assert!((due_in_hours - 7.0 * 24.0).abs() < 0.1, "{due_in_hours}");
    assert_eq!(smtp.messages().len(), 1);

    // Less than 7 days' notice needs --emergency, and the mail says so.
    let soon = (Utc::now() + TimeDelta::days(2)).to_rfc3339();
    let soon_end = (Utc::now() + TimeDelta::days(2) + TimeDelta::hours(1)).to_rfc3339();
    let line = fail(ecoupon(Some(&app.db.url), &data).args([
        "notice",
        "maintenance",
        "--start",
        &soon,
        "--end",
        &soon_end,
        "--title",
        "Hotfix",
    ]));
    assert!(
        line.contains("--emergency") && line.contains("7 days"),
        "{line}"
    );
    notice(
        &app,
        &data,
        &[
            "maintenance",
            "--start",
            &soon,
            "--end",
            &soon_end,
            "--title",
            "Hotfix",
            "--emergency",
        ],
    );
    let urgent = eventually(
        Duration::from_secs(10),
        "the emergency notice arrives",
        async || {
            smtp.messages()
                .into_iter()
                .find(|m| m.subject.contains("Hotfix"))
        },
    )
    .await;
    assert!(
        urgent
            .subject
            .starts_with("[ecoupon] Emergency maintenance: Hotfix"),
        "{urgent:?}"
    );
    assert!(urgent.body.contains("EMERGENCY"), "{urgent:?}");

    // An incident, then its resolution.
    let out = notice(
        &app,
        &data,
        &[
            "incident",
            "--title",
            "Slow claims",
            "--body",
            "Investigating.",
        ],
    );
    let id = out.split_whitespace().next().unwrap().to_string();
    notice(
        &app,
        &data,
        &["update", &id, "--status", "resolved", "--body", "Fixed."],
    );
    let subjects = eventually(
        Duration::from_secs(10),
        "incident and resolution arrive",
        async || {
            let subjects: Vec<String> = smtp.messages().into_iter().map(|m| m.subject).collect();
            (subjects
                .iter()
                .any(|s| s == "[ecoupon] Incident: Slow claims")
                && subjects
                    .iter()
                    .any(|s| s == "[ecoupon] Resolved: Slow claims"))
            .then_some(subjects)
        },
    )
    .await;
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    let audited: i64 = app
        .db_value(
            "SELECT count(*) FROM audit_log WHERE action LIKE 'notice.%'",
            &[],
        )
        .await;
    assert_eq!(audited, 4);

    // The reminder follows when its time comes (moved up here from 24 hours before).
    app.db
        .client()
        .await
        .execute(
            "UPDATE mail_outbox SET send_after = now(), next_attempt_at = now()
             WHERE kind = 'reminder' AND subject LIKE '%Database upgrade%'",
            &[],
        )
        .await
        .unwrap();
    let reminder = eventually(
        Duration::from_secs(15),
        "the reminder arrives",
        async || {
            smtp.messages()
                .into_iter()
                .find(|m| m.subject.starts_with("[ecoupon] Reminder"))
        },
    )
    .await;
    assert_eq!(reminder.to, "owner@test.example");
    assert!(
        reminder.subject.contains("Database upgrade")
            && reminder.body.contains("Reminder")
            && reminder.body.contains("PostgreSQL 17."),
        "{reminder:?}"
    );
}

#[actix_web::test]
async fn a_maintenance_window_answers_503_with_retry_after_and_shows_everywhere() {
    let app = spawn_app_on(fresh_database().await, test_settings).await;
    let data = scratch_dir("data");
    let start = Utc::now() + TimeDelta::seconds(4);
    let end = start + TimeDelta::minutes(10);
    let out = notice(
        &app,
        &data,
        &[
            "maintenance",
            "--start",
            &start.to_rfc3339(),
            "--end",
            &end.to_rfc3339(),
            "--title",
            "Storage move",
            "--emergency",
        ],
    );
    let id = out.split_whitespace().next().unwrap().to_string();

    // Announced: the banner is on pages before the window starts.
    let page = eventually(
        Duration::from_secs(10),
        "the console shows the banner",
        async || {
            let text = app
                .client
                .get(app.url("/merchant/login"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("ops-banner").then_some(text)
        },
    )
    .await;
    assert!(page.contains("Storage move"), "{page}");

    // In the window: 503 with Retry-After for the API and consumer pages.
    let res = eventually(Duration::from_secs(15), "the API answers 503", async || {
        let res = app.get("/api/v1/tenant").send().await.ok()?;
        (res.status() == 503).then_some(res)
    })
    .await;
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((500..=600).contains(&retry), "{retry}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "maintenance");
    let res = app
        .client
        .get(app.url("/my"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("メンテナンス中"));
    let live = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "maintenance"
    );
    let status = app
        .client
        .get(app.url("/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        status.contains("メンテナンス中") && status.contains("Storage move"),
        "{status}"
    );
    let json: serde_json::Value = app
        .client
        .get(app.url("/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["state"], "maintenance");

    // Cancelled: service is back within the board's refresh.
    notice(&app, &data, &["update", &id, "--status", "cancelled"]);
    eventually(Duration::from_secs(10), "the API is back", async || {
        let res = app.get("/api/v1/tenant").send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await;
    let json: serde_json::Value = app
        .client
        .get(app.url("/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["state"], "ok");
    assert_eq!(json["history"][0]["status"], "cancelled", "{json}");
}
