//! Bulk and imported codes: issued coupons made without a claim, counted against the
//! campaign's limit exactly as claims are (see `migrations/V31__code_jobs.sql`).
//!
//! One transaction per batch: the campaign's row lock (the one leases take) orders it
//! against every node's claims, `allocated` grows by the count (a lowered CHECK would
//! refuse it past the limit), a lease already released with nothing returned names the
//! coupons, and a NOTIFY sent on COMMIT tells every node's engine the new count.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use uuid::Uuid;

use super::campaigns::{record, COLUMNS};
use super::{Store, StoreError};
use crate::domain::bulk_codes::BulkSpec;
use crate::domain::campaign::CampaignStatus;

/// Rows per insert statement.
const CHUNK: usize = 5_000;
/// Rounds of regenerating codes that hit existing ones before giving up.
const MAX_ROUNDS: usize = 8;

/// Where a batch's codes come from.
pub enum CodeSource<'a> {
    Generate(&'a BulkSpec),
    /// Imported, canonical; any already in use refuses the whole batch.
    Given(&'a [String]),
}

#[derive(Debug)]
pub enum IssueOutcome {
    Issued(IssuedBatch),
    NotFound,
    Ended,
    NotEnoughStock {
        left: i64,
    },
    /// Imported codes the tenant already has.
    CodesInUse(Vec<String>),
    /// Generated codes kept hitting existing ones.
    CodeSpaceExhausted,
}

#[derive(Debug)]
pub struct IssuedBatch {
    pub batch_id: Uuid,
    pub codes: Vec<String>,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub uses_left: i32,
}

#[derive(Debug, Clone)]
pub struct CodeJob {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub count: i32,
    pub status: String,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl IssueOutcome {
    /// Why nothing was issued, as an API error code and message (`None` when issued).
    pub fn refusal(&self) -> Option<(&'static str, String)> {
        Some(match self {
            IssueOutcome::Issued(_) => return None,
            IssueOutcome::NotFound => ("not_found", "campaign not found".into()),
            IssueOutcome::Ended => ("ended", "the campaign has ended".into()),
            IssueOutcome::NotEnoughStock { left } => (
                "not_enough_stock",
                format!("only {left} coupons are left under the campaign's limit"),
            ),
            IssueOutcome::CodesInUse(codes) => (
                "codes_in_use",
                format!("{} codes are already in use", codes.len()),
            ),
            IssueOutcome::CodeSpaceExhausted => (
                "code_space_exhausted",
                "new codes keep clashing with existing ones: use more # or a larger charset".into(),
            ),
        })
    }
}

/// A job run by [`Store::run_next_code_job`], and how it went.
pub struct RanJob {
    pub id: Uuid,
    pub outcome: Result<IssueOutcome, StoreError>,
}

const JOB_COLUMNS: &str =
    "id, campaign_id, count, status, error_code, error, created_at, finished_at";

fn job(r: &tokio_postgres::Row) -> CodeJob {
    CodeJob {
        id: r.get(0),
        campaign_id: r.get(1),
        count: r.get(2),
        status: r.get(3),
        error_code: r.get(4),
        error: r.get(5),
        created_at: r.get(6),
        finished_at: r.get(7),
    }
}

/// The consumer a batch's coupons carry.
pub fn batch_consumer(kind: &str, batch_id: Uuid) -> String {
    format!("{kind}:{batch_id}")
}

/// Stock nobody holds: not handed to a lease, nor used by a released one.
async fn unallocated(
    tx: &deadpool_postgres::Transaction<'_>,
    campaign_id: Uuid,
) -> Result<i64, StoreError> {
    let row = tx
        .query_one(
            "SELECT total_limit - allocated FROM campaigns WHERE id = $1",
            &[&campaign_id],
        )
        .await?;
    Ok(row.get(0))
}

/// Issues a batch inside `tx` (the caller commits).
async fn issue(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant_id: Uuid,
    campaign_id: Uuid,
    batch_id: Uuid,
    source: CodeSource<'_>,
) -> Result<IssueOutcome, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND tenant_id = $2 FOR NO KEY UPDATE"
    );
    let Some(row) = tx.query_opt(&sql, &[&campaign_id, &tenant_id]).await? else {
        return Ok(IssueOutcome::NotFound);
    };
    let campaign = record(&row)?;
    if campaign.status == CampaignStatus::Ended {
        return Ok(IssueOutcome::Ended);
    }
    let count = match &source {
        CodeSource::Generate(spec) => i64::from(spec.count()),
        CodeSource::Given(codes) => codes.len() as i64,
    };
    let mut left = unallocated(tx, campaign_id).await?;
    if left < count {
        // Stock nodes leased but have not used yet: revoke it (as a lowered limit does;
        // their next batch finds the lease gone and leases anew), then look again.
        let returned = super::leases::revoke_campaign_leases(tx, campaign_id).await?;
        tx.execute(
            "UPDATE campaigns SET allocated = allocated - $2 WHERE id = $1",
            &[&campaign_id, &returned],
        )
        .await?;
        left = unallocated(tx, campaign_id).await?;
        if left < count {
            return Ok(IssueOutcome::NotEnoughStock { left });
        }
    }
    let lease_id = Uuid::new_v4();
    tx.execute(
        "UPDATE campaigns SET allocated = allocated + $2 WHERE id = $1",
        &[&campaign_id, &count],
    )
    .await?;
    tx.execute(
        "INSERT INTO campaign_leases (id, campaign_id, node_id, size, released_at, returned)
         VALUES ($1, $2, $3, $4, now(), 0)",
        &[&lease_id, &campaign_id, &Uuid::nil(), &count],
    )
    .await?;

    let now = Utc::now();
    let (valid_from, expires_at) = campaign.rules.coupon_validity(now);
    let uses_left = campaign.rules.uses_per_coupon();
    let kind = match source {
        CodeSource::Generate(_) => "bulk",
        CodeSource::Given(_) => "import",
    };
    let consumer = batch_consumer(kind, batch_id);
    let insert = tx
        .prepare_cached(
            "INSERT INTO coupons (id, tenant_id, campaign_id, consumer, seq, won, code, lease_id,
                                  claimed_at, valid_from, expires_at, uses_left, secret)
             SELECT gen_random_uuid(), $1, $2, $3, u.seq, true, u.code, $4, $5, $6, $7, $8, u.secret
             FROM unnest($9::text[], $10::int4[], $11::bytea[]) AS u(code, seq, secret)
             ON CONFLICT DO NOTHING
             RETURNING code",
        )
        .await?;
    // A CSPRNG seeded from the OS: codes are bearer secrets.
    let mut rng = StdRng::from_entropy();
    let mut seq: i32 = 0;
    let mut written: Vec<String> = Vec::with_capacity(count as usize);
    let mut batch: Vec<String> = match &source {
        CodeSource::Given(codes) => codes.to_vec(),
        CodeSource::Generate(spec) => {
            let mut seen = std::collections::HashSet::new();
            std::iter::repeat_with(|| spec.generate(&mut rng))
                .filter(|c| seen.insert(c.clone()))
                .take(count as usize)
                .collect()
        }
    };
    for round in 0.. {
        let mut taken = std::collections::HashSet::new();
        for chunk in batch.chunks(CHUNK) {
            let seqs: Vec<i32> = chunk
                .iter()
                .map(|_| {
                    seq += 1;
                    seq
                })
                .collect();
            let secrets: Vec<Vec<u8>> = chunk
                .iter()
                .map(|_| {
                    let mut s = vec![0u8; 20];
                    rng.fill_bytes(&mut s);
                    s
                })
                .collect();
            let rows = tx
                .query(
                    &insert,
                    &[
                        &tenant_id,
                        &campaign_id,
                        &consumer,
                        &lease_id,
                        &now,
                        &valid_from,
                        &expires_at,
                        &uses_left,
                        &chunk,
                        &seqs,
                        &secrets,
                    ],
                )
                .await?;
            taken.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        }
        let (ok, clashed): (Vec<String>, Vec<String>) =
            batch.into_iter().partition(|c| taken.contains(c));
        written.extend(ok);
        if clashed.is_empty() {
            break;
        }
        match &source {
            CodeSource::Given(_) => return Ok(IssueOutcome::CodesInUse(clashed)),
            CodeSource::Generate(_) if round + 1 >= MAX_ROUNDS => {
                return Ok(IssueOutcome::CodeSpaceExhausted)
            }
            CodeSource::Generate(spec) => {
                let have: std::collections::HashSet<&String> = written.iter().collect();
                let mut fresh = std::collections::HashSet::new();
                batch = std::iter::repeat_with(|| spec.generate(&mut rng))
                    .filter(|c| !have.contains(c) && fresh.insert(c.clone()))
                    .take(clashed.len())
                    .collect();
            }
        }
    }
    super::webhooks::enqueue_if_sold_out(tx, campaign_id).await?;
    // Every node's engine (this one too: no node has the nil id) counts them on COMMIT.
    let change = serde_json::json!({
        "node": Uuid::nil(), "tenant_id": tenant_id, "campaign_id": campaign_id,
        "issued": count, "redeemed": 0, "changed": true,
    });
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&super::notify::CHANNEL, &change.to_string()],
    )
    .await?;
    Ok(IssueOutcome::Issued(IssuedBatch {
        batch_id,
        codes: written,
        valid_from,
        expires_at,
        uses_left,
    }))
}

