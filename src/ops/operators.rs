//! Operator accounts: requested with a generated password (shown once), approved by a
//! different active operator who proves it with their password, disabled at once. Every
//! step is in the audit log. The very first operator is created active with `--bootstrap`,
//! which works only while there is none.

use crate::domain::tenant::{hash_password, verify_password, Email, GeneratedPassword};
use crate::store::operators::Operator;
use crate::store::{AuditEntry, Store};

pub struct Requested {
    pub email: String,
    pub password: GeneratedPassword,
    pub active: bool,
}

async fn audit(store: &Store, actor: &str, action: &str, target: &str) -> anyhow::Result<()> {
    store
        .audit(AuditEntry {
            tenant_id: None,
            actor_id: None,
            actor,
            action,
            target,
            ip: "",
            detail: serde_json::json!({}),
        })
        .await?;
    Ok(())
}

pub async fn request(
    store: &Store,
    email: &str,
    requested_by: &str,
    bootstrap: bool,
) -> anyhow::Result<Requested> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("EMAIL: {e}"))?;
    let password = GeneratedPassword::generate();
    let plain = password.expose().to_string();
    // Argon2 takes tens of milliseconds of CPU.
    let hash = tokio::task::spawn_blocking(move || hash_password(&plain)).await?;
    let id = store
        .insert_operator(email.as_str(), &hash, requested_by, bootstrap)
        .await?;
    if id.is_none() {
        if bootstrap {
            anyhow::bail!("--bootstrap: operators exist already; ask one of them to approve a request instead");
        }
        anyhow::bail!("EMAIL: {} is already an operator", email.as_str());
    }
    let action = if bootstrap {
        "operator.bootstrap"
    } else {
        "operator.request"
    };
    audit(store, requested_by, action, email.as_str()).await?;
    Ok(Requested {
        email: email.as_str().to_string(),
        password,
        active: bootstrap,
    })
}

/// The approver, after checking they are active and that `password` is theirs.
async fn authenticate(store: &Store, email: &str, password: &str) -> anyhow::Result<Operator> {
    let refused =
        || anyhow::anyhow!("--by: {email} is not an active operator, or the password is wrong");
    let Some(op) = store.operator_by_email(email.trim()).await? else {
        return Err(refused());
    };
    let (plain, hash) = (password.to_string(), op.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&plain, &hash)).await?;
    if !ok || op.status != "active" {
        return Err(refused());
    }
    Ok(op)
}

pub async fn approve(store: &Store, email: &str, by: &str, password: &str) -> anyhow::Result<()> {
    let approver = authenticate(store, by, password).await?;
    let target = store
        .operator_by_email(email.trim())
        .await?
        .ok_or_else(|| anyhow::anyhow!("EMAIL: there is no operator {email}"))?;
    if target.id == approver.id {
        anyhow::bail!(
            "--by: an operator cannot approve themselves; a different active operator must"
        );
    }
    if !store.approve_operator(target.id, approver.id).await? {
        anyhow::bail!("EMAIL: {} is {}, not pending", target.email, target.status);
    }
    audit(store, &approver.email, "operator.approve", &target.email).await
}

pub async fn disable(store: &Store, email: &str, by: &str, password: &str) -> anyhow::Result<()> {
    let actor = authenticate(store, by, password).await?;
    let target = store
        .operator_by_email(email.trim())
        .await?
        .ok_or_else(|| anyhow::anyhow!("EMAIL: there is no operator {email}"))?;
    if !store.disable_operator(target.id).await? {
        anyhow::bail!("EMAIL: {} is disabled already", target.email);
    }
    audit(store, &actor.email, "operator.disable", &target.email).await
}

/// Removes an operator's second factor (a lost or replaced phone) and ends their sessions.
/// Another active operator does it: whoever holds only the lost account's password must
/// not be able to.
pub async fn reset_two_factor(
    store: &Store,
    email: &str,
    by: &str,
    password: &str,
) -> anyhow::Result<()> {
    let actor = authenticate(store, by, password).await?;
    let target = store
        .operator_by_email(email.trim())
        .await?
        .ok_or_else(|| anyhow::anyhow!("EMAIL: there is no operator {email}"))?;
    if target.id == actor.id {
        anyhow::bail!("--by: an operator cannot reset their own second factor; a different active operator must");
    }
    if !target.totp_enabled {
        anyhow::bail!("EMAIL: {} has no second factor to reset", target.email);
    }
    store.reset_operator_totp(target.id).await?;
    audit(store, &actor.email, "operator.mfa_reset", &target.email).await
}
