//! The mail outbox as operators see it: per notice and kind of mail, how many went out,
//! how many wait for their time (reminders), how many are due or failing, and the latest
//! error. Recipients are merchants' people, so their addresses are never shown, not even
//! inside an SMTP error.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::{show_time, OpsConsole};
use crate::web::error::AppResult;
use crate::web::AppState;

/// The outbox lines shown (newest notices first).
const SHOWN: i64 = 200;

/// An SMTP error with every e-mail address in it replaced.
pub fn redact_addresses(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || "<>,;:()[]\"'".contains(c))
        .map(|word| {
            let (core, tail) = match word.char_indices().last() {
                Some((i, c)) if c.is_whitespace() || "<>,;:()[]\"'".contains(c) => {
                    (&word[..i], &word[i..])
                }
                _ => (word, ""),
            };
            if core.contains('@') {
                format!("[address]{tail}")
            } else {
                word.to_string()
            }
        })
        .collect()
}

/// `announce`, `reminder`, `incident`, `update-resolved` … in the page's language.
fn mail_kind_label(ops: &OpsConsole, kind: &str) -> String {
    let (base, status) = kind.split_once('-').unwrap_or((kind, ""));
    let label = ops.t(&format!("ops.mail.kind_{base}"));
    if status.is_empty() {
        label
    } else {
        format!("{label} ({})", ops.t(&format!("ops.status.{status}")))
    }
}

/// `GET /ops/mail`
pub async fn index(ops: OpsConsole, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let backlog = state.store.mail_backlog().await?;
    let lag = state.store.mail_lag_seconds().await?;
    let rows: Vec<Value> = state
        .store
        .mail_summary(SHOWN)
        .await?
        .into_iter()
        .map(|m| {
            json!({
                "notice_title": m.notice_title,
                "notice_kind": ops.t(&format!("ops.kind.{}", m.notice_kind)),
                "mail_kind": mail_kind_label(&ops, &m.mail_kind),
                "mail_kind_raw": m.mail_kind,
                "total": m.total,
                "sent": m.sent,
                "scheduled": m.scheduled,
                "due": m.due,
                "failing": m.failing,
                "next": m.next_send_after.map(show_time),
                "last_sent": m.last_sent_at.map(show_time),
                "last_error": m.last_error.as_deref().map(redact_addresses),
                "problem": m.failing > 0,
            })
        })
        .collect();
    ops.render(
        &state,
        "ops_mail",
        json!({
            "title": ops.t("ops.mail.title"),
            "backlog": backlog,
            "lag": format!("{lag:.0}"),
            "mailer": state.settings.mail.smtp_host.is_some(),
            "rows": rows,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::redact_addresses;

    #[test]
    fn addresses_in_smtp_errors_are_hidden() {
        assert_eq!(
            redact_addresses("550 5.1.1 <owner@shop.example>: Recipient address rejected"),
            "550 5.1.1 <[address]>: Recipient address rejected"
        );
        assert_eq!(
            redact_addresses("mailbox owner@shop.example unknown"),
            "mailbox [address] unknown"
        );
        assert_eq!(
            redact_addresses("connection refused (os error 111)"),
            "connection refused (os error 111)"
        );
    }
}
