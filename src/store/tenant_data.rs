//! Everything of one tenant, found from the catalogue rather than a list in code, so a
//! table added later is exported and purged without anyone remembering to: every table
//! with a `tenant_id` column, the `tenants` row itself, and tables without `tenant_id` that
//! hang off those by a foreign key (campaign leases, use tokens). Table and column names
//! come from the catalogue and are quoted; the tenant id is always a bound parameter,
//! except inside COPY, which takes none: there it is a formatted `Uuid`, which cannot
//! carry anything but hex and dashes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use uuid::Uuid;

use super::backups::ident;
use super::{Store, StoreError, PURGE_ACTION};

/// Columns never handed out in an export: credentials and per-coupon keys, which are
/// useless outside this installation and dangerous in a file. Image bytes go out as files.
const WITHHELD: &[&str] = &[
    "password_hash",
    "totp_secret",
    "key_hash",
    "token_hash",
    "id_hash",
    "secret",
    "csrf",
    "salt",
    "bytes",
];

/// Tables that are a tenant's but are handled apart from the generic delete.
const AUDIT_TABLE: &str = "audit_log";

#[derive(Debug, Clone)]
pub struct TenantTable {
    pub name: String,
    /// Exported columns, in table order.
    pub columns: Vec<String>,
    /// SQL condition selecting the tenant's rows, with the tenant id as `$1`.
    predicate: String,
}

impl TenantTable {
    fn with_id(&self, tenant: Uuid) -> String {
        self.predicate.replace("$1", &format!("'{tenant}'::uuid"))
    }
}

#[derive(Debug, Clone)]
pub struct PurgeOutcome {
    pub tenant_name: String,
    pub purged_at: DateTime<Utc>,
    pub rows: BTreeMap<String, u64>,
    pub audit_entries_erased: u64,
    pub files_removed: u64,
    pub file_bytes_removed: i64,
    /// The chain position of the purge's own audit entry.
    pub audit_seq: i64,
}

struct ForeignKey {
    child: String,
    parent: String,
    child_cols: Vec<String>,
    parent_cols: Vec<String>,
}

const FOREIGN_KEYS: &str = "
    SELECT cl.relname::text, pl.relname::text,
           array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
           array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
    FROM pg_constraint c
    JOIN pg_class cl ON cl.oid = c.conrelid
    JOIN pg_class pl ON pl.oid = c.confrelid
    JOIN pg_namespace n ON n.oid = cl.relnamespace
    WHERE c.contype = 'f' AND n.nspname = 'public'";

const TENANT_ID_TABLES: &str = "
    SELECT c.table_name::text FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'
      AND t.table_type = 'BASE TABLE'
    ORDER BY 1";

const COLUMNS: &str = "SELECT column_name::text FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position";

