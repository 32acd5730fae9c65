//! The tamper-evident audit log: append-only by trigger, one chain under concurrent
//! inserts, a superuser's edit caught by `audit verify`, retention behind a signed
//! checkpoint, and the `ecoupon_audit_chain_ok` gauge.

use std::time::Duration;

use ecoupon::config::{RetentionSettings, SecretSettings, Secrets};
use ecoupon::ops::keys::InstallationKey;
use ecoupon::store::Store;

use crate::helpers::{eventually, scratch_dir, spawn_app, spawn_app_on, test_settings, TestApp};
use crate::ops_backup::{ecoupon, fail};

async fn write_entries(app: &TestApp, n: usize, actor: &str) {
    let client = app.db.client().await;
    for i in 0..n {
        client
            .execute(
                "INSERT INTO audit_log (tenant_id, actor, action, target, ip, detail)
                 VALUES ($1, $2, 'test.entry', $3, '192.0.2.1', jsonb_build_object('i', $4::int))",
                &[&app.tenant_id, &actor, &format!("target-{i}"), &(i as i32)],
            )
            .await
            .unwrap();
    }
}

fn verify(app: &TestApp, data: &std::path::Path) -> Result<String, String> {
    let out = ecoupon(Some(&app.db.url), data)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    }
}

#[actix_web::test]
async fn updates_and_deletes_are_refused_and_a_bypassing_superuser_is_caught() {
    let app = spawn_app().await;
    let data = scratch_dir("data");
    write_entries(&app, 5, "owner@test.example").await;
    let ok = verify(&app, &data).unwrap();
    assert!(ok.contains("audit chain intact: 5 rows"), "{ok}");

    let client = app.db.client().await;
    for sql in [
        "UPDATE audit_log SET target = 'someone else' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 5",
        "TRUNCATE audit_log",
        "TRUNCATE audit_chain_head",
    ] {
        let err = client.batch_execute(sql).await.unwrap_err();
        let message = err.as_db_error().unwrap().message().to_string();
        assert!(message.contains("append-only"), "{sql}: {message}");
    }

    // A superuser can switch triggers off; the chain still tells.
    let id: i64 = app
        .db_value("SELECT id FROM audit_log WHERE seq = 3", &[])
        .await;
    client
        .batch_execute(
            "SET session_replication_role = replica;
             UPDATE audit_log SET ip = '203.0.113.9' WHERE seq = 3;
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    let line = verify(&app, &data).unwrap_err();
    assert!(
        line.starts_with("error: audit chain broken at row id ")
            && line.contains(&format!("row id {id} (seq 3)"))
            && line.contains("content does not match"),
        "{line}"
    );
    let line = fail(ecoupon(Some(&app.db.url), &data).args(["audit", "verify"]));
    assert!(line.contains("seq 3"), "{line}");
}

#[actix_web::test]
async fn deleted_rows_and_a_rewritten_tail_are_caught() {
    let app = spawn_app().await;
    let data = scratch_dir("data");
    write_entries(&app, 6, "admin@test.example").await;
    let client = app.db.client().await;
    // Deleting a middle row (triggers off) leaves a gap.
    client
        .batch_execute(
            "SET session_replication_role = replica;
             DELETE FROM audit_log WHERE seq = 4;
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    let line = verify(&app, &data).unwrap_err();
    assert!(
        line.contains("(seq 5)") && line.contains("missing"),
        "{line}"
    );

    // Deleting the newest row is seen against the chain head.
    let app = spawn_app().await;
    write_entries(&app, 4, "admin@test.example").await;
    app.db
        .client()
        .await
        .batch_execute(
            "SET session_replication_role = replica;
             DELETE FROM audit_log WHERE seq = 4;
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    let line = verify(&app, &data).unwrap_err();
    assert!(line.contains("chain head says seq 4"), "{line}");
}

#[actix_web::test]
async fn two_nodes_inserting_at_once_form_one_chain() {
    let app = spawn_app().await;
    let data = scratch_dir("data");
    let mut tasks = Vec::new();
    for node in 0..2 {
        let url = app.db.url.clone();
        let tenant = app.tenant_id;
        tasks.push(tokio::spawn(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let client = std::sync::Arc::new(client);
            let mut inserts = Vec::new();
            for i in 0..100 {
                let client = client.clone();
                inserts.push(async move {
                    client
                        .execute(
                            "INSERT INTO audit_log (tenant_id, actor, action, target)
                             VALUES ($1, $2, 'test.concurrent', $3)",
                            &[&tenant, &format!("node-{node}"), &i.to_string()],
                        )
                        .await
                        .unwrap();
                });
            }
            futures_util::future::join_all(inserts).await;
        }));
    }
    // A third writer in explicit transactions that roll back: no holes either.
    let client = app.db.client().await;
    for _ in 0..10 {
        client
            .batch_execute(
                "BEGIN; INSERT INTO audit_log (actor, action) VALUES ('x', 'test.rolled_back'); ROLLBACK;",
            )
            .await
            .unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (n, max): (i64, i64) = {
        let row = client
            .query_one("SELECT count(*), max(seq) FROM audit_log", &[])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((n, max), (200, 200));
    let ok = verify(&app, &data).unwrap();
    assert!(ok.contains("200 rows"), "{ok}");
}

async fn store_for(app: &TestApp) -> Store {
    Store::connect(
        app.db.url.parse().unwrap(),
        &test_settings(&app.db).database,
    )
    .await
    .unwrap()
}

#[actix_web::test]
async fn retention_cuts_old_rows_behind_a_signed_checkpoint_that_verifies() {
    let app = spawn_app().await;
    let data = scratch_dir("data");
    let client = app.db.client().await;
    for days in [800, 500, 400, 10, 1] {
        client
            .execute(
                "INSERT INTO audit_log (actor, action, at) VALUES ('cli', 'test.aged', now() - make_interval(days => $1))",
                &[&days],
            )
            .await
            .unwrap();
    }
    let store = store_for(&app).await;
    let secrets = Secrets::resolve(&SecretSettings::default(), &data).unwrap();
    let key = InstallationKey::new(&secrets);
    let report = ecoupon::ops::retention::run(&store, &RetentionSettings::default(), &key)
        .await
        .unwrap();
    assert_eq!(report.audit_rows_cut, 3);
    let left: i64 = app.db_value("SELECT count(*) FROM audit_log", &[]).await;
    assert_eq!(left, 2);
    let ok = verify(&app, &data).unwrap();
    assert!(
        ok.contains("2 rows from the signed checkpoint at seq 3"),
        "{ok}"
    );
    // More entries still chain on.
    write_entries(&app, 2, "owner@test.example").await;
    assert!(verify(&app, &data).unwrap().contains("4 rows"));

    // The checkpoint cannot be edited, and one forged by a superuser fails its signature.
    let err = client
        .batch_execute("UPDATE audit_checkpoints SET seq = seq")
        .await
        .unwrap_err();
    assert!(err.as_db_error().unwrap().message().contains("append-only"));
    client
        .batch_execute(
            "SET session_replication_role = replica;
             UPDATE audit_checkpoints SET erased_cut = erased_cut + 1;
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    let line = verify(&app, &data).unwrap_err();
    assert!(line.contains("bad signature"), "{line}");
    // Another installation's key does not vouch for this log's checkpoints.
    let other = scratch_dir("data");
    let line = verify(&app, &other).unwrap_err();
    assert!(line.contains("not this installation's"), "{line}");
    store.close();
}

#[actix_web::test]
async fn serve_exports_whether_the_chain_is_intact() {
    let db = crate::helpers::fresh_database().await;
    let app = spawn_app_on(db, |db| {
        let mut s = test_settings(db);
        s.retention.audit_check_every = Duration::from_millis(200);
        s
    })
    .await;
    write_entries(&app, 3, "owner@test.example").await;
    let gauge = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("ecoupon_audit_chain_ok "))
            .map(|l| l.trim_end_matches(|c: char| c.is_whitespace()).to_string())
    };
    eventually(
        Duration::from_secs(10),
        "the gauge shows an intact chain",
        async || {
            let text = app
                .client
                .get(app.url("/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (gauge(&text)? == "ecoupon_audit_chain_ok 1").then_some(())
        },
    )
    .await;
    app.db
        .client()
        .await
        .batch_execute(
            "SET session_replication_role = replica;
             UPDATE audit_log SET actor = 'nobody' WHERE seq = 2;
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    // The gauge is per process and other tests' nodes set it too: wait to see ours drop.
    eventually(
        Duration::from_secs(10),
        "the gauge shows the break",
        async || {
            let text = app
                .client
                .get(app.url("/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (gauge(&text)? == "ecoupon_audit_chain_ok 0").then_some(())
        },
    )
    .await;
}
