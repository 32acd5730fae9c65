//! Maintenance and incident notices, their history, and the e-mail outbox they fill.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Notice {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub announce_from: DateTime<Utc>,
    pub emergency: bool,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NoticeUpdate {
    pub notice_id: Uuid,
    pub at: DateTime<Utc>,
    pub status: String,
    pub body: String,
}

/// A new notice and the mail to queue with it, written in one transaction.
pub struct NewNotice<'a> {
    pub kind: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub announce_from: DateTime<Utc>,
    pub emergency: bool,
    pub status: &'a str,
    pub created_by: &'a str,
}

/// One message for the outbox.
pub struct Mail {
    pub tenant_id: Option<Uuid>,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub send_after: DateTime<Utc>,
}

/// A merchant's owner or admin: who notices are mailed to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub tenant_id: Uuid,
    pub email: String,
}

/// A claimed outbox row, to send now.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i32,
}

const NOTICE_COLUMNS: &str = "id, kind, title, body, starts_at, ends_at, announce_from, emergency,
    status, created_at";

fn notice(r: &tokio_postgres::Row) -> Notice {
    Notice {
        id: r.get(0),
        kind: r.get(1),
        title: r.get(2),
        body: r.get(3),
        starts_at: r.get(4),
        ends_at: r.get(5),
        announce_from: r.get(6),
        emergency: r.get(7),
        status: r.get(8),
        created_at: r.get(9),
    }
}