/// The tenant's tables in delete order: children before the tables they reference, the
/// `tenants` row last.
async fn discover(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<Vec<TenantTable>, StoreError> {
    let owned: Vec<String> = client
        .query(TENANT_ID_TABLES, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let keys: Vec<ForeignKey> = client
        .query(FOREIGN_KEYS, &[])
        .await?
        .iter()
        .map(|r| ForeignKey {
            child: r.get(0),
            parent: r.get(1),
            child_cols: r.get(2),
            parent_cols: r.get(3),
        })
        .collect();
    let mut predicates: BTreeMap<String, String> = owned
        .iter()
        .map(|t| (t.clone(), "tenant_id = $1".to_string()))
        .collect();
    predicates.insert("tenants".into(), "id = $1".into());
    // Tables without tenant_id that hang off a tenant table (one level is all the schema
    // has; a deeper one would need the same step again).
    for key in &keys {
        if predicates.contains_key(&key.child) {
            continue;
        }
        let Some(parent) = predicates.get(&key.parent).cloned() else {
            continue;
        };
        let cols = |c: &[String]| c.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
        predicates.insert(
            key.child.clone(),
            format!(
                "({}) IN (SELECT {} FROM public.{} WHERE {parent})",
                cols(&key.child_cols),
                cols(&key.parent_cols),
                ident(&key.parent)
            ),
        );
    }
    // Kahn's algorithm over "child references parent": a table goes once nothing left
    // references it. Any cycle (none today) falls back to name order.
    let mut left: BTreeSet<String> = predicates.keys().cloned().collect();
    left.remove("tenants");
    let mut order = Vec::new();
    while !left.is_empty() {
        let free: Vec<String> = left
            .iter()
            .filter(|t| {
                !keys
                    .iter()
                    .any(|k| &k.parent == *t && k.child != k.parent && left.contains(&k.child))
            })
            .cloned()
            .collect();
        let next = free
            .first()
            .cloned()
            .unwrap_or_else(|| left.iter().next().cloned().expect("non-empty"));
        left.remove(&next);
        order.push(next);
    }
    order.push("tenants".into());
    let mut tables = Vec::new();
    for name in order {
        let columns: Vec<String> = client
            .query(COLUMNS, &[&name])
            .await?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|c| !WITHHELD.contains(&c.as_str()))
            .collect();
        let predicate = predicates
            .remove(&name)
            .expect("every ordered table has one");
        tables.push(TenantTable {
            name,
            columns,
            predicate,
        });
    }
    Ok(tables)
}

impl Store {
    /// The tenant's name, if it exists.
    pub async fn tenant_name(&self, tenant: Uuid) -> Result<Option<String>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt("SELECT name FROM tenants WHERE id = $1", &[&tenant])
            .await?
            .map(|r| r.get(0)))
    }

    /// Every table holding rows of a tenant, in delete order.
    pub async fn tenant_tables(&self) -> Result<Vec<TenantTable>, StoreError> {
        let client = self.pool.get().await?;
        discover(&client).await
    }

    /// How many rows of the tenant `table` holds.
    pub async fn tenant_rows(&self, table: &TenantTable, tenant: Uuid) -> Result<i64, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT count(*) FROM public.{} WHERE {}",
            ident(&table.name),
            table.predicate
        );
        Ok(client.query_one(&sql, &[&tenant]).await?.get(0))
    }

    /// Streams the tenant's rows of `table` as CSV with a header (COPY), chunk by chunk.
    pub async fn copy_tenant_csv(
        &self,
        table: &TenantTable,
        tenant: Uuid,
        mut write: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
        let sql = format!(
            "COPY (SELECT {} FROM public.{} WHERE {} ORDER BY 1) TO STDOUT WITH (FORMAT csv, HEADER)",
            columns.join(", "),
            ident(&table.name),
            table.with_id(tenant)
        );
        let stream = client.copy_out(&sql).await?;
        futures_util::pin_mut!(stream);
        while let Some(chunk) = stream.next().await {
            write(&chunk?).map_err(|e| StoreError::Conflict(format!("writing the export: {e}")))?;
        }
        Ok(())
    }

    /// The tenant's uploaded images, one at a time: (id, content type, bytes).
    pub async fn tenant_images(
        &self,
        tenant: Uuid,
        mut visit: impl FnMut(Uuid, &str, &[u8]) -> std::io::Result<()>,
    ) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query_raw(
                "SELECT id, content_type, bytes FROM images WHERE tenant_id = $1 ORDER BY id",
                [&tenant],
            )
            .await?;
        futures_util::pin_mut!(rows);
        let mut n = 0;
        while let Some(row) = rows.next().await {
            let row = row?;
            visit(row.get(0), row.get(1), row.get(2))
                .map_err(|e| StoreError::Conflict(format!("writing the export: {e}")))?;
            n += 1;
        }
        Ok(n)
    }

    /// Deletes every row of the tenant in one transaction: its audit entries are erased
    /// (the chain keeps their hashes), every other table's rows deleted children first,
    /// then it checks that no table with a `tenant_id` column keeps a row and records the
    /// purge in the audit log. Nothing is deleted unless all of it is.
    pub async fn purge_tenant(
        &self,
        tenant: Uuid,
        operator: &str,
    ) -> Result<Option<PurgeOutcome>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // A big tenant may take longer than a request's statement timeout.
        tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
        let Some(row) = tx
            .query_opt(
                "SELECT name FROM tenants WHERE id = $1 FOR UPDATE",
                &[&tenant],
            )
            .await?
        else {
            return Ok(None);
        };
        let tenant_name: String = row.get(0);
        let tables = discover(&tx).await?;
        tx.execute(
            "SELECT set_config('ecoupon.audit_erasure', $1, true)",
            &[&tenant.to_string()],
        )
        .await?;
        let erased = tx
            .execute(
                "UPDATE audit_log SET tenant_id = NULL, actor_id = NULL, actor = '', target = '',
                        ip = '', detail = '{}', salt = NULL, erased_at = now()
                 WHERE tenant_id = $1",
                &[&tenant],
            )
            .await?;
        let files = tx
            .query_one(
                "SELECT count(*), coalesce(sum(octet_length(bytes)), 0)::bigint FROM images
                 WHERE tenant_id = $1",
                &[&tenant],
            )
            .await?;
        let mut rows = BTreeMap::new();
        for table in tables.iter().filter(|t| t.name != AUDIT_TABLE) {
            let sql = format!(
                "DELETE FROM public.{} WHERE {}",
                ident(&table.name),
                table.predicate
            );
            rows.insert(table.name.clone(), tx.execute(&sql, &[&tenant]).await?);
        }
        for table in &tables {
            let sql = format!(
                "SELECT count(*) FROM public.{} WHERE {}",
                ident(&table.name),
                table.predicate
            );
            let left: i64 = tx.query_one(&sql, &[&tenant]).await?.get(0);
            if left != 0 {
                return Err(StoreError::Conflict(format!(
                    "{} still holds {left} rows of the tenant; nothing was purged",
                    table.name
                )));
            }
        }
        let detail = serde_json::json!({
            "rows": rows,
            "audit_entries_erased": erased,
            "files_removed": files.get::<_, i64>(0),
        });
        let done = tx
            .query_one(
                "INSERT INTO audit_log (tenant_id, actor, action, target, detail)
                 VALUES (NULL, $1, $2, $3, $4) RETURNING seq, now()",
                &[&operator, &PURGE_ACTION, &tenant.to_string(), &detail],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(PurgeOutcome {
            tenant_name,
            purged_at: done.get(1),
            rows,
            audit_entries_erased: erased,
            files_removed: files.get::<_, i64>(0) as u64,
            file_bytes_removed: files.get(1),
            audit_seq: done.get(0),
        }))
    }
}
