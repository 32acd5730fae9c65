//! Postgres as a message bus between nodes (NOTIFY / LISTEN on one channel), and the
//! database's clock, which every node judges validity windows by.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{lazily_committed, Store, StoreError};

/// The one channel nodes talk on. Payloads are the engine's business.
pub(super) const CHANNEL: &str = "ecoupon_events";
/// Notifications waiting for the engine; past this the connection task waits, and Postgres
/// queues them server-side (up to its 8 GB notify queue) rather than us growing.
const LISTEN_BUFFER: usize = 1024;

/// One reading of the database clock, taken on an already acquired connection so the
/// round trip is the query's alone.
pub struct ClockSample {
    pub local_before: DateTime<Utc>,
    pub round_trip: Duration,
    pub database: DateTime<Utc>,
}

/// Other nodes' notification payloads, until the connection drops.
pub struct Listener {
    // Kept so the session (and with it LISTEN) stays open.
    _client: tokio_postgres::Client,
    rx: mpsc::Receiver<Result<String, tokio_postgres::Error>>,
}

impl Listener {
    /// The next payload; `None` once the connection has closed.
    pub async fn next(&mut self) -> Option<Result<String, StoreError>> {
        self.rx.recv().await.map(|r| r.map_err(StoreError::from))
    }
}

impl Store {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn clock_sample(&self) -> Result<ClockSample, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached("SELECT clock_timestamp()").await?;
        let sent = Instant::now();
        let local_before = Utc::now();
        let row = client.query_one(&stmt, &[]).await?;
        Ok(ClockSample {
            local_before,
            round_trip: sent.elapsed(),
            database: row.get(0),
        })
    }

    /// Sends the payloads as NOTIFYs on one pooled connection, all in one transaction. A
    /// NOTIFY takes a transaction id and commits like a write, so one transaction per
    /// payload made a durable commit per campaign per tick: with a thousand campaigns
    /// selling, most of the database's commits, and the notifier's one connection fell
    /// behind. Nothing here needs to survive a crash (listeners re-read counts anyway), so
    /// it commits without waiting for the flush. Delivery is best-effort: if the batch
    /// fails, each payload is sent alone, and one that fails is logged while the rest go.
    #[tracing::instrument(level = "debug", skip(self, payloads), fields(count = payloads.len()))]
    pub async fn notify(&self, payloads: &[String]) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let all = client
            .prepare_cached("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .await?;
        let Err(e) = lazily_committed(&client, &all, &[&CHANNEL, &payloads]).await else {
            return Ok(());
        };
        tracing::warn!(error = %e, count = payloads.len(), "NOTIFY of a batch failed; sending each alone");
        let stmt = client.prepare_cached("SELECT pg_notify($1, $2)").await?;
        for payload in payloads {
            if let Err(e) = client.execute(&stmt, &[&CHANNEL, payload]).await {
                tracing::warn!(error = %e, "NOTIFY failed");
            }
        }
        Ok(())
    }

    /// Opens a dedicated session that LISTENs on the channel. Its own connection, not a
    /// pooled one: a LISTENing session must never be handed to a request.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn listen(&self) -> Result<Listener, StoreError> {
        let (client, mut connection) = self.pg_config.connect(NoTls).await?;
        let (tx, rx) = mpsc::channel(LISTEN_BUFFER);
        // The connection must be polled for LISTEN itself to complete, so drive it first.
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                let item = match message {
                    Ok(AsyncMessage::Notification(n)) => Ok(n.payload().to_owned()),
                    Ok(_) => continue,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(Listener {
            _client: client,
            rx,
        })
    }
}
