//! CSV export: one tenant's rows of one dataset, read as a stream so that a million rows
//! take no more memory than one.
//!
//! The rows come from a single `query_raw` inside a read-only, repeatable-read transaction
//! (one consistent snapshot, however long the download takes). tokio-postgres hands rows
//! over through a one-slot channel and stops reading the socket while it is full, so a
//! consumer that waits makes PostgreSQL wait too: nothing piles up in this process.

use std::pin::Pin;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, RowStream};
use uuid::Uuid;

use super::{Store, StoreError};

/// What can be exported. The names are the URL's (`/merchant/export/{name}.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Campaigns,
    Coupons,
    Redemptions,
    Users,
    Audit,
}

/// How a column is read from its row.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int8,
    Int4,
    Float,
    Bool,
    Time,
    Id,
}

/// One value of an exported row; `None` cells (SQL NULL) are empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    Id(Uuid),
    Empty,
}

/// A half-open time range, `from <= t < until`; either end may be open.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportRange {
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

use Kind::*;

const CAMPAIGNS: &[(&str, Kind)] = &[
    ("id", Id),
    ("name", Text),
    ("status", Text),
    ("claim_url", Text),
    ("discount_kind", Text),
    ("discount_value", Text),
    ("total_limit", Int8),
    ("per_consumer_limit", Int4),
    ("issued", Int8),
    ("redeemed", Int8),
    ("claim_starts_at", Time),
    ("claim_ends_at", Time),
    ("use_starts_at", Time),
    ("use_ends_at", Time),
    ("valid_for_seconds", Int8),
    ("uses_per_coupon", Int4),
    ("win_probability", Float),
    ("signin", Text),
    ("created_at", Time),
    ("updated_at", Time),
];

// Every query takes the tenant as $1 and the range as $2/$3, and filters on both: another
// tenant's rows cannot be asked for.
const CAMPAIGNS_SQL: &str = "
    SELECT c.id, c.name, c.status, $4::text || '/c/' || c.slug,
           c.discount->>'kind',
           coalesce(c.discount->>'amount', c.discount->>'percent', c.discount->>'item', c.discount->>'text'),
           c.total_limit, c.per_consumer_limit,
           (SELECT count(*) FROM coupons k WHERE k.campaign_id = c.id AND k.won),
           (SELECT count(*) FROM redemptions r WHERE r.campaign_id = c.id AND r.undone_at IS NULL),
           c.claim_starts_at, c.claim_ends_at, c.use_starts_at, c.use_ends_at, c.valid_for_seconds,
           c.uses_per_coupon, c.win_probability, c.signin, c.created_at, c.updated_at
    FROM campaigns c
    WHERE c.tenant_id = $1
      AND ($2::timestamptz IS NULL OR c.created_at >= $2) AND ($3::timestamptz IS NULL OR c.created_at < $3)
    ORDER BY c.created_at, c.id";

const COUPONS: &[(&str, Kind)] = &[
    ("id", Id),
    ("campaign_id", Id),
    ("campaign_name", Text),
    ("code", Text),
    ("won", Bool),
    ("consumer", Text),
    ("claim_number", Int4),
    ("claimed_at", Time),
    ("valid_from", Time),
    ("expires_at", Time),
    ("uses_left", Int4),
];

const COUPONS_SQL: &str = "
    SELECT k.id, k.campaign_id, c.name, k.code, k.won, k.consumer, k.seq, k.claimed_at,
           k.valid_from, k.expires_at, k.uses_left
    FROM coupons k JOIN campaigns c ON c.id = k.campaign_id
    WHERE k.tenant_id = $1 AND c.tenant_id = $1
      AND ($2::timestamptz IS NULL OR k.claimed_at >= $2) AND ($3::timestamptz IS NULL OR k.claimed_at < $3)
    ORDER BY k.claimed_at, k.id";

