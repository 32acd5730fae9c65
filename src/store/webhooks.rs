//! Webhook endpoints and their outbox (see `migrations/V30__webhooks.sql`). Events are
//! enqueued by the statements that make the change (claims, redemptions, status changes,
//! lease releases) through [`enqueue`] or SQL of their own; this file has the endpoints,
//! the sender's claim/ack, and the delivery log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// A delivery as the endpoint's log shows it.
#[derive(Debug, Clone)]
pub struct DeliveryLogRow {
    pub id: Uuid,
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub data: serde_json::Value,
}

/// A delivery the sender claimed.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: Uuid,
    pub url: String,
    pub secret: String,
    pub event_type: String,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub delivered: bool,
}

pub enum NewEndpoint {
    Created(WebhookEndpoint),
    TooMany,
}

const ENDPOINT_COLUMNS: &str = "id, url, events, description, created_at";

fn endpoint(r: &tokio_postgres::Row) -> WebhookEndpoint {
    WebhookEndpoint {
        id: r.get(0),
        url: r.get(1),
        events: r.get(2),
        description: r.get(3),
        created_at: r.get(4),
    }
}

/// Queues `event_type` with `data` for every endpoint of the tenant subscribed to it, in
/// the caller's transaction (so the event exists exactly when the change does).
pub(super) async fn enqueue(
    tx: &impl deadpool_postgres::GenericClient,
    tenant_id: Uuid,
    event_type: &str,
    data: &serde_json::Value,
) -> Result<u64, StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO webhook_deliveries (endpoint_id, tenant_id, event_type, data)
             SELECT e.id, e.tenant_id, $2, $3 FROM webhook_endpoints e
             WHERE e.tenant_id = $1 AND $2 = ANY(e.events)",
        )
        .await?;
    Ok(tx.execute(&stmt, &[&tenant_id, &event_type, data]).await?)
}

/// Queues campaign.sold_out when the campaign's whole limit is issued: every unit handed
/// out (`allocated = total_limit`) and no lease still live (a released lease counts only
/// what it used). Called after a lease release or a bulk issue in the same transaction.
/// The row lock (NO KEY UPDATE: claim batches' key-share checks pass) orders concurrent
/// releases, and the second statement's snapshot sees what the lock waited for; so the
/// last release, and only it, finds the campaign sold out.
/// The `campaign.sold_out` event's insert, up to its FROM (which must name the campaign
/// `c` and the endpoint `e`): one payload for both places that queue it, here and the
/// single-lease release in `leases.rs`.
macro_rules! insert_sold_out_event {
    () => {
        "INSERT INTO webhook_deliveries (endpoint_id, tenant_id, event_type, data)
         SELECT e.id, c.tenant_id, 'campaign.sold_out',
                jsonb_build_object('campaign_id', c.id, 'name', c.name,
                                   'total_limit', c.total_limit, 'sold_out_at', now())"
    };
}
pub(super) use insert_sold_out_event;

pub(super) async fn enqueue_if_sold_out(
    tx: &impl deadpool_postgres::GenericClient,
    campaign_id: Uuid,
) -> Result<(), StoreError> {
    let lock = tx
        .prepare_cached(
            "SELECT c.id FROM campaigns c
             WHERE c.id = $1 AND EXISTS (
                 SELECT 1 FROM webhook_endpoints e
                 WHERE e.tenant_id = c.tenant_id AND 'campaign.sold_out' = ANY(e.events))
             FOR NO KEY UPDATE OF c",
        )
        .await?;
    if tx.query_opt(&lock, &[&campaign_id]).await?.is_none() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(concat!(
            insert_sold_out_event!(),
            "
             FROM campaigns c JOIN webhook_endpoints e
                  ON e.tenant_id = c.tenant_id AND 'campaign.sold_out' = ANY(e.events)
             WHERE c.id = $1 AND c.allocated = c.total_limit
               AND NOT EXISTS (SELECT 1 FROM campaign_leases l
                               WHERE l.campaign_id = c.id AND l.released_at IS NULL)"
        ))
        .await?;
    tx.execute(&stmt, &[&campaign_id]).await?;
    Ok(())
}

