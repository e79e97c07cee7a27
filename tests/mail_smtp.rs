//! The SMTP mail path against a real SMTP server: Python's `aiosmtpd`
//! (`python3 -m aiosmtpd -c aiosmtpd.handlers.Mailbox DIR`) writing each
//! message it receives into a maildir. The tests read the messages back,
//! check sender, recipient (header and envelope) and subject, and spend the
//! mailed tokens. Without python3 or aiosmtpd those tests print
//! "SKIPPED: …" and pass. Whatever the mail server does (refuses
//! connections, never answers), HTTP answers stay prompt. Every test runs
//! on each database backend.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::accounts::*;
use common::http::*;
use common::mail::Mail;
use common::recovery::{verify, RESET_LINK, RESET_SUBJECT, VERIFY_LINK, VERIFY_SUBJECT};
use common::*;
use serde_json::json;

const FROM: &str = "Portcullis <no-reply@example.test>";
const FROM_ADDR: &str = "no-reply@example.test";
const NEW_PASSWORD: &str = "a brand new passphrase 42";
/// How long an HTTP answer may take while mail is failing: generous for a
/// loaded machine, far below the 15 s SMTP timeout a synchronous send would
/// wait out against the silent server.
const PROMPT: Duration = Duration::from_secs(5);

/// The `[mail]` table sending through `smtp://127.0.0.1:{port}` (plain
/// SMTP is allowed to loopback).
fn smtp_mail(port: u16) -> String {
    format!(
        "\n[mail]\nmode = \"smtp\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"{FROM}\"\nlink_base = \"https://app.example.test\"\n"
    )
}

/// Whether `python3 -m aiosmtpd` can run here; says so loudly when not.
fn aiosmtpd_available(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import aiosmtpd.handlers, aiosmtpd.main"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(status) if status.success() => true,
        Ok(_) => {
            eprintln!(
                "\n!!! SKIPPED: {test}: the python3 module aiosmtpd is not installed (pip install aiosmtpd)\n"
            );
            false
        }
        Err(e) => {
            eprintln!("\n!!! SKIPPED: {test}: python3 is not available ({e})\n");
            false
        }
    }
}

