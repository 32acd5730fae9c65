//! Maintenance windows and incidents posted from the operator console: the CLI's rules
//! (7 days' notice unless an emergency, which is shown as such), mail queued for every
//! merchant's owners and admins with a reminder 24 hours ahead, updates, cancelling, the
//! audit log, and the outbox page.

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};

use crate::helpers::{location, page, spawn_app};
use crate::ops_console::{add_operator, audit_trail, ops_as, ops_post};

/// A time as the page's `datetime-local` field sends it: Japan time, no zone.
fn form_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&FixedOffset::east_opt(9 * 3600).unwrap())
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

#[actix_web::test]
async fn notices_from_the_console_follow_the_same_rules_as_the_cli() {
    let app = spawn_app().await;
    let admin = app.add_user("admin").await;
    let (_, alice) = add_operator(&app, "active").await;
    let (ops, _) = ops_as(&app, &alice, "en").await;
    let notices = |sql: &'static str| {
        let app = &app;
        async move { app.db_value::<i64>(sql, &[]).await }
    };

    // Two days ahead without the emergency box: refused, with the reason, nothing stored.
    let soon = Utc::now() + TimeDelta::days(2);
    let soon_end = soon + TimeDelta::hours(1);
    let res = ops_post(
        &app,
        &ops,
        "/ops/notices",
        "/ops/notices/maintenance",
        &[
            ("start", &form_time(soon)),
            ("end", &form_time(soon_end)),
            ("title", "Hotfix"),
            ("body", ""),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("merchants are promised 7 days") && html.contains("id=\"m-start-error\""),
        "{html}"
    );
    assert!(
        html.contains("value=\"Hotfix\""),
        "the form keeps what was typed"
    );
    assert_eq!(notices("SELECT count(*) FROM notices").await, 0);

    // Other refusals: in the past, ending before it starts, no title, not a time.
    let past = Utc::now() - TimeDelta::hours(1);
    let later = Utc::now() + TimeDelta::days(9);
    for (start, end, title, field) in [
        (form_time(past), form_time(later), "Old", "m-start-error"),
        (
            form_time(later),
            form_time(later - TimeDelta::hours(2)),
            "Backwards",
            "m-end-error",
        ),
        (
            form_time(later),
            form_time(later + TimeDelta::hours(1)),
            "  ",
            "m-title-error",
        ),
        (
            "next week".to_string(),
            form_time(later),
            "Vague",
            "m-start-error",
        ),
    ] {
        let res = ops_post(
            &app,
            &ops,
            "/ops/notices",
            "/ops/notices/maintenance",
            &[
                ("start", &start),
                ("end", &end),
                ("title", title),
                ("emergency", "1"),
            ],
        )
        .await;
        assert_eq!(res.status(), 422, "{title}");
        assert!(res.text().await.unwrap().contains(field), "{title}");
    }
    assert_eq!(notices("SELECT count(*) FROM notices").await, 0);

    // With the emergency box: scheduled, marked, mailed now, shown as an emergency.
    let res = ops_post(
        &app,
        &ops,
        "/ops/notices",
        "/ops/notices/maintenance",
        &[
            ("start", &form_time(soon)),
            ("end", &form_time(soon_end)),
            ("title", "Hotfix"),
            ("body", "A security fix that cannot wait."),
            ("emergency", "1"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/ops/notices?done=maintenance");
    let (id, emergency, starts): (uuid::Uuid, bool, DateTime<Utc>) = {
        let row = app
            .db
            .client()
            .await
            .query_one(
                "SELECT id, emergency, starts_at FROM notices WHERE title = 'Hotfix'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert!(emergency);
    // The form's minutes, read as Japan time.
    assert!(
        (starts - soon).num_seconds().abs() < 60,
        "{starts} vs {soon}"
    );
    let subjects: Vec<String> = app
        .db
        .client()
        .await
        .query(
            "SELECT subject FROM mail_outbox WHERE notice_id = $1 AND recipient = $2 ORDER BY kind",
            &[&id, &admin],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(subjects.len(), 2, "announcement and reminder: {subjects:?}");
    assert!(
        subjects[0].starts_with("[ecoupon] Emergency maintenance: Hotfix"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].starts_with("[ecoupon] Reminder"),
        "{subjects:?}"
    );
    let (status, html) = page(&ops, &app.url("/ops/notices?done=maintenance")).await;
    assert_eq!(status, 200);
    let at = html
        .find(&format!("data-notice-id=\"{id}\""))
        .expect("listed");
    let item = &html[at..at + 1200];
    assert!(
        item.contains("data-emergency=\"true\"") && item.contains("Emergency"),
        "{item}"
    );
    assert!(html.contains("Maintenance scheduled"), "{html}");

    // Eight days ahead: no box needed; the reminder waits until 24 hours before.
    let week = Utc::now() + TimeDelta::days(8);
    let res = ops_post(
        &app,
        &ops,
        "/ops/notices",
        "/ops/notices/maintenance",
        &[
            ("start", &form_time(week)),
            ("end", &form_time(week + TimeDelta::hours(2))),
            ("title", "Database upgrade"),
            ("body", "PostgreSQL 17."),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (planned, hours): (uuid::Uuid, f64) = {
        let row = app
            .db
            .client()
            .await
            .query_one(
                "SELECT n.id, (extract(epoch FROM m.send_after - n.starts_at) / 3600)::float8
                 FROM notices n JOIN mail_outbox m ON m.notice_id = n.id AND m.kind = 'reminder'
                 WHERE n.title = 'Database upgrade' AND NOT n.emergency LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!((hours + 24.0).abs() < 0.01, "{hours}");

    // An incident, moved on and resolved; a resolved incident moves no more.
    let res = ops_post(
        &app,
        &ops,
        "/ops/notices",
        "/ops/notices/incident",
        &[("title", "Claims slow"), ("body", "Looking into it.")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let incident: uuid::Uuid = app
        .db_value("SELECT id FROM notices WHERE kind = 'incident'", &[])
        .await;
    for (status, expect) in [("identified", 303), ("resolved", 303), ("monitoring", 409)] {
        let res = ops_post(
            &app,
            &ops,
            "/ops/notices",
            &format!("/ops/notices/{incident}"),
            &[("status", status), ("body", "Update.")],
        )
        .await;
        assert_eq!(res.status(), expect, "{status}");
    }
    let state: String = app
        .db_value("SELECT status FROM notices WHERE id = $1", &[&incident])
        .await;
    assert_eq!(state, "resolved");
    // A window cannot be "resolved", only cancelled; cancelling drops its reminders.
    let res = ops_post(
        &app,
        &ops,
        "/ops/notices",
        &format!("/ops/notices/{planned}"),
        &[("status", "resolved")],
    )
    .await;
    assert_eq!(res.status(), 409);
    let res = ops_post(
        &app,
        &ops,
        "/ops/notices",
        &format!("/ops/notices/{planned}"),
        &[("status", "cancelled")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let reminders: i64 = app
        .db_value(
            "SELECT count(*) FROM mail_outbox WHERE notice_id = $1 AND kind = 'reminder'",
            &[&planned],
        )
        .await;
    assert_eq!(reminders, 0);
    let cancel_mail: i64 = app
        .db_value(
            "SELECT count(*) FROM mail_outbox WHERE notice_id = $1 AND kind = 'update-cancelled'",
            &[&planned],
        )
        .await;
    assert!(cancel_mail >= 1);

    // Forms need the session's CSRF token.
    let res = ops
        .post(app.url("/ops/notices/incident"))
        .form(&[("title", "Forged"), ("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        notices("SELECT count(*) FROM notices WHERE title = 'Forged'").await,
        0
    );

    // Every step is in the audit log as this operator.
    let trail = audit_trail(&app, "notice.").await;
    let actions: Vec<&str> = trail.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        actions,
        vec![
            "notice.maintenance",
            "notice.maintenance",
            "notice.incident",
            "notice.update",
            "notice.update",
            "notice.update"
        ]
    );
    assert!(
        trail
            .iter()
            .all(|l| l.split(' ').nth(1) == Some(alice.as_str())),
        "{trail:?}"
    );

    // The outbox page: counts per notice and kind, never the recipients.
    let (status, html) = page(&ops, &app.url("/ops/mail")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Hotfix") && html.contains("Claims slow"),
        "{html}"
    );
    assert!(html.contains("data-mail-kind=\"reminder\""), "{html}");
    assert!(html.contains("No SMTP server is configured"), "{html}");
    assert!(
        !html.contains(&admin) && !html.contains("owner@test.example"),
        "{html}"
    );
    let (_, ja) = page(&ops, &app.url("/ops/mail?lang=ja")).await;
    assert!(
        ja.contains("メール送信状況") && ja.contains("リマインダー"),
        "{ja}"
    );
    let (_, ja) = page(&ops, &app.url("/ops/notices")).await;
    assert!(
        ja.contains("メンテナンスを予定する") && ja.contains("緊急"),
        "{ja}"
    );
}
