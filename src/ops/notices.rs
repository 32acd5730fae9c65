//! Maintenance windows and incidents: posted from the CLI, mailed to every merchant's
//! owners and admins through the outbox, shown as banners and on `/status`, and, during a
//! window, answered with 503 and Retry-After (see `web::middleware::notices`).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use uuid::Uuid;

use crate::store::notices::{Mail, NewNotice, Notice, NoticeUpdate};
use crate::store::Store;

/// The sheet promises a week's notice (row 56); shorter needs `--emergency`.
pub const MIN_NOTICE: TimeDelta = TimeDelta::days(7);
/// A reminder this long before a window starts.
pub const REMINDER_BEFORE: TimeDelta = TimeDelta::hours(24);
/// How far back `/status` shows history.
pub const HISTORY: TimeDelta = TimeDelta::days(90);

pub const INCIDENT_STATES: &[&str] = &["investigating", "identified", "monitoring", "resolved"];

fn jst(t: DateTime<Utc>) -> String {
    let offset = FixedOffset::east_opt(9 * 3600).expect("constant offset");
    t.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M JST")
        .to_string()
}

fn window(n: &Notice) -> String {
    match n.ends_at {
        Some(end) => format!("{} – {}", jst(n.starts_at), jst(end)),
        None => format!("from {}", jst(n.starts_at)),
    }
}

const SIGNATURE: &str = "\n--\necoupon operations\nこのメールは ecoupon の加盟店管理者の皆様にお送りしています。\nYou receive this as an owner or admin of a merchant on ecoupon.\n";

/// Why a maintenance window cannot be scheduled as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowProblem {
    EndsBeforeStart,
    NotInFuture,
    /// Less than [`MIN_NOTICE`] ahead without the emergency flag.
    ShortNotice {
        hours: i64,
    },
}

/// The scheduling rules, shared by the CLI and the operator console: a window ends after
/// it starts, starts in the future, and is announced at least 7 days ahead unless it is
/// an emergency (which the mail and the banners then say).
pub fn check_window(
    now: DateTime<Utc>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    emergency: bool,
) -> Result<(), WindowProblem> {
    if ends_at <= starts_at {
        return Err(WindowProblem::EndsBeforeStart);
    }
    if starts_at <= now {
        return Err(WindowProblem::NotInFuture);
    }
    let lead = starts_at - now;
    if lead < MIN_NOTICE && !emergency {
        return Err(WindowProblem::ShortNotice {
            hours: lead.num_hours(),
        });
    }
    Ok(())
}

/// The statuses a notice may move to: an incident through its states until resolved, a
/// window only to cancelled while it has not ended; nothing after resolved or cancelled.
pub fn next_statuses(n: &Notice, now: DateTime<Utc>) -> &'static [&'static str] {
    match (n.kind.as_str(), n.status.as_str()) {
        (_, "resolved" | "cancelled") => &[],
        ("maintenance", _) if n.ends_at.is_some_and(|end| end <= now) => &[],
        ("maintenance", _) => &["cancelled"],
        _ => &INCIDENT_STATES[1..],
    }
}

/// Writes a notice step to the audit log, as `actor` (an operator's e-mail, or the
/// CLI user) from `ip` ("" from the CLI).
pub async fn audit(
    store: &Store,
    actor: &str,
    ip: &str,
    action: &str,
    n: &Notice,
) -> anyhow::Result<()> {
    store
        .audit(crate::store::AuditEntry {
            tenant_id: None,
            actor_id: None,
            actor,
            action,
            target: &n.id.to_string(),
            ip,
            detail: serde_json::json!({"title": n.title, "status": n.status, "starts_at": n.starts_at, "ends_at": n.ends_at, "emergency": n.emergency}),
        })
        .await?;
    Ok(())
}

