//! Exercises the private PostgreSQL cluster against the machine's real binaries.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ecoupon::private_cluster::{find_binaries, EmbeddedPostgres};
use tokio_postgres::{Client, NoTls};

/// Without the PostgreSQL server binaries the test fails (it never skips).
fn require_postgres_binaries() {
    if let Err(e) = find_binaries() {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl): {e}: run .ci/install-deps to install \
             what the tests need"
        );
    }
}

/// Under the system temp dir (traversable by the `postgres` user when we run as root).
fn unique_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("ecoupon-{tag}-{}-{nanos}", std::process::id()))
}

async fn connect(pg: &EmbeddedPostgres, dbname: &str) -> Client {
    let (client, connection) = pg
        .connect_config(dbname)
        .connect(NoTls)
        .await
        .expect("connect over the Unix socket");
    tokio::spawn(connection);
    client
}

async fn postmaster_started(pg: &EmbeddedPostgres) -> String {
    let client = connect(pg, "ecoupon").await;
    let row = client
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .await
        .unwrap();
    row.get(0)
}

/// Runs `body`, and whatever happens stops the cluster (if still up) and
/// deletes `dir`, so a failing assertion does not leak a postmaster.
async fn with_cleanup<F: Future<Output = ()> + Send + 'static>(root: &Path, dir: &Path, body: F) {
    let outcome = tokio::spawn(body).await;
    if outcome.is_err() {
        // start() reuses a running server and hands us something to stop.
        if let Ok(pg) = EmbeddedPostgres::start(root).await {
            let _ = pg.stop().await;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_cluster_lifecycle() {
    require_postgres_binaries();
    let dir = unique_dir("embedded-pg");
    let root = dir.join("postgres");
    with_cleanup(&root, &dir, lifecycle(root.clone())).await;
    assert!(!dir.exists(), "test dir removed");
}

async fn lifecycle(root: PathBuf) {
    let pg = EmbeddedPostgres::start(&root)
        .await
        .expect("first start (initdb)");
    assert!(pg.started_here());
    assert!(root.join("data/PG_VERSION").is_file());
    assert!(root.join("postgres.log").is_file());
    assert_eq!(
        pg.socket_dir(),
        root.canonicalize().unwrap(),
        "short roots host their own socket"
    );
    assert!(pg.socket_dir().join(".s.PGSQL.5432").exists());
    let mode = std::fs::metadata(pg.socket_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(
        mode, 0o700,
        "socket dir must be private for trust auth to be safe"
    );

    let client = connect(&pg, "ecoupon").await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let listen: String = client
        .query_one("SHOW listen_addresses", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listen, "", "no TCP listener");
    client
        .batch_execute(
            "CREATE TABLE survives_restart (v int); INSERT INTO survives_restart VALUES (42)",
        )
        .await
        .unwrap();
    drop(client);
    let first_server = postmaster_started(&pg).await;

    // Concurrent starts on a running cluster must both succeed and reuse it.
    let (a, b) = (root.clone(), root.clone());
    let (a, b) = tokio::join!(
        tokio::spawn(async move { EmbeddedPostgres::start(&a).await }),
        tokio::spawn(async move { EmbeddedPostgres::start(&b).await })
    );
    let (a, b) = (
        a.unwrap().expect("concurrent start a"),
        b.unwrap().expect("concurrent start b"),
    );
    assert!(
        !a.started_here() && !b.started_here(),
        "reused, not started"
    );
    assert_eq!(postmaster_started(&a).await, first_server);
    assert_eq!(postmaster_started(&b).await, first_server);

    pg.stop().await.expect("stop");
    assert!(
        !root.join("data/postmaster.pid").exists(),
        "server gone after stop"
    );
    assert!(pg.connect_config("ecoupon").connect(NoTls).await.is_err());
    a.stop()
        .await
        .expect("stopping a stopped cluster is a no-op");

    let pg = EmbeddedPostgres::start(&root).await.expect("restart");
    assert!(pg.started_here());
    let restarted = postmaster_started(&pg).await;
    assert_ne!(restarted, first_server, "a new server was started");
    let client = connect(&pg, "ecoupon").await;
    let v: i32 = client
        .query_one("SELECT v FROM survives_restart", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 42, "data survives a restart");
    drop(client);
    pg.stop().await.expect("final stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_root_uses_private_tmp_socket_dir() {
    require_postgres_binaries();
    let dir = unique_dir("embedded-pg-long");
    let root = dir.join("a".repeat(60)).join("postgres");
    with_cleanup(&root, &dir, {
        let root = root.clone();
        async move {
            let pg = EmbeddedPostgres::start(&root).await.expect("start");
            let socket_dir = pg.socket_dir().to_path_buf();
            assert!(
                socket_dir.starts_with("/tmp")
                    && socket_dir.to_str().unwrap().contains("ecoupon-pg-")
            );
            let meta = std::fs::metadata(&socket_dir).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
            let client = connect(&pg, "ecoupon").await;
            let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
            assert_eq!(one, 1);
            drop(client);
            pg.stop().await.expect("stop");
            std::fs::remove_dir(&socket_dir).expect("socket dir is empty after stop");
        }
    })
    .await;
}
