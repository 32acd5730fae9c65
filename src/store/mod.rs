//! All SQL lives under this module. The rest of the crate talks to [`Store`], whose methods
//! are grouped by table in the files below.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::DatabaseSettings;

mod admin;
mod api_keys;
mod audit;
pub mod backups;
pub mod bulk_codes;
mod campaign_activity;
mod campaign_edit;
mod campaign_list;
mod campaigns;
mod claim_batch;
mod claims;
mod consumers;
mod coupon_lookup;
mod export;
mod idempotency;
mod images;
mod key_reads;
mod leases;
mod live;
mod merchants;
mod migrate;
pub mod notices;
mod notify;
pub mod operators;
mod pool;
use pool::lazily_committed;
mod redemption_list;
mod report;
pub mod retention;
mod shops;
pub mod tenant_data;
mod tenant_settings;
mod tenants;
mod totp;
mod wallet;
pub mod webhooks;

pub use admin::{ensure_database, AdminError};
pub use api_keys::{ApiKeyListing, KeyRevoke, PrefixRevoke};
pub use audit::{
    declared_erasures, AuditCut, AuditEntry, AuditRecord, ChainEvent, ChainHead, ChainRow,
    Checkpoint, PURGE_ACTION,
};
pub use campaign_activity::{
    CampaignActivity, FeedRedemption, MinuteActivity, ACTIVITY_MINUTES, FEED_LENGTH,
};
pub use campaign_edit::{CampaignRewrite, ImageUpdate, NewImage, PosterStore};
pub use campaigns::{
    CampaignChange, CampaignEdit, CampaignRecord, CampaignStats, CampaignSummary, EditOutcome,
};
pub use claim_batch::{BatchFailure, BatchOf, BatchOutcome, ClaimKey, ClaimRow};
pub use claims::{RedeemInput, StaffCouponView};
pub use claims::{RedeemOutcome, RedemptionRecord, UndoOutcome};
pub use consumers::{CompletedSignin, NewSigninRequest, PendingSignin, TakeSignin};
pub use coupon_lookup::{ClaimedRow, CouponLookup, CouponRedemption};
pub use export::{Cell, Dataset, ExportRange, ExportRows};
pub use idempotency::{IdempotencyBegin, KeyState};
pub use key_reads::KeyReads;
pub use leases::{Lease, ReapedLease};
pub use live::{LiveCounts, LiveRedemption, LiveSessionRow};
pub use merchants::{
    InviteRecord, MerchantUser, NewSession, SessionRecord, SignInCandidate, UserChange,
};
pub use migrate::{latest_migration, run_migrations};
pub use notify::{ClockSample, Listener};
pub use redemption_list::{RedemptionFilter, RedemptionListing};
pub use report::{MonthRow, Observed};
pub use shops::{Shop, ShopCampaignStat, ShopWrite};
pub use tenant_settings::{SettingsUpdate, TenantSettings};
pub use tenants::ApiKeyRecord;
pub use totp::TotpOwner;
pub use wallet::{Theme, WalletCoupon};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// The database did not answer in time (the caller gave up waiting).
    #[error("no answer from the database within {0:?}")]
    Timeout(std::time::Duration),
    #[error("migrations: {0}")]
    Migration(String),
    #[error("{0}")]
    Conflict(String),
    /// A stored row that does not parse back into domain types (edited by hand?).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// One failure of a statement shared by several requests (a batched read).
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
}

/// The database, as the rest of the crate sees it.
#[derive(Clone)]
pub struct Store {
    pool: pool::TimedPool,
    pg_config: tokio_postgres::Config,
}

impl Store {
    /// Builds the pool and proves the database answers, so a wrong URL fails start-up
    /// rather than the first request.
    pub async fn connect(
        mut pg_config: tokio_postgres::Config,
        settings: &DatabaseSettings,
    ) -> anyhow::Result<Store> {
        pg_config.connect_timeout(settings.connect_timeout);
        pg_config.options(format!(
            "-c statement_timeout={}",
            settings.statement_timeout.as_millis()
        ));
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("ecoupon");
        }
        let manager = Manager::from_config(
            pg_config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()?;
        let store = Store {
            pool: pool.into(),
            pg_config,
        };
        let probe = async {
            let client = store.pool.get().await?;
            client.simple_query("SELECT 1").await?;
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(settings.connect_timeout + Duration::from_secs(1), probe).await {
            Ok(Ok(())) => Ok(store),
            Ok(Err(e)) => Err(anyhow::anyhow!(
                "cannot reach the database: {}",
                describe_pg_error(&e)
            )),
            Err(_) => Err(anyhow::anyhow!(
                "cannot reach the database: no answer within {:?}",
                settings.connect_timeout
            )),
        }
    }

    /// Stops handing out connections and closes idle ones (at shutdown).
    pub fn close(&self) {
        self.pool.close();
    }

    /// A dedicated connection outside the pool, for sessions that hold advisory locks or
    /// LISTEN: those must not be handed to another request afterwards.
    async fn dedicated_connection(&self) -> Result<tokio_postgres::Client, StoreError> {
        let (client, connection) = self.pg_config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "dedicated database connection closed");
            }
        });
        Ok(client)
    }

    /// `/readyz`: the database answers and its schema is the one this build expects.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn readiness(&self) -> Result<(), String> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| format!("database unavailable: {e}"))?;
        let row = client
            .query_opt("SELECT max(version) FROM refinery_schema_history", &[])
            .await
            .map_err(|e| {
                format!(
                    "database query failed: {}",
                    describe_pg_error(&StoreError::Db(e))
                )
            })?;
        let applied: Option<i32> = row.and_then(|r| r.get(0));
        let expected = latest_migration();
        match applied {
            Some(v) if v >= expected => Ok(()),
            Some(v) => Err(format!(
                "migrations pending: schema at v{v}, this build needs v{expected}"
            )),
            None => Err("migrations not applied".into()),
        }
    }
}

impl StoreError {
    /// Whether this says the database is out of reach (no connection, a connection that
    /// broke, a server shutting down or starting, no answer in time) rather than that the
    /// request was wrong: such failures are answered 503, retry later.
    pub fn is_unavailable(&self) -> bool {
        let db = match self {
            StoreError::Shared(e) => return e.is_unavailable(),
            StoreError::Timeout(_) => return true,
            StoreError::Pool(deadpool_postgres::PoolError::Backend(db)) | StoreError::Db(db) => db,
            StoreError::Pool(_) => return true,
            _ => return false,
        };
        match db.as_db_error() {
            // Connection exceptions (08), operator intervention such as a shutdown (57P),
            // insufficient resources (53), deadlocks and serialization failures (40).
            Some(server) => {
                let code = server.code().code();
                ["08", "57P", "53", "40"]
                    .iter()
                    .any(|c| code.starts_with(c))
            }
            // No server error: the connection itself failed.
            None => true,
        }
    }
}

/// tokio-postgres' Display for server errors is just "db error"; show the server's words.
pub fn describe_pg_error(e: &StoreError) -> String {
    let db = match e {
        StoreError::Db(db) => Some(db),
        StoreError::Pool(deadpool_postgres::PoolError::Backend(db)) => Some(db),
        _ => None,
    };
    match db {
        Some(db) => match db.as_db_error() {
            Some(server) => server.message().to_string(),
            None => {
                let mut text = db.to_string();
                let mut source = std::error::Error::source(db);
                while let Some(s) = source {
                    text = format!("{text}: {s}");
                    source = s.source();
                }
                text
            }
        },
        None => e.to_string(),
    }
}