impl Store {
    /// Registers an endpoint, unless the tenant already has `max` of them.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn insert_webhook_endpoint(
        &self,
        tenant_id: Uuid,
        url: &str,
        events: &[String],
        description: &str,
        secret: &str,
        max: i64,
    ) -> Result<NewEndpoint, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The tenant's row lock makes the count and the insert one step.
        tx.execute(
            "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE",
            &[&tenant_id],
        )
        .await?;
        let count: i64 = tx
            .query_one(
                "SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1",
                &[&tenant_id],
            )
            .await?
            .get(0);
        if count >= max {
            return Ok(NewEndpoint::TooMany);
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO webhook_endpoints (id, tenant_id, url, events, description, secret)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT_COLUMNS}"
                ),
                &[
                    &Uuid::new_v4(),
                    &tenant_id,
                    &url,
                    &events,
                    &description,
                    &secret,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(NewEndpoint::Created(endpoint(&row)))
    }

    pub async fn webhook_endpoints(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1
                     ORDER BY created_at, id"
                ),
                &[&tenant_id],
            )
            .await?;
        Ok(rows.iter().map(endpoint).collect())
    }

    pub async fn webhook_endpoint(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
                ),
                &[&tenant_id, &id],
            )
            .await?;
        Ok(row.as_ref().map(endpoint))
    }

    /// Deletes an endpoint and what is still queued for it. `false`: no such endpoint.
    pub async fn delete_webhook_endpoint(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
                &[&tenant_id, &id],
            )
            .await?;
        Ok(n == 1)
    }

    /// The endpoint's deliveries, newest first, after the cursor `(created_at, id)`.
    pub async fn webhook_deliveries(
        &self,
        endpoint_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<DeliveryLogRow>, StoreError> {
        let client = self.pool.get().await?;
        let (at, id) = after.unzip();
        let rows = client
            .query(
                "SELECT id, event_type, created_at, attempts, last_status, last_error,
                        next_attempt_at, delivered_at, failed_at, data
                 FROM webhook_deliveries
                 WHERE endpoint_id = $1
                   AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
                 ORDER BY created_at DESC, id DESC LIMIT $4",
                &[&endpoint_id, &at, &id, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DeliveryLogRow {
                id: r.get(0),
                event_type: r.get(1),
                created_at: r.get(2),
                attempts: r.get(3),
                last_status: r.get(4),
                last_error: r.get(5),
                next_attempt_at: r.get(6),
                delivered_at: r.get(7),
                failed_at: r.get(8),
                data: r.get(9),
            })
            .collect())
    }

    /// Claims up to `limit` due deliveries for `lease`: another node's sender skips them
    /// (SKIP LOCKED now, the moved `next_attempt_at` after COMMIT), and a sender that dies
    /// mid-way leaves them to be tried again once the lease runs out.
    pub async fn claim_webhook_deliveries(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let client = self.pool.get().await?;
        let lease_ms = lease.as_millis() as f64;
        let stmt = client
            .prepare_cached(
                "WITH due AS (
                     SELECT id FROM webhook_deliveries
                     WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
                     ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
                 ), taken AS (
                     UPDATE webhook_deliveries d
                     SET next_attempt_at = now() + make_interval(secs => $2::float8 / 1000)
                     FROM due WHERE d.id = due.id
                     RETURNING d.id, d.endpoint_id, d.event_type, d.data, d.created_at, d.attempts
                 )
                 SELECT t.id, e.url, e.secret, t.event_type, t.data, t.created_at, t.attempts
                 FROM taken t JOIN webhook_endpoints e ON e.id = t.endpoint_id",
            )
            .await?;
        let rows = client.query(&stmt, &[&limit, &lease_ms]).await?;
        Ok(rows
            .iter()
            .map(|r| DueDelivery {
                id: r.get(0),
                url: r.get(1),
                secret: r.get(2),
                event_type: r.get(3),
                data: r.get(4),
                created_at: r.get(5),
                attempts: r.get(6),
            })
            .collect())
    }

    /// Records an attempt. A failure is tried again after `retry_in`, unless that would be
    /// later than `give_up_after` from the event: then the delivery is marked failed.
    pub async fn record_webhook_attempt(
        &self,
        id: Uuid,
        result: &AttemptResult,
        retry_in: Duration,
        give_up_after: Duration,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let retry_ms = retry_in.as_millis() as f64;
        let give_up_ms = give_up_after.as_millis() as f64;
        let stmt = client
            .prepare_cached(
                "WITH attempt AS (
                     INSERT INTO webhook_attempts (delivery_id, status, error, duration_ms)
                     VALUES ($1, $2, $3, $4)
                 )
                 UPDATE webhook_deliveries SET
                     attempts = attempts + 1, last_status = $2, last_error = $3,
                     delivered_at = CASE WHEN $5 THEN now() END,
                     next_attempt_at = now() + make_interval(secs => $6::float8 / 1000),
                     failed_at = CASE WHEN NOT $5 AND now() + make_interval(secs => $6::float8 / 1000)
                                           > created_at + make_interval(secs => $7::float8 / 1000)
                                      THEN now() END
                 WHERE id = $1",
            )
            .await?;
        client
            .execute(
                &stmt,
                &[
                    &id,
                    &result.status,
                    &result.error,
                    &result.duration_ms,
                    &result.delivered,
                    &retry_ms,
                    &give_up_ms,
                ],
            )
            .await?;
        Ok(())
    }

    /// How long the oldest delivery not yet made has been waiting (0 when none waits).
    pub async fn webhook_lag_seconds(&self) -> Result<f64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one(
                "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
                 FROM webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL",
                &[],
            )
            .await?
            .get(0))
    }
}
