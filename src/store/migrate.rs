//! Schema migrations: the plain SQL files in `migrations/`, embedded at build time and run by
//! refinery under a Postgres advisory lock, so two nodes starting together take turns.

use super::{Store, StoreError};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// An arbitrary constant: the advisory-lock key every ecoupon node agrees on.
const MIGRATION_LOCK: i64 = 0x6563_6f75_706f_6e01;

pub async fn run_migrations(store: &Store) -> Result<(), StoreError> {
    let mut client = store.dedicated_connection().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .map_err(|e| StoreError::Migration(e.to_string()));
    // Unlocking is a courtesy: closing the session releases the lock anyway.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    for migration in report?.applied_migrations() {
        tracing::info!(
            version = migration.version(),
            name = migration.name(),
            "applied migration"
        );
    }
    Ok(())
}

/// The newest migration this build carries; `/readyz` compares the database against it.
pub fn latest_migration() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i32::try_from(m.version()).unwrap_or(i32::MAX))
        .max()
        .unwrap_or(0)
}