const REDEMPTIONS: &[(&str, Kind)] = &[
    ("id", Id),
    ("redeemed_at", Time),
    ("campaign_id", Id),
    ("campaign_name", Text),
    ("coupon_code", Text),
    ("store_code", Text),
    ("store", Text),
    ("staff", Text),
    ("undone_at", Time),
];

// A redemption made at a registered store names it; older ones keep the API's free text.
const REDEMPTIONS_SQL: &str = "
    SELECT r.id, r.redeemed_at, r.campaign_id, c.name, k.code, s.code, coalesce(s.name, r.store),
           coalesce(u.email, r.staff), r.undone_at
    FROM redemptions r
    JOIN campaigns c ON c.id = r.campaign_id
    JOIN coupons k ON k.id = r.coupon_id
    LEFT JOIN stores s ON s.id = r.store_id
    LEFT JOIN merchant_users u ON u.id = r.staff_user_id
    WHERE r.tenant_id = $1
      AND ($2::timestamptz IS NULL OR r.redeemed_at >= $2) AND ($3::timestamptz IS NULL OR r.redeemed_at < $3)
    ORDER BY r.redeemed_at, r.id";

const USERS: &[(&str, Kind)] = &[
    ("id", Id),
    ("email", Text),
    ("role", Text),
    ("disabled", Bool),
    ("totp_enabled", Bool),
    ("created_at", Time),
    ("last_sign_in_at", Time),
];

const USERS_SQL: &str = "
    SELECT id, email, role, disabled, totp_enabled, created_at, last_sign_in_at
    FROM merchant_users
    WHERE tenant_id = $1
      AND ($2::timestamptz IS NULL OR created_at >= $2) AND ($3::timestamptz IS NULL OR created_at < $3)
    ORDER BY created_at, id";

const AUDIT: &[(&str, Kind)] = &[
    ("id", Int8),
    ("at", Time),
    ("actor", Text),
    ("action", Text),
    ("target", Text),
    ("ip", Text),
    ("detail", Text),
];

const AUDIT_SQL: &str = "
    SELECT id, at, actor, action, target, ip, detail::text
    FROM audit_log
    WHERE tenant_id = $1
      AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3)
    ORDER BY id";

impl Dataset {
    pub const ALL: [Dataset; 5] = [
        Dataset::Campaigns,
        Dataset::Coupons,
        Dataset::Redemptions,
        Dataset::Users,
        Dataset::Audit,
    ];

    pub fn parse(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Campaigns => "campaigns",
            Dataset::Coupons => "coupons",
            Dataset::Redemptions => "redemptions",
            Dataset::Users => "users",
            Dataset::Audit => "audit",
        }
    }

    /// The header row: stable snake_case names, for scripts as much as for people.
    pub fn columns(self) -> impl Iterator<Item = &'static str> {
        self.spec().iter().map(|(name, _)| *name)
    }

    fn spec(self) -> &'static [(&'static str, Kind)] {
        match self {
            Dataset::Campaigns => CAMPAIGNS,
            Dataset::Coupons => COUPONS,
            Dataset::Redemptions => REDEMPTIONS,
            Dataset::Users => USERS,
            Dataset::Audit => AUDIT,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Dataset::Campaigns => CAMPAIGNS_SQL,
            Dataset::Coupons => COUPONS_SQL,
            Dataset::Redemptions => REDEMPTIONS_SQL,
            Dataset::Users => USERS_SQL,
            Dataset::Audit => AUDIT_SQL,
        }
    }
}

/// Rows being read. Call [`ExportRows::next`] until it gives `None`, then
/// [`ExportRows::finish`]. Dropped before that (the browser went away, a query failed),
/// the connection is taken out of the pool and closed, and its query cancelled: a
/// connection in the middle of a transaction must never serve another request.
pub struct ExportRows {
    client: Option<deadpool_postgres::Object>,
    rows: Option<Pin<Box<RowStream>>>,
    spec: &'static [(&'static str, Kind)],
}

