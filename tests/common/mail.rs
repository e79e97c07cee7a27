//! What the gateway mailed. With `[mail] mode = "file"` (`MAIL_FILE`) each
//! message is one RFC 5322 `.eml` file in the test's `data/outbox`; these
//! helpers read them back and pull out the link and the token.

use std::time::Duration;

use super::TestGateway;

/// The `[mail]` table for tests: one `.eml` per message, links on a
/// fixed base (never the request's Host).
pub const MAIL_FILE: &str =
    "\n[mail]\nmode = \"file\"\noutbox_dir = \"data/outbox\"\nlink_base = \"https://app.example.test\"\n";

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub raw: String,
}

impl Mail {
    pub fn parse(raw: &str) -> Mail {
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header/body split in:\n{raw}"));
        let header = |name: &str| {
            head.split("\r\n")
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} header in:\n{raw}"))
                .to_string()
        };
        let body = if head
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: quoted-printable")
        {
            decode_quoted_printable(body)
        } else {
            body.to_string()
        };
        Mail {
            to: header("To"),
            subject: header("Subject"),
            body: body.replace("\r\n", "\n"),
            raw: raw.to_string(),
        }
    }

    /// The first link in the body (`https://…?token=…`).
    pub fn link(&self) -> String {
        self.body
            .lines()
            .find(|l| l.starts_with("http://") || l.starts_with("https://"))
            .unwrap_or_else(|| panic!("no link in:\n{}", self.body))
            .trim()
            .to_string()
    }

    /// The token of the link; the body also carries it on a line of its own.
    pub fn token(&self) -> String {
        let link = self.link();
        let token = link
            .split_once("?token=")
            .unwrap_or_else(|| panic!("no token in link {link}"))
            .1
            .to_string();
        assert!(
            self.body.lines().any(|l| l.trim() == token),
            "the bare token is not on a line of its own:\n{}",
            self.body
        );
        token
    }
}

/// RFC 2045 §6.7: `=` + CRLF is a soft line break, `=XX` a byte.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 body")
}

/// Every message in the outbox, oldest first.
pub fn outbox(gw: &TestGateway) -> Vec<Mail> {
    let dir = gw.dir.path().join("data/outbox");
    let mut names: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
        .iter()
        .map(|p| Mail::parse(&std::fs::read_to_string(p).unwrap()))
        .collect()
}

/// Messages to `to` (case-insensitive), oldest first.
pub fn mails_to(gw: &TestGateway, to: &str) -> Vec<Mail> {
    outbox(gw)
        .into_iter()
        .filter(|m| m.to.eq_ignore_ascii_case(to))
        .collect()
}

/// Waits (up to 10 s) until at least `n` messages to `to` are in the
/// outbox and returns them all, oldest first.
pub async fn wait_for_mails(gw: &TestGateway, to: &str, n: usize) -> Vec<Mail> {
    for _ in 0..200 {
        let mails = mails_to(gw, to);
        if mails.len() >= n {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} mail(s) to {to}; outbox has: {:?}",
        outbox(gw)
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
}

/// The newest of at least `n` messages to `to`.
pub async fn nth_mail(gw: &TestGateway, to: &str, n: usize) -> Mail {
    wait_for_mails(gw, to, n).await.swap_remove(n - 1)
}

/// Asserts that, after a pause long enough for the mail worker, there are
/// still exactly `n` messages to `to`.
pub async fn assert_mail_count(gw: &TestGateway, to: &str, n: usize) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = mails_to(gw, to);
    assert_eq!(mails.len(), n, "mails to {to}: {mails:?}");
}

impl Mail {
    /// Parses a message stored with bare `\n` line ends (a maildir file
    /// written by Python's `mailbox`) or with CRLF, or a mix of both.
    pub fn parse_any(raw: &str) -> Mail {
        Mail::parse(&raw.replace("\r\n", "\n").replace('\n', "\r\n"))
    }

    /// The first header `name` (case-insensitive), unfolded, if any.
    pub fn header(&self, name: &str) -> Option<String> {
        let raw = self.raw.replace("\r\n", "\n");
        let head = raw.split("\n\n").next().unwrap_or("");
        let mut lines = head.split('\n').peekable();
        while let Some(line) = lines.next() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if !key.eq_ignore_ascii_case(name) {
                continue;
            }
            let mut value = value.trim().to_string();
            while let Some(next) = lines.peek() {
                if !next.starts_with([' ', '\t']) {
                    break;
                }
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
        None
    }
}
