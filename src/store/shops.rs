//! The `stores` table: the shops where staff redeem coupons. Called "shops" in Rust only,
//! so a shop is never confused with [`Store`], the database layer this module belongs to.
//! Every query is scoped to a tenant: another tenant's shop is as absent as a missing one.

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::redemption::{ShopCode, ShopName};

#[derive(Debug, Clone)]
pub struct Shop {
    pub id: Uuid,
    pub name: String,
    pub code: String,
    pub created_at: DateTime<Utc>,
    /// Uses recorded at this shop (undone ones left out).
    pub redemptions: i64,
}

/// Uses of one campaign at one shop; `shop_id` None gathers uses recorded at no shop (or at
/// free text that matched none).
#[derive(Debug, Clone)]
pub struct ShopCampaignStat {
    pub shop_id: Option<Uuid>,
    pub shop_name: Option<String>,
    pub shop_code: Option<String>,
    pub campaign_id: Uuid,
    pub campaign_name: String,
    pub redemptions: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShopWrite {
    Saved(Uuid),
    /// Another shop of the tenant has this code.
    CodeTaken,
    NotFound,
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn shop(r: &tokio_postgres::Row) -> Shop {
    Shop {
        id: r.get(0),
        name: r.get(1),
        code: r.get(2),
        created_at: r.get(3),
        redemptions: r.get(4),
    }
}

const SHOP_COLUMNS: &str = "s.id, s.name, s.code, s.created_at, \
    (SELECT count(*) FROM redemptions r WHERE r.store_id = s.id AND r.undone_at IS NULL)";

impl Store {
    /// The tenant's shops by code.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn shops(&self, tenant_id: Uuid) -> Result<Vec<Shop>, StoreError> {
        let client = self.pool.get().await?;
        let sql =
            format!("SELECT {SHOP_COLUMNS} FROM stores s WHERE s.tenant_id = $1 ORDER BY s.code");
        Ok(client
            .query(&sql, &[&tenant_id])
            .await?
            .iter()
            .map(shop)
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn shop(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<Shop>, StoreError> {
        let client = self.pool.get().await?;
        let sql =
            format!("SELECT {SHOP_COLUMNS} FROM stores s WHERE s.tenant_id = $1 AND s.id = $2");
        Ok(client
            .query_opt(&sql, &[&tenant_id, &id])
            .await?
            .as_ref()
            .map(shop))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn insert_shop(
        &self,
        tenant_id: Uuid,
        name: &ShopName,
        code: &ShopCode,
    ) -> Result<ShopWrite, StoreError> {
        let client = self.pool.get().await?;
        let id = Uuid::new_v4();
        let row = client
            .query_opt(
                "INSERT INTO stores (id, tenant_id, name, code) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, code) DO NOTHING RETURNING id",
                &[&id, &tenant_id, &name.as_str(), &code.as_str()],
            )
            .await?;
        Ok(match row {
            Some(_) => ShopWrite::Saved(id),
            None => ShopWrite::CodeTaken,
        })
    }

    /// Renames a shop (name and code); its past redemptions follow it, being linked by id.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn update_shop(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        name: &ShopName,
        code: &ShopCode,
    ) -> Result<ShopWrite, StoreError> {
        let client = self.pool.get().await?;
        match client
            .execute(
                "UPDATE stores SET name = $3, code = $4 WHERE id = $2 AND tenant_id = $1",
                &[&tenant_id, &id, &name.as_str(), &code.as_str()],
            )
            .await
        {
            Ok(0) => Ok(ShopWrite::NotFound),
            Ok(_) => Ok(ShopWrite::Saved(id)),
            Err(e) if is_unique_violation(&e) => Ok(ShopWrite::CodeTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a shop and returns it. Its redemptions stay, with their free text; only the
    /// link to the shop goes (the foreign key sets it to NULL).
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn delete_shop(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<Shop>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "DELETE FROM stores s WHERE s.id = $2 AND s.tenant_id = $1
                 RETURNING s.id, s.name, s.code, s.created_at, 0::bigint",
                &[&tenant_id, &id],
            )
            .await?;
        Ok(row.as_ref().map(shop))
    }

    /// Uses per shop and campaign, shops by code with "no shop" last.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn shop_campaign_stats(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<ShopCampaignStat>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT s.id, s.name, s.code, k.id, k.name, count(*)
                 FROM redemptions r
                 JOIN campaigns k ON k.id = r.campaign_id
                 LEFT JOIN stores s ON s.id = r.store_id
                 WHERE r.tenant_id = $1 AND r.undone_at IS NULL
                 GROUP BY s.id, s.name, s.code, k.id, k.name
                 ORDER BY s.code NULLS LAST, k.name, k.id",
                &[&tenant_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ShopCampaignStat {
                shop_id: r.get(0),
                shop_name: r.get(1),
                shop_code: r.get(2),
                campaign_id: r.get(3),
                campaign_name: r.get(4),
                redemptions: r.get(5),
            })
            .collect())
    }
}
