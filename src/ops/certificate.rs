//! Erasure certificates: what a purge removed, signed with the installation's Ed25519 key,
//! as JSON (what `ecoupon certificate verify` checks, offline) and as a printable page.
//!
//! The JSON file is exactly the canonical rendering of the certificate: verify re-renders
//! what it parsed and compares bytes, so an edit that the parser would forgive (spacing,
//! key order) fails just like a changed value, whose signature fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::keys::{self, InstallationKey};
use crate::store::tenant_data::PurgeOutcome;

pub const KIND: &str = "ecoupon erasure certificate v1";

/// What the signature covers (its compact JSON, fields in this order).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub kind: String,
    pub certificate_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub purged_at: String,
    pub operator: String,
    pub installation: String,
    pub rows_removed: BTreeMap<String, u64>,
    pub total_rows_removed: u64,
    pub audit_entries_erased: u64,
    pub files_removed: u64,
    pub file_bytes_removed: i64,
    pub audit_log_seq: i64,
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    #[serde(flatten)]
    pub body: Body,
    pub signature: String,
}

impl Certificate {
    pub fn issue(
        tenant_id: uuid::Uuid,
        outcome: &PurgeOutcome,
        operator: &str,
        installation: &str,
        key: &InstallationKey,
    ) -> Certificate {
        let body = Body {
            kind: KIND.into(),
            certificate_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant_id.to_string(),
            tenant_name: outcome.tenant_name.clone(),
            purged_at: outcome
                .purged_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            operator: operator.into(),
            installation: installation.into(),
            rows_removed: outcome.rows.clone(),
            total_rows_removed: outcome.rows.values().sum(),
            audit_entries_erased: outcome.audit_entries_erased,
            files_removed: outcome.files_removed,
            file_bytes_removed: outcome.file_bytes_removed,
            audit_log_seq: outcome.audit_seq,
            public_key: keys::show_key(&key.public_key()),
        };
        let signature = keys::show_key(&key.sign(&signed_bytes(&body)));
        Certificate { body, signature }
    }

    /// The file's exact contents.
    pub fn render(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises") + "\n"
    }

    pub fn render_html(&self) -> anyhow::Result<String> {
        let mut hb = handlebars::Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_template_string("c", include_str!("../../templates/erasure_certificate.hbs"))?;
        let rows: Vec<_> = self
            .body
            .rows_removed
            .iter()
            .map(|(table, rows)| serde_json::json!({"table": table, "rows": rows}))
            .collect();
        let mut data = serde_json::to_value(&self.body)?;
        data["rows"] = rows.into();
        data["signature"] = self.signature.clone().into();
        Ok(hb.render("c", &data)?)
    }

    /// Writes `<stem>.json` and `<stem>.html`; returns both paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let stem = format!(
            "erasure-certificate-{}-{}",
            self.body.tenant_id,
            &self.body.purged_at[..10]
        );
        let json = dir.join(format!("{stem}.json"));
        let html = dir.join(format!("{stem}.html"));
        std::fs::write(&json, self.render())
            .map_err(|e| anyhow::anyhow!("{}: {e}", json.display()))?;
        std::fs::write(&html, self.render_html()?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", html.display()))?;
        Ok((json, html))
    }
}

fn signed_bytes(body: &Body) -> Vec<u8> {
    serde_json::to_vec(body).expect("plain data serialises")
}

/// Checks a certificate file offline; `expected_key` pins the signer.
pub fn verify(text: &str, expected_key: Option<&str>) -> Result<Certificate, String> {
    let certificate: Certificate = serde_json::from_str(text)
        .map_err(|e| format!("not an ecoupon erasure certificate: {e}"))?;
    if certificate.body.kind != KIND {
        return Err(format!(
            "unknown certificate kind {:?}",
            certificate.body.kind
        ));
    }
    if certificate.render() != text {
        return Err("the file is not byte for byte as issued (it was edited)".into());
    }
    let public_key = keys::parse_key(&certificate.body.public_key)?;
    if let Some(expected) = expected_key {
        if keys::parse_key(expected)? != public_key {
            return Err(format!(
                "signed by key {}, not the expected {expected}",
                certificate.body.public_key
            ));
        }
    }
    let signature = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        certificate.signature.trim(),
    )
    .map_err(|_| "the signature is not base64".to_string())?;
    if !keys::verify(&public_key, &signed_bytes(&certificate.body), &signature) {
        return Err(
            "the signature does not match the contents (the certificate was altered)".into(),
        );
    }
    Ok(certificate)
}
