//! The `portcullis` binary from the outside: `check` reports every problem
//! with its key and line, `keygen` writes keys, `serve` creates its key on
//! first start, finishes in-flight requests on SIGTERM, and refuses a taken
//! port at once.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn run(args: &[&str], config: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("PORTCULLIS_CONFIG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bundled_config_checks_clean_once_a_key_exists() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("config/portcullis.toml").unwrap();
    let cfg = write(dir.path(), &text);
    let missing = run(&["check"], &cfg);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("tokens.signing_key"),
        "{}",
        stderr(&missing)
    );

    let keygen = run(&["keygen"], &cfg);
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    assert!(
        dir.path().join("data/signing-key.pem").exists(),
        "relative to the config file"
    );
    let ok = run(&["check"], &cfg);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("OK (4 routes, 1 upstreams)"));

    let again = run(&["keygen"], &cfg);
    assert_eq!(
        again.status.code(),
        Some(1),
        "never overwrites without --force"
    );
    assert!(run(&["keygen", "--force"], &cfg).status.success());
}

#[test]
fn check_reports_every_problem_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        r#"[server]
listen = "127.0.0.1:8080"
colour = "blue"

[tokens]
signing_key = "file:keys/missing.pem"

[[upstreams]]
name = "app"
backends = ["127.0.0.1:3000"]

[[routes]]
name = "everything"
path = "/**"
upstream = "app"
auth = "jwt"

[[routes]]
name = "admin"
path = "/admin/**"
upstream = "app"
auth = "jwt"

[[routes]]
name = "ghost"
path = "/ghost/*x"
upstream = "nowhere"
auth = "sometimes"
frobnicate = true
"#,
    );
    let out = run(&["check"], &cfg);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for expected in [
        "line 3: server.colour: unknown key",
        "line 29: routes.2.frobnicate: unknown key",
        "line 27: routes.2.upstream: no upstream named \"nowhere\"",
        "line 28: routes.2.auth:",
        "line 26: routes.2.path:",
        "line 18: routes.1: route \"admin\" is unreachable: route \"everything\"",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.lines().count() >= 6, "one line per problem:\n{err}");
}

#[test]
fn check_refuses_short_hmac_secrets_and_missing_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "[tokens]\nalgorithm = \"HS256\"\nsigning_key = \"env:PORTCULLIS_TEST_SHORT_SECRET\"\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&cfg)
        .env("PORTCULLIS_TEST_SHORT_SECRET", "only-20-bytes-long!!")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("at least 32 are required"),
        "{}",
        stderr(&out)
    );

    let missing = write(
        dir.path(),
        "[tokens]\nsigning_key = \"file:nope/key.pem\"\n",
    );
    let out = run(&["check"], &missing);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope/key.pem"), "{}", stderr(&out));
}

#[test]
fn keygen_writes_every_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "");
    for alg in ["EdDSA", "ES256", "RS256", "HS256"] {
        let path = dir.path().join(format!("{alg}.key"));
        let out = run(
            &[
                "keygen",
                "--algorithm",
                alg,
                "--out",
                path.to_str().unwrap(),
            ],
            &cfg,
        );
        assert!(out.status.success(), "{alg}: {}", stderr(&out));
        let algorithm = alg.parse().unwrap();
        let material = std::fs::read(&path).unwrap();
        portcullis::authn::keys::SigningKey::from_material(algorithm, &material).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let bad = run(&["keygen", "--algorithm", "none", "--out", "x"], &cfg);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn serve_refuses_a_bad_config_naming_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "[server]\nlisten = \"nope\"\nthreads = 0\n");
    let out = run(&["serve"], &cfg);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("server.listen") && err.contains("server.threads"),
        "{err}"
    );
}

/// A port already taken is an error at once, naming the key, for either
/// listener: not a process that retries for 30 s and then lives on without
/// a listener.
#[test]
fn serve_exits_at_once_when_a_listen_port_is_taken() {
    for key in ["listen", "admin_listen"] {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let (listen, admin) = match key {
            "listen" => (port, free_port()),
            _ => (free_port(), port),
        };
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(dir.path(), &preamble(listen, admin));
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&cfg)
            .env_remove("PORTCULLIS_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("{key}: still running 20 s after start on a taken port");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(1), "{key}: {err}");
        let expected = format!("server.{key}: cannot listen on 127.0.0.1:{port}");
        assert!(err.contains(&expected), "{key}: {err}");
        drop(taken);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_creates_its_key_and_finishes_in_flight_requests_on_sigterm() {
    let echo = Echo::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = (free_port(), free_port());
    let text = format!(
        "{}{}\n[[routes]]\nname = \"all\"\npath = \"/**\"\nupstream = \"app\"\nauth = \"public\"\n",
        // TOML forbids repeating a key, so the harness's 0 s grace is edited in place.
        preamble(listen, admin).replace("shutdown_grace = \"0s\"", "shutdown_grace = \"2s\""),
        upstream("app", &[echo.addr])
    );
    let cfg = write(dir.path(), &text);
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let client = client();
    let mut ready = false;
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{admin}/healthz"))
            .send()
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "gateway did not start");
    assert!(
        dir.path().join("data/signing-key.pem").exists(),
        "key created on first start"
    );

    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{listen}/slow"))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());

    let resp = slow.await.unwrap().expect("in-flight request completes");
    assert_eq!(resp.status(), 200);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
}
