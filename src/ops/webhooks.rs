//! The webhook sender. Every node runs it; due deliveries are claimed with FOR UPDATE SKIP
//! LOCKED and a lease (see `Store::claim_webhook_deliveries`), so two nodes never send one
//! delivery at once and a node killed mid-send only delays it. At most
//! `webhooks.concurrency` requests are in flight per node.
//!
//! Each request is signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`). The destination's
//! name is resolved once per connection by [`CheckedResolver`], which refuses loopback,
//! private and link-local answers unless the settings allow them, and reqwest connects to
//! exactly the addresses it checked. No proxy, no redirects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::WebhookSettings;
use crate::domain::webhook::{backoff, check_address, parse_destination, sign, DestinationPolicy};
use crate::store::webhooks::{AttemptResult, DueDelivery};
use crate::store::Store;

/// How long a claimed delivery is this node's before another may try it: well past the
/// longest a batch can take (its attempts run `concurrency` at a time).
fn lease(timeout: Duration) -> Duration {
    timeout * 5
}
/// The part of an endpoint's answer kept in the log.
const ERROR_MAX: usize = 300;

/// Resolves a destination's name and refuses it if any address is not allowed.
struct CheckedResolver {
    policy: DestinationPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if found.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            for addr in &found {
                check_address(addr.ip(), policy).map_err(|e| format!("{host}: {e}"))?;
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

pub struct Sender {
    client: reqwest::Client,
    settings: WebhookSettings,
}

impl Sender {
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<Sender> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver {
                policy: settings.policy(),
            }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .user_agent(concat!("ecoupon-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender {
            client,
            settings: settings.clone(),
        })
    }

    /// One attempt. Literal IP destinations are checked here (reqwest resolves only names).
    async fn attempt(&self, d: &DueDelivery) -> AttemptResult {
        let started = Instant::now();
        let outcome = self.send(d).await;
        let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        match outcome {
            Ok((status, _)) if (200..300).contains(&status) => AttemptResult {
                status: Some(i32::from(status)),
                error: None,
                duration_ms,
                delivered: true,
            },
            Ok((status, body)) => AttemptResult {
                status: Some(i32::from(status)),
                error: Some(format!("HTTP {status}: {body}")),
                duration_ms,
                delivered: false,
            },
            Err(e) => AttemptResult {
                status: None,
                error: Some(e),
                duration_ms,
                delivered: false,
            },
        }
    }

    async fn send(&self, d: &DueDelivery) -> Result<(u16, String), String> {
        let url = parse_destination(&d.url, self.settings.policy()).map_err(|e| e.to_string())?;
        let body = serde_json::to_vec(&serde_json::json!({
            "type": d.event_type,
            "timestamp": d.created_at,
            "data": d.data,
        }))
        .map_err(|e| e.to_string())?;
        let id = format!("msg_{}", d.id.simple());
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(&d.secret, &id, timestamp, &body);
        let res = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        Ok((status, text.chars().take(ERROR_MAX).collect()))
    }

    /// Sends what is due, `concurrency` at a time; returns (delivered, failed).
    pub async fn send_due(&self, store: &Store) -> anyhow::Result<(usize, usize)> {
        let batch = store
            .claim_webhook_deliveries(
                (self.settings.concurrency * 4) as i64,
                lease(self.settings.timeout),
            )
            .await?;
        let results: Vec<anyhow::Result<bool>> = futures_util::stream::iter(batch)
            .map(|d| async move {
                let result = self.attempt(&d).await;
                if let Some(error) = &result.error {
                    tracing::info!(delivery = %d.id, attempts = d.attempts + 1, error = %error, "webhook not accepted; will retry");
                }
                let retry_in = backoff(self.settings.retry_base, d.attempts);
                store
                    .record_webhook_attempt(d.id, &result, retry_in, self.settings.give_up_after)
                    .await?;
                Ok(result.delivered)
            })
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        let (mut delivered, mut failed) = (0, 0);
        for r in results {
            if r? {
                delivered += 1;
            } else {
                failed += 1;
            }
        }
        Ok((delivered, failed))
    }
}

/// A transport error in a line, with its cause (reqwest's own text hides it).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(ERROR_MAX).collect()
}

/// The sender's loop: a full batch is followed at once by the next, an empty one waits
/// `poll`. Also keeps `ecoupon_outbox_lag_seconds{kind="webhook"}` current.
pub async fn run(store: Store, sender: Sender) {
    loop {
        let busy = match sender.send_due(&store).await {
            Ok((0, 0)) => false,
            Ok((delivered, failed)) => {
                tracing::debug!(delivered, failed, "webhooks sent");
                true
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "webhook outbox not sent");
                false
            }
        };
        if let Ok(lag) = store.webhook_lag_seconds().await {
            crate::metrics::outbox_lag("webhook", lag);
        }
        if !busy {
            tokio::time::sleep(sender.settings.poll).await;
        }
    }
}