/// Schedules a maintenance window and queues the announcement and the reminder.
#[allow(clippy::too_many_arguments)]
pub async fn schedule_maintenance(
    store: &Store,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    title: &str,
    body: &str,
    emergency: bool,
    operator: &str,
    status_url: &str,
) -> anyhow::Result<Notice> {
    let now = store.database_now().await?;
    match check_window(now, starts_at, ends_at, emergency) {
        Ok(()) => {}
        Err(WindowProblem::EndsBeforeStart) => {
            anyhow::bail!("--end: the window must end after it starts")
        }
        Err(WindowProblem::NotInFuture) => {
            anyhow::bail!("--start: {} is not in the future", starts_at.to_rfc3339())
        }
        Err(WindowProblem::ShortNotice { hours }) => anyhow::bail!(
            "--start: only {hours} hours' notice; merchants are promised 7 days (use --emergency for a shorter notice, and say why in --body)"
        ),
    }
    let recipients = store.notice_recipients().await?;
    let new = NewNotice {
        kind: "maintenance",
        title,
        body,
        starts_at,
        ends_at: Some(ends_at),
        announce_from: now,
        emergency,
        status: "scheduled",
        created_by: operator,
    };
    let emergency_line = if emergency {
        "【緊急】7日前までのお知らせができない緊急メンテナンスです。\nEMERGENCY: this maintenance is announced less than 7 days ahead.\n\n"
    } else {
        ""
    };
    let prefix = if emergency {
        "Emergency maintenance"
    } else {
        "Scheduled maintenance"
    };
    let when = format!("{} – {}", jst(starts_at), jst(ends_at));
    let text = format!(
        "{emergency_line}メンテナンスのお知らせ / Maintenance notice\n\n{title}\n\n日時 / When: {when}\n({} – {} UTC)\n\n{body}\n\nこの間、クーポンの受け取り・利用と API はご利用いただけません。\nDuring the window coupons cannot be claimed or used and the API answers 503.\n\n状況 / Status: {status_url}\n{SIGNATURE}",
        starts_at.format("%Y-%m-%d %H:%M"),
        ends_at.format("%H:%M"),
    );
    let reminder_at = starts_at - REMINDER_BEFORE;
    let notice = store
        .post_notice(&new, |_| {
            let mut mails = Vec::new();
            for r in &recipients {
                mails.push(Mail {
                    tenant_id: Some(r.tenant_id),
                    kind: "announce".into(),
                    recipient: r.email.clone(),
                    subject: format!("[ecoupon] {prefix}: {title} ({when})"),
                    body: text.clone(),
                    send_after: now,
                });
                if reminder_at > now + TimeDelta::hours(1) {
                    mails.push(Mail {
                        tenant_id: Some(r.tenant_id),
                        kind: "reminder".into(),
                        recipient: r.email.clone(),
                        subject: format!(
                            "[ecoupon] Reminder: maintenance tomorrow: {title} ({when})"
                        ),
                        body: format!("リマインダー / Reminder\n\n{text}"),
                        send_after: reminder_at,
                    });
                }
            }
            mails
        })
        .await?;
    Ok(notice)
}

/// Posts an incident (it starts now) and mails it at once.
pub async fn post_incident(
    store: &Store,
    title: &str,
    body: &str,
    operator: &str,
    status_url: &str,
) -> anyhow::Result<Notice> {
    let now = store.database_now().await?;
    let recipients = store.notice_recipients().await?;
    let new = NewNotice {
        kind: "incident",
        title,
        body,
        starts_at: now,
        ends_at: None,
        announce_from: now,
        emergency: false,
        status: "investigating",
        created_by: operator,
    };
    let text = format!(
        "障害のお知らせ / Incident\n\n{title}\n\n発生 / Since: {}\n\n{body}\n\n状況 / Status: {status_url}\n{SIGNATURE}",
        jst(now)
    );
    Ok(store
        .post_notice(&new, |_| {
            recipients
                .iter()
                .map(|r| Mail {
                    tenant_id: Some(r.tenant_id),
                    kind: "incident".into(),
                    recipient: r.email.clone(),
                    subject: format!("[ecoupon] Incident: {title}"),
                    body: text.clone(),
                    send_after: now,
                })
                .collect()
        })
        .await?)
}