/// A running `aiosmtpd` storing messages in a maildir; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts the server on `port` and waits until it accepts connections.
    async fn start_on(port: u16) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).unwrap();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 starts");
        let mut server = SmtpServer { child, port, dir };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("aiosmtpd exited ({status}): {}", server.log());
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd not listening on {addr} after 10 s: {}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn start() -> SmtpServer {
        Self::start_on(free_port()).await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// Every delivered message (maildir `new/`), oldest first by name.
    fn messages(&self) -> Vec<Mail> {
        let new = self.dir.path().join("maildir/new");
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&new) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !n.starts_with('.'))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        paths.sort();
        paths
            .iter()
            .map(|p| Mail::parse_any(&std::fs::read_to_string(p).unwrap()))
            .collect()
    }

    /// Messages whose envelope recipient is `to` and subject is `subject`.
    fn messages_for(&self, to: &str, subject: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|m| m.subject == subject)
            .filter(|m| {
                m.header("X-RcptTo")
                    .is_some_and(|r| r.eq_ignore_ascii_case(to))
            })
            .collect()
    }

    /// Waits up to `within` for a message to `to` with `subject`.
    async fn wait_for(&self, to: &str, subject: &str, within: Duration) -> Mail {
        let deadline = Instant::now() + within;
        loop {
            if let Some(m) = self.messages_for(to, subject).into_iter().next() {
                return m;
            }
            if Instant::now() > deadline {
                let seen: Vec<_> = self
                    .messages()
                    .into_iter()
                    .map(|m| (m.header("X-RcptTo"), m.subject))
                    .collect();
                panic!(
                    "no {subject:?} mail to {to} within {within:?}; maildir has {seen:?}; server log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the envelope and headers of a delivered message and returns the
/// token of its link, which must start with `link`.
fn check_delivered(mail: &Mail, to: &str, subject: &str, link: &str) -> String {
    assert_eq!(mail.subject, subject, "{}", mail.raw);
    assert_eq!(mail.header("From").as_deref(), Some(FROM), "{}", mail.raw);
    let to_header = mail.header("To").unwrap_or_default();
    assert!(
        to_header == to || to_header.ends_with(&format!("<{to}>")),
        "To: {to_header}"
    );
    assert_eq!(mail.header("X-RcptTo").as_deref(), Some(to), "envelope");
    assert_eq!(
        mail.header("X-MailFrom").as_deref(),
        Some(FROM_ADDR),
        "envelope sender"
    );
    let content_type = mail.header("Content-Type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(
        mail.header("MIME-Version").as_deref(),
        Some("1.0"),
        "{}",
        mail.raw
    );
    let id = mail.header("Message-ID").unwrap_or_default();
    let domain = FROM_ADDR.split('@').nth(1).unwrap_or_default();
    assert!(
        id.starts_with('<') && id.ends_with(&format!("@{domain}>")),
        "Message-ID {id:?} on the sender's domain"
    );
    assert!(mail.link().starts_with(link), "{}", mail.link());
    mail.token()
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_delivers_the_verification_mail_and_its_token_verifies() {
    let test = "smtp_delivers_the_verification_mail_and_its_token_verifies";
    if !aiosmtpd_available(test) {
        return;
    }
    for backend in backends().await {
        let b = backend.name;
        let smtp = SmtpServer::start().await;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &smtp_mail(smtp.port)).await;
        let email = "smtp-verify@example.com";
        let t = register_and_login(&gw, email).await;

        let mail = smtp
            .wait_for(email, VERIFY_SUBJECT, Duration::from_secs(10))
            .await;
        let token = check_delivered(&mail, email, VERIFY_SUBJECT, VERIFY_LINK);
        assert!(!mail.body.contains(PASSWORD), "{b}: {}", mail.body);

        let r = verify(&gw, &token).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(
            me(&gw, &t.access).await.json()["email_verified"],
            true,
            "{b}"
        );

        // One message, to that recipient only.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let all = smtp.messages();
        assert_eq!(all.len(), 1, "{b}: {all:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_delivers_the_reset_mail_and_its_token_resets_the_password() {
    let test = "smtp_delivers_the_reset_mail_and_its_token_resets_the_password";
    if !aiosmtpd_available(test) {
        return;
    }
    for backend in backends().await {
        let b = backend.name;
        let smtp = SmtpServer::start().await;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &smtp_mail(smtp.port)).await;
        let email = "smtp-reset@example.com";
        let t = register_and_login(&gw, email).await;
        smtp.wait_for(email, VERIFY_SUBJECT, Duration::from_secs(10))
            .await;

        let r = send(
            client()
                .post(gw.url("/auth/forgot-password"))
                .header("Host", "evil.example")
                .json(&json!({ "email": email })),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        // Nothing for an address without an account.
        let r = send(
            client()
                .post(gw.url("/auth/forgot-password"))
                .json(&json!({ "email": "smtp-nobody@example.com" })),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);

        let mail = smtp
            .wait_for(email, RESET_SUBJECT, Duration::from_secs(10))
            .await;
        let token = check_delivered(&mail, email, RESET_SUBJECT, RESET_LINK);
        assert!(!mail.raw.contains("evil.example"), "{b}: {}", mail.raw);

        let r = send(
            client()
                .post(gw.url("/auth/reset-password"))
                .json(&json!({ "token": token, "new_password": NEW_PASSWORD })),
        )
        .await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_revoked(&gw, &t.access).await;
        problem(
            &login_as(&gw, email, PASSWORD, UA).await,
            401,
            "invalid_credentials",
        );
        Tokens::from(&login_as(&gw, email, NEW_PASSWORD, UA).await);

        tokio::time::sleep(Duration::from_millis(300)).await;
        let all = smtp.messages();
        assert_eq!(all.len(), 2, "{b}: verification + reset only: {all:?}");
        assert!(
            smtp.messages_for("smtp-nobody@example.com", RESET_SUBJECT)
                .is_empty(),
            "{b}"
        );
    }
}

/// Registers `{prefix}{i}@example.com` (i = 0..3), asks for a reset,
/// resends verification and logs in, asserting each answer comes back
/// within `PROMPT`.
async fn assert_prompt_answers(gw: &TestGateway, what: &str, prefix: &str) {
    let timed = |rb: reqwest::RequestBuilder| async move {
        let started = Instant::now();
        let r = send(rb).await;
        (r, started.elapsed())
    };
    for i in 0..3 {
        let email = format!("{prefix}{i}@example.com");
        let body = json!({ "email": email, "password": PASSWORD });
        let (r, took) = timed(client().post(gw.url("/auth/register")).json(&body)).await;
        assert_eq!(r.status, 201, "{what}: {}", r.text);
        assert!(took < PROMPT, "{what}: register took {took:?}");
        for path in ["/auth/forgot-password", "/auth/resend-verification"] {
            let body = json!({ "email": email });
            let (r, took) = timed(client().post(gw.url(path)).json(&body)).await;
            assert_eq!(r.status, 202, "{what} {path}: {}", r.text);
            assert!(took < PROMPT, "{what}: {path} took {took:?}");
        }
        let (r, took) = timed(
            client()
                .post(gw.url("/auth/login"))
                .json(&json!({ "email": email, "password": PASSWORD })),
        )
        .await;
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert!(took < PROMPT, "{what}: login took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_or_silent_smtp_server_never_slows_a_response() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;

        // Nothing listens on the port: every connection is refused.
        let closed = free_port();
        let gw = start(&backend, &echo, &smtp_mail(closed)).await;
        assert_prompt_answers(&gw, &format!("{b} closed port"), "closed").await;
        drop(gw);

        // A server that accepts and then never says a word (the gateway's
        // SMTP timeout is far longer than any response may take).
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let gw = start(&backend, &echo, &smtp_mail(port)).await;
        assert_prompt_answers(&gw, &format!("{b} silent server"), "silent").await;
        drop(gw);
        holder.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_is_delivered_once_a_stopped_smtp_server_is_back() {
    let test = "mail_is_delivered_once_a_stopped_smtp_server_is_back";
    if !aiosmtpd_available(test) {
        return;
    }
    for backend in backends().await {
        let b = backend.name;
        // A real server, stopped before the gateway sends anything.
        let port = {
            let first = SmtpServer::start().await;
            first.port
        };
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &smtp_mail(port)).await;
        let email = "smtp-retry@example.com";
        let started = Instant::now();
        register(&gw, email).await;
        assert!(started.elapsed() < PROMPT, "{b}: {:?}", started.elapsed());
        // Let the first delivery attempt fail against the closed port.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let smtp = SmtpServer::start_on(port).await;
        let mail = smtp
            .wait_for(email, VERIFY_SUBJECT, Duration::from_secs(30))
            .await;
        let token = check_delivered(&mail, email, VERIFY_SUBJECT, VERIFY_LINK);
        let r = verify(&gw, &token).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(smtp.messages().len(), 1, "{b}: delivered exactly once");
    }
}
