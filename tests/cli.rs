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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A fresh copy of the bundled config (no `config/data/`) checks clean:
/// the missing key files are notes, since `serve` creates them at first
/// start, and so are mail links nothing serves. A key file that exists but
/// is bad still fails.
#[test]
fn bundled_config_checks_clean_on_a_fresh_copy() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("config/portcullis.toml").unwrap();
    let cfg = write(dir.path(), &text);
    let fresh = run(&["check"], &cfg);
    assert!(
        fresh.status.success(),
        "{}{}",
        stdout(&fresh),
        stderr(&fresh)
    );
    let out = stdout(&fresh);
    for expected in [
        "note: tokens.signing_key: ",
        "data/signing-key.pem does not exist yet; serve creates it at first start",
        "note: accounts.secret_encryption_key: ",
        "data/secret.key does not exist yet",
        "note: mail.link_base: ",
        "/auth/reset-password",
        "OK (4 routes, 1 upstreams)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(!dir.path().join("data").exists(), "check creates nothing");

    let keygen = run(&["keygen"], &cfg);
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    assert!(
        dir.path().join("data/signing-key.pem").exists(),
        "relative to the config file"
    );
    let ok = run(&["check"], &cfg);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        !stdout(&ok).contains("tokens.signing_key"),
        "{}",
        stdout(&ok)
    );

    std::fs::write(dir.path().join("data/secret.key"), "too short").unwrap();
    let short = run(&["check"], &cfg);
    assert_eq!(short.status.code(), Some(1), "{}", stdout(&short));
    assert!(
        stderr(&short).contains("accounts.secret_encryption_key: ")
            && stderr(&short).contains("at least 32"),
        "{}",
        stderr(&short)
    );
    std::fs::remove_file(dir.path().join("data/secret.key")).unwrap();
    std::fs::write(dir.path().join("data/signing-key.pem"), "not a key").unwrap();
    let bad = run(&["check"], &cfg);
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
    assert!(
        stderr(&bad).contains("tokens.signing_key: "),
        "{}",
        stderr(&bad)
    );

    let again = run(&["keygen"], &cfg);
    assert_eq!(
        again.status.code(),
        Some(1),
        "never overwrites without --force"
    );
    assert!(run(&["keygen", "--force"], &cfg).status.success());
}

/// Mail links are a note only while they point at this gateway and no
/// public route forwards them; a link_base elsewhere is silent.
#[test]
fn check_notes_mail_links_nothing_serves() {
    let dir = tempfile::tempdir().unwrap();
    let routes = "\n[[upstreams]]\nname = \"app\"\nbackends = [\"127.0.0.1:3000\"]\n\n[[routes]]\nname = \"pages\"\npath = \"/**\"\nupstream = \"app\"\nauth = \"public\"\n";
    for (text, noted) in [
        (
            "[server]\npublic_url = \"https://auth.example.com\"\n",
            true,
        ),
        ("[mail]\nlink_base = \"http://127.0.0.1:8080/\"\n", true),
        ("[mail]\nlink_base = \"https://app.example.com\"\n", false),
        (routes, false),
    ] {
        let cfg = write(dir.path(), text);
        let o = run(&["check"], &cfg);
        assert!(o.status.success(), "{text}: {}{}", stdout(&o), stderr(&o));
        assert_eq!(
            stdout(&o).contains("note: mail.link_base:"),
            noted,
            "{text}: {}",
            stdout(&o)
        );
    }
}

