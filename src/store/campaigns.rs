//! Campaign rows and their live statistics.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::campaign::{
    CampaignError, CampaignRules, CampaignStatus, Discount, NewCampaign, RulesParams,
};
use crate::domain::consumer::SigninMode;
use crate::domain::coupon_code::{Charset, CodeFormat};

/// A campaign as stored, parsed back into domain types on the way out (see [`record`]).
#[derive(Debug, Clone)]
pub struct CampaignRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub terms: String,
    pub discount: Option<Discount>,
    pub rules: CampaignRules,
    pub status: CampaignStatus,
    /// Whether a device is a consumer, or consumers sign in first.
    pub signin: SigninMode,
    pub codes: CodeFormat,
    pub allocated: i64,
    pub image_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CampaignStats {
    pub issued: i64,
    pub redeemed: i64,
    pub remaining: i64,
}

pub(super) const COLUMNS: &str = "id, tenant_id, slug, name, description, terms, discount, total_limit, \
    per_consumer_limit, claim_starts_at, claim_ends_at, use_starts_at, use_ends_at, valid_for_seconds, \
    uses_per_coupon, win_probability, status, code_length, code_prefix, allocated, created_at, updated_at, signin, image_id, code_charset";

/// Rows are only written from parsed values, so a row that fails to parse was edited by
/// hand (or by a newer build): it is an error to report, never "not found".
pub(super) fn record(r: &tokio_postgres::Row) -> Result<CampaignRecord, StoreError> {
    let id: Uuid = r.get(0);
    let corrupt = |what: &str, why: String| {
        tracing::error!(campaign = %id, what, why, "stored campaign row does not parse");
        StoreError::Corrupt(format!("campaign {id}: {what}: {why}"))
    };
    let discount: Option<serde_json::Value> = r.get(6);
    let discount = discount
        .map(serde_json::from_value::<Discount>)
        .transpose()
        .map_err(|e| corrupt("discount", e.to_string()))?;
    let per_consumer_limit: i32 = r.get(8);
    let uses_per_coupon: i32 = r.get(14);
    let rules = CampaignRules::parse(
        RulesParams {
            total_limit: r.get(7),
            per_consumer_limit: per_consumer_limit.into(),
            claim_starts_at: Some(r.get(9)),
            claim_ends_at: r.get(10),
            use_starts_at: r.get(11),
            use_ends_at: r.get(12),
            valid_for_seconds: r.get(13),
            uses_per_coupon: uses_per_coupon.into(),
            win_probability: r.get(15),
        },
        r.get(9),
    )
    .map_err(|e| corrupt("rules", e.to_string()))?;
    let status: &str = r.get(16);
    let signin: &str = r.get(22);
    let code_length: i32 = r.get(17);
    let charset = Charset::parse(r.get(24)).map_err(|e| corrupt("code_charset", e.to_string()))?;
    let codes = CodeFormat::new(
        usize::try_from(code_length).map_err(|e| corrupt("code_length", e.to_string()))?,
        r.get(18),
        charset,
    )
    .map_err(|e| corrupt("code format", e.to_string()))?;
    Ok(CampaignRecord {
        id,
        tenant_id: r.get(1),
        slug: r.get(2),
        name: r.get(3),
        description: r.get(4),
        terms: r.get(5),
        discount,
        rules,
        status: status
            .parse()
            .map_err(|e: CampaignError| corrupt("status", e.to_string()))?,
        signin: SigninMode::parse(signin).map_err(|_| corrupt("signin", signin.to_owned()))?,
        codes,
        allocated: r.get(19),
        created_at: r.get(20),
        updated_at: r.get(21),
        image_id: r.get(23),
    })
}

fn maybe_record(row: Option<tokio_postgres::Row>) -> Result<Option<CampaignRecord>, StoreError> {
    row.as_ref().map(record).transpose()
}

/// A change to apply under the campaign's row lock, after seeing the current row and stats.
pub type CampaignEdit = Box<
    dyn FnOnce(&CampaignRecord, &CampaignStats) -> Result<CampaignChange, CampaignError> + Send,