impl ExportRows {
    pub async fn next(&mut self) -> Option<Result<Vec<Cell>, StoreError>> {
        let row = match self.rows.as_mut()?.next().await? {
            Ok(row) => row,
            Err(e) => return Some(Err(e.into())),
        };
        Some(decode(&row, self.spec))
    }

    /// Ends the read-only transaction and gives the connection back to the pool.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        self.rows = None;
        if let Some(client) = self.client.take() {
            if let Err(e) = client.batch_execute("COMMIT").await {
                discard(client);
                return Err(e.into());
            }
        }
        Ok(())
    }
}

impl Drop for ExportRows {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            discard(client);
        }
    }
}

/// Takes a connection out of the pool for good, cancelling whatever it is running (else
/// its connection task would read the rest of the rows only to throw them away).
fn discard(client: deadpool_postgres::Object) {
    let cancel = client.cancel_token();
    drop(deadpool_postgres::Object::take(client));
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = cancel.cancel_query(NoTls).await;
        });
    }
}

fn decode(row: &tokio_postgres::Row, spec: &[(&str, Kind)]) -> Result<Vec<Cell>, StoreError> {
    fn cell<T>(v: Option<T>, f: impl FnOnce(T) -> Cell) -> Cell {
        v.map_or(Cell::Empty, f)
    }
    spec.iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Text => cell(row.try_get::<_, Option<String>>(i)?, Cell::Text),
                Int8 => cell(row.try_get::<_, Option<i64>>(i)?, Cell::Int),
                Int4 => cell(row.try_get::<_, Option<i32>>(i)?, |n| Cell::Int(n.into())),
                Float => cell(row.try_get::<_, Option<f64>>(i)?, Cell::Float),
                Bool => cell(row.try_get::<_, Option<bool>>(i)?, Cell::Bool),
                Time => cell(row.try_get::<_, Option<DateTime<Utc>>>(i)?, Cell::Time),
                Id => cell(row.try_get::<_, Option<Uuid>>(i)?, Cell::Id),
            })
        })
        .collect()
}

/// Long enough for a slow link to fetch a big file; the pool's usual statement timeout
/// would cut a download off half way.
const BEGIN: &str =
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = '1h'";

impl Store {
    /// A tenant's rows of `dataset` within `range`, oldest first. `public_url` makes the
    /// campaigns' claim URLs.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, dataset = dataset.as_str()))]
    pub async fn export_rows(
        &self,
        tenant_id: Uuid,
        dataset: Dataset,
        range: ExportRange,
        public_url: &str,
    ) -> Result<ExportRows, StoreError> {
        // Built first, so an error below drops a connection that is mid-transaction
        // through ExportRows' Drop, never back into the pool.
        let mut export = ExportRows {
            client: Some(self.pool.get().await?),
            rows: None,
            spec: dataset.spec(),
        };
        if let Some(client) = &export.client {
            client.batch_execute(BEGIN).await?;
            let base = public_url.to_owned();
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant_id, &range.from, &range.until];
            if dataset == Dataset::Campaigns {
                params.push(&base);
            }
            export.rows = Some(Box::pin(client.query_raw(dataset.sql(), params).await?));
        }
        Ok(export)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_round_trip_and_name_their_columns() {
        for d in Dataset::ALL {
            assert_eq!(Dataset::parse(d.as_str()), Some(d));
            let columns: Vec<_> = d.columns().collect();
            assert!(columns.len() >= 5 && columns[0] == "id", "{d:?}");
            // SELECT lists as long as the header, so no column is read as another's type.
            // The top-level FROM starts a line; subqueries' stay inline.
            let select = d.sql().split("\n    FROM ").next().unwrap_or_default();
            let select = select.trim().trim_start_matches("SELECT");
            let mut depth = 0;
            let commas = select
                .chars()
                .filter(|c| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    *c == ',' && depth == 0
                })
                .count();
            assert_eq!(commas + 1, columns.len(), "{d:?}");
        }
        assert_eq!(Dataset::parse("secrets"), None);
    }
}
