//! Outgoing mail (`[mail]`): verification, password reset and deletion
//! notices. Handlers only queue a message; a worker on the API runtime
//! builds it (RFC 5322, plain text) and hands it to the transport — the
//! log, a `.eml` file per message, or SMTP (STARTTLS or implicit TLS,
//! with timeouts) — retrying failures with backoff. A slow or broken mail
//! server therefore never slows an HTTP response.
//!
//! - `templates`: the messages' subjects and bodies

pub mod templates;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{mpsc, Semaphore};

use crate::config::{MailConfig, MailTransport};
use crate::runtime::ApiRuntime;
use templates::Mail;

/// Messages waiting for the worker; beyond this, new ones are dropped
/// (and logged) rather than held in memory without bound.
const QUEUE: usize = 1024;
/// Deliveries in flight at once.
const PARALLEL: usize = 4;
/// Tries per message, and the wait before each retry.
const BACKOFF: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(60),
];
/// SMTP connect and command timeout.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The paths below `mail.link_base` that mails link to (with `?token=`).
pub const RESET_PASSWORD_PATH: &str = "/reset-password";
pub const VERIFY_EMAIL_PATH: &str = "/verify-email";
pub const LINK_PATHS: [&str; 2] = [RESET_PASSWORD_PATH, VERIFY_EMAIL_PATH];

/// The warning `serve` logs and `check` prints when mail links point at
/// this gateway's own origin (`link_base` left to `server.public_url`, say)
/// and no public route forwards those paths to a backend: each link would
/// answer 404. The gateway serves no such pages itself; a front end must.
pub fn unserved_links_warning(config: &crate::config::Config) -> Option<String> {
    let base = url::Url::parse(&config.mail.link_base).ok()?;
    let own = [
        config.server.public_url.clone(),
        format!("http://{}", config.server.listen),
    ];
    let is_own = own
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .any(|u| u.origin() == base.origin());
    if !is_own {
        return None;
    }
    let host = base.host_str().unwrap_or_default().to_ascii_lowercase();
    let prefix = base.path().trim_end_matches('/');
    let forwarded = |path: &str| {
        let segments = crate::policy::match_segments(path, config.server.allow_semicolons);
        let rules = config.routes.rules();
        config
            .routes
            .find(&segments, &host, &http::Method::GET)
            .is_some_and(|i| {
                rules[i].auth == crate::policy::AuthMode::Public && rules[i].upstream.is_some()
            })
    };
    let unserved: Vec<String> = LINK_PATHS
        .iter()
        .map(|p| format!("{prefix}{p}"))
        .filter(|p| !forwarded(p))
        .collect();
    if unserved.is_empty() {
        return None;
    }
    Some(format!(
        "mail.link_base: mails link to {} ({}) on this gateway, which nothing serves (404); \
         the links carry a token for a front-end page to POST to /auth/reset-password or \
         /auth/verify-email; set mail.link_base to the app that serves those pages",
        config.mail.link_base,
        unserved.join(", ")
    ))
}

struct Outgoing {
    to: String,
    mail: Mail,
}

/// Queues mail for delivery; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    queue: mpsc::Sender<Outgoing>,
    link_base: Arc<str>,
}

impl Mailer {
    /// Starts the delivery worker on `runtime`.
    pub fn start(config: &MailConfig, runtime: &ApiRuntime) -> Result<Mailer, String> {
        let from: Mailbox = config.from.parse().map_err(|e| format!("mail.from: {e}"))?;
        let transport = Transport::new(&config.transport)?;
        if transport.is_log() {
            tracing::warn!(
                "mail.mode = \"log\": messages, with their links, go to the log; use \"file\" or \"smtp\" in production"
            );
        }
        let (queue, inbox) = mpsc::channel(QUEUE);
        runtime.spawn(deliver_all(inbox, Arc::new(transport), from));
        Ok(Mailer {
            queue,
            link_base: config.link_base.as_str().into(),
        })
    }

    /// `{link_base}{path}?token={token}`.
    pub fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.link_base)
    }

    /// Queues `mail` for `to`; never waits.
    pub fn send(&self, to: &str, mail: Mail) {
        let subject = mail.subject.clone();
        let outgoing = Outgoing {
            to: to.to_string(),
            mail,
        };
        if self.queue.try_send(outgoing).is_err() {
            tracing::error!(subject, "mail queue full or closed; message dropped");
        }
    }
}

enum Transport {
    Log,
    File(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    fn new(config: &MailTransport) -> Result<Transport, String> {
        Ok(match config {
            MailTransport::Log => Transport::Log,
            MailTransport::File(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("mail.outbox_dir {}: {e}", dir.display()))?;
                Transport::File(dir.clone())
            }
            MailTransport::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("mail.smtp_url: {e}"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
        })
    }

    fn is_log(&self) -> bool {
        matches!(self, Transport::Log)
    }

    async fn deliver(&self, message: &lettre::Message, mail: &Mail) -> Result<(), String> {
        match self {
            Transport::Log => {
                let to = message.envelope().to().iter().map(ToString::to_string);
                let id = message.headers().get_raw("Message-ID").unwrap_or_default();
                tracing::info!(
                    to = to.collect::<Vec<_>>().join(", "),
                    message_id = id,
                    subject = mail.subject,
                    body = mail.body,
                    "mail (mail.mode = log)"
                );
                Ok(())
            }
            Transport::File(dir) => write_eml(dir, &message.formatted()).await,
            Transport::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

/// Writes under a temporary name and renames, so readers of the outbox
/// never see half a message.
async fn write_eml(dir: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
        uuid::Uuid::new_v4().simple()
    );
    let partial = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&partial, bytes)
        .await
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    tokio::fs::rename(&partial, dir.join(format!("{name}.eml")))
        .await
        .map_err(|e| format!("cannot move {} into place: {e}", partial.display()))
}

/// The message, with the headers every transport needs (lettre adds
/// neither `Message-ID` nor `MIME-Version` to a plain body by itself).
fn build(from: &Mailbox, to: &str, mail: &Mail) -> Result<lettre::Message, String> {
    let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(message_id(from)))
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        // lettre picks the transfer encoding: quoted-printable when a
        // line (a link) is longer than 76 characters.
        .body(Body::new(mail.body.clone()))
        .map_err(|e| e.to_string())
}

/// A unique `<random@domain>` id, the domain being the sender's (RFC 5322
/// §3.6.4: the right side names the host that made the id).
fn message_id(from: &Mailbox) -> String {
    format!(
        "<{}@{}>",
        uuid::Uuid::new_v4().simple(),
        from.email.domain()
    )
}

async fn deliver_all(
    mut inbox: mpsc::Receiver<Outgoing>,
    transport: Arc<Transport>,
    from: Mailbox,
) {
    let slots = Arc::new(Semaphore::new(PARALLEL));
    while let Some(out) = inbox.recv().await {
        let message = match build(&from, &out.to, &out.mail) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(subject = out.mail.subject, error = e, "mail not sent");
                continue;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let transport = transport.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut waits = BACKOFF.iter();
            loop {
                match transport.deliver(&message, &out.mail).await {
                    Ok(()) => break,
                    Err(e) => match waits.next() {
                        Some(wait) => {
                            tracing::warn!(subject = out.mail.subject, error = e, retry_in = ?wait, "mail delivery failed");
                            tokio::time::sleep(*wait).await;
                        }
                        None => {
                            tracing::error!(
                                subject = out.mail.subject,
                                error = e,
                                "mail delivery failed; giving up"
                            );
                            break;
                        }
                    },
                }
            }
        });
    }
}
