//! Idempotency-key lookups of many requests as one statement. Every keyed claim looks its
//! key up first; one query each made them queue for pool connections behind the claim
//! batches (the kit's keyed claims ran at 0.39 of plain ones). Like the claim committer:
//! at most [`IN_FLIGHT`] statements at once, and each takes every lookup queued meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use super::idempotency::key_state;
use super::{KeyState, Store, StoreError};

/// Lookups waiting for a statement; past this a request waits to queue (each holds a
/// request open, so the HTTP layer's limits bound them anyway).
const QUEUE: usize = 4096;
/// Lookups per statement at most.
const PER_STATEMENT: usize = 512;
const IN_FLIGHT: usize = 2;

type Answer = Result<Option<KeyState>, Arc<StoreError>>;

struct Lookup {
    api_key_id: Uuid,
    key: String,
    request_hash: Vec<u8>,
    reply: oneshot::Sender<Answer>,
}

/// Looks idempotency keys up, many per statement.
#[derive(Clone)]
pub struct KeyReads {
    tx: mpsc::Sender<Lookup>,
}

impl KeyReads {
    /// Starts the reader; it ends when the last `KeyReads` is dropped. `settle_after`: see
    /// [`Store::idempotency_key_state`].
    pub fn start(store: Store, settle_after: Duration) -> KeyReads {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, settle_after, rx));
        KeyReads { tx }
    }

    /// What the key was used for, if it was (as [`Store::idempotency_key_state`]).
    pub async fn state(
        &self,
        api_key_id: Uuid,
        key: &str,
        request_hash: &[u8],
    ) -> Result<Option<KeyState>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let lookup = Lookup {
            api_key_id,
            key: key.to_string(),
            request_hash: request_hash.to_vec(),
            reply,
        };
        let stopped = || StoreError::Conflict("idempotency key reader stopped".into());
        self.tx.send(lookup).await.map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Shared)
    }
}

async fn run(store: Store, settle_after: Duration, mut rx: mpsc::Receiver<Lookup>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // A slot first, then the queue: while the slots are busy, lookups pile up and the
        // next statement carries them all.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < PER_STATEMENT {
            match rx.try_recv() {
                Ok(lookup) => batch.push(lookup),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            match store.idempotency_key_states(&batch, settle_after).await {
                Ok(mut states) => {
                    for lookup in batch.into_iter().rev() {
                        let state = states.pop().flatten();
                        let _ = lookup.reply.send(Ok(state));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for lookup in batch {
                        let _ = lookup.reply.send(Err(e.clone()));
                    }
                }
            }
            drop(slot);
        });
    }
}

impl Store {
    /// The state of each lookup's key, in order.
    async fn idempotency_key_states(
        &self,
        batch: &[Lookup],
        settle_after: Duration,
    ) -> Result<Vec<Option<KeyState>>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT k.n::int4, i.request_hash, i.status, i.body, i.unsettled_id,
                        i.unsettled_at < now() - make_interval(secs => $3),
                        i.created_at < now() - interval '24 hours'
                 FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS k(api_key_id, key, n)
                 JOIN idempotency_keys i ON i.api_key_id = k.api_key_id AND i.key = k.key",
            )
            .await?;
        let api_keys: Vec<Uuid> = batch.iter().map(|l| l.api_key_id).collect();
        let keys: Vec<&str> = batch.iter().map(|l| l.key.as_str()).collect();
        let rows = client
            .query(&stmt, &[&api_keys, &keys, &settle_after.as_secs_f64()])
            .await?;
        let mut states: Vec<Option<KeyState>> = vec![None; batch.len()];
        for row in &rows {
            let n: i32 = row.get(0);
            let Some(i) = usize::try_from(n).ok().and_then(|n| n.checked_sub(1)) else {
                continue;
            };
            if let (Some(slot), Some(lookup)) = (states.get_mut(i), batch.get(i)) {
                *slot = Some(key_state(row, 1, &lookup.request_hash));
            }
        }
        Ok(states)
    }
}
