//! The outbox's sender: due messages are claimed (a lease, so nodes never send one twice
//! at once and a crash only delays it), sent over SMTP with lettre (STARTTLS where the
//! server offers it, by default) and marked sent; a failure is retried with exponential
//! backoff, so a mail server that is down loses nothing.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailSettings, MailTls};
use crate::store::notices::OutgoingMail;
use crate::store::Store;

/// Messages claimed per round.
const BATCH: i64 = 50;
/// How long a claimed message is someone's before it is up for grabs again.
const LEASE: Duration = Duration::from_secs(120);

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// `None` when no SMTP host is configured.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Option<Mailer>> {
        let Some(host) = settings.smtp_host.clone() else {
            return Ok(None);
        };
        let params = || TlsParameters::new(host.clone());
        let tls = match settings.tls {
            MailTls::Opportunistic => Tls::Opportunistic(params()?),
            MailTls::Required => Tls::Required(params()?),
            MailTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(settings.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        let from: Mailbox = settings.from.parse().map_err(|e| {
            anyhow::anyhow!("mail.from: {:?} is not an address: {e}", settings.from)
        })?;
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    async fn send(&self, mail: &OutgoingMail) -> Result<(), String> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Wait before the next try after `attempts` failures: 5 s, 10 s, 20 s … at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(0, 10) as u32;
    Duration::from_secs(5 * 2u64.pow(exp)).min(Duration::from_secs(3600))
}

/// Sends what is due; returns (sent, failed).
pub async fn send_due(store: &Store, mailer: &Mailer) -> anyhow::Result<(usize, usize)> {
    let (mut sent, mut failed) = (0, 0);
    loop {
        let batch = store.claim_mail(BATCH, LEASE).await?;
        if batch.is_empty() {
            return Ok((sent, failed));
        }
        for mail in &batch {
            match mailer.send(mail).await {
                Ok(()) => {
                    store.mail_sent(mail.id).await?;
                    sent += 1;
                }
                Err(e) => {
                    tracing::warn!(mail = mail.id, attempts = mail.attempts + 1, error = %e, "mail not accepted; will retry");
                    store
                        .mail_failed(mail.id, &e, backoff(mail.attempts))
                        .await?;
                    failed += 1;
                }
            }
        }
        if failed > 0 {
            // The server is refusing: leave the rest for the next round.
            return Ok((sent, failed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }
}
