//! The few API calls that set phases up (README "Using it").

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};

/// Large enough that no phase sells out (the API's largest allowed limit).
pub const NEVER_SELLS_OUT: i64 = 10_000_000;

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

/// A campaign made for a phase.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: String,
    pub slug: String,
}

impl Api {
    pub fn new(base: &str, key: &str) -> anyhow::Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(1024)
                .build()?,
            base: base.to_string(),
            key: key.to_string(),
        })
    }

    /// An active campaign named `name`; valid a day, so coupons can be used.
    pub async fn campaign(&self, name: &str, limit: i64) -> anyhow::Result<Campaign> {
        let res = self
            .http
            .post(format!("{}/api/v1/campaigns", self.base))
            .bearer_auth(&self.key)
            .json(&json!({
                "name": name, "total_limit": limit, "status": "active",
                "discount": {"kind": "amount_off_yen", "amount": 100},
                "valid_for_seconds": 86_400,
            }))
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        if status != 201 {
            bail!("creating campaign {name:?}: {status} {body}");
        }
        Ok(Campaign {
            id: body["id"].as_str().context("campaign id")?.to_string(),
            slug: body["slug"].as_str().context("campaign slug")?.to_string(),
        })
    }

    /// `n` campaigns named `name`, created through the API 32 at a time.
    pub async fn campaigns(&self, name: &str, limit: i64, n: usize) -> anyhow::Result<Vec<String>> {
        stream::iter(0..n)
            .map(|_| async move { self.campaign(name, limit).await.map(|c| c.id) })
            .buffer_unordered(32)
            .try_collect()
            .await
    }

    /// One claim; the HTTP status.
    pub async fn claim(&self, campaign: &str, consumer: &str) -> anyhow::Result<u16> {
        let res = self
            .http
            .post(format!("{}/api/v1/campaigns/{campaign}/claims", self.base))
            .bearer_auth(&self.key)
            .json(&json!({ "consumer": consumer }))
            .send()
            .await?;
        Ok(res.status().as_u16())
    }
}

/// Writes campaign ids one a line, for the wrk script.
pub fn ids_file(dir: &Path, name: &str, ids: &[String]) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.ids"));
    std::fs::write(&path, ids.join("\n") + "\n")?;
    Ok(path)
}
