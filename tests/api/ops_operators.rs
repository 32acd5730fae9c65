//! Operator accounts through the binary: the first by --bootstrap (only once), the next
//! pending until a different active operator approves with their password; request and
//! approval in the audit log; a disabled operator can approve nothing.

use std::io::Write;
use std::process::Stdio;

use crate::helpers::{scratch_dir, spawn_app};
use crate::ops_backup::{ecoupon, fail, succeed};

fn password_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .trim()
        .to_string()
}

/// Runs `operator <args>` with `password` on standard input; (ok, stdout or error line).
pub(crate) fn with_password(
    url: &str,
    data: &std::path::Path,
    args: &[&str],
    password: &str,
) -> Result<String, String> {
    let mut child = ecoupon(Some(url), data)
        .arg("operator")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
        Err(err)
    }
}

#[actix_web::test]
async fn a_new_operator_needs_another_active_operator_to_approve() {
    let app = spawn_app().await;
    let data = scratch_dir("data");
    let url = app.db.url.clone();
    let first = succeed(ecoupon(Some(&url), &data).args([
        "operator",
        "request",
        "alice@ops.example",
        "--bootstrap",
    ]));
    assert!(first.contains("status: active"), "{first}");
    let alice = password_of(&first);
    assert!(alice.len() >= 15);
    let line = fail(ecoupon(Some(&url), &data).args([
        "operator",
        "request",
        "mallory@ops.example",
        "--bootstrap",
    ]));
    assert!(line.contains("--bootstrap"), "{line}");

    let second =
        succeed(ecoupon(Some(&url), &data).args(["operator", "request", "bob@ops.example"]));
    assert!(second.contains("pending"), "{second}");
    let bob = password_of(&second);
    assert_ne!(alice, bob);
    let stored: String = app
        .db_value(
            "SELECT password_hash FROM operators WHERE email = 'bob@ops.example'",
            &[],
        )
        .await;
    assert!(stored.starts_with("$argon2id$") && !stored.contains(&bob));

    // Not by themselves, not with a wrong password, not by a pending operator.
    let err = with_password(
        &url,
        &data,
        &["approve", "bob@ops.example", "--by", "bob@ops.example"],
        &bob,
    )
    .unwrap_err();
    assert!(err.contains("not an active operator"), "{err}");
    let err = with_password(
        &url,
        &data,
        &["approve", "bob@ops.example", "--by", "alice@ops.example"],
        "wrong password here",
    )
    .unwrap_err();
    assert!(err.contains("password is wrong"), "{err}");
    let status: String = app
        .db_value(
            "SELECT status FROM operators WHERE email = 'bob@ops.example'",
            &[],
        )
        .await;
    assert_eq!(status, "pending");

    let ok = with_password(
        &url,
        &data,
        &["approve", "bob@ops.example", "--by", "alice@ops.example"],
        &alice,
    )
    .unwrap();
    assert!(ok.contains("approved"), "{ok}");
    let list = succeed(ecoupon(Some(&url), &data).args(["operator", "list"]));
    assert!(
        list.lines().any(|l| l.starts_with("bob@ops.example")
            && l.contains("active")
            && l.contains("alice@ops.example")),
        "{list}"
    );
    let err = with_password(
        &url,
        &data,
        &["approve", "alice@ops.example", "--by", "bob@ops.example"],
        &bob,
    )
    .unwrap_err();
    assert!(err.contains("not pending"), "{err}");

    // Alice leaves: disabled at once, and can approve nothing after.
    with_password(
        &url,
        &data,
        &["disable", "alice@ops.example", "--by", "bob@ops.example"],
        &bob,
    )
    .unwrap();
    succeed(ecoupon(Some(&url), &data).args(["operator", "request", "carol@ops.example"]));
    let err = with_password(
        &url,
        &data,
        &["approve", "carol@ops.example", "--by", "alice@ops.example"],
        &alice,
    )
    .unwrap_err();
    assert!(err.contains("not an active operator"), "{err}");

    let trail: Vec<String> = app
        .db
        .client()
        .await
        .query(
            "SELECT action || ' ' || actor || ' ' || target FROM audit_log WHERE action LIKE 'operator.%' ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(trail[0], "operator.bootstrap bootstrap alice@ops.example");
    assert!(
        trail[1].starts_with("operator.request ") && trail[1].ends_with(" bob@ops.example"),
        "{trail:?}"
    );
    assert_eq!(
        trail[2],
        "operator.approve alice@ops.example bob@ops.example"
    );
    assert_eq!(
        trail[3],
        "operator.disable bob@ops.example alice@ops.example"
    );
    assert_eq!(trail.len(), 5, "{trail:?}");
}