/// No secret value reaches a `check` or start-up message; every problem
/// names its key, also for secrets read from `env:`/`file:`.
#[test]
fn check_never_prints_a_secret_and_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-never-printed-22"; // < 32 bytes: too short for HS256
    let check = |text: &str, env: Option<&str>, key: &str, exit: i32| {
        let cfg = write(dir.path(), text);
        let mut cmd = Command::new(BIN);
        cmd.arg("check").arg("--config").arg(&cfg);
        cmd.env_remove("PORTCULLIS_CONFIG")
            .env_remove("PORTCULLIS_TEST_SECRET");
        if let Some(value) = env {
            cmd.env("PORTCULLIS_TEST_SECRET", value);
        }
        let o = cmd.output().unwrap();
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(exit), "{text}: {all}");
        assert!(!all.contains(secret), "{text}: the secret leaked: {all}");
        assert!(all.contains(key), "{text}: names {key:?}: {all}");
    };
    let hs256 = |key: &str| format!("[tokens]\nalgorithm = \"HS256\"\nsigning_key = \"{key}\"\n");
    check(&hs256(secret), None, "tokens.signing_key: ", 1);
    check(
        &hs256("env:PORTCULLIS_TEST_SECRET"),
        Some(secret),
        "tokens.signing_key: env:PORTCULLIS_TEST_SECRET: HS256 secret is",
        1,
    );
    check(
        &hs256("env:PORTCULLIS_TEST_SECRET"),
        None,
        "tokens.signing_key: environment variable PORTCULLIS_TEST_SECRET is not set",
        1,
    );
    check(&hs256("file:nope/key"), None, "tokens.signing_key: ", 0);
    check(
        &format!("[accounts]\nsecret_encryption_key = \"{secret}\"\n"),
        None,
        "accounts.secret_encryption_key: ",
        1,
    );
    check(
        "[mail]\nmode = \"smtp\"\nsmtp_url = \"file:nope/smtp-url\"\nfrom = \"a@example.com\"\n",
        None,
        "mail.smtp_url: cannot read",
        1,
    );
    let smtp = format!("smtp://portcullis:{secret}@smtp.example.com");
    check(
        &format!("[mail]\nmode = \"smtp\"\nsmtp_url = \"{smtp}\"\nfrom = \"a@example.com\"\n"),
        None,
        "mail.smtp_url: ",
        1,
    );
    check(
        "[mail]\nmode = \"smtp\"\nsmtp_url = \"env:PORTCULLIS_TEST_SECRET\"\nfrom = \"a@example.com\"\n",
        Some(&smtp),
        "mail.smtp_url: smtp://smtp.example.com would send mail",
        1,
    );
    // A syntax error next to a secret: toml would print the whole line.
    check(
        &format!("[tokens]\nsigning_key = \"{secret}\" oops\n"),
        None,
        "line 2:",
        1,
    );

    // `serve` names the key too (the key is read before any port is bound).
    let cfg = write(
        dir.path(),
        &format!(
            "{}\n[mail]\nlink_base = \"https://app.example.com\"\n",
            preamble_with(free_port(), free_port(), "", "algorithm = \"HS256\"")
                .replace("file:data/signing-key.pem", "env:PORTCULLIS_TEST_SECRET")
        ),
    );
    let o = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("PORTCULLIS_TEST_SECRET", "short-secret-printed-nowhere")
        .output()
        .unwrap();
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("tokens.signing_key: "), "{all}");
    assert!(!all.contains("short-secret-printed-nowhere"), "{all}");
}

/// Keys that are parsed but would have no effect are refused.
#[test]
fn check_refuses_keys_that_would_have_no_effect() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("[redis]\nurl = \"redis://127.0.0.1:6379\"\n", "redis: not supported yet"),
        ("[mail]\nsmtp_url = \"smtps://smtp.example.com\"\n", "mail.smtp_url: only used with mode = \"smtp\""),
        ("[mail]\nmode = \"smtp\"\nsmtp_url = \"smtps://smtp.example.com\"\nfrom = \"a@example.com\"\noutbox_dir = \"x\"\n", "mail.outbox_dir: only used with mode = \"file\""),
    ] {
        let o = run(&["check"], &write(dir.path(), text));
        assert_eq!(o.status.code(), Some(1), "{text}: {}", stdout(&o));
        assert!(stderr(&o).contains(expected), "{text}: {}", stderr(&o));
    }
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
fn check_refuses_short_hmac_secrets_and_notes_missing_key_files() {
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
    assert_eq!(out.status.code(), Some(0), "serve would create it");
    assert!(stdout(&out).contains("nope/key.pem"), "{}", stdout(&out));
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