>;

/// What an edit decided to write.
pub struct CampaignChange {
    pub status: CampaignStatus,
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
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn insert_campaign(
        &self,
        id: Uuid,
        tenant_id: Uuid,
        slug: &str,
        campaign: &NewCampaign,
    ) -> Result<CampaignRecord, StoreError> {
        let client = self.pool.get().await?;
        insert_row(&client, id, tenant_id, slug, campaign, None).await
    }
}

/// Inserts a parsed campaign on `client` (a pooled connection or, for the console's
/// campaign-with-image, a transaction).
pub(super) async fn insert_row(
    client: &impl deadpool_postgres::GenericClient,
    id: Uuid,
    tenant_id: Uuid,
    slug: &str,
    campaign: &NewCampaign,
    image_id: Option<Uuid>,
) -> Result<CampaignRecord, StoreError> {
    let sql = format!(
        "INSERT INTO campaigns (id, tenant_id, slug, name, description, terms, discount, total_limit,
            per_consumer_limit, claim_starts_at, claim_ends_at, use_starts_at, use_ends_at,
            valid_for_seconds, uses_per_coupon, win_probability, status, signin, code_length, code_prefix, code_charset,
            image_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
         RETURNING {COLUMNS}"
    );
    let rules = campaign.rules();
    let discount = campaign
        .discount()
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("discount: {e}")))?;
    let codes = campaign.codes();
    let code_length = i32::try_from(codes.length())
        .map_err(|e| StoreError::Corrupt(format!("code_length: {e}")))?;
    let r = client
        .query_one(
            &sql,
            &[
                &id,
                &tenant_id,
                &slug,
                &campaign.name(),
                &campaign.description(),
                &campaign.terms(),
                &discount,
                &rules.total_limit(),
                &rules.per_consumer_limit(),
                &rules.claim_starts_at(),
                &rules.claim_ends_at(),
                &rules.use_starts_at(),
                &rules.use_ends_at(),
                &rules.valid_for_seconds(),
                &rules.uses_per_coupon(),
                &rules.win_probability(),
                &campaign.status().as_str(),
                &campaign.signin().as_str(),
                &code_length,
                &codes.prefix(),
                &codes.charset().as_str(),
                &image_id,
            ],
        )
        .await?;
    record(&r)
}

impl Store {
    /// A tenant's campaign; another tenant's id finds nothing.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn campaign(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<CampaignRecord>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND tenant_id = $2");
        maybe_record(
            client
                .query_opt(&client.prepare_cached(&sql).await?, &[&id, &tenant_id])
                .await?,
        )
    }

    /// Any campaign by id, for the engine (which checks the tenant itself).
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub async fn campaign_by_id(&self, id: Uuid) -> Result<Option<CampaignRecord>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1");
        maybe_record(
            client
                .query_opt(&client.prepare_cached(&sql).await?, &[&id])
                .await?,
        )
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn campaign_by_slug(&self, slug: &str) -> Result<Option<CampaignRecord>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE slug = $1");
        maybe_record(
            client
                .query_opt(&client.prepare_cached(&sql).await?, &[&slug])
                .await?,
        )
    }

    /// Issued and redeemed as the database knows them, across every node.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
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
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn edit_campaign(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        edit: CampaignEdit,
    ) -> Result<EditOutcome, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // NO KEY UPDATE: claim batches (whose foreign key takes KEY SHARE here) go on
        // meanwhile; taking, releasing and reaping leases wait. See `leases` on lock order.
        let sql = format!(
            "SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND tenant_id = $2 FOR NO KEY UPDATE"
        );
        let Some(current) = maybe_record(tx.query_opt(&sql, &[&id, &tenant_id]).await?)? else {
            return Ok(EditOutcome::NotFound);
        };
        let mut stats = stats(&tx, id, current.rules.total_limit()).await?;
        let change = match edit(&current, &stats) {
            Ok(change) => change,
            Err(reason) => return Ok(EditOutcome::Refused(reason)),
        };
        // Stock that nodes leased but have not used must fit under a lowered limit too:
        // revoke every live lease (their nodes notice at their next flush and lease anew).
        let returned = if change.total_limit < current.rules.total_limit() {
            let returned = super::leases::revoke_campaign_leases(&tx, id).await?;
            // Batches in flight committed before their leases could be revoked: count again
            // now that no coupon can be added, and judge the lowered limit against that.
            stats = self::stats(&tx, id, current.rules.total_limit()).await?;
            if let Err(reason) = current
                .rules
                .validate_limit_change(change.total_limit, stats.issued)
            {
                return Ok(EditOutcome::Refused(reason));
            }
            returned
        } else {
            0
        };
        let sql = format!(
            "UPDATE campaigns SET status = $2, total_limit = $3, allocated = allocated - $4, updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let updated = record(
            &tx.query_one(
                &sql,
                &[&id, &change.status.as_str(), &change.total_limit, &returned],
            )
            .await?,
        )?;
        ended_event(&tx, &current, &updated, stats.issued).await?;
        tx.commit().await?;
        let stats = CampaignStats {
            remaining: (updated.rules.total_limit() - stats.issued).max(0),
            ..stats
        };
        Ok(EditOutcome::Updated(Box::new(updated), stats))
    }
}

