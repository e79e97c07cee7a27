//! Test harness: the real gateway started in-process on free ports in
//! front of echo upstreams, a raw HTTP client for requests reqwest would
//! "fix", and helpers to mint tokens with the gateway's own key.

#![allow(dead_code, unused_imports)]

pub mod accounts;
pub mod db;
pub mod echo;
pub mod http;
pub mod keys;
pub mod login;
pub mod mail;
pub mod mfa;
pub mod openapi;
pub mod orgs;
pub mod recovery;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use portcullis::{AppState, Config, Gateway};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use db::{backends, Backend};
pub use echo::Echo;

/// A free loopback port (bound, then released for the gateway to take).
/// Never the same port twice in one test process: the kernel may hand a
/// released port out again before its taker binds it, and two listeners of
/// one gateway on one port are a configuration error.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

struct TestShutdown(Arc<tokio::sync::Notify>);

#[async_trait]
impl ShutdownSignalWatch for TestShutdown {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::FastShutdown
    }
}

type ConfigFn = Arc<dyn Fn(u16, u16) -> String + Send + Sync>;

pub struct TestGateway {
    config: ConfigFn,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    stop: Arc<tokio::sync::Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The `[server]`/`[tokens]` preamble every test config starts with.
pub fn preamble(listen: u16, admin: u16) -> String {
    preamble_with(listen, admin, "", "")
}

/// The preamble with extra lines in its `[server]` and `[tokens]` tables
/// (TOML forbids repeating a table, so overrides go here).
pub fn preamble_with(listen: u16, admin: u16, server_extra: &str, tokens_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{listen}"
admin_listen = "127.0.0.1:{admin}"
threads = 2
shutdown_grace = "0s"
{server_extra}

[tokens]
signing_key = "file:data/signing-key.pem"
{tokens_extra}
"#
    )
}

/// An `[[upstreams]]` block named `name` over `backends`, with a fast health check.
pub fn upstream(name: &str, backends: &[SocketAddr]) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "\n[[upstreams]]\nname = \"{name}\"\nbackends = [{}]\nhealth_check = {{ path = \"/healthz\", interval = \"1s\" }}\nconnect_timeout = \"500ms\"\nread_timeout = \"3s\"\n",
        list.join(", ")
    )
}

impl TestGateway {
    /// Starts a gateway whose config is the preamble plus `body`
    /// (upstreams, routes, overrides of other sections).
    pub async fn start(body: &str) -> TestGateway {
        Self::start_extra("", "", body).await
    }

    /// Like `start`, with extra `[server]` and `[tokens]` lines.
    pub async fn start_extra(server_extra: &str, tokens_extra: &str, body: &str) -> TestGateway {
        let (server_extra, tokens_extra, body) = (
            server_extra.to_string(),
            tokens_extra.to_string(),
            body.to_string(),
        );
        Self::start_with(move |listen, admin| {
            format!(
                "{}{body}",
                preamble_with(listen, admin, &server_extra, &tokens_extra)
            )
        })
        .await
    }

    /// Like `start`, behind a trusted proxy on 127.0.0.1 (the test client).
    pub async fn start_trusting_localhost(body: &str) -> TestGateway {
        Self::start_extra("trusted_proxies = [\"127.0.0.1/32\"]", "", body).await
    }

    /// Starts a gateway from a full config built from the two ports.
    pub async fn start_with(
        config: impl Fn(u16, u16) -> String + Send + Sync + 'static,
    ) -> TestGateway {
        Self::start_in(Arc::new(config), tempfile::tempdir().unwrap()).await
    }

    async fn start_in(config: ConfigFn, dir: tempfile::TempDir) -> TestGateway {
        let (listen, admin) = (free_port(), free_port());
        let text = config(listen, admin);
        let parsed = Config::from_toml(&text, dir.path())
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}\n---\n{text}"));
        let gateway = Gateway::build(parsed).expect("gateway builds");
        let state = gateway.state().clone();
        let stop = Arc::new(tokio::sync::Notify::new());
        let signal = TestShutdown(stop.clone());
        let thread = std::thread::spawn(move || gateway.run(Box::new(signal)));
        let gw = TestGateway {
            config,
            addr: SocketAddr::from(([127, 0, 0, 1], listen)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin)),
            state,
            dir,
            stop,
            thread: Some(thread),
        };
        gw.wait_ready().await;
        gw
    }

    /// Stops this gateway and starts a new process-equivalent on the same
    /// config and data directory (new ports): what a restart keeps.
    pub async fn restart(mut self) -> TestGateway {
        self.shutdown();
        let config = self.config.clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Self::start_in(config, dir).await
    }

    fn shutdown(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    async fn wait_ready(&self) {
        let client = client();
        for _ in 0..200 {
            let proxy_up = tokio::net::TcpStream::connect(self.addr).await.is_ok();
            if proxy_up {
                if let Ok(r) = client
                    .get(format!("http://{}/healthz", self.admin))
                    .send()
                    .await
                {
                    if r.status() == 200 {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("gateway did not become ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Claims of a valid access token for a fresh user; edit before signing.
    pub fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": "portcullis",
            "aud": "portcullis",
            "sub": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + 900,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sid": uuid::Uuid::new_v4().to_string(),
            "roles": ["user"],
            "scope": "",
            "email": "alice@example.com",
        })
    }

    /// Signs claims with the gateway's key as an access token.
    pub fn sign(&self, claims: &Value) -> String {
        self.state.signing_key.sign("at+jwt", claims).unwrap()
    }

    /// A valid access token with `edit` applied to the default claims.
    pub fn token(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut c = self.claims();
        edit(&mut c);
        self.sign(&c)
    }

    pub async fn metrics(&self) -> String {
        client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The value of the `/metrics` sample line starting with `series` (exact
/// labels).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `request` (a full HTTP/1.1 request head, `Connection: close` is
/// added) byte for byte, so paths and headers reach the gateway unaltered.
pub async fn raw(addr: SocketAddr, request: &str) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = request.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

/// `GET path` with extra header lines, sent raw.
pub async fn raw_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw(addr, &req).await
}

/// Asserts a problem+json response with `status` and `code`.
pub fn assert_problem(resp: &RawResponse, status: u16, code: &str) {
    assert_eq!(
        resp.status,
        status,
        "status; body: {}",
        String::from_utf8_lossy(&resp.body)
    );
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );
    let body = resp.json();
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
}

/// Sends `request` exactly as given (no `Connection: close` added) and
/// returns every byte the gateway answers until it closes or goes quiet
/// for `quiet`.
pub async fn exchange(addr: SocketAddr, request: &[u8], quiet: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, stream.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The status lines in a stream of answers, in order (an answer starts
/// right after the previous body, not necessarily on a line of its own).
pub fn status_lines(answers: &str) -> Vec<String> {
    answers
        .match_indices("HTTP/1.")
        .map(|(at, _)| answers[at..].split("\r\n").next().unwrap_or("").to_string())
        .collect()
}