/// Moves a notice on: an incident's next state (resolved ends it), or `cancelled` for a
/// window. Mails the change.
pub async fn update(
    store: &Store,
    id: Uuid,
    status: &str,
    body: &str,
    status_url: &str,
) -> anyhow::Result<Notice> {
    if status != "cancelled" && !INCIDENT_STATES.contains(&status) {
        anyhow::bail!(
            "--status: expected one of {}, cancelled",
            INCIDENT_STATES.join(", ")
        );
    }
    let now = store.database_now().await?;
    let current = store
        .notice(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no notice {id}"))?;
    if !next_statuses(&current, now).contains(&status) {
        let allowed = next_statuses(&current, now);
        anyhow::bail!(
            "--status: this {} is {}; it can move to {}",
            current.kind,
            current.status,
            if allowed.is_empty() {
                "nothing any more".to_string()
            } else {
                allowed.join(", ")
            }
        );
    }
    let recipients = store.notice_recipients().await?;
    let updated = store
        .update_notice(id, status, body, |n| {
            let subject = match status {
                "resolved" => format!("[ecoupon] Resolved: {}", n.title),
                "cancelled" => format!("[ecoupon] Cancelled: maintenance {}", n.title),
                other => format!("[ecoupon] Update ({other}): {}", n.title),
            };
            let text = format!(
                "{}\n\n{} ({})\n\n{body}\n\n状況 / Status: {status_url}\n{SIGNATURE}",
                n.title,
                window(n),
                status
            );
            recipients
                .iter()
                .map(|r| Mail {
                    tenant_id: Some(r.tenant_id),
                    kind: format!("update-{status}"),
                    recipient: r.email.clone(),
                    subject: subject.clone(),
                    body: text.clone(),
                    send_after: now,
                })
                .collect()
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no notice {id}"))?;
    Ok(updated)
}

/// What pages and the maintenance gate need to know, refreshed from the database every
/// few seconds by each node (so a window starts on every node within that time).
#[derive(Debug, Clone, Default)]
pub struct BoardView {
    pub notices: Vec<Notice>,
    pub updates: Vec<NoticeUpdate>,
    pub loaded_at: Option<DateTime<Utc>>,
}

impl BoardView {
    /// The maintenance window in force at `now`, if any.
    pub fn maintenance_at(&self, now: DateTime<Utc>) -> Option<&Notice> {
        self.notices.iter().find(|n| {
            n.kind == "maintenance"
                && n.status == "scheduled"
                && n.starts_at <= now
                && n.ends_at.is_some_and(|end| now < end)
        })
    }

    /// Notices to show as a banner at `now`: windows from their announcement to their end,
    /// incidents until resolved.
    pub fn banners_at(&self, now: DateTime<Utc>) -> Vec<&Notice> {
        self.notices
            .iter()
            .filter(|n| match n.kind.as_str() {
                "maintenance" => {
                    n.status == "scheduled"
                        && n.announce_from <= now
                        && n.ends_at.is_some_and(|end| now < end)
                }
                _ => n.status != "resolved",
            })
            .collect()
    }
}

/// Each node's copy of the current notices.
#[derive(Clone, Default)]
pub struct NoticeBoard {
    view: Arc<RwLock<Arc<BoardView>>>,
}

impl NoticeBoard {
    pub fn view(&self) -> Arc<BoardView> {
        self.view.read().expect("never poisoned").clone()
    }

    pub async fn refresh(&self, store: &Store) -> anyhow::Result<()> {
        let now = store.database_now().await?;
        let notices = store.notices_since(now - HISTORY).await?;
        let ids: Vec<Uuid> = notices.iter().map(|n| n.id).collect();
        let updates = store.notice_updates(&ids).await?;
        *self.view.write().expect("never poisoned") = Arc::new(BoardView {
            notices,
            updates,
            loaded_at: Some(now),
        });
        Ok(())
    }
}

/// How often each node re-reads the notices.
pub const BOARD_REFRESH: Duration = Duration::from_secs(2);

/// Formats a time for pages and mail (Japan time, as merchants read it).
pub fn show_time(t: DateTime<Utc>) -> String {
    jst(t)
}