/// `campaign.ended` for the merchant's webhooks when an edit ended the campaign, in the
/// edit's transaction (the outbox: see `store::webhooks`).
pub(super) async fn ended_event(
    tx: &deadpool_postgres::Transaction<'_>,
    before: &CampaignRecord,
    updated: &CampaignRecord,
    issued: i64,
) -> Result<(), StoreError> {
    if updated.status != CampaignStatus::Ended || before.status == CampaignStatus::Ended {
        return Ok(());
    }
    let event = serde_json::json!({
        "campaign_id": updated.id,
        "name": updated.name,
        "issued": issued,
        "ended_at": updated.updated_at,
    });
    super::webhooks::enqueue(
        tx,
        updated.tenant_id,
        crate::domain::webhook::CAMPAIGN_ENDED,
        &event,
    )
    .await?;
    Ok(())
}

pub(super) async fn stats(
    client: &impl deadpool_postgres::GenericClient,
    id: Uuid,
    total_limit: i64,
) -> Result<CampaignStats, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT (SELECT count(*) FROM coupons WHERE campaign_id = $1 AND won),
                    (SELECT count(*) FROM redemptions WHERE campaign_id = $1 AND undone_at IS NULL)",
        )
        .await?;
    let row = client.query_one(&stmt, &[&id]).await?;
    let issued: i64 = row.get(0);
    Ok(CampaignStats {
        issued,
        redeemed: row.get(1),
        remaining: (total_limit - issued).max(0),
    })
}

/// One line of the console's campaign list.
#[derive(Debug, Clone)]
pub struct CampaignSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: CampaignStatus,
    pub total_limit: i64,
    pub issued: i64,
    pub redeemed: i64,
    pub remaining: i64,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// A tenant's campaigns, newest first, with their counts.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn campaign_summaries(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<CampaignSummary>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT c.id, c.slug, c.name, c.status, c.total_limit, c.created_at,
                        (SELECT count(*) FROM coupons k WHERE k.campaign_id = c.id AND k.won),
                        (SELECT count(*) FROM redemptions r WHERE r.campaign_id = c.id AND r.undone_at IS NULL)
                 FROM campaigns c WHERE c.tenant_id = $1 ORDER BY c.created_at DESC LIMIT 500",
                &[&tenant_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let status: &str = r.get(3);
                let total_limit: i64 = r.get(4);
                let issued: i64 = r.get(6);
                Ok(CampaignSummary {
                    id: r.get(0),
                    slug: r.get(1),
                    name: r.get(2),
                    status: status
                        .parse()
                        .map_err(|e: CampaignError| StoreError::Corrupt(e.to_string()))?,
                    total_limit,
                    issued,
                    redeemed: r.get(7),
                    remaining: (total_limit - issued).max(0),
                    created_at: r.get(5),
                })
            })
            .collect()
    }
}