impl Store {
    /// Issues a batch now, all or nothing.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, campaign_id = %campaign_id))]
    pub async fn issue_codes(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        source: CodeSource<'_>,
    ) -> Result<IssueOutcome, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let outcome = issue(&tx, tenant_id, campaign_id, Uuid::new_v4(), source).await?;
        if matches!(outcome, IssueOutcome::Issued(_)) {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// Queues a job; `None` when the campaign is not the tenant's.
    pub async fn insert_code_job(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        spec: &BulkSpec,
    ) -> Result<Option<CodeJob>, StoreError> {
        let client = self.pool.get().await?;
        let (pattern, charset, prefix) = spec.describe();
        let count = i32::try_from(spec.count()).unwrap_or(i32::MAX);
        let row = client
            .query_opt(
                &format!(
                    "INSERT INTO code_jobs (id, tenant_id, campaign_id, count, pattern, charset, prefix)
                     SELECT $1, c.tenant_id, c.id, $4, $5, $6, $7 FROM campaigns c
                     WHERE c.id = $3 AND c.tenant_id = $2
                     RETURNING {JOB_COLUMNS}"
                ),
                &[
                    &Uuid::new_v4(),
                    &tenant_id,
                    &campaign_id,
                    &count,
                    &pattern,
                    &charset,
                    &prefix,
                ],
            )
            .await?;
        Ok(row.as_ref().map(job))
    }

    pub async fn code_job(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<CodeJob>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM code_jobs WHERE id = $1 AND tenant_id = $2"),
                &[&id, &tenant_id],
            )
            .await?;
        Ok(row.as_ref().map(job))
    }

