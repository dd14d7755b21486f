//! Outgoing mail: SMTP through `lettre` when `SMTP_URL` is set; otherwise every mail is written
//! as one file in `OUTBOX_DIR` (and, in local mode, the link it carries is logged), so local runs
//! and tests read mails from the folder.
use std::path::PathBuf;

use lettre::{message::Mailbox, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{AppEnv, Settings};

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox {
        dir: PathBuf,
        from: String,
        log_links: bool,
    },
}

/// One mail to send.
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: String,
    /// The link the mail carries, logged in local outbox mode only.
    pub link: Option<&'a str>,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        Ok(match &settings.smtp_url {
            Some(url) => Mailer::Smtp {
                transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
                    .build(),
                from: settings
                    .mail_from
                    .parse()
                    .map_err(|e| anyhow::anyhow!("MAIL_FROM: {e}"))?,
            },
            None => {
                std::fs::create_dir_all(&settings.outbox_dir).map_err(|e| {
                    anyhow::anyhow!("OUTBOX_DIR {}: {e}", settings.outbox_dir.display())
                })?;
                Mailer::Outbox {
                    dir: settings.outbox_dir.clone(),
                    from: settings.mail_from.clone(),
                    log_links: settings.app_env == AppEnv::Local,
                }
            }
        })
    }

    pub async fn send(&self, mail: Mail<'_>) -> anyhow::Result<()> {
        match self {
            Mailer::Smtp { transport, from } => {
                let message = Message::builder()
                    .from(from.clone())
                    .to(mail.to.parse()?)
                    .subject(mail.subject)
                    .body(mail.body)?;
                transport.send(message).await?;
                tracing::info!("mail sent by SMTP");
            }
            Mailer::Outbox {
                dir,
                from,
                log_links,
            } => {
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
                    uuid::Uuid::new_v4()
                );
                let text = format!(
                    "From: {from}\r\nTo: {}\r\nSubject: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
                    mail.to, mail.subject, mail.body
                );
                // Write then rename, so a reader of the folder never sees half a mail.
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, text).await?;
                tokio::fs::rename(&tmp, dir.join(&name)).await?;
                if *log_links {
                    tracing::info!(file = %name, link = mail.link.unwrap_or(""), "mail written to the outbox");
                } else {
                    tracing::info!(file = %name, "mail written to the outbox");
                }
            }
        }
        Ok(())
    }
}
