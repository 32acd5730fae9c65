//! Server-level statements that run outside any application database: creating the
//! database the private cluster serves. Kept here so every SQL string lives in `store/`.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

/// What failed, and the server's (or the socket's) own words.
#[derive(Debug)]
pub struct AdminError {
    pub action: &'static str,
    pub error: tokio_postgres::Error,
}

/// Creates database `name` if the server at `server` (connected to its `postgres`
/// database) does not have it. A server just started may still refuse connections while
/// it recovers, so connecting is retried for up to `patience`. Returns whether it created it.
#[tracing::instrument(level = "debug", skip(server))]
pub async fn ensure_database(
    server: &tokio_postgres::Config,
    name: &str,
    patience: Duration,
) -> Result<bool, AdminError> {
    let deadline = Instant::now() + patience;
    let (client, connection) = loop {
        match server.connect(tokio_postgres::NoTls).await {
            Ok(pair) => break pair,
            Err(e) => {
                let transient = e.code().is_none_or(|c| *c == SqlState::CANNOT_CONNECT_NOW);
                if !transient || Instant::now() >= deadline {
                    return Err(AdminError {
                        action: "connect",
                        error: e,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let connection = tokio::spawn(async move { drop(connection.await) });
    let existing = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|error| AdminError {
            action: "look up databases",
            error,
        })?;
    let mut created = false;
    if existing.is_none() {
        // CREATE DATABASE takes no parameters; the name is quoted as an identifier.
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match client.batch_execute(&sql).await {
            Err(e) if e.code() != Some(&SqlState::DUPLICATE_DATABASE) => {
                return Err(AdminError {
                    action: "create database",
                    error: e,
                });
            }
            Err(_) => {}
            Ok(()) => created = true,
        }
    }
    // Let the connection say goodbye rather than leave a reset in the server log.
    drop(client);
    let _ = connection.await;
    Ok(created)
}