async fn enqueue(
    tx: &deadpool_postgres::Transaction<'_>,
    notice_id: Uuid,
    mails: &[Mail],
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare(
            "INSERT INTO mail_outbox (tenant_id, notice_id, kind, recipient, subject, body,
                                      send_after, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (notice_id, kind, recipient) DO NOTHING",
        )
        .await?;
    for m in mails {
        tx.execute(
            &stmt,
            &[
                &m.tenant_id,
                &notice_id,
                &m.kind,
                &m.recipient,
                &m.subject,
                &m.body,
                &m.send_after,
            ],
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Owners and admins of every merchant, active accounts only.
    pub async fn notice_recipients(&self) -> Result<Vec<Recipient>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT tenant_id, email FROM merchant_users
                 WHERE role IN ('owner', 'admin') AND NOT disabled ORDER BY tenant_id, email",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Recipient {
                tenant_id: r.get(0),
                email: r.get(1),
            })
            .collect())
    }

    /// Stores a notice with its first history line and its mail, all or nothing.
    pub async fn post_notice(
        &self,
        n: &NewNotice<'_>,
        mails: impl FnOnce(Uuid) -> Vec<Mail>,
    ) -> Result<Notice, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let id = Uuid::new_v4();
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO notices (id, kind, title, body, starts_at, ends_at, announce_from,
                                          emergency, status, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     RETURNING {NOTICE_COLUMNS}"
                ),
                &[
                    &id,
                    &n.kind,
                    &n.title,
                    &n.body,
                    &n.starts_at,
                    &n.ends_at,
                    &n.announce_from,
                    &n.emergency,
                    &n.status,
                    &n.created_by,
                ],
            )
            .await?;
        tx.execute(
            "INSERT INTO notice_updates (notice_id, status, body) VALUES ($1, $2, $3)",
            &[&id, &n.status, &n.body],
        )
        .await?;
        enqueue(&tx, id, &mails(id)).await?;
        tx.commit().await?;
        Ok(notice(&row))
    }

    /// Changes a notice's status (resolve an incident, cancel a window), records it in the
    /// history and queues mail; `None` if there is no such notice.
    pub async fn update_notice(
        &self,
        id: Uuid,
        status: &str,
        body: &str,
        mails: impl FnOnce(&Notice) -> Vec<Mail>,
    ) -> Result<Option<Notice>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                &format!(
                    "UPDATE notices SET status = $2,
                            ends_at = CASE WHEN $2 = 'resolved' THEN now() ELSE ends_at END
                     WHERE id = $1 RETURNING {NOTICE_COLUMNS}"
                ),
                &[&id, &status],
            )
            .await?
        else {
            return Ok(None);
        };
        let updated = notice(&row);
        tx.execute(
            "INSERT INTO notice_updates (notice_id, status, body) VALUES ($1, $2, $3)",
            &[&id, &status, &body],
        )
        .await?;
        if status == "cancelled" {
            // Reminders for a window that will not happen must not go out.
            tx.execute(
                "DELETE FROM mail_outbox WHERE notice_id = $1 AND sent_at IS NULL",
                &[&id],
            )
            .await?;
        }
        enqueue(&tx, id, &mails(&updated)).await?;
        tx.commit().await?;
        Ok(Some(updated))
    }

    /// Notices still of interest at `now`: upcoming or current windows, open incidents,
    /// and everything of the last `history_days`, newest first.
    pub async fn notices_since(&self, since: DateTime<Utc>) -> Result<Vec<Notice>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {NOTICE_COLUMNS} FROM notices
                     WHERE coalesce(ends_at, 'infinity') >= $1 OR status NOT IN ('resolved', 'cancelled')
                     ORDER BY starts_at DESC"
                ),
                &[&since],
            )
            .await?;
        Ok(rows.iter().map(notice).collect())
    }

    /// The history lines of these notices, oldest first.
    pub async fn notice_updates(&self, ids: &[Uuid]) -> Result<Vec<NoticeUpdate>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT notice_id, at, status, body FROM notice_updates
                 WHERE notice_id = ANY($1) ORDER BY at, id",
                &[&ids],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| NoticeUpdate {
                notice_id: r.get(0),
                at: r.get(1),
                status: r.get(2),
                body: r.get(3),
            })
            .collect())
    }

    /// Claims up to `limit` due messages for `lease`: another sender skips them until then,
    /// and a sender that dies mid-way leaves them to be retried after it.
    pub async fn claim_mail(
        &self,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<OutgoingMail>, StoreError> {
        let client = self.pool.get().await?;
        let lease_ms = lease.as_millis() as f64;
        let rows = client
            .query(
                "UPDATE mail_outbox SET next_attempt_at = now() + make_interval(secs => $2::float8 / 1000)
                 WHERE id IN (SELECT id FROM mail_outbox
                              WHERE sent_at IS NULL AND next_attempt_at <= now()
                                AND send_after <= now()
                              ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, recipient, subject, body, attempts",
                &[&limit, &lease_ms],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| OutgoingMail {
                id: r.get(0),
                recipient: r.get(1),
                subject: r.get(2),
                body: r.get(3),
                attempts: r.get(4),
            })
            .collect())
    }

    pub async fn mail_sent(&self, id: i64) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE mail_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL
                 WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(())
    }

    /// Records a failed attempt; the message is tried again after `retry_in`.
    pub async fn mail_failed(
        &self,
        id: i64,
        error: &str,
        retry_in: std::time::Duration,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let ms = retry_in.as_millis() as f64;
        client
            .execute(
                "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
                        next_attempt_at = now() + make_interval(secs => $3::float8 / 1000)
                 WHERE id = $1",
                &[&id, &error, &ms],
            )
            .await?;
        Ok(())
    }

    /// How long the oldest message that is due has been waiting (0 when none is).
    pub async fn mail_lag_seconds(&self) -> Result<f64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one(
                "SELECT coalesce(extract(epoch FROM now() - min(send_after)), 0)::float8
                 FROM mail_outbox WHERE sent_at IS NULL AND send_after <= now()",
                &[],
            )
            .await?
            .get(0))
    }

    /// Messages not yet accepted by the mail server.
    pub async fn mail_backlog(&self) -> Result<i64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one(
                "SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL",
                &[],
            )
            .await?
            .get(0))
    }

    pub async fn notice(&self, id: Uuid) -> Result<Option<Notice>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt(
                &format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE id = $1"),
                &[&id],
            )
            .await?
            .map(|r| notice(&r)))
    }

    /// The outbox per notice and kind of mail, newest notice first: counts only, with the
    /// latest error, never the recipients (they are merchants' people).
    pub async fn mail_summary(&self, limit: i64) -> Result<Vec<MailSummary>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT n.id, n.title, n.kind, m.kind,
                        count(*),
                        count(*) FILTER (WHERE m.sent_at IS NOT NULL),
                        count(*) FILTER (WHERE m.sent_at IS NULL AND m.send_after > now()),
                        count(*) FILTER (WHERE m.sent_at IS NULL AND m.send_after <= now()),
                        count(*) FILTER (WHERE m.sent_at IS NULL AND m.attempts > 0),
                        min(m.send_after) FILTER (WHERE m.sent_at IS NULL),
                        max(m.sent_at),
                        (array_agg(m.last_error ORDER BY m.next_attempt_at DESC)
                            FILTER (WHERE m.sent_at IS NULL AND m.last_error IS NOT NULL))[1]
                 FROM mail_outbox m JOIN notices n ON n.id = m.notice_id
                 GROUP BY n.id, n.title, n.kind, n.created_at, m.kind
                 ORDER BY n.created_at DESC, min(m.send_after), m.kind
                 LIMIT $1",
                &[&limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| MailSummary {
                notice_id: r.get(0),
                notice_title: r.get(1),
                notice_kind: r.get(2),
                mail_kind: r.get(3),
                total: r.get(4),
                sent: r.get(5),
                scheduled: r.get(6),
                due: r.get(7),
                failing: r.get(8),
                next_send_after: r.get(9),
                last_sent_at: r.get(10),
                last_error: r.get(11),
            })
            .collect())
    }
}

/// One line of the operator console's outbox page.
#[derive(Debug, Clone)]
pub struct MailSummary {
    pub notice_id: Uuid,
    pub notice_title: String,
    pub notice_kind: String,
    pub mail_kind: String,
    pub total: i64,
    pub sent: i64,
    /// Not yet due (a reminder waiting for its day).
    pub scheduled: i64,
    /// Due and not yet accepted by the mail server.
    pub due: i64,
    /// Not yet accepted after at least one failed attempt.
    pub failing: i64,
    pub next_send_after: Option<DateTime<Utc>>,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}
