//! What backups, restores and drills ask of the database: a snapshot shared with
//! `pg_dump` (so the counts in a manifest are those of the dumped data), row counts per
//! table, the record of scheduled backup runs, and the advisory locks that make one node
//! of many run a daily job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::NoTls;

use super::{Store, StoreError};

/// Advisory-lock keys every node agrees on (arbitrary constants, distinct from the
/// migration lock).
pub const BACKUP_LOCK: i64 = 0x6563_6f75_706f_6e02;
pub const RETENTION_LOCK: i64 = 0x6563_6f75_706f_6e03;

/// Held while a daily job runs; the lock goes with the dedicated session when dropped.
pub struct JobLock {
    _client: tokio_postgres::Client,
}

/// An open REPEATABLE READ transaction whose snapshot `pg_dump --snapshot` reuses; it must
/// stay open until the dump has started reading, so it is closed by [`DumpSnapshot::finish`].
pub struct DumpSnapshot {
    client: tokio_postgres::Client,
    pub id: String,
    pub counts: BTreeMap<String, i64>,
    pub server_version: String,
}

impl DumpSnapshot {
    pub async fn finish(self) -> Result<(), StoreError> {
        self.client.batch_execute("COMMIT").await?;
        Ok(())
    }
}

/// Quotes an identifier from the catalogue (table names cannot be bound as parameters).
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

const TABLES: &str = "SELECT table_name::text FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1";

/// Row counts of every table in `public`, inside whatever transaction `client` is in.
async fn count_rows(client: &tokio_postgres::Client) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut counts = BTreeMap::new();
    for row in client.query(TABLES, &[]).await? {
        let table: String = row.get(0);
        let sql = format!("SELECT count(*) FROM public.{}", ident(&table));
        let n: i64 = client.query_one(&sql, &[]).await?.get(0);
        counts.insert(table, n);
    }
    Ok(counts)
}

/// A connection for one command, without the pool's statement timeout (counting a large
/// table or holding a dump's snapshot may take longer).
pub async fn connect_once(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "operations connection closed");
        }
    });
    Ok(client)
}

/// Row counts per table of the database at `config` (a drill's scratch copy).
pub async fn table_counts(
    config: &tokio_postgres::Config,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let client = connect_once(config).await?;
    count_rows(&client).await
}

/// Whether the database at `config` has no table of its own yet (a restore target).
pub async fn has_no_tables(config: &tokio_postgres::Config) -> Result<bool, StoreError> {
    let client = connect_once(config).await?;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await?
        .get(0);
    Ok(n == 0)
}

/// Drops a scratch database (a drill's), closing whoever is still connected.
pub async fn drop_database(server: &tokio_postgres::Config, name: &str) -> Result<(), StoreError> {
    let client = connect_once(server).await?;
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(name)
        ))
        .await?;
    Ok(())
}

impl Store {
    /// How `pg_dump` and `pg_restore` reach this database (without the pool's options).
    pub fn connect_config(&self) -> tokio_postgres::Config {
        let mut config = self.pg_config.clone();
        config.options("");
        config
    }

    /// Opens the snapshot a dump will read, and counts every table's rows in it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn dump_snapshot(&self) -> Result<DumpSnapshot, StoreError> {
        let client = connect_once(&self.connect_config()).await?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let id: String = client
            .query_one("SELECT pg_export_snapshot()", &[])
            .await?
            .get(0);
        let server_version: String = client
            .query_one("SELECT current_setting('server_version')", &[])
            .await?
            .get(0);
        let counts = count_rows(&client).await?;
        Ok(DumpSnapshot {
            client,
            id,
            counts,
            server_version,
        })
    }

    /// Takes a daily job's advisory lock if no other node holds it.
    pub async fn try_job_lock(&self, key: i64) -> Result<Option<JobLock>, StoreError> {
        let client = self.dedicated_connection().await?;
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await?
            .get(0);
        Ok(got.then_some(JobLock { _client: client }))
    }

    /// Claims a backup slot for this node; false when another node already has it.
    pub async fn claim_backup_slot(
        &self,
        slot: DateTime<Utc>,
        node: &str,
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "INSERT INTO backup_runs (slot, node) VALUES ($1, $2) ON CONFLICT (slot) DO NOTHING",
                &[&slot, &node],
            )
            .await?;
        Ok(n == 1)
    }

    /// Records how a claimed slot's backup ended.
    pub async fn finish_backup_run(
        &self,
        slot: DateTime<Utc>,
        file: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE backup_runs SET finished_at = now(), file = $2, error = $3,
                        ok = ($3::text IS NULL)
                 WHERE slot = $1",
                &[&slot, &file, &error],
            )
            .await?;
        Ok(())
    }

    /// When the newest successful backup (scheduled or by hand) finished.
    pub async fn last_backup_success(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one("SELECT max(finished_at) FROM backup_runs WHERE ok", &[])
            .await?
            .get(0))
    }

    /// The newest slot anyone claimed (successful or not).
    pub async fn last_backup_slot(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one("SELECT max(slot) FROM backup_runs", &[])
            .await?
            .get(0))
    }
}
