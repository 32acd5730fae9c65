//! Campaign rows and their live statistics.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::campaign::{CampaignError, CampaignRules, RulesParams};

/// A campaign exactly as stored. Values were validated on the way in.
#[derive(Debug, Clone)]
pub struct CampaignRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub terms: String,
    pub discount: Option<serde_json::Value>,
    pub total_limit: i64,
    pub per_consumer_limit: i32,
    pub claim_starts_at: DateTime<Utc>,
    pub claim_ends_at: Option<DateTime<Utc>>,
    pub use_starts_at: Option<DateTime<Utc>>,
    pub use_ends_at: Option<DateTime<Utc>>,
    pub valid_for_seconds: Option<i64>,
    pub uses_per_coupon: i32,
    pub win_probability: Option<f64>,
    pub status: String,
    pub code_length: i32,
    pub code_prefix: String,
    /// The characters codes are drawn from.
    pub code_charset: String,
    pub allocated: i64,
    /// 'none' (a device is a consumer) or 'required' (sign in first).
    pub signin: String,
    pub image_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CampaignRecord {
    /// The stored rules, parsed again: rows are only written from parsed rules, so this
    /// fails only if the database was edited by hand.
    pub fn rules(&self) -> Result<CampaignRules, CampaignError> {
        CampaignRules::parse(RulesParams {
            total_limit: self.total_limit,
            per_consumer_limit: self.per_consumer_limit.into(),
            claim_starts_at: self.claim_starts_at,
            claim_ends_at: self.claim_ends_at,
            use_starts_at: self.use_starts_at,
            use_ends_at: self.use_ends_at,
            valid_for_seconds: self.valid_for_seconds,
            uses_per_coupon: self.uses_per_coupon.into(),
            win_probability: self.win_probability,
        })
    }
}

/// Fields of a new campaign, already parsed by the domain layer.
pub struct NewCampaignRow<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub terms: &'a str,
    pub discount: Option<serde_json::Value>,
    pub total_limit: i64,
    pub per_consumer_limit: i32,
    pub claim_starts_at: DateTime<Utc>,
    pub claim_ends_at: Option<DateTime<Utc>>,
    pub use_starts_at: Option<DateTime<Utc>>,
    pub use_ends_at: Option<DateTime<Utc>>,
    pub valid_for_seconds: Option<i64>,
    pub uses_per_coupon: i32,
    pub win_probability: Option<f64>,
    pub status: &'a str,
    pub signin: &'a str,
    pub code_length: i32,
    pub code_prefix: &'a str,
    pub code_charset: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CampaignStats {
    pub issued: i64,
    pub redeemed: i64,
    pub remaining: i64,
}

const COLUMNS: &str = "id, tenant_id, slug, name, description, terms, discount, total_limit, \
    per_consumer_limit, claim_starts_at, claim_ends_at, use_starts_at, use_ends_at, valid_for_seconds, \
    uses_per_coupon, win_probability, status, code_length, code_prefix, allocated, created_at, updated_at, signin, image_id, code_charset";

fn record(r: &tokio_postgres::Row) -> CampaignRecord {
    CampaignRecord {
        id: r.get(0),
        tenant_id: r.get(1),
        slug: r.get(2),
        name: r.get(3),
        description: r.get(4),
        terms: r.get(5),
        discount: r.get(6),
        total_limit: r.get(7),
        per_consumer_limit: r.get(8),
        claim_starts_at: r.get(9),
        claim_ends_at: r.get(10),
        use_starts_at: r.get(11),
        use_ends_at: r.get(12),
        valid_for_seconds: r.get(13),
        uses_per_coupon: r.get(14),
        win_probability: r.get(15),
        status: r.get(16),
        code_length: r.get(17),
        code_prefix: r.get(18),
        allocated: r.get(19),
        created_at: r.get(20),
        updated_at: r.get(21),
        signin: r.get(22),
        image_id: r.get(23),
        code_charset: r.get(24),
    }
}

/// A change to apply under the campaign's row lock, after seeing the current row and stats.
pub type CampaignEdit = Box<
    dyn FnOnce(&CampaignRecord, &CampaignStats) -> Result<CampaignChange, CampaignError> + Send,
>;

/// What an edit decided to write.
pub struct CampaignChange {
    pub status: String,
    pub total_limit: i64,
}

