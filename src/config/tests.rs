use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("/etc/portcullis"))
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Err(e) => e.lines(),
        Ok(_) => Vec::new(),
    }
}

#[test]
fn shipped_configs_are_valid() {
    let bundled = parse(include_str!("../../config/portcullis.toml")).unwrap();
    assert_eq!(bundled.routes.len(), 4);
    assert_eq!(
        bundled.upstreams[0].backends,
        ["127.0.0.1:3000".parse().unwrap()]
    );
    let production = parse(include_str!("../../config/production.example.toml")).unwrap();
    assert_eq!(production.tokens.trusted_issuers.len(), 1);
    assert_eq!(production.server.trusted_proxies.len(), 1);
}

#[test]
fn an_empty_file_gets_every_default() {
    let c = parse("").unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.server.admin_listen, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(c.server.public_url, "http://127.0.0.1:8080");
    assert_eq!(c.server.max_body_bytes, 65_536);
    assert_eq!(c.tokens.issuer, "portcullis");
    assert_eq!(c.tokens.access_ttl, std::time::Duration::from_secs(900));
    assert_eq!(
        c.tokens.signing_key,
        SecretSource::File("/etc/portcullis/data/signing-key.pem".into())
    );
    assert_eq!(c.headers.strip_prefixes, ["x-auth-"]);
    assert_eq!(c.api_keys.headers, ["x-api-key"]);
    assert!(c.routes.is_empty());
    assert_eq!(
        c.database.sync_interval,
        std::time::Duration::from_millis(500)
    );
}

#[test]
fn the_database_sync_interval_is_bounded() {
    let p = problems("[database]\nsync_interval = \"2s\"\n");
    assert!(
        p.iter()
            .any(|l| l.contains("database.sync_interval: must be at most 1s")),
        "{p:?}"
    );
    let c = parse("[database]\nsync_interval = \"0s\"\n").unwrap();
    assert_eq!(c.database.sync_interval, std::time::Duration::ZERO);
}

#[test]
fn every_unknown_key_is_reported_with_its_line() {
    let p = problems("[server]\nlisten = \"127.0.0.1:1\"\nlsiten = \"x\"\n\n[tokenz]\na = 1\n");
    assert!(
        p.contains(&"line 3: server.lsiten: unknown key".to_string()),
        "{p:?}"
    );
    assert!(p.iter().any(|l| l.starts_with("line 5: tokenz")), "{p:?}");
}

#[test]
fn syntax_and_type_errors_name_the_line() {
    let p = problems("[server]\nthreads = \"two\"\n");
    assert!(p.iter().any(|l| l.contains("line 2")), "{p:?}");
}

#[test]
fn semantic_problems_are_all_collected() {
    let p = problems(
        r#"[server]
listen = "nope"
trusted_proxies = ["10.0.0.0/33"]
[tokens]
algorithm = "HS512"
leeway = "soon"
[[upstreams]]
name = "app"
backends = []
[[upstreams]]
name = "app"
backends = ["not-an-address"]
[[routes]]
name = "r"
path = "/x/{id}"
upstream = "app"
auth = "public"
roles = ["admin"]
org_param = "org"
rate_limit = { key = "user", rate = "fast" }
"#,
    );
    for key in [
        "server.listen",
        "server.trusted_proxies.0",
        "tokens.algorithm",
        "tokens.leeway",
        "upstreams.0.backends",
        "upstreams.1.name",
        "upstreams.1.backends.0",
        "routes.0.auth",
        "routes.0.org_param",
        "routes.0.rate_limit",
    ] {
        assert!(
            p.iter().any(|l| l.contains(&format!("{key}:"))),
            "{key} missing from {p:?}"
        );
    }
}

#[test]
fn api_key_headers_must_survive_header_stripping() {
    let p = problems("[api_keys]\nheaders = [\"X-Auth-Key\"]\n");
    assert!(p.iter().any(|l| l.contains("api_keys.headers.0")), "{p:?}");
}

#[test]
fn strip_path_prefix_must_be_a_literal_prefix() {
    let base = "[[upstreams]]\nname = \"a\"\nbackends = [\"127.0.0.1:1\"]\n[[routes]]\nname = \"r\"\nupstream = \"a\"\nauth = \"public\"\n";
    assert!(parse(&format!(
        "{base}path = \"/svc/v1/**\"\nstrip_path_prefix = \"/svc\"\n"
    ))
    .is_ok());
    let p = problems(&format!(
        "{base}path = \"/svc/v1/**\"\nstrip_path_prefix = \"/sv\"\n"
    ));
    assert!(p.iter().any(|l| l.contains("strip_path_prefix")), "{p:?}");
}

