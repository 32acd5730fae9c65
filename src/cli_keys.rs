//! `ecoupon key create|list|revoke`: API keys from the command line. A key is printed once,
//! at creation; afterwards only its visible prefix exists anywhere.

use clap::Subcommand;
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::api_key::{parse_key_name, parse_scopes, NewApiKey};
use crate::startup::open_database;
use crate::store::{run_migrations, PrefixRevoke, Store};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key for a tenant and print it (once), with its id and visible prefix.
    Create {
        /// The tenant id (printed by `ecoupon tenant create`).
        #[arg(long)]
        tenant: String,
        /// A scope the key gets; repeat for more. One of campaigns:read, campaigns:write,
        /// claims:write, redemptions:write, export:read, keys:admin.
        #[arg(long = "scope", required = true, value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A label to tell keys apart.
        #[arg(long, default_value = "")]
        name: String,
        /// Print JSON instead of `name: value` lines.
        #[arg(long)]
        json: bool,
    },
    /// List keys (all, or one tenant's): prefix, scopes, created, last used, revoked.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke the key with this visible prefix (eck_XXXXXXXX); it stops working within a
    /// second on every node.
    Revoke { prefix: String },
}

fn tenant_id(raw: &str) -> anyhow::Result<Uuid> {
    raw.trim().parse().map_err(|_| {
        anyhow::anyhow!("--tenant: {raw:?} is not a tenant id (the tenant_id printed by `ecoupon tenant create`)")
    })
}

pub async fn run(settings: &Settings, command: KeyCommand) -> anyhow::Result<()> {
    // Every argument is checked before the database is opened.
    match command {
        KeyCommand::Create {
            tenant,
            scopes,
            name,
            json,
        } => {
            let tenant_id = tenant_id(&tenant)?;
            let scopes = parse_scopes(&scopes).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let name = parse_key_name(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            with_store(settings, |store| async move {
                let key = NewApiKey::generate();
                let id = store
                    .insert_api_key(tenant_id, &name, &key.prefix, &key.hash, &scopes)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("--tenant: no tenant has id {tenant_id}"))?;
                if json {
                    let out = serde_json::json!({
                        "id": id, "tenant_id": tenant_id, "prefix": key.prefix,
                        "scopes": scopes, "api_key": key.plaintext,
                    });
                    println!("{out}");
                } else {
                    println!("id: {id}");
                    println!("tenant_id: {tenant_id}");
                    println!("prefix: {}", key.prefix);
                    println!("scopes: {}", scopes.join(" "));
                    println!("api_key: {}", key.plaintext);
                    eprintln!("The key is shown only now; store it safely.");
                }
                Ok(())
            })
            .await
        }
        KeyCommand::List { tenant, json } => {
            let tenant_id = tenant.as_deref().map(tenant_id).transpose()?;
            with_store(settings, |store| async move {
                let keys = store.list_api_keys(tenant_id).await?;
                if json {
                    println!("{}", serde_json::to_string(&keys)?);
                    return Ok(());
                }
                let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .unwrap_or_else(|| "-".into())
                };
                println!("prefix\ttenant_id\tscopes\tcreated\tlast_used\trevoked");
                for k in keys {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        k.prefix,
                        k.tenant_id,
                        k.scopes.join(","),
                        time(Some(k.created_at)),
                        time(k.last_used_at),
                        time(k.revoked_at)
                    );
                }
                Ok(())
            })
            .await
        }
        KeyCommand::Revoke { prefix } => {
            let prefix = prefix.trim().to_string();
            if prefix.is_empty() {
                anyhow::bail!("give the key's prefix, e.g. eck_Ab3dE6gH (see `ecoupon key list`)");
            }
            with_store(settings, |store| async move {
                match store.revoke_api_key_by_prefix(&prefix).await? {
                    PrefixRevoke::Revoked(id) => {
                        println!("revoked: {prefix} (id {id})");
                        Ok(())
                    }
                    PrefixRevoke::AlreadyRevoked(id) => {
                        println!("already revoked: {prefix} (id {id})");
                        Ok(())
                    }
                    PrefixRevoke::NotFound => anyhow::bail!("no API key has prefix {prefix:?}"),
                }
            })
            .await
        }
    }
}

/// Opens the database (running pending migrations, as `tenant create` does) for one
/// command, and stops a private cluster started for it.
async fn with_store<F, Fut>(settings: &Settings, work: F) -> anyhow::Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (store, cluster) = open_database(settings).await?;
    let result = async {
        run_migrations(&store).await?;
        work(store).await
    }
    .await;
    if let Some(cluster) = cluster {
        if cluster.started_here() {
            cluster.stop().await?;
        }
    }
    result
}