    /// A finished job's codes in the order made, with their expiry.
    pub async fn code_job_codes(
        &self,
        job: &CodeJob,
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT code, expires_at FROM coupons WHERE campaign_id = $1 AND consumer = $2
                 ORDER BY seq",
                &[&job.campaign_id, &batch_consumer("bulk", job.id)],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Runs the oldest pending job no other node is running, in one transaction with its
    /// row lock. `None`: nothing to do.
    pub async fn run_next_code_job(&self) -> Result<Option<RanJob>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT id, tenant_id, campaign_id, count, pattern, charset, prefix FROM code_jobs
                 WHERE status = 'pending' ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[],
            )
            .await?
        else {
            return Ok(None);
        };
        let id: Uuid = row.get(0);
        let (tenant_id, campaign_id): (Uuid, Uuid) = (row.get(1), row.get(2));
        let count: i32 = row.get(3);
        let (pattern, charset, prefix): (String, String, String) =
            (row.get(4), row.get(5), row.get(6));
        let spec = BulkSpec::parse(
            u32::try_from(count).unwrap_or(0),
            Some(&pattern),
            Some(&charset),
            Some(&prefix),
            &Default::default(),
        );
        let outcome = match spec {
            Ok(spec) => issue(&tx, tenant_id, campaign_id, id, CodeSource::Generate(&spec)).await,
            Err(e) => {
                return Err(StoreError::Corrupt(format!("code job {id}: {e}")));
            }
        };
        match &outcome {
            Ok(IssueOutcome::Issued(_)) => {
                tx.execute(
                    "UPDATE code_jobs SET status = 'done', finished_at = now(), attempts = attempts + 1
                     WHERE id = $1",
                    &[&id],
                )
                .await?;
                tx.commit().await?;
            }
            _ => drop(tx),
        }
        Ok(Some(RanJob { id, outcome }))
    }

    /// A job whose run failed for a passing reason (the database): tried again later,
    /// at most `max` times in all.
    pub async fn retry_code_job(&self, id: Uuid, error: &str, max: i32) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE code_jobs SET attempts = attempts + 1,
                        status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE status END,
                        error_code = CASE WHEN attempts + 1 >= $3 THEN 'internal_error' END,
                        error = $2,
                        finished_at = CASE WHEN attempts + 1 >= $3 THEN now() END
                 WHERE id = $1 AND status = 'pending'",
                &[&id, &error, &max],
            )
            .await?;
        Ok(())
    }

    /// A job that cannot be done (no stock, campaign ended, …): it will not be tried again.
    pub async fn fail_code_job(&self, id: Uuid, code: &str, error: &str) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE code_jobs SET status = 'failed', error_code = $2, error = $3,
                        finished_at = now(), attempts = attempts + 1
                 WHERE id = $1 AND status = 'pending'",
                &[&id, &code, &error],
            )
            .await?;
        Ok(())
    }
}
