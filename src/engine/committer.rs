//! The node's claim writer: campaign actors hand it their batches, and it writes the
//! batches of many campaigns as one statement and one commit.
//!
//! Why: a campaign actor batches its own claims, which is all one hot campaign needs. But
//! with a thousand campaigns selling at once each actor has a claim or two waiting, and a
//! commit per actor makes PostgreSQL's WAL flushes the limit (backends waiting on
//! `LWLock:WALWrite`) long before any CPU is. The actors still decide who gets stock; only
//! the write is shared.
//!
//! How: at most `max_inflight_batches` statements run at once. While they run, batches
//! queue (a bounded channel); when one finishes, the next statement takes everything
//! queued, up to about `max_batch` rows. So under load statements grow, and with one batch
//! waiting it goes at once.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::config::EngineSettings;
use crate::metrics::WRITE_CAMPAIGNS;
use crate::store::{BatchFailure, BatchOf, BatchOutcome, ClaimRow, Store, StoreError};

/// Batches waiting for a statement. Every actor waits for its own batches' answers, and
/// each has at most `max_inflight_batches` out, so this only bounds a burst.
const QUEUE: usize = 4096;

pub(crate) type Written = (Vec<ClaimRow>, Result<BatchOutcome, BatchFailure>);

struct Job {
    tenant_id: Uuid,
    campaign_id: Uuid,
    rows: Vec<ClaimRow>,
    queued_at: Instant,
    reply: oneshot::Sender<Written>,
}

#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the writer loop; it ends when the last `Committer` is dropped.
    pub fn start(store: Store, settings: &EngineSettings) -> Committer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            store,
            max_rows: settings.max_batch.max(1),
            timeout: settings.batch_timeout,
            slots: Arc::new(Semaphore::new(settings.max_inflight_batches.max(1))),
        };
        tokio::spawn(writer.run(rx));
        Committer { tx }
    }

    /// Writes one campaign's batch (with whatever else is waiting) and answers its rows
    /// back with the outcome.
    pub async fn write(&self, tenant_id: Uuid, campaign_id: Uuid, rows: Vec<ClaimRow>) -> Written {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            tenant_id,
            campaign_id,
            rows,
            queued_at: Instant::now(),
            reply,
        };
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job).await {
            // The writer is gone (the engine is shutting down): nothing was sent.
            let gone =
                BatchFailure::not_written(StoreError::Conflict("claim writer stopped".into()));
            return (job.rows, Err(gone));
        }
        // The writer answers every job it takes, even when a write panics (see `write`);
        // its runtime going away is all that drops one, and then nobody waits for this.
        answer.await.unwrap_or_else(|_| {
            let gone = BatchFailure::unknown(StoreError::Conflict("claim writer stopped".into()));
            (Vec::new(), Err(gone))
        })
    }
}

struct Writer {
    store: Store,
    max_rows: usize,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let this = Arc::new(self);
        loop {
            // A slot first, then the queue: while every slot is busy, batches pile up and
            // the next statement carries them all.
            let Ok(slot) = this.slots.clone().acquire_owned().await else {
                return;
            };
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut rows = first.rows.len();
            let mut jobs = vec![first];
            while rows < this.max_rows {
                match rx.try_recv() {
                    Ok(job) => {
                        rows += job.rows.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let writer = this.clone();
            tokio::spawn(async move {
                writer.write(jobs).await;
                drop(slot);
            });
        }
    }

    async fn write(&self, jobs: Vec<Job>) {
        // A batch that waited past the timeout for a statement was never sent: its stock
        // goes straight back (the database is likely away; its claims get `busy`).
        let (stale, jobs): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| j.queued_at.elapsed() >= self.timeout);
        for job in stale {
            let failure = BatchFailure::not_written(StoreError::Timeout(self.timeout));
            let _ = job.reply.send((job.rows, Err(failure)));
        }
        if jobs.is_empty() {
            return;
        }
        metrics::histogram!(WRITE_CAMPAIGNS).record(jobs.len() as f64);
        match self.insert(&jobs).await {
            Ok(outcomes) => answer(jobs, outcomes),
            // The server refused a shared statement (a deleted campaign, a deadlock): one
            // batch's trouble must not fail the others, so each goes again on its own. An
            // idempotency key committed meanwhile by another node (a duplicate request) is
            // seen as taken the second time.
            Err(e) if e.refused_by_server() && (jobs.len() > 1 || e.key_race()) => {
                if !e.key_race() {
                    tracing::warn!(error = %e, batches = jobs.len(), "shared claim write refused; writing each batch alone");
                }
                for job in jobs {
                    let result = self.insert(std::slice::from_ref(&job)).await;
                    let result = result.map(|mut o| o.pop().unwrap_or_default());
                    let _ = job.reply.send((job.rows, result));
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.reply.send((job.rows, Err(e.clone())));
                }
            }
        }
    }

    /// One statement; past the timeout (a silent connection, a network partition) its
    /// outcome is unknown. A panic in it must still answer every batch (their actors hold
    /// stock and claim numbers for them): whether anything was written is then unknown.
    async fn insert(&self, jobs: &[Job]) -> Result<Vec<BatchOutcome>, BatchFailure> {
        AssertUnwindSafe(self.insert_once(jobs))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                let panicked = StoreError::Conflict("claim write panicked".into());
                Err(BatchFailure::unknown(panicked))
            })
    }

    async fn insert_once(&self, jobs: &[Job]) -> Result<Vec<BatchOutcome>, BatchFailure> {
        let batches: Vec<BatchOf<'_>> = jobs
            .iter()
            .map(|j| BatchOf {
                tenant_id: j.tenant_id,
                campaign_id: j.campaign_id,
                rows: &j.rows,
            })
            .collect();
        match tokio::time::timeout(self.timeout, self.store.insert_claim_batches(&batches)).await {
            Ok(result) => result,
            Err(_) => Err(BatchFailure::unknown(StoreError::Timeout(self.timeout))),
        }
    }
}

fn answer(jobs: Vec<Job>, outcomes: Vec<BatchOutcome>) {
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let _ = job.reply.send((job.rows, Ok(outcome)));
    }
}