#[test]
fn admin_listener_needs_its_own_port() {
    let server = |listen: &str, admin: &str| {
        problems(&format!(
            "[server]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\n"
        ))
        .into_iter()
        .filter(|l| l.contains("server.admin_listen"))
        .count()
    };
    assert_eq!(server("127.0.0.1:8080", "127.0.0.1:8080"), 1);
    assert_eq!(server("0.0.0.0:8080", "127.0.0.1:8080"), 1);
    assert_eq!(server("127.0.0.1:8080", "[::]:8080"), 1);
    assert_eq!(server("127.0.0.1:8080", "127.0.0.1:9090"), 0);
    assert_eq!(server("127.0.0.1:8080", "127.0.0.2:8080"), 0);
}

#[test]
fn mail_settings_are_checked() {
    let mail = |body: &str| {
        problems(&format!("[mail]\n{body}"))
            .into_iter()
            .filter(|l| l.contains("mail."))
            .collect::<Vec<_>>()
    };
    assert!(mail("mode = \"file\"\n").is_empty());
    let p = mail("mode = \"smtp\"\n");
    assert!(p.iter().any(|l| l.contains("mail.smtp_url")), "{p:?}");
    let p = mail("mode = \"smtp\"\nsmtp_url = \"smtps://u:hunter2@smtp.example.com\"\n");
    assert!(p.iter().any(|l| l.contains("mail.from")), "{p:?}");
    assert!(mail(
        "mode = \"smtp\"\nsmtp_url = \"smtps://u:hunter2@smtp.example.com\"\nfrom = \"A <a@example.com>\"\n"
    )
    .is_empty());
    assert!(mail(
        "mode = \"smtp\"\nsmtp_url = \"smtp://127.0.0.1:2525\"\nfrom = \"a@example.com\"\n"
    )
    .is_empty());
    let p = mail("mode = \"smtp\"\nsmtp_url = \"smtp://u:hunter2@smtp.example.com\"\nfrom = \"a@example.com\"\n");
    assert!(p.iter().any(|l| l.contains("unencrypted")), "{p:?}");
    assert!(
        !p.iter().any(|l| l.contains("hunter2")),
        "the password leaked: {p:?}"
    );
    assert!(mail(
        "mode = \"smtp\"\nsmtp_url = \"smtp://smtp.example.com:587?tls=required\"\nfrom = \"a@example.com\"\n"
    )
    .is_empty());
    let p = mail("mode = \"pigeon\"\nfrom = \"not an address\"\nlink_base = \"ftp://x\"\n");
    for key in ["mail.mode", "mail.from", "mail.link_base"] {
        assert!(p.iter().any(|l| l.contains(key)), "{key}: {p:?}");
    }
}

#[test]
fn mail_links_default_to_the_public_url() {
    let c = parse("[server]\npublic_url = \"https://auth.example.com/\"\n").unwrap();
    assert_eq!(c.mail.link_base, "https://auth.example.com");
    let c = parse("[mail]\nlink_base = \"https://app.example.com/\"\n").unwrap();
    assert_eq!(c.mail.link_base, "https://app.example.com");
    assert_eq!(c.mail.transport, MailTransport::Log);
}

#[test]
fn debug_output_hides_passwords() {
    let c = parse(
        "[database]\nurl = \"postgres://app:hunter2@db.internal/app\"\n\n[mail]\nmode = \"smtp\"\nsmtp_url = \"smtps://u:hunter3@smtp.example.com\"\nfrom = \"a@example.com\"\nlink_base = \"https://app.example.com\"\n",
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(
        shown.contains("postgres://app:***@db.internal/app"),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("hunter3"),
        "{shown}"
    );
}

#[test]
fn syntax_errors_name_line_and_key_but_not_the_source_line() {
    let p = problems("[tokens]\nsigning_key = \"inline-secret\" oops\n");
    assert!(p.iter().any(|l| l.starts_with("line 2:")), "{p:?}");
    assert!(!p.iter().any(|l| l.contains("inline-secret")), "{p:?}");
    let p = problems("[server]\nthreads = \"many\"\n");
    assert!(
        p.iter().any(|l| l.starts_with("line 2: server.threads: ")),
        "{p:?}"
    );
}