/// Why an edit was not written.
pub enum EditOutcome {
    /// The row as written, and its counts (the edit changes no coupon, only `remaining`).
    Updated(Box<CampaignRecord>, CampaignStats),
    NotFound,
    Refused(CampaignError),
}

impl Store {
    pub async fn insert_campaign(
        &self,
        row: NewCampaignRow<'_>,
    ) -> Result<CampaignRecord, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "INSERT INTO campaigns (id, tenant_id, slug, name, description, terms, discount, total_limit,
                per_consumer_limit, claim_starts_at, claim_ends_at, use_starts_at, use_ends_at,
                valid_for_seconds, uses_per_coupon, win_probability, status, signin, code_length, code_prefix, code_charset)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
             RETURNING {COLUMNS}"
        );
        let r = client
            .query_one(
                &sql,
                &[
                    &row.id,
                    &row.tenant_id,
                    &row.slug,
                    &row.name,
                    &row.description,
                    &row.terms,
                    &row.discount,
                    &row.total_limit,
                    &row.per_consumer_limit,
                    &row.claim_starts_at,
                    &row.claim_ends_at,
                    &row.use_starts_at,
                    &row.use_ends_at,
                    &row.valid_for_seconds,
                    &row.uses_per_coupon,
                    &row.win_probability,
                    &row.status,
                    &row.signin,
                    &row.code_length,
                    &row.code_prefix,
                    &row.code_charset,
                ],
            )
            .await?;
        Ok(record(&r))
    }

    /// A tenant's campaign; another tenant's id finds nothing.
    pub async fn campaign(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<CampaignRecord>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND tenant_id = $2");
        Ok(client
            .query_opt(&sql, &[&id, &tenant_id])
            .await?
            .as_ref()
            .map(record))
    }

    /// Any campaign by id, for the engine (which checks the tenant itself).
    pub async fn campaign_by_id(&self, id: Uuid) -> Result<Option<CampaignRecord>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1");
        Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(record))
    }

    pub async fn campaign_by_slug(&self, slug: &str) -> Result<Option<CampaignRecord>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE slug = $1");
        Ok(client.query_opt(&sql, &[&slug]).await?.as_ref().map(record))
    }

    /// Issued and redeemed as the database knows them, across every node.
    pub async fn campaign_stats(
        &self,
        id: Uuid,
        total_limit: i64,
    ) -> Result<CampaignStats, StoreError> {
        let client = self.pool.get().await?;
        stats(&client, id, total_limit).await
    }

    /// Applies `edit` while holding the campaign's row lock, so the issued count it sees
    /// cannot grow past a lowered limit: leases take the same lock to take stock.
    pub async fn edit_campaign(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        edit: CampaignEdit,
    ) -> Result<EditOutcome, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let sql =
            format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND tenant_id = $2 FOR UPDATE");
        let Some(current) = tx
            .query_opt(&sql, &[&id, &tenant_id])
            .await?
            .as_ref()
            .map(record)
        else {
            return Ok(EditOutcome::NotFound);
        };
        let stats = stats(&tx, id, current.total_limit).await?;
        let change = match edit(&current, &stats) {
            Ok(change) => change,
            Err(reason) => return Ok(EditOutcome::Refused(reason)),
        };
        // Stock that nodes leased but have not used must fit under a lowered limit too:
        // revoke every live lease (their nodes notice at their next flush and lease anew).
        let returned = if change.total_limit < current.total_limit {
            super::leases::revoke_campaign_leases(&tx, id).await?
        } else {
            0
        };
        let sql = format!(
            "UPDATE campaigns SET status = $2, total_limit = $3, allocated = allocated - $4, updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let updated = record(
            &tx.query_one(&sql, &[&id, &change.status, &change.total_limit, &returned])
                .await?,
        );
        tx.commit().await?;
        let stats = CampaignStats {
            remaining: (updated.total_limit - stats.issued).max(0),
            ..stats
        };
        Ok(EditOutcome::Updated(Box::new(updated), stats))
    }
}

async fn stats(
    client: &impl deadpool_postgres::GenericClient,
    id: Uuid,
    total_limit: i64,
) -> Result<CampaignStats, StoreError> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM coupons WHERE campaign_id = $1 AND won),
                    (SELECT count(*) FROM redemptions WHERE campaign_id = $1 AND undone_at IS NULL)",
            &[&id],
        )
        .await?;
    let issued: i64 = row.get(0);
    Ok(CampaignStats {
        issued,
        redeemed: row.get(1),
        remaining: (total_limit - issued).max(0),
    })
}
