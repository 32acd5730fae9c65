//! Lease keeping costs one row per node: the heartbeat moves the node's `engine_nodes` row
//! and never writes a lease row, and the reaper takes back the leases of a node whose row
//! went stale (or never existed), then removes the row, while a node of the previous
//! version (no row, its lease heart-beaten itself) keeps its lease through a rolling
//! restart; a node that stops gracefully returns its stock and removes its own row. (A
//! node killed with SIGKILL is `faults_nodes.rs`.)

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{eventually, fresh_database, spawn_app_on, test_settings, TestApp};

const LEASE_TTL: Duration = Duration::from_secs(2);

async fn app_with_short_leases() -> TestApp {
    spawn_app_on(fresh_database().await, |db| {
        let mut s = test_settings(db);
        s.engine.lease_ttl = LEASE_TTL;
        s
    })
    .await
}

#[actix_web::test]
async fn the_heartbeat_moves_the_node_row_and_leaves_lease_rows_alone() {
    let app = app_with_short_leases().await;
    let id = app
        .create_campaign_id(json!({"name": "beats", "total_limit": 100, "status": "active"}))
        .await;
    let (status, body) = app.claim(&id, "first").await;
    assert_eq!(status, 201, "{body}");
    let lease_of = async |consumer: &str| -> String {
        app.db_value(
            "SELECT lease_id::text FROM coupons WHERE campaign_id = $1::text::uuid AND consumer = $2",
            &[&id, &format!("api:{consumer}")],
        )
        .await
    };
    let lease = lease_of("first").await;
    let version = async || -> String {
        app.db_value(
            "SELECT xmin::text || ' ' || coalesce(released_at::text, 'live')
             FROM campaign_leases WHERE id = $1::text::uuid",
            &[&lease],
        )
        .await
    };
    let before = version().await;
    assert!(before.ends_with(" live"), "{before}");

    // Watch the node's row until it has beaten several times and the lease is older than
    // two ttls, so reaper rounds have looked at it while it was far past the old expiry.
    let node = app.engine.node_id();
    let mut beats = BTreeSet::new();
    eventually(
        Duration::from_secs(60),
        "the node heart-beats with its lease two ttls old",
        async || {
            let client = app.db.client().await;
            let row = client
                .query_one(
                    "SELECT n.heartbeat_at::text,
                            n.heartbeat_at - l.taken_at > make_interval(secs => $3)
                     FROM engine_nodes n, campaign_leases l
                     WHERE n.node_id = $1 AND l.id = $2::text::uuid",
                    &[&node, &lease, &(2.0 * LEASE_TTL.as_secs_f64())],
                )
                .await
                .unwrap();
            beats.insert(row.get::<_, String>(0));
            (beats.len() >= 4 && row.get::<_, bool>(1)).then_some(())
        },
    )
    .await;

    assert_eq!(version().await, before, "the lease row was not written");
    let nodes: i64 = app.db_value("SELECT count(*) FROM engine_nodes", &[]).await;
    assert_eq!(nodes, 1, "one row for the one node");
    // The lease is still live and still spent from.
    let (status, body) = app.claim(&id, "second").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(lease_of("second").await, lease);

    // A graceful stop gives the unused stock back and removes the node's row itself (no
    // other node is there to reap anything).
    app.stop().await;
    eventually(
        Duration::from_secs(30),
        "the stopped node has returned its lease and left",
        async || {
            let left: i64 = app
                .db_value(
                    "SELECT (SELECT count(*) FROM engine_nodes)
                          + (SELECT count(*) FROM campaign_leases WHERE released_at IS NULL)",
                    &[],
                )
                .await;
            (left == 0).then_some(())
        },
    )
    .await;
    let allocated: i64 = app
        .db_value(
            "SELECT allocated FROM campaigns WHERE id = $1::text::uuid",
            &[&id],
        )
        .await;
    assert_eq!(allocated, 2, "only the two coupons' units stay allocated");
}

#[actix_web::test]
async fn the_leases_of_a_silent_node_are_reaped_and_its_row_removed() {
    let app = app_with_short_leases().await;
    let id = app
        .create_campaign_id(json!({"name": "silent", "total_limit": 100, "status": "active"}))
        .await;
    // Two dead nodes holding stock: one whose row stopped an hour ago, and one of the
    // previous version (no row; its lease's own heartbeat stopped an hour ago). And a live
    // node of the previous version: no row, but its lease's own heartbeat is fresh.
    app.db
        .client()
        .await
        .batch_execute(&format!(
            "INSERT INTO engine_nodes (node_id, started_at, heartbeat_at)
             VALUES ('00000000-0000-0000-0000-00000000dead', now() - interval '2 hours',
                     now() - interval '1 hour');
             INSERT INTO campaign_leases (id, campaign_id, node_id, size, taken_at, heartbeat_at)
             VALUES (gen_random_uuid(), '{id}', '00000000-0000-0000-0000-00000000dead', 10,
                     now() - interval '1 hour', NULL),
                    (gen_random_uuid(), '{id}', '00000000-0000-0000-0000-0000000000ff', 5,
                     now() - interval '1 hour', now() - interval '1 hour'),
                    ('00000000-0000-0000-0000-0000000001ee', '{id}',
                     '00000000-0000-0000-0000-0000000000ee', 7,
                     now() - interval '1 hour', now() + interval '1 hour');
             UPDATE campaigns SET allocated = allocated + 22 WHERE id = '{id}';"
        ))
        .await
        .unwrap();

    let returned: i64 = eventually(
        Duration::from_secs(30),
        "the reaper takes back both silent nodes' leases",
        async || {
            let client = app.db.client().await;
            let row = client
                .query_one(
                    "SELECT count(*) FILTER (WHERE released_at IS NULL),
                            coalesce(sum(returned), 0)::bigint
                     FROM campaign_leases WHERE campaign_id = $1::text::uuid
                       AND node_id <> '00000000-0000-0000-0000-0000000000ee'",
                    &[&id],
                )
                .await
                .unwrap();
            (row.get::<_, i64>(0) == 0).then(|| row.get(1))
        },
    )
    .await;
    assert_eq!(returned, 15);
    let allocated: i64 = app
        .db_value(
            "SELECT allocated FROM campaigns WHERE id = $1::text::uuid",
            &[&id],
        )
        .await;
    assert_eq!(
        allocated, 7,
        "only the live old-version node's lease is still allocated"
    );
    let live: bool = app
        .db_value(
            "SELECT released_at IS NULL FROM campaign_leases
             WHERE id = '00000000-0000-0000-0000-0000000001ee'",
            &[],
        )
        .await;
    assert!(live, "a lease whose own heartbeat is fresh is not reaped");
    let nodes: Vec<String> = app
        .db
        .client()
        .await
        .query("SELECT node_id::text FROM engine_nodes", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        nodes,
        [app.engine.node_id().to_string()],
        "the dead node's row is gone"
    );
    // The stock came back: all but the live node's 7 can be claimed.
    for i in 0..93 {
        let (status, body) = app.claim(&id, &format!("c{i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, _) = app.claim(&id, "one-too-many").await;
    assert_eq!(status, 409);
}
